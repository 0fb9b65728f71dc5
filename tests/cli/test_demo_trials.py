"""Demo trials end to end on fakes of the simulator and the model, but through the REAL servo-bus
emulator on a pseudo-terminal: the fake `execute` sends Feetech bytes that must move the servos."""

import json
import time
from pathlib import Path

import numpy as np
import pytest
import typer

from model.errors import ModelError
from robot.emulator import KinematicServoBackend
from store.trace import NUM_POINTS, TraceFile, grid_points, load_trace_file, save_trace_file
from tracegen_cli.demo_evaluate import evaluate_conditions
from tracegen_cli.demo_trials import Observation

WIDTH, HEIGHT = 64, 48
K = np.array([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]], dtype=np.float32)
# Golden packets (shared/reference/ROBOT.md): torque on for IDs 2 and 3, then sync-write goals {1: 2048, 2: 1000, 3: 3000}.
TORQUE_ON = bytes.fromhex("ffff0204032801cd") + bytes.fromhex("ffff0304032801cc")
SYNC_GOALS = bytes.fromhex("fffffe0d832a02010008 02e803 03b80b 89".replace(" ", ""))


class FakeWorld:
    """A layout whose 'task' succeeds when servo 2 reaches raw 1000 and servo 3 raw 3000."""

    def __init__(self, task: str, seed: int):
        self.task, self.seed = task, seed
        self.backend = KinematicServoBackend(range(1, 7))
        self.closed = False

    def observe(self) -> Observation:
        image = np.full((HEIGHT, WIDTH, 3), 40, dtype=np.uint8)
        return Observation(image, np.full((HEIGHT, WIDTH), 0.6, np.float32), K, f"do {self.task}")

    def write_calibration(self, path: Path) -> Path:
        path.write_text(json.dumps({"seed": self.seed}))
        return path

    def write_camera_to_base(self, path: Path) -> Path:
        path.write_text(json.dumps({"matrix": np.eye(4).tolist()}))
        return path

    def tool_in_camera(self) -> np.ndarray:  # moves right in the image as servo 3 turns
        return np.array([(self.backend.position[3] - 2048.0) / 10000.0, 0.0, 0.6])

    def success(self) -> bool:
        return abs(self.backend.position[2] - 1000) < 2 and abs(self.backend.position[3] - 3000) < 2

    def goal_distance(self) -> float:  # metres: servo 3's raw distance from its goal, 1 raw step = 0.1 mm
        return abs(self.backend.position[3] - 3000) / 10000.0

    def goal_offset(self) -> np.ndarray:  # the same, signed: servo 3's raw steps still to turn
        return np.array([3000 - self.backend.position[3]]) / 10000.0

    def close(self) -> None:
        self.closed = True


def _execute_app(executed: list) -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        pass

    @app.command("execute")
    def execute(trace: Path, robot: str = typer.Option(...), port: str = typer.Option(...),
                calibration: Path = typer.Option(...), camera_to_base: Path = typer.Option(...),
                speed: float = typer.Option(0.03), floor: float = typer.Option(0.01),
                save_plan: Path = typer.Option(...), confirm: bool = typer.Option(False)) -> None:
        import serial

        load_trace_file(trace)  # a real trace file was handed over
        assert calibration.is_file() and camera_to_base.is_file() and robot == "so101" and confirm and floor < 0.01
        with serial.serial_for_url(port, baudrate=1_000_000, timeout=0.1) as link:
            link.write(TORQUE_ON)
            time.sleep(0.05)
            link.reset_input_buffer()
            link.write(SYNC_GOALS)
            time.sleep(0.6)  # 952 raw steps at 3000 steps/s
        executed.append(port)

    return app


def _predictor(checkpoint: Path, device: str):
    def predict(observation: Observation, seed: int, out: Path):
        if "broken" in str(checkpoint):
            raise ModelError(f"checkpoint {checkpoint} has no model.safetensors; re-run `tracegen adapt`")
        traj = np.repeat(np.c_[grid_points(WIDTH, HEIGHT), np.full(NUM_POINTS, 0.6)][:, None], 33, axis=1).astype(np.float32)
        traj[200:210, :, 0] += np.linspace(0, 12, 33, dtype=np.float32)
        trace = TraceFile(traj, np.ones(33, bool), observation.intrinsics, (HEIGHT, WIDTH), observation.instruction, "fake")
        save_trace_file(out, trace)
        return trace, 0.004

    return predict


class Bars:
    def __init__(self):
        self.events = []

    def begin(self, stage, total):
        self.events.append(("begin", stage, total))

    def advance(self, stage, amount=1):
        self.events.append(("advance", stage))

    def end(self, stage):
        self.events.append(("end", stage))


@pytest.mark.timeout(60)
def test_trials_execute_through_the_pty_emulator_and_record_everything(tmp_path):
    executed, worlds, bars = [], [], Bars()

    def open_world(task, seed):
        worlds.append(FakeWorld(task, seed))
        return worlds[-1]

    records = evaluate_conditions({"adapted": tmp_path / "ckpt", "scratch": tmp_path / "broken"}, "reach", [7, 8],
                                  tmp_path / "trials", tmp_path / "report", "cpu", bars, tmp_path / "log",
                                  open_world=open_world, make_predictor=_predictor, app=_execute_app(executed))
    assert [(r.condition, r.seed) for r in records] == [("adapted", 7), ("adapted", 8), ("scratch", 7), ("scratch", 8)]
    adapted, scratch = records[:2], records[2:]
    assert all(r.success and not r.error and r.predict_ms == 4.0 for r in adapted)
    assert all(r.start_goal_cm == pytest.approx(9.52) and r.goal_cm < 0.02 for r in adapted)  # from 2048 to 3000
    assert all(r.start_goal_cm == r.goal_cm == pytest.approx(9.52) for r in scratch)  # no plan: nothing moved
    assert all(r.travel == pytest.approx(1.0, abs=0.01) and r.off_line_cm < 0.02 for r in adapted)
    assert all(r.travel == 0.0 for r in scratch)
    assert len(executed) == 2 and all(p.startswith("/dev/") for p in executed)  # a real pty each time
    assert all(not r.success and "no model.safetensors" in r.error for r in scratch)  # failure, not a crash
    assert all(w.closed for w in worlds) and len(worlds) == 4
    folder = tmp_path / "trials" / "adapted" / "seed7"
    for name in ("image.png", "depth.npz", "intrinsics.txt", "trace.npz", "calibration.json", "camera_to_base.json"):
        assert (folder / name).is_file(), name
    assert (folder / "intrinsics.txt").read_text().strip() == "50,50,31.5,23.5"
    assert (tmp_path / "report" / adapted[0].overlay).is_file() and adapted[0].overlay.startswith("overlays/")
    assert np.isfinite(adapted[0].executed_error_px)  # the tool path was recorded during execution
    assert bars.events[0] == ("begin", "evaluate reach", 4) and bars.events[-1] == ("end", "evaluate reach")


def _open_world_or_fail(task, seed):
    if seed == 8:
        raise RuntimeError("layout 8 cannot be built")  # not a trial's expected failure: the evaluation stops
    return FakeWorld(task, seed)


@pytest.mark.timeout(120)
def test_an_unexpected_error_in_a_worker_stops_the_evaluation_and_keeps_the_finished_trials_log(tmp_path):
    with pytest.raises(RuntimeError, match="layout 8 cannot be built"):
        evaluate_conditions({"adapted": tmp_path / "ckpt"}, "reach", [7, 8], tmp_path / "trials", tmp_path / "report",
                            "cpu", Bars(), tmp_path / "log", open_world=_open_world_or_fail, make_predictor=_predictor,
                            workers=2)
    log = (tmp_path / "log").read_text()
    assert "# trial adapted layout 7" in log and "$ tracegen execute" in log  # layout 7 ran its command
    assert "layout 8" not in log.replace("# trial adapted layout 7", "")


def test_travel_along_splits_what_the_object_did_into_along_and_off_the_way():
    """Analytic: the goal 10 cm ahead (+x); the object moved 7 cm ahead and 2 cm to the side."""
    from tracegen_cli.demo_trials import travel_along

    before = np.array([0.10, 0.0])
    assert travel_along(before, before - [0.07, 0.02]) == pytest.approx((0.7, 0.02))
    assert travel_along(before, before) == (0.0, 0.0)  # not moved
    assert travel_along(before, [0.13, 0.0]) == pytest.approx((-0.3, 0.0))  # moved away
    assert travel_along(before, [-0.02, 0.0]) == pytest.approx((1.2, 0.0))  # overshot
    assert travel_along(np.array([0.02]), np.array([0.005]))[0] == pytest.approx(0.75)  # a drawer's slide
    assert all(np.isnan(travel_along(np.zeros(2), before)))  # started at the goal: no way to speak of
