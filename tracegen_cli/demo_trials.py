"""Evaluation trials of the demo: a seeded layout, the arm camera's RGB-D, a prediction, execution
through the servo-bus emulator, and the simulator's success check.

A trial keeps every file it used in its folder (`image.png`, `depth.npz`, `intrinsics.txt`,
`calibration.json`, `camera_to_base.json`, `trace.npz`), so any trial can be replayed by hand with
`tracegen predict` / `tracegen execute` against `tracegen robot emulate`. The simulator side is behind
`TrialWorld` (made by `demo_sim.open_trial_world`), the model side behind `Predictor`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from tracegen_cli.demo_cli import DemoError, run_command
from tracegen_cli.demo_report import TrialRecord, path_error_px
from tracegen_cli.render import render_trace_overlay, save_png

logger = logging.getLogger(__name__)
TOOL_SAMPLE_PERIOD_S = 0.02  # how often the executed tool position is recorded
EXECUTE_SPEED = 0.1  # tool cruise speed of trial executions, m/s (the safety limit is 0.25)
EXECUTE_FLOOR = 0.003  # lowest tool height, base frame: 3 mm above the table top (sweeping pushes at 7 mm)


@dataclass(frozen=True)
class Observation:
    """What the arm's camera sees before a trial.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        depth: (H, W) float32 z-depth in metres (NaN where unknown).
        intrinsics: (3, 3) float32 pinhole matrix, pixels.
        instruction: the task instruction given to the model.
    """

    image: np.ndarray
    depth: np.ndarray
    intrinsics: np.ndarray
    instruction: str


class TrialWorld(Protocol):
    """One seeded simulated layout with the SO-101 behind a servo backend."""

    backend: object  # a `robot.emulator.ServoBackend` driving the simulated arm

    def observe(self) -> Observation: ...

    def write_calibration(self, path: Path) -> Path: ...

    def write_camera_to_base(self, path: Path) -> Path: ...

    def tool_in_camera(self) -> np.ndarray: ...

    def success(self) -> bool: ...

    def goal_distance(self) -> float: ...

    def goal_offset(self) -> np.ndarray: ...

    def close(self) -> None: ...


# predictor(observation, seed, out_path) -> (TraceFile written to out_path, seconds spent predicting)
Predictor = Callable[[Observation, int, Path], tuple[object, float]]
WorldFactory = Callable[[str, int], TrialWorld]


def expected_errors() -> tuple[type[BaseException], ...]:
    """Errors that end one trial as a failure with a reason (a bad plan, a rejected trace), not the run."""
    from forge.errors import ForgeError
    from model.errors import ModelError
    from robot.errors import RobotError
    from store.errors import StoreError

    return (DemoError, StoreError, ForgeError, ModelError, RobotError)


def load_predictor(checkpoint: Path, device: str, temperature: float = 1.0, samples: int = 1,
                   guidance: float | None = None) -> Predictor:
    """A predictor with the checkpoint loaded once (the same code path as `tracegen predict`); `temperature`
    scales the sampling noise as `tracegen predict --temperature` does, `samples` hypotheses are drawn
    (`tracegen predict --samples`: execute plays the first whose plan passes every check), and `guidance` is
    the classifier-free guidance scale (`tracegen predict --guidance`; None: the checkpoint's)."""
    from tracegen_cli.commands.predict import PredictRequest, SamplingOptions, _load, run_request

    model, checkpoint_id, _seconds = _load(Path(checkpoint), device)

    def predict(observation: Observation, seed: int, out: Path):
        request = PredictRequest(observation.image, observation.depth, observation.intrinsics, False,
                                 observation.instruction, out, None)
        options = SamplingOptions(samples=samples, seed=seed, temperature=temperature, guidance=guidance)
        return run_request(model, checkpoint_id, request, options, device)

    return predict


class OraclePredictor:
    """A predictor that returns the scripted demonstration's exact trace of the trial layout (no model):
    success with it measures the execution pipeline alone, the ceiling of every model condition. A class
    rather than a closure, so trials in worker processes can be handed one."""

    def __init__(self, task: str):
        self.task = task

    def __call__(self, observation: Observation, seed: int, out: Path):
        from robot.sim.oracle import oracle_trace
        from store.trace import MODEL_STEPS, TraceFile, save_trace_file

        started = time.perf_counter()
        height, width = observation.image.shape[:2]
        oracle = oracle_trace(self.task, seed, width=width, height=height)
        keep = MODEL_STEPS + 1
        trace = TraceFile(traj=np.ascontiguousarray(oracle.traj[:, :keep], dtype=np.float32), valid=oracle.valid[:keep].copy(),
                          intrinsics=oracle.intrinsics.astype(np.float32), image_size=oracle.image_size,
                          instruction=observation.instruction, checkpoint_id="oracle")
        save_trace_file(out, trace)
        return trace, time.perf_counter() - started


def oracle_predictor(task: str) -> Predictor:
    """The scripted demonstration's exact trace of each layout (`OraclePredictor`)."""
    return OraclePredictor(task)


def write_observation(observation: Observation, folder: Path) -> dict[str, Path]:
    """Save the observation as the files `tracegen predict` reads; returns their paths."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    files = {"image": folder / "image.png", "depth": folder / "depth.npz", "intrinsics": folder / "intrinsics.txt"}
    cv2.imwrite(str(files["image"]), cv2.cvtColor(observation.image, cv2.COLOR_RGB2BGR))
    np.savez_compressed(files["depth"], depth=observation.depth.astype(np.float32))
    k = observation.intrinsics
    files["intrinsics"].write_text(f"{k[0, 0]:.6g},{k[1, 1]:.6g},{k[0, 2]:.6g},{k[1, 2]:.6g}\n")
    (folder / "instruction.txt").write_text(observation.instruction + "\n")
    return files


class ToolRecorder:
    """Samples the tool position (camera frame) in a background thread while the arm executes."""

    def __init__(self, world: TrialWorld, lock: threading.Lock, period_s: float = TOOL_SAMPLE_PERIOD_S):
        self.world, self.lock, self.period_s = world, lock, period_s
        self.samples: list[np.ndarray] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tool-recorder", daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic()
        while not self._stop.is_set():
            with self.lock:  # the emulator steps the simulation under this lock
                self.samples.append(np.asarray(self.world.tool_in_camera(), dtype=np.float64).copy())
            deadline += self.period_s
            self._stop.wait(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> ToolRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)

    def path(self) -> np.ndarray:
        """(T, 3) recorded tool positions in the camera frame, metres."""
        return np.array(self.samples).reshape(-1, 3)


def execute_on_emulator(world: TrialWorld, trace_path: Path, folder: Path, log_path: Path, app=None,
                        mode: str = "gripper") -> np.ndarray:
    """`tracegen execute --mode MODE` the trace on the simulated arm through a pty emulator; returns the tool path.

    Returns:
        (T, 3) tool positions in the camera frame recorded during execution, metres.
    """
    from robot.emulator import start_emulator

    calibration = world.write_calibration(folder / "calibration.json")
    camera_to_base = world.write_camera_to_base(folder / "camera_to_base.json")
    with start_emulator("so101", backend=world.backend) as emulator, ToolRecorder(world, emulator.lock) as recorder:
        run_command(["execute", trace_path, "--robot", "so101", "--port", emulator.url, "--calibration", calibration,
                     "--camera-to-base", camera_to_base, "--speed", EXECUTE_SPEED, "--floor", EXECUTE_FLOOR,
                     "--save-plan", folder / "plan.npz",
                     *(["--mode", mode] if mode != "gripper" else []), "--confirm"], log_path, app=app)
    return recorder.path()


def run_trial(world: TrialWorld, predictor: Predictor, task: str, condition: str, seed: int, folder: Path,
              report_dir: Path, log_path: Path, app=None, mode: str = "gripper") -> TrialRecord:
    """One trial: observe, predict, execute through the emulator, check success (and how far the object is from
    its goal, before and after), draw the overlay."""
    record = TrialRecord(task=task, condition=condition, seed=seed, success=False)
    record.start_goal_cm = 100.0 * world.goal_distance()
    offset_before = world.goal_offset()
    observation = world.observe()
    write_observation(observation, folder)
    (folder / "plan.npz").unlink(missing_ok=True)  # a plan left by an earlier run of this trial is not this one's
    trace = None
    executed = np.zeros((0, 3))
    try:
        trace, seconds = predictor(observation, seed, folder / "trace.npz")
        record.predict_ms = 1000.0 * seconds
        executed = execute_on_emulator(world, folder / "trace.npz", folder, log_path, app=app, mode=mode)
    except expected_errors() as exc:
        record.error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        logger.debug("trial %s/%s/%d failed: %s", task, condition, seed, record.error)
    record.success = bool(world.success())
    record.goal_cm = 100.0 * world.goal_distance()
    record.travel, off_line = travel_along(offset_before, world.goal_offset())
    record.off_line_cm = 100.0 * off_line
    if trace is not None:
        trace = _executed_hypothesis(trace, folder / "plan.npz")
        record.overlay, record.executed_error_px = _overlay(observation, trace, executed, task, condition, seed, report_dir)
    return record


def travel_along(before: np.ndarray, after: np.ndarray) -> tuple[float, float]:
    """How far an object went along the line from where it stood to its goal, and how far off that line it
    ended, from what separated it from the goal before and after (`goal_offset` vectors, metres).

    Returns:
        (fraction of the line covered: 1 reached the goal's centre, 0 did not move, below 0 moved away; metres
        off the line). NaN, NaN when the object started at its goal.
    """
    before, after = np.asarray(before, dtype=np.float64), np.asarray(after, dtype=np.float64)
    length = float(np.linalg.norm(before))
    if not length > 1e-9:
        return math.nan, math.nan
    unit = before / length
    moved = before - after  # the goal stays put: what the offset lost, the object travelled
    return float(moved @ unit) / length, float(np.linalg.norm(after - (after @ unit) * unit))


def _executed_hypothesis(trace, plan_path: Path):
    """The hypothesis of `trace` that execute played (its saved plan says which; the first when none ran)."""
    from dataclasses import replace

    if trace.samples is None or not plan_path.is_file():
        return trace
    with np.load(plan_path) as plan:
        index = int(plan["hypothesis"]) if "hypothesis" in plan.files else 0
    return replace(trace, traj=trace.samples[index])


def _overlay(observation: Observation, trace, executed: np.ndarray, task: str, condition: str, seed: int,
             report_dir: Path) -> tuple[str, float]:
    """Draw predicted vs executed; returns (overlay path relative to the report, gripper path error px)."""
    from store.trace import project

    executed_uv = project(executed, observation.intrinsics)[:, :2] if len(executed) else None  # (T, 2)
    picture = render_trace_overlay(observation.image, trace.traj, trace.valid, executed_uv=executed_uv,
                                   title=f"{task} · {condition} · layout {seed}: predicted (time colours) vs executed (magenta)")
    relative = f"overlays/{task}_{condition}_{seed}.png"
    (report_dir / relative).parent.mkdir(parents=True, exist_ok=True)
    save_png(report_dir / relative, picture)
    error = float("nan")
    if executed_uv is not None:
        error = path_error_px(_gripper_path(trace, executed_uv[0]), executed_uv)
    return relative, error


def _gripper_path(trace, tool_start_uv: np.ndarray, count: int = 4) -> np.ndarray:
    """(L, 2) mean predicted path of the `count` trace points that start nearest the tool."""
    distance = np.linalg.norm(trace.traj[:, 0, :2] - tool_start_uv, axis=-1)  # (K,)
    nearest = np.argsort(np.nan_to_num(distance, nan=np.inf))[:count]
    steps = np.flatnonzero(trace.valid)
    return np.nanmean(trace.traj[nearest][:, steps, :2], axis=0)
