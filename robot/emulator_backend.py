"""What moves behind the emulated servos: the `ServoBackend` protocol and the default kinematic servos.

`robot/emulator.py` re-exports both; the MuJoCo arm in `robot/sim/` is another backend.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class ServoBackend(Protocol):
    """What moves behind the emulated servos (raw units: 0..4095 per turn)."""

    def present_raw(self) -> dict[int, int]:
        """Servo id -> present raw position."""

    def set_goal_raw(self, goals: dict[int, int]) -> None:
        """Servo id -> new goal raw position (servos with torque off ignore it until enabled)."""

    def set_torque(self, servo_id: int, enabled: bool) -> None:
        """Enable or release one servo's motor."""

    def advance(self, seconds: float) -> None:
        """Simulate forward by `seconds` of wall-clock time."""


class KinematicServoBackend:
    """Velocity-limited position servos: each moves toward its goal at up to `max_speed` raw steps/s
    while torque is on, and stays where it is (or wherever `push` puts it) while torque is off.

    Args:
        servo_ids: the IDs to simulate.
        initial_raw: starting raw position of every servo (2048 = the middle of a turn).
        max_speed: raw steps per second (STS3215 at 7.4 V: about 0.222 s per 60 deg, ~3000 steps/s).
    """

    def __init__(self, servo_ids, initial_raw: int = 2048, max_speed: float = 3000.0):
        self.position = {i: float(initial_raw) for i in servo_ids}
        self.goal = dict(self.position)
        self.torque = dict.fromkeys(servo_ids, False)
        self.max_speed = float(max_speed)
        self.load = dict.fromkeys(servo_ids, 0.0)  # fraction of max torque, signed; tests may set it

    def present_raw(self) -> dict[int, int]:
        return {i: int(round(p)) for i, p in self.position.items()}

    def present_load(self) -> dict[int, float]:
        return dict(self.load)

    def set_goal_raw(self, goals: dict[int, int]) -> None:
        for servo_id, goal in goals.items():
            if servo_id in self.goal:
                self.goal[servo_id] = float(goal)

    def set_torque(self, servo_id: int, enabled: bool) -> None:
        if servo_id in self.torque:
            self.torque[servo_id] = bool(enabled)

    def push(self, servo_id: int, raw: float) -> None:
        """Move a released joint by hand (ignored while its torque is on)."""
        if not self.torque[servo_id]:
            self.position[servo_id] = float(raw)

    def advance(self, seconds: float) -> None:
        step = self.max_speed * max(0.0, seconds)
        for servo_id, position in self.position.items():
            if self.torque[servo_id]:
                delta = self.goal[servo_id] - position
                self.position[servo_id] = position + max(-step, min(step, delta))
