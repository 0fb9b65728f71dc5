"""Cameras: fixed third-person views with a random pose, a handheld phone that drifts and shakes, and
the SO-101 workstation's calibrated camera (one fixed pose: the arm's observations and the target-robot
demos that should match them).

Poses use the OpenCV convention (x right, y down, z forward). MuJoCo cameras look down their -z with
y up, so `mujoco_xmat = R_cv @ diag(1, -1, -1)`. Intrinsics follow from MuJoCo's vertical field of
view: `fy = (H / 2) / tan(fovy / 2)`, square pixels, principal point at the image centre, in pixel
coordinates whose origin is the top-left pixel's centre (so `cx = (W - 1) / 2`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from robot.sim.mjcf import look_at_matrix

CAMERA_KINDS = ("static", "handheld", "calibrated")
CALIBRATED_VIEW = {"distance": 0.62, "azimuth": 0.55, "elevation": 0.8, "fovy": 50.0}  # radians, metres, degrees
WORKSPACE_CENTRE = np.array([0.19, 0.0, 0.03])
MUJOCO_FROM_CV = np.diag([1.0, -1.0, -1.0])


def intrinsics_matrix(fovy_deg: float, width: int, height: int) -> np.ndarray:
    """(3, 3) pinhole matrix of a MuJoCo camera with vertical field of view `fovy_deg`."""
    focal = 0.5 * height / math.tan(math.radians(fovy_deg) / 2)
    return np.array([[focal, 0.0, (width - 1) / 2], [0.0, focal, (height - 1) / 2], [0.0, 0.0, 1.0]])


def world_to_camera(rotation: np.ndarray, position: np.ndarray) -> np.ndarray:
    """(4, 4) world-to-camera transform from a camera-to-world rotation (3, 3) and position (3,)."""
    transform = np.eye(4)
    transform[:3, :3] = rotation.T
    transform[:3, 3] = -rotation.T @ position
    return transform


def _rotation(angles: np.ndarray) -> np.ndarray:
    """Rotation matrix of the rotation vector `angles` (3,), radians (Rodrigues)."""
    theta = float(np.linalg.norm(angles))
    if theta < 1e-12:
        return np.eye(3)
    k = angles / theta
    skew = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(theta) * skew + (1 - math.cos(theta)) * skew @ skew


@dataclass(frozen=True)
class CameraRig:
    """A camera's pose over time.

    Attributes:
        kind: "static" or "handheld".
        eye: (3,) start position, metres.
        target: (3,) point the optical axis passes through at the start.
        fovy: vertical field of view, degrees.
        roll: rotation about the optical axis, radians.
        drift: (3, 3) rows: amplitude (m), frequency (Hz), phase (rad) of the slow hand drift per axis.
        shake: (6, 3) rows as `drift`, for translation (m) then rotation (rad) tremor.
    """

    kind: str
    eye: np.ndarray
    target: np.ndarray
    fovy: float
    roll: float
    drift: np.ndarray
    shake: np.ndarray

    def pose(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Camera-to-world rotation (3, 3, OpenCV axes) and position (3,) at time `t` seconds."""
        eye, rotation = self.eye, look_at_matrix(self.eye, self.target) @ _rotation(np.array([0.0, 0.0, self.roll]))
        if self.kind == "static":
            return rotation, eye.copy()
        drift = self.drift[0] * np.sin(2 * math.pi * self.drift[1] * t + self.drift[2])  # (3,)
        wave = self.shake[:, 0] * np.sin(2 * math.pi * self.shake[:, 1] * t + self.shake[:, 2])  # (6,)
        eye = eye + drift + wave[:3]
        rotation = look_at_matrix(eye, self.target + 0.3 * drift) @ _rotation(np.array([0.0, 0.0, self.roll]))
        return rotation @ _rotation(wave[3:]), eye


def sample_camera(kind: str, rng: np.random.Generator) -> CameraRig:
    """A camera of `kind` looking at the workspace: random front/side pose, or the calibrated one."""
    from robot.sim.errors import SimConfigError

    if kind not in CAMERA_KINDS:
        raise SimConfigError(f"unknown camera kind {kind!r}; pick one of {', '.join(CAMERA_KINDS)}")
    if kind == "calibrated":
        view = CALIBRATED_VIEW
        eye = WORKSPACE_CENTRE + view["distance"] * np.array([
            math.cos(view["elevation"]) * math.cos(view["azimuth"]),
            math.cos(view["elevation"]) * math.sin(view["azimuth"]), math.sin(view["elevation"])])
        return CameraRig(kind="static", eye=eye, target=WORKSPACE_CENTRE.copy(), fovy=view["fovy"], roll=0.0,
                         drift=np.zeros((3, 3)), shake=np.zeros((6, 3)))
    handheld = kind == "handheld"
    distance = rng.uniform(0.32, 0.45) if handheld else rng.uniform(0.38, 0.55)
    azimuth, elevation = rng.uniform(-2.0, 2.0), rng.uniform(0.45, 1.0)
    target = WORKSPACE_CENTRE + np.r_[rng.normal(0, 0.02, 2), 0.0]
    eye = target + distance * np.array([math.cos(elevation) * math.cos(azimuth),
                                        math.cos(elevation) * math.sin(azimuth), math.sin(elevation)])
    drift = np.stack([rng.uniform(0.01, 0.035, 3), rng.uniform(0.08, 0.25, 3), rng.uniform(0, 2 * math.pi, 3)])
    shake = np.concatenate([
        np.stack([rng.uniform(0.001, 0.003, 3), rng.uniform(2.0, 6.0, 3), rng.uniform(0, 2 * math.pi, 3)], axis=1),
        np.stack([rng.uniform(0.002, 0.006, 3), rng.uniform(1.5, 5.0, 3), rng.uniform(0, 2 * math.pi, 3)], axis=1),
    ])
    return CameraRig(kind=kind, eye=eye, target=target, fovy=float(rng.uniform(40, 52)),
                     roll=float(rng.normal(0, 0.03)), drift=drift, shake=shake)
