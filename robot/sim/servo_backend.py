"""The simulated SO-101 behind the servo bus: a `robot.emulator.ServoBackend` over the MuJoCo arm.

Goal positions (raw servo steps) become joint goals through the calibration's raw<->radian mapping
(`robot.calibration`, default: `ArmCalibration.default_for("so101")`); each servo moves towards its
goal at most `max_speed` rad/s (STS3215 at 7.4 V: ~0.22 s per 60 degrees, ~4.7 rad/s); present
positions are read back from the simulation's joint positions. A servo with torque off holds still
(the simulated arm is gravity-compensated). Closing the jaw near a graspable object grasps it and
opening releases it (see `robot.sim.world`). `advance` steps physics in `TIMESTEP`s of simulated time.
"""

from __future__ import annotations

import numpy as np

from robot.sim.world import TIMESTEP, SimScene
from robot.so101 import SO101_MOTORS

STS3215_SPEED = 4.7  # rad/s, no load
GRASP_BELOW = 0.35  # jaw angle (rad) under which a closing jaw grasps
RELEASE_ABOVE = 0.5  # jaw angle (rad) over which an opening jaw releases


class MujocoServoBackend:
    """Servo IDs 1-6 (shoulder_pan .. gripper) driving a `SimScene` built with the `so101` embodiment.

    Args:
        scene: the simulated world.
        calibration: an `ArmCalibration` (anything with `.motors[name].id/to_raw/to_radians`).
        max_speed: joint speed limit, rad/s.
    """

    def __init__(self, scene: SimScene, calibration=None, max_speed: float = STS3215_SPEED):
        from robot.sim.errors import SimConfigError

        if scene.embodiment.name != "so101":
            raise SimConfigError(f"the servo backend drives the so101 arm, not {scene.embodiment.name!r}")
        if calibration is None:
            from robot.calibration import ArmCalibration

            calibration = ArmCalibration.default_for("so101")
        self.scene, self.calibration = scene, calibration
        self.names = {calibration.motors[name].id: name for name in SO101_MOTORS}
        scene.speed_limit = float(max_speed)
        scene.command_arm_position(scene.data.qpos[scene.arm_qpos].copy())
        self.torque = dict.fromkeys(self.names, False)
        self.goal = self._joint_positions()
        self.remainder = 0.0
        self.steps = 0

    def _joint_positions(self) -> dict[int, float]:
        d, s = self.scene.data, self.scene
        angles = list(d.qpos[s.arm_qpos]) + [float(d.qpos[s.grip_qpos[0]])]
        return {servo_id: float(angles[SO101_MOTORS.index(name)]) for servo_id, name in self.names.items()}

    def present_raw(self) -> dict[int, int]:
        """Servo id -> present raw position, from the simulated joint angles."""
        return {i: int(np.clip(self.calibration.motors[self.names[i]].to_raw(q), 0, 4095))
                for i, q in self._joint_positions().items()}

    def set_goal_raw(self, goals: dict[int, int]) -> None:
        """Servo id -> goal raw position (kept while torque is off, acted on when it is on)."""
        for servo_id, raw in goals.items():
            if servo_id in self.names:
                self.goal[servo_id] = self.calibration.motors[self.names[servo_id]].to_radians(raw)
        self._apply()

    def set_torque(self, servo_id: int, enabled: bool) -> None:
        """Enable or release one servo; a released joint holds where it is."""
        if servo_id in self.torque:
            self.torque[servo_id] = bool(enabled)
            self._apply()

    def _apply(self) -> None:
        present = self._joint_positions()
        target = {i: (self.goal[i] if self.torque[i] else present[i]) for i in self.names}
        order = [next(i for i, n in self.names.items() if n == name) for name in SO101_MOTORS]
        self.scene.command_arm_position(np.array([target[i] for i in order[:5]]))
        self.scene.command_gripper_position(np.array([target[order[5]]]))

    def advance(self, seconds: float) -> None:
        """Simulate `seconds` (steps of `TIMESTEP`; the remainder carries over to the next call)."""
        self.remainder += max(0.0, float(seconds))
        count = int(self.remainder / TIMESTEP)
        self.remainder -= count * TIMESTEP
        scene = self.scene
        for _ in range(count):
            jaw_before = float(scene.data.qpos[scene.grip_qpos[0]])
            scene.step()
            jaw = float(scene.data.qpos[scene.grip_qpos[0]])
            if scene.attached is None and jaw < GRASP_BELOW <= jaw_before:
                scene.forward()
                scene.grasp()
            elif scene.attached is not None and jaw > RELEASE_ABOVE:
                scene.release()
        self.steps += count
