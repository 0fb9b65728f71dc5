"""Robot motion benchmark: control-loop rate on the emulator, IK time per waypoint, plan time.

Prints one JSON object per line:
    python benchmarks/robot_bench.py [--seconds 3] [--repeats 20]

* `control_loop`: `robot.control.run_plan` driving the byte-exact SO-101 emulator (6 STS3215 servos)
  over a pseudo-terminal, with the emulator holding each reply for its wire time at 1 Mbit/s (8N1:
  10 bits per byte) as a real bus would; achieved rate, late cycles, bytes per cycle.
* `ik_per_waypoint`: damped-least-squares IK, warm-started along a 33-waypoint path and cold (wall
  time, and process CPU time, which a busy shared machine does not inflate).
* `plan_32_steps`: `plan_trace` + `check_plan` of a synthetic 32-step trace.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from robot.arm import open_arm
from robot.calibration import ArmCalibration
from robot.camera_to_base import CameraToBase
from robot.control import ControlConfig, run_plan
from robot.emulator import start_emulator
from robot.execute import READY_POSE, synthetic_gripper_trace
from robot.kinematics import SO101, make_transform
from robot.planning import plan_trace
from robot.safety import check_plan

BAUD = 1_000_000


def emit(**record) -> None:
    print(json.dumps({**record, "machine": platform.machine(), "python": platform.python_version()}), flush=True)


def count_bytes(arm) -> dict[str, int]:
    """Wrap the arm's serial port so every byte written and read is counted."""
    counts = {"written": 0, "read": 0}
    port = arm.bus.port
    write, read = port.write, port.read

    def counted_write(data):
        counts["written"] += len(data)
        return write(data)

    def counted_read(size=1):
        data = read(size)
        counts["read"] += len(data)
        return data

    port.write, port.read = counted_write, counted_read
    return counts


def bench_control(seconds: float, rate_hz: float, wire_baudrate: int | None) -> None:
    calibration = ArmCalibration.default_for("so101")
    names = (*SO101.joint_names, "gripper")
    times = np.linspace(0.0, seconds, int(seconds * 100) + 1)
    table = READY_POSE + (0.5 - 0.5 * np.cos(np.pi * times / seconds))[:, None] * np.array([0.4, -0.3, 0.3, 0.2, 0.3, -0.5])
    with start_emulator("so101", wire_baudrate=wire_baudrate) as handle:
        raw = calibration.to_raw(names, READY_POSE)
        with handle.lock:
            for name in names:
                handle.backend.push(calibration.motors[name].id, raw[name])
        with open_arm("so101", handle.url, calibration, baudrate=BAUD) as arm:
            arm.set_torque(True)
            counts = count_bytes(arm)
            config = ControlConfig(rate_hz=rate_hz, settle_time=0.0)
            result = run_plan(arm, times, table, config)
    per_cycle = (counts["written"] + counts["read"]) / result.cycles
    emit(bench="control_loop", servos=6, target_hz=rate_hz, achieved_hz=round(result.rate_hz, 1), cycles=result.cycles,
         late_cycles=result.late_cycles, max_tracking_error_rad=round(result.max_tracking_error, 4),
         bytes_per_cycle=round(per_cycle, 1), wire_ms_per_cycle_at_1mbps=round(per_cycle * 10 / BAUD * 1e3, 3),
         wire_limited_max_hz=round(BAUD / (per_cycle * 10)),
         transport=f"emulator pty, replies held for {wire_baudrate} bit/s wire time" if wire_baudrate else "emulator pty, no wire delay")


def bench_ik(repeats: int) -> None:
    start = SO101.forward(READY_POSE[:5])
    path = start[:3, 3] + np.linspace(0, 1, 33)[:, None] * np.array([0.06, 0.04, -0.05])
    rotations = np.repeat(start[None, :3, :3], len(path), axis=0)
    warm, warm_cpu = [], []
    for _ in range(repeats):
        begin, begin_cpu = time.perf_counter(), time.process_time()
        results = SO101.inverse_path(path, READY_POSE[:5], rotations)
        warm.append((time.perf_counter() - begin) / len(path))
        warm_cpu.append((time.process_time() - begin_cpu) / len(path))
    rng = np.random.default_rng(0)
    targets = [SO101.forward(SO101.clamp(READY_POSE[:5] + rng.uniform(-0.6, 0.6, 5))) for _ in range(100)]
    begin = time.perf_counter()
    cold = [SO101.inverse(t[:3, 3], READY_POSE[:5], t[:3, :3]) for t in targets]
    cold_ms = (time.perf_counter() - begin) / len(targets) * 1e3
    emit(bench="ik_per_waypoint", warm_ms_median=round(1e3 * float(np.median(warm)), 3),
         warm_cpu_ms_median=round(1e3 * float(np.median(warm_cpu)), 3),
         warm_iterations_mean=round(float(np.mean([r.iterations for r in results])), 2),
         warm_max_position_error_mm=round(1e3 * max(r.position_error for r in results), 5),
         cold_ms_mean=round(cold_ms, 3), cold_iterations_mean=round(float(np.mean([r.iterations for r in cold])), 2),
         cold_converged=sum(r.converged for r in cold), cold_targets=len(cold))


def bench_plan(repeats: int) -> None:
    forward = np.array([0.05, 0.95, -0.45]) / np.linalg.norm([0.05, 0.95, -0.45])
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    camera = CameraToBase(make_transform(np.stack([right, np.cross(forward, right), forward], 1), np.array([0.0, -0.75, 0.4])))
    trace = synthetic_gripper_trace(READY_POSE, camera, np.array([0.04, -0.02, 0.03]), steps=32,
                                    object_offset_px=(0, 70), grasp_step=10)
    plan_s, check_s = [], []
    for _ in range(repeats):
        begin = time.perf_counter()
        plan = plan_trace(trace, camera, READY_POSE)
        middle = time.perf_counter()
        check_plan(plan)
        plan_s.append(middle - begin)
        check_s.append(time.perf_counter() - middle)
    emit(bench="plan_32_steps", plan_ms_median=round(1e3 * float(np.median(plan_s)), 2),
         check_ms_median=round(1e3 * float(np.median(check_s)), 2), ik_waypoints=len(plan.waypoints.step),
         table_rows=len(plan.times), plan_duration_s=round(plan.duration, 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of the control-loop run")
    parser.add_argument("--repeats", type=int, default=20, help="repeats of the IK and planning timings")
    args = parser.parse_args()
    for rate, wire in ((100.0, BAUD), (250.0, BAUD), (100.0, None)):
        bench_control(args.seconds, rate, wire)
    bench_ik(args.repeats)
    bench_plan(args.repeats)


if __name__ == "__main__":
    main()
