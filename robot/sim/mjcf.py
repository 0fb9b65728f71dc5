"""Small helpers to write MJCF text: rotations, vectors and attribute strings.

Every angle in the generated MJCF is in radians (`<compiler angle="radian"/>`).
"""

from __future__ import annotations

import math

import numpy as np


def rpy_to_matrix(rpy: tuple[float, float, float]) -> np.ndarray:
    """Rotation of URDF roll-pitch-yaw (fixed-axis XYZ): `R = Rz(yaw) @ Ry(pitch) @ Rx(roll)`.

    Returns:
        (3, 3) float64 rotation matrix.
    """
    roll, pitch, yaw = rpy
    cr, sr, cp, sp, cy, sy = (math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch),
                              math.cos(yaw), math.sin(yaw))
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    return rz @ ry @ rx


def matrix_to_quat(rotation: np.ndarray) -> np.ndarray:
    """MuJoCo quaternion `(w, x, y, z)` of a (3, 3) rotation matrix."""
    import mujoco

    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.ascontiguousarray(rotation, dtype=np.float64).ravel())
    return quat


def yaw_quat(yaw: float) -> np.ndarray:
    """Quaternion `(w, x, y, z)` of a rotation by `yaw` radians about world z."""
    return np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])


def vec(values) -> str:
    """Space-separated numbers with enough digits for MJCF."""
    return " ".join(f"{float(x):.7g}" for x in np.asarray(values, dtype=np.float64).ravel())


def rgba(color, alpha: float = 1.0) -> str:
    """An `rgba` attribute from an RGB triple in [0, 1]."""
    return vec(list(np.asarray(color, dtype=np.float64)[:3]) + [alpha])


def look_at_matrix(eye: np.ndarray, target: np.ndarray, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Camera-to-world rotation in the OpenCV convention (x right, y down, z forward).

    Args:
        eye: (3,) camera position, metres.
        target: (3,) point the optical axis passes through.
    Returns:
        (3, 3) matrix whose columns are the camera's x, y, z axes in the world.
    """
    forward = np.asarray(target, float) - np.asarray(eye, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.asarray(up, float))
    if np.linalg.norm(right) < 1e-9:
        right = np.cross(forward, np.array([0.0, 1.0, 0.0]))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.stack([right, down, forward], axis=1)
