"""The control loop that plays a checked plan on an `Arm`, and the safe stop.

Each cycle waits on a monotonic deadline (never a fixed sleep), reads the present positions, takes
the plan's goal at that time, clamps it to present +/- `max_step`, and writes it in one SYNC_WRITE.
Tracking error and load are watched. Bus errors are retried for a bounded number of consecutive
cycles; past that, a servo error, a tracking or load fault, or Ctrl-C all end in the safe stop:
hold the present pose, move slowly to the rest pose, then torque off.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from robot.errors import ControlError, ProtocolError, RobotError, TransportError
from robot.safety import clamp_step

log = logging.getLogger(__name__)

RETRYABLE = (TransportError, ProtocolError)  # a corrupt or missing reply; the next cycle may succeed


@dataclass(frozen=True)
class ControlConfig:
    """Control-loop settings.

    Attributes:
        rate_hz: cycles per second.
        max_step: largest goal change from the present position per cycle, radians.
        tracking_limit: largest allowed |plan - present| per joint, radians ...
        tracking_cycles: ... for this many consecutive cycles before it is a fault.
        load_limit: largest allowed |load|, fraction of the servo's max torque.
        load_every: read loads every this many cycles (each read costs bus time).
        load_reads: consecutive over-limit load readings that make an overload fault.
        progress_every: report progress every this many cycles.
        max_retries: consecutive cycles with a bus error tolerated before stopping.
        settle_time: longest wait after the plan ends for the servos to reach the last goal, s.
        settle_tolerance: the last goal is reached when every joint is this close, radians.
        rest_speed: joint speed of the slow move to rest in the safe stop, rad/s.
        max_servo_speed: faster than any servo turns, rad/s: a reading that implies more (a stale or
            misattributed reply) is rejected like a corrupt one and retried.
    """

    rate_hz: float = 100.0
    max_step: float = 0.08
    tracking_limit: float = 0.35
    tracking_cycles: int = 25
    load_limit: float = 0.95
    load_every: int = 5
    load_reads: int = 2
    progress_every: int = 10
    max_retries: int = 3
    settle_time: float = 1.5
    settle_tolerance: float = 0.01
    rest_speed: float = 0.4
    max_servo_speed: float = 8.0


@dataclass(frozen=True)
class ControlResult:
    """What a finished run achieved.

    Attributes:
        cycles: control cycles run.
        duration: seconds from the first to the last cycle.
        rate_hz: achieved cycles per second.
        late_cycles: cycles that started after their deadline.
        max_tracking_error: largest |plan - present| seen, radians.
        retries: bus errors recovered by retrying.
        final_positions: (n,) read-back joints at the end, radians.
    """

    cycles: int
    duration: float
    rate_hz: float
    late_cycles: int
    max_tracking_error: float
    retries: int
    final_positions: np.ndarray


def goal_at(times: np.ndarray, table: np.ndarray, t: float) -> np.ndarray:
    """(n,) plan joints at time `t` s, linear between rows, held past the end."""
    index = int(np.clip(np.searchsorted(times, t, side="right"), 1, len(times) - 1))
    span = times[index] - times[index - 1]
    alpha = float(np.clip((t - times[index - 1]) / span, 0.0, 1.0)) if span > 0 else 1.0
    return table[index - 1] + alpha * (table[index] - table[index - 1])


def wait_until(deadline: float, clock: Callable[[], float] = time.monotonic) -> None:
    """Sleep until the monotonic `deadline`: coarse sleep, then a short spin for precision."""
    while True:
        remaining = deadline - clock()
        if remaining <= 0:
            return
        time.sleep(remaining - 0.0005 if remaining > 0.001 else 0)


class _Bus:
    """Wraps arm calls with bounded retries of transient bus errors: each kind of call may fail
    `max_retries` times in a row (a success of that call resets its count); `retries` counts all."""

    def __init__(self, arm, max_retries: int):
        self.arm, self.max_retries, self.failures, self.retries = arm, max_retries, {}, 0

    def call(self, what: str, function, *args):
        try:
            result = function(*args)
        except RETRYABLE as exc:
            failures = self.failures[what] = self.failures.get(what, 0) + 1
            if failures > self.max_retries:
                raise ControlError(f"{what} failed {failures} times in a row ({exc})") from exc
            self.retries += 1
            log.warning("%s failed (%s); retry %d of %d", what, exc, failures, self.max_retries)
            return None
        self.failures[what] = 0
        return result


def run_plan(arm, times: np.ndarray, table: np.ndarray, config: ControlConfig = ControlConfig(),
             rest: np.ndarray | None = None, clock: Callable[[], float] = time.monotonic,
             on_progress: Callable[[float, float], None] | None = None) -> ControlResult:
    """Play a plan on the arm; on any fault or Ctrl-C, stop safely and re-raise.

    Args:
        arm: a connected `robot.arm.Arm` (or anything with its read/write methods), torque enabled.
        times: (T,) plan times, seconds.
        table: (T, n) plan joints in the arm's motor order, radians.
        config: loop settings.
        rest: (n,) pose for the safe stop, radians; default the plan's first row (where it started).
        clock: monotonic clock (seconds).
        on_progress: called as (elapsed s, plan duration s) every `progress_every` cycles.
    Returns:
        The `ControlResult` of a completed run.
    Raises:
        ControlError: after a safe stop, for a fault that ended the run.
        KeyboardInterrupt: after a safe stop, for Ctrl-C.
    """
    rest = table[0] if rest is None else np.asarray(rest, dtype=np.float64)
    try:
        return _loop(arm, times, table, config, clock, on_progress)
    except KeyboardInterrupt:
        log.warning("interrupted: stopping safely")
        safe_stop(arm, rest, config, clock)
        raise
    except RobotError as exc:
        log.error("motion fault (%s): stopping safely", exc)
        notes = safe_stop(arm, rest, config, clock)
        raise ControlError(f"motion stopped: {exc}; arm {notes}") from exc


class _PlausibleReader:
    """Reads positions, rejecting a reading no servo could reach since the last good one."""

    def __init__(self, arm, config: ControlConfig, clock):
        self.arm, self.config, self.clock = arm, config, clock
        self.last: np.ndarray | None = None
        self.when = 0.0

    def __call__(self) -> np.ndarray:
        reading, now = self.arm.read_positions(), self.clock()
        if self.last is not None:
            jump = np.abs(reading - self.last)
            allowed = self.config.max_servo_speed * (now - self.when) + 0.05
            if (jump > allowed).any():
                motor = int(np.argmax(jump - allowed))
                raise ProtocolError(
                    f"implausible reading: motor {motor} moved {jump[motor]:.2f} rad in {now - self.when:.3f} s "
                    "(a stale or misattributed reply)"
                )
        self.last, self.when = reading, now
        return reading


def _loop(arm, times, table, config: ControlConfig, clock, on_progress) -> ControlResult:
    bus = _Bus(arm, config.max_retries)
    read_positions = _PlausibleReader(arm, config, clock)
    watch_load = _LoadWatch(bus, arm, config)
    period = 1.0 / config.rate_hz
    start = clock()
    deadline, cycles, late, over, worst = start, 0, 0, 0, 0.0
    present = None
    while True:
        now = clock()
        elapsed = now - start
        read = bus.call("reading positions", read_positions)
        present = read if read is not None else present
        planned = goal_at(times, table, elapsed)  # (n,)
        if read is not None:  # no fresh reading: send nothing, the servos hold their last goal
            error = float(np.abs(planned - present).max())
            worst = max(worst, error)
            over = over + 1 if error > config.tracking_limit else 0
            if over >= config.tracking_cycles:
                joint = int(np.argmax(np.abs(planned - present)))
                raise ControlError(
                    f"tracking error {error:.3f} rad on motor {joint} for {over} cycles "
                    f"(limit {config.tracking_limit} rad): the arm is blocked or too slow"
                )
            bus.call("writing goals", arm.write_goals, clamp_step(planned, present, config.max_step))
        if cycles % config.load_every == 0:
            watch_load()
        if on_progress is not None and cycles % config.progress_every == 0:
            on_progress(min(elapsed, float(times[-1])), float(times[-1]))
        cycles += 1
        if elapsed >= times[-1] and present is not None and (
            np.abs(table[-1] - present).max() <= config.settle_tolerance or elapsed >= times[-1] + config.settle_time
        ):
            break
        deadline += period
        now = clock()
        if now > deadline:  # late: catch up on the schedule, but never burst more than a cycle behind
            late += 1
            if now > deadline + period:
                deadline = now
        wait_until(deadline, clock)
    duration = clock() - start
    return ControlResult(cycles, duration, cycles / max(duration, 1e-9), late, worst, bus.retries, present)


class _LoadWatch:
    """Faults when a motor's |load| exceeds the limit on `load_reads` consecutive load readings
    (one odd reading, e.g. a misattributed reply, is not an overload; a blocked joint persists)."""

    def __init__(self, bus: _Bus, arm, config: ControlConfig):
        self.bus, self.arm, self.config, self.over = bus, arm, config, 0

    def __call__(self) -> None:
        loads = self.bus.call("reading loads", self.arm.read_loads)
        if loads is None:
            return
        excess = np.abs(loads) > self.config.load_limit
        self.over = self.over + 1 if excess.any() else 0
        if self.over >= self.config.load_reads:
            motor = int(np.argmax(np.abs(loads)))
            raise ControlError(
                f"motor {motor} load {loads[motor]:+.2f} exceeds {self.config.load_limit} of max torque "
                f"on {self.over} readings: the arm is blocked"
            )


def safe_stop(arm, rest: np.ndarray, config: ControlConfig = ControlConfig(),
              clock: Callable[[], float] = time.monotonic) -> str:
    """Hold, move slowly to `rest`, then torque off; best effort at every stage, never raises.

    Returns:
        A short account ("held, moved to rest, torque off", or what could not be done).
    """
    done = []
    try:
        present = arm.read_positions()
        arm.write_goals(present)  # hold where it is
        done.append("held")
        move_slowly(arm, present, rest, config, clock)
        done.append("moved to rest")
    except (RobotError, OSError) as exc:
        log.error("safe stop could not hold/move the arm: %s", exc)
        done.append(f"could not reach rest ({exc})")
    except KeyboardInterrupt:
        done.append("rest move interrupted")
    for attempt in range(config.max_retries + 1):
        try:
            arm.set_torque(False)
            done.append("torque off")
            break
        except (RobotError, OSError) as exc:
            log.error("torque off failed (attempt %d): %s", attempt + 1, exc)
    else:
        done.append("TORQUE-OFF NOT CONFIRMED: switch the arm's power off")
    return ", ".join(done)


def move_slowly(arm, present: np.ndarray, rest: np.ndarray, config: ControlConfig = ControlConfig(),
                clock: Callable[[], float] = time.monotonic) -> None:
    """Straight line in joint space from `present` to `rest` (n radians) at `rest_speed`, with bounded
    retries on bus errors; waits up to `settle_time` for the servos to arrive."""
    distance = float(np.abs(rest - present).max())
    duration = distance / config.rest_speed
    bus = _Bus(arm, config.max_retries)
    period, start = 1.0 / config.rate_hz, clock()
    deadline = start
    while True:
        fraction = min(1.0, (clock() - start) / duration) if duration > 0 else 1.0
        bus.call("writing rest goals", arm.write_goals, present + fraction * (rest - present))
        if fraction >= 1.0:
            break
        deadline = max(deadline + period, clock())
        wait_until(deadline, clock)
    settle_end = clock() + config.settle_time
    while clock() < settle_end:
        reached = bus.call("reading positions", arm.read_positions)
        if reached is not None and np.abs(reached - rest).max() <= 3 * config.settle_tolerance:
            return
        wait_until(clock() + period, clock)
