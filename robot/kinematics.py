"""Forward and inverse kinematics of a serial arm given as a table of revolute joints.

Every joint turns about its local z axis after its fixed origin transform (URDF convention: `xyz` in
metres, roll-pitch-yaw in radians, fixed-axis XYZ so R = Rz(yaw) Ry(pitch) Rx(roll)). The tool frame
is fixed to the last link. Frames are 4x4 homogeneous matrices in the arm's base frame, metres.

Inverse kinematics is damped least squares with task priority: the tool position is the primary task,
the tool orientation a secondary (soft) goal solved in the null space of the position task, because
the SO-101 has five joints and cannot reach arbitrary 6D poses. Joint limits clamp every iteration;
a path is solved with each waypoint warm-started from the previous solution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from robot.errors import KinematicsError
from robot.so101 import SO101_CHAIN, SO101_TOOL, JointSpec


def rpy_matrix(rpy: tuple[float, float, float] | np.ndarray) -> np.ndarray:
    """Rotation of URDF roll-pitch-yaw (fixed axes X, then Y, then Z).

    Returns:
        (3, 3) float64 rotation `Rz(yaw) @ Ry(pitch) @ Rx(roll)`.
    """
    roll, pitch, yaw = (float(a) for a in rpy)
    cr, sr, cp, sp, cy, sy = (math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch),
                              math.cos(yaw), math.sin(yaw))
    return np.array([
        [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
        [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
        [-sp, cp * sr, cp * cr],
    ])


def make_transform(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """A (4, 4) homogeneous transform from a (3, 3) rotation and a (3,) translation in metres."""
    transform = np.eye(4)
    transform[:3, :3] = rotation
    transform[:3, 3] = translation
    return transform


def rotation_log(rotation: np.ndarray) -> np.ndarray:
    """Axis-angle vector (3,) in radians of a (3, 3) rotation (the SO(3) logarithm), robust near pi."""
    cos_angle = float(np.clip((np.trace(rotation) - 1.0) / 2.0, -1.0, 1.0))
    angle = math.acos(cos_angle)
    skew = np.array([rotation[2, 1] - rotation[1, 2], rotation[0, 2] - rotation[2, 0],
                     rotation[1, 0] - rotation[0, 1]])
    if angle < 1e-7:
        return 0.5 * skew
    if math.pi - angle > 1e-4:
        return angle / (2.0 * math.sin(angle)) * skew
    # Near pi: the axis is the dominant column of (R + I) / 2.
    symmetric = (rotation + np.eye(3)) / 2.0
    column = int(np.argmax(np.diag(symmetric)))
    axis = symmetric[:, column] / math.sqrt(max(symmetric[column, column], 1e-12))
    axis *= 1.0 if axis @ skew >= 0 else -1.0
    return angle * axis / np.linalg.norm(axis)


def rotation_exp(rotvec: np.ndarray) -> np.ndarray:
    """(3, 3) rotation of an axis-angle vector (3,) in radians (Rodrigues)."""
    angle = float(np.linalg.norm(rotvec))
    if angle < 1e-12:
        return np.eye(3)
    kx, ky, kz = np.asarray(rotvec, dtype=np.float64) / angle
    skew = np.array([[0.0, -kz, ky], [kz, 0.0, -kx], [-ky, kx, 0.0]])
    return np.eye(3) + math.sin(angle) * skew + (1.0 - math.cos(angle)) * skew @ skew


@dataclass(frozen=True)
class IKConfig:
    """Settings of the damped-least-squares solver.

    Attributes:
        damping: Levenberg damping lambda (metres for position, radians for orientation).
        max_iterations: iterations per waypoint before giving up.
        position_tolerance: stop when the tool is this close to the target (metres).
        step_tolerance: stop when an iteration changes no joint by more than this (radians).
        settle_step: once the position is within a tenth of its tolerance, stop when the orientation
            task changes no joint by more than this (radians).
        max_joint_step: largest change of one joint in one iteration (radians); keeps DLS stable.
        orientation_gain: share of the orientation error corrected per iteration (0 disables it).
        limit_margin: keep joints this far inside their limits (radians).
    """

    damping: float = 0.01
    max_iterations: int = 60
    position_tolerance: float = 1e-4
    step_tolerance: float = 1e-6
    settle_step: float = 2e-3
    max_joint_step: float = 0.35
    orientation_gain: float = 1.0
    limit_margin: float = 0.0


@dataclass(frozen=True)
class IKResult:
    """One IK solution.

    Attributes:
        joints: (n,) radians.
        position_error: distance from the tool to the target, metres.
        orientation_error: angle between the tool and the goal orientation, radians (0 when none).
        iterations: iterations used.
        converged: the position error is within tolerance.
    """

    joints: np.ndarray
    position_error: float
    orientation_error: float
    iterations: int
    converged: bool


class KinematicChain:
    """A serial arm of revolute joints (about local z) ending in a fixed tool frame.

    Args:
        joints: the revolute joints in chain order; every one needs a `limit`.
        tool: the fixed tool frame relative to the last joint.
    """

    def __init__(self, joints: tuple[JointSpec, ...] = SO101_CHAIN, tool: JointSpec = SO101_TOOL):
        if not joints or any(j.limit is None for j in joints):
            raise KinematicsError("a kinematic chain needs at least one joint and every joint needs a limit")
        self.joint_names: tuple[str, ...] = tuple(j.name for j in joints)
        self._origins = [make_transform(rpy_matrix(j.rpy), np.array(j.xyz)) for j in joints]
        self._tool = make_transform(rpy_matrix(tool.rpy), np.array(tool.xyz))
        self.lower = np.array([j.limit[0] for j in joints])  # (n,) radians
        self.upper = np.array([j.limit[1] for j in joints])  # (n,) radians
        self._identity = np.eye(len(joints))

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def _check(self, joints: np.ndarray) -> np.ndarray:
        joints = np.asarray(joints, dtype=np.float64)
        if joints.shape != (self.num_joints,) or not np.isfinite(joints).all():
            raise KinematicsError(
                f"joint vector {np.asarray(joints).tolist()} is not {self.num_joints} finite angles in radians "
                f"for {', '.join(self.joint_names)}"
            )
        return joints

    def joint_frames(self, joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Frames of every joint (after its origin, before its rotation) and of the tool.

        Args:
            joints: (n,) radians.
        Returns:
            ((n, 4, 4) joint frames, (4, 4) tool frame), in the base frame.
        """
        joints = self._check(joints)
        frames = np.empty((self.num_joints, 4, 4))
        current = np.eye(4)
        for index, (origin, angle) in enumerate(zip(self._origins, joints, strict=True)):
            current = current @ origin
            frames[index] = current
            c, s = math.cos(angle), math.sin(angle)
            x_axis, y_axis = current[:, 0].copy(), current[:, 1].copy()  # right-multiply by Rz(angle)
            current[:, 0] = c * x_axis + s * y_axis
            current[:, 1] = c * y_axis - s * x_axis
        return frames, current @ self._tool

    def forward(self, joints: np.ndarray) -> np.ndarray:
        """Tool pose (4, 4) in the base frame for joint angles (n,) in radians."""
        return self.joint_frames(joints)[1]

    def jacobian(self, joints: np.ndarray, offset: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Geometric Jacobian of a point fixed to the tool.

        Args:
            joints: (n,) radians.
            offset: (3,) the point in the tool frame, metres (None: the tool frame's origin).
        Returns:
            ((6, n) Jacobian, rows = linear velocity of the point (m/rad) then angular velocity
            (rad/rad); (4, 4) tool pose).
        """
        frames, tool = self.joint_frames(joints)
        point = tool[:3, 3] if offset is None else tool[:3, :3] @ offset + tool[:3, 3]  # (3,)
        axes = frames[:, :3, 2]  # (n, 3) joint z axes in the base frame
        lever = point[None, :] - frames[:, :3, 3]  # (n, 3)
        linear = axes[:, [1, 2, 0]] * lever[:, [2, 0, 1]] - axes[:, [2, 0, 1]] * lever[:, [1, 2, 0]]  # (n, 3) cross
        return np.vstack([linear.T, axes.T]), tool

    def _null_projector(self, jac_pos: np.ndarray) -> np.ndarray:
        """(n, n) orthogonal projector onto the null space of the (3, n) position Jacobian."""
        gram = jac_pos @ jac_pos.T  # (3, 3)
        if np.linalg.det(gram) > 1e-9 * np.trace(gram) ** 3:  # well-conditioned: the closed form is exact and cheap
            return self._identity - jac_pos.T @ np.linalg.solve(gram, jac_pos)
        return self._identity - np.linalg.pinv(jac_pos, rcond=1e-6) @ jac_pos  # near a singularity

    def clamp(self, joints: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """Joints (n,) clamped into [lower + margin, upper - margin]."""
        return np.clip(joints, self.lower + margin, self.upper - margin)

    def inverse(
        self,
        target_position: np.ndarray,
        initial_joints: np.ndarray,
        target_rotation: np.ndarray | None = None,
        config: IKConfig = IKConfig(),
        offset: np.ndarray | None = None,
    ) -> IKResult:
        """Damped-least-squares IK: position first, orientation in the position task's null space.

        Args:
            target_position: (3,) goal of the controlled point in the base frame, metres.
            initial_joints: (n,) warm start in radians (the previous waypoint's solution on a path).
            target_rotation: (3, 3) soft orientation goal of the tool, or None for position only.
            config: solver settings.
            offset: (3,) the controlled point in the tool frame, metres (None: the tool origin).
        Returns:
            The `IKResult`; `converged` is false when the target is out of reach or blocked by limits.
        """
        target = np.asarray(target_position, dtype=np.float64)
        joints = self.clamp(self._check(initial_joints), config.limit_margin)
        damping_sq = config.damping**2
        iterations = 0
        for iterations in range(1, config.max_iterations + 1):  # noqa: B007 (reported after the loop)
            jac, tool = self.jacobian(joints, offset)
            error = target - (tool[:3, 3] if offset is None else tool[:3, :3] @ offset + tool[:3, 3])  # (3,) m
            rot_error = None
            if target_rotation is not None and config.orientation_gain > 0:
                rot_error = config.orientation_gain * rotation_log(target_rotation @ tool[:3, :3].T)  # (3,)
            step = self._step(jac, error, rot_error, damping_sq)
            # A joint at a limit that the step pushes further out is locked and the step re-solved, so
            # the other joints take over its share instead of the clamp silently dropping it.
            pushing = ((joints <= self.lower + config.limit_margin + 1e-12) & (step < 0)) | (
                (joints >= self.upper - config.limit_margin - 1e-12) & (step > 0))
            if pushing.any():
                step = self._step(jac * ~pushing, error, rot_error, damping_sq)
            largest = float(np.abs(step).max())
            if largest > config.max_joint_step:
                step *= config.max_joint_step / largest
            new_joints = self.clamp(joints + step, config.limit_margin)
            moved = float(np.abs(new_joints - joints).max())
            joints = new_joints
            if moved < config.step_tolerance or (
                float(np.linalg.norm(error)) < 0.1 * config.position_tolerance and moved < config.settle_step
            ):
                break
        return self._result(joints, target, target_rotation, iterations, config, offset)

    def _step(self, jac: np.ndarray, error: np.ndarray, rot_error: np.ndarray | None, damping_sq: float) -> np.ndarray:
        """(n,) joint step: damped least squares on position, orientation in its null space.

        Args:
            jac: (6, n) Jacobian (locked joints have zero columns). error: (3,) position error, m.
            rot_error: (3,) orientation correction, rad, or None. damping_sq: lambda squared.
        """
        jac_pos = jac[:3]  # (3, n)
        pos_inverse = jac_pos.T @ np.linalg.inv(jac_pos @ jac_pos.T + damping_sq * np.eye(3))  # (n, 3)
        step = pos_inverse @ error  # (n,)
        if rot_error is None:
            return step
        null = self._null_projector(jac_pos)  # (n, n)
        jac_rot = jac[3:] @ null  # (3, n)
        residual = rot_error - jac[3:] @ step
        return step + null @ (jac_rot.T @ np.linalg.solve(jac_rot @ jac_rot.T + damping_sq * np.eye(3), residual))

    def _result(self, joints, target, target_rotation, iterations, config, offset) -> IKResult:
        tool = self.forward(joints)
        point = tool[:3, 3] if offset is None else tool[:3, :3] @ offset + tool[:3, 3]
        position_error = float(np.linalg.norm(target - point))
        orientation_error = 0.0
        if target_rotation is not None:
            orientation_error = float(np.linalg.norm(rotation_log(target_rotation @ tool[:3, :3].T)))
        return IKResult(joints, position_error, orientation_error, iterations,
                        position_error <= config.position_tolerance)

    def inverse_path(
        self,
        positions: np.ndarray,
        initial_joints: np.ndarray,
        rotations: np.ndarray | None = None,
        config: IKConfig = IKConfig(),
        offset: np.ndarray | None = None,
    ) -> list[IKResult]:
        """IK along a path, each waypoint warm-started from the previous solution.

        Args:
            positions: (N, 3) goals of the controlled point in the base frame, metres.
            initial_joints: (n,) radians, the arm's pose before the first waypoint.
            rotations: (N, 3, 3) soft orientation goals, or None.
            config: solver settings.
            offset: (3,) the controlled point in the tool frame, metres (None: the tool origin).
        Returns:
            N `IKResult`s in path order.
        """
        positions = np.asarray(positions, dtype=np.float64)
        if positions.ndim != 2 or positions.shape[1] != 3 or not np.isfinite(positions).all():
            raise KinematicsError(f"path positions have shape {positions.shape}; expected finite (N, 3) metres")
        results: list[IKResult] = []
        joints = np.asarray(initial_joints, dtype=np.float64)
        for index, position in enumerate(positions):
            goal_rotation = None if rotations is None else rotations[index]
            result = self.inverse(position, joints, goal_rotation, config, offset)
            results.append(result)
            joints = result.joints
        return results


SO101 = KinematicChain(SO101_CHAIN, SO101_TOOL)
"""The SO-101 arm's five joints and gripper frame (see `robot/so101.py`)."""
