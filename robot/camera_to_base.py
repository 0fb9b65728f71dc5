"""Camera-to-base calibration: where the (fixed) reference camera sits in the arm's base frame.

Two ways to measure it:

* hand-eye (eye-to-hand): an ArUco marker fixed to the gripper is seen by the camera in several arm
  poses; OpenCV's `cv2.calibrateHandEye` solves the camera pose from the marker poses (solvePnP) and
  the gripper poses (FK of the read-back joints);
* point registration: the same 3D points measured in both frames (e.g. the tool tip touched to
  points seen by an RGB-D camera), aligned by weighted Kabsch.

The result is stored as JSON (the `--camera-to-base` file of `tracegen execute`):

    {"format": "tracegen-camera-to-base", "version": 1,
     "base_from_camera": [[r00, r01, r02, tx], ..., [0, 0, 0, 1]],   # metres; maps camera -> base
     "method": "hand_eye_park" | "point_registration" | "manual",
     "residual_m": 0.0012, "num_samples": 12}
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robot.errors import CameraCalibrationError
from robot.kinematics import make_transform

log = logging.getLogger(__name__)

FILE_FORMAT = "tracegen-camera-to-base"
FILE_VERSION = 1
HAND_EYE_METHODS = ("park", "tsai", "horaud", "andreff", "daniilidis")


def kabsch(source: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rigid transform that best maps `source` onto `target` in the weighted least-squares sense.

    Args:
        source: (N, 3) points.
        target: (N, 3) the same points in the other frame.
        weights: (N,) non-negative weights, or None for equal weights.
    Returns:
        ((3, 3) rotation R, (3,) translation t) with `target ≈ source @ R.T + t`.
    """
    source, target = np.asarray(source, dtype=np.float64), np.asarray(target, dtype=np.float64)
    weights = np.ones(len(source)) if weights is None else np.asarray(weights, dtype=np.float64)
    if source.shape != target.shape or source.ndim != 2 or source.shape[1] != 3 or weights.sum() <= 0:
        raise CameraCalibrationError(
            f"point sets of shapes {source.shape} and {target.shape} cannot be registered; pass matching (N, 3) arrays"
        )
    weights = weights / weights.sum()
    source_mean, target_mean = weights @ source, weights @ target  # (3,)
    covariance = (target - target_mean).T @ ((source - source_mean) * weights[:, None])  # (3, 3)
    left, _, right_t = np.linalg.svd(covariance)
    sign = np.sign(np.linalg.det(left @ right_t)) or 1.0
    rotation = left @ np.diag([1.0, 1.0, sign]) @ right_t
    return rotation, target_mean - rotation @ source_mean


@dataclass(frozen=True)
class CameraToBase:
    """The reference camera's pose in the arm's base frame.

    Attributes:
        base_from_camera: (4, 4) transform mapping camera-frame points (metres; x right, y down,
            z forward) to base-frame points (metres).
        method: how it was measured.
        residual_m: RMS disagreement of the calibration data with the solution, metres.
        num_samples: poses or points used.
    """

    base_from_camera: np.ndarray
    method: str = "manual"
    residual_m: float = 0.0
    num_samples: int = 0

    def __post_init__(self) -> None:
        matrix = np.asarray(self.base_from_camera, dtype=np.float64)
        rotation = matrix[:3, :3] if matrix.shape == (4, 4) else None
        if (rotation is None or not np.isfinite(matrix).all()
                or not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-4)
                or abs(np.linalg.det(rotation) - 1.0) > 1e-4 or not np.allclose(matrix[3], [0, 0, 0, 1])):
            raise CameraCalibrationError(
                f"base_from_camera {np.asarray(self.base_from_camera).tolist()} is not a rigid 4x4 transform; "
                "re-run the camera-to-base calibration"
            )
        object.__setattr__(self, "base_from_camera", matrix)

    @property
    def camera_from_base(self) -> np.ndarray:
        """(4, 4) inverse transform: base-frame points to camera-frame points."""
        rotation, translation = self.base_from_camera[:3, :3], self.base_from_camera[:3, 3]
        return make_transform(rotation.T, -rotation.T @ translation)

    def to_base(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) camera-frame points to (..., 3) base-frame points, metres."""
        return np.asarray(points) @ self.base_from_camera[:3, :3].T + self.base_from_camera[:3, 3]

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) base-frame points to (..., 3) camera-frame points, metres."""
        inverse = self.camera_from_base
        return np.asarray(points) @ inverse[:3, :3].T + inverse[:3, 3]

    def save(self, path: str | Path) -> Path:
        """Write the JSON file read by `tracegen execute --camera-to-base`."""
        path = Path(path)
        document = {
            "format": FILE_FORMAT, "version": FILE_VERSION,
            "base_from_camera": self.base_from_camera.tolist(), "method": self.method,
            "residual_m": float(self.residual_m), "num_samples": int(self.num_samples),
        }
        path.write_text(json.dumps(document, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> CameraToBase:
        """Read a camera-to-base JSON file; every problem is named in a `CameraCalibrationError`."""
        path = Path(path)
        try:
            document = json.loads(path.read_text())
        except FileNotFoundError:
            raise CameraCalibrationError(
                f"camera-to-base file {path} does not exist; create it with a hand-eye or point calibration"
            ) from None
        except (OSError, ValueError) as exc:
            raise CameraCalibrationError(f"camera-to-base file {path} is not readable JSON ({exc}); re-create it") from exc
        if not isinstance(document, dict) or "base_from_camera" not in document:
            raise CameraCalibrationError(f"camera-to-base file {path} lacks 'base_from_camera' (a 4x4 list); re-create it")
        if document.get("version", FILE_VERSION) > FILE_VERSION:
            raise CameraCalibrationError(
                f"camera-to-base file {path} has version {document['version']}; this tracegen reads up to {FILE_VERSION}"
            )
        try:
            matrix = np.array(document["base_from_camera"], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise CameraCalibrationError(f"camera-to-base file {path}: base_from_camera is not numeric ({exc})") from exc
        return cls(matrix, str(document.get("method", "manual")), float(document.get("residual_m", 0.0)),
                   int(document.get("num_samples", 0)))


def register_points(camera_points: np.ndarray, base_points: np.ndarray, weights: np.ndarray | None = None) -> CameraToBase:
    """Camera-to-base from the same points measured in both frames (RGB-D registration).

    Args:
        camera_points: (N, 3) metres in the camera frame (e.g. unprojected from depth), N >= 3.
        base_points: (N, 3) metres in the base frame (e.g. FK of the tool tip).
        weights: (N,) optional confidences.
    Returns:
        The `CameraToBase`, with the RMS residual of the points.
    """
    camera_points, base_points = np.asarray(camera_points, dtype=np.float64), np.asarray(base_points, dtype=np.float64)
    if len(camera_points) < 3:
        raise CameraCalibrationError(f"{len(camera_points)} point pairs cannot fix a 3D pose; measure at least 3, well spread")
    spread = np.linalg.svd(camera_points - camera_points.mean(0), compute_uv=False)
    if spread[1] < 1e-3 * max(spread[0], 1e-9) or spread[0] < 1e-4:
        raise CameraCalibrationError("the calibration points are (nearly) collinear; spread them over a plane or volume")
    rotation, translation = kabsch(camera_points, base_points, weights)
    residual = np.sqrt(np.mean(np.sum((camera_points @ rotation.T + translation - base_points) ** 2, axis=1)))
    return CameraToBase(make_transform(rotation, translation), "point_registration", float(residual), len(camera_points))


def solve_hand_eye(base_from_gripper: np.ndarray, camera_from_marker: np.ndarray, method: str = "park") -> CameraToBase:
    """Eye-to-hand calibration with OpenCV: the camera is fixed, the marker rides on the gripper.

    `cv2.calibrateHandEye` solves `A_i X B_i = const` with A the gripper poses and B the marker poses.
    Feeding it gripper_from_base (the inverse gripper poses) makes X the camera's pose in the base.

    Args:
        base_from_gripper: (N, 4, 4) gripper poses (FK of the read-back joints), metres, N >= 3.
        camera_from_marker: (N, 4, 4) marker poses seen by the camera (`detect_marker_pose`).
        method: one of `HAND_EYE_METHODS`.
    Returns:
        The `CameraToBase`, with the RMS spread of the implied marker-on-gripper position as residual.
    """
    import cv2

    gripper_poses = np.asarray(base_from_gripper, dtype=np.float64)
    marker_poses = np.asarray(camera_from_marker, dtype=np.float64)
    if gripper_poses.shape != marker_poses.shape or gripper_poses.shape[1:] != (4, 4) or len(gripper_poses) < 3:
        raise CameraCalibrationError(
            f"hand-eye needs matching (N, 4, 4) gripper and marker poses with N >= 3; got {gripper_poses.shape} "
            f"and {marker_poses.shape}; record more poses"
        )
    if method not in HAND_EYE_METHODS:
        raise CameraCalibrationError(f"hand-eye method {method!r} is unknown; use one of {', '.join(HAND_EYE_METHODS)}")
    inverse = np.linalg.inv(gripper_poses)  # (N, 4, 4) gripper_from_base
    rotation, translation = cv2.calibrateHandEye(
        list(inverse[:, :3, :3]), list(inverse[:, :3, 3:]), list(marker_poses[:, :3, :3]), list(marker_poses[:, :3, 3:]),
        method=getattr(cv2, f"CALIB_HAND_EYE_{method.upper()}"),
    )
    base_from_camera = make_transform(np.asarray(rotation), np.asarray(translation).ravel())
    if not np.isfinite(base_from_camera).all():
        raise CameraCalibrationError("hand-eye calibration diverged; use poses that rotate the gripper about different axes")
    marker_in_gripper = inverse @ base_from_camera @ marker_poses  # (N, 4, 4) should be constant
    offsets = marker_in_gripper[:, :3, 3]
    residual = float(np.sqrt(np.mean(np.sum((offsets - offsets.mean(0)) ** 2, axis=1))))
    log.info("hand-eye (%s) over %d poses: marker spread %.2f mm", method, len(gripper_poses), residual * 1e3)
    return CameraToBase(base_from_camera, f"hand_eye_{method}", residual, len(gripper_poses))


def marker_corners(marker_length: float) -> np.ndarray:
    """(4, 3) marker-frame corners (metres) in OpenCV's ArUco order: top-left, top-right, bottom-right,
    bottom-left; the marker frame has x right, y up and z out of the marker face."""
    half = marker_length / 2.0
    return np.array([[-half, half, 0.0], [half, half, 0.0], [half, -half, 0.0], [-half, -half, 0.0]])


def detect_marker_pose(
    image: np.ndarray,
    intrinsics: np.ndarray,
    marker_length: float,
    marker_id: int | None = None,
    dictionary: str = "DICT_4X4_50",
    distortion: np.ndarray | None = None,
) -> np.ndarray | None:
    """Pose of an ArUco marker in the camera frame.

    Args:
        image: (H, W, 3) uint8 BGR or (H, W) grey.
        intrinsics: (3, 3) pinhole matrix.
        marker_length: side of the black square, metres.
        marker_id: the marker to use, or None for the first one found.
        dictionary: an OpenCV ArUco dictionary name.
        distortion: lens distortion coefficients, or None for none.
    Returns:
        (4, 4) camera_from_marker, or None when the marker is not seen.
    """
    import cv2

    if not hasattr(cv2.aruco, dictionary):
        raise CameraCalibrationError(f"ArUco dictionary {dictionary!r} is unknown; use e.g. DICT_4X4_50")
    parameters = cv2.aruco.DetectorParameters()
    parameters.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
    detector = cv2.aruco.ArucoDetector(cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, dictionary)), parameters)
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    corners, ids, _ = detector.detectMarkers(grey)
    if ids is None:
        return None
    for found_corners, found_id in zip(corners, ids.ravel(), strict=True):
        if marker_id is not None and int(found_id) != marker_id:
            continue
        ok, rvec, tvec = cv2.solvePnP(marker_corners(marker_length), found_corners.reshape(4, 2).astype(np.float64),
                                      np.asarray(intrinsics, dtype=np.float64),
                                      None if distortion is None else np.asarray(distortion, dtype=np.float64),
                                      flags=cv2.SOLVEPNP_IPPE_SQUARE)
        if ok:
            return make_transform(cv2.Rodrigues(rvec)[0], tvec.ravel())
    return None


def hand_eye_from_observations(
    joints: np.ndarray,
    images: list[np.ndarray],
    intrinsics: np.ndarray,
    marker_length: float,
    marker_id: int | None = None,
    method: str = "park",
    chain=None,
) -> CameraToBase:
    """The whole ArUco hand-eye procedure: FK of each recorded pose + the marker seen in its image.

    Args:
        joints: (N, n) arm joints read back at each pose, radians (chain order; a gripper column is ignored).
        images: N camera images (BGR or grey) taken at those poses.
        intrinsics: (3, 3) pinhole matrix of the camera.
        marker_length: side of the marker's black square, metres.
        marker_id: the marker on the gripper, or None for the first one seen.
        method: one of `HAND_EYE_METHODS`.
        chain: the arm's `KinematicChain` (default the SO-101).
    Returns:
        The `CameraToBase` from the poses where the marker was found (at least 3 are needed).
    """
    from robot.kinematics import SO101

    chain = chain or SO101
    joints = np.asarray(joints, dtype=np.float64)
    if len(joints) != len(images):
        raise CameraCalibrationError(f"{len(joints)} joint readings but {len(images)} images; record one image per pose")
    grippers, markers = [], []
    for pose, image in zip(joints, images, strict=True):
        marker = detect_marker_pose(image, intrinsics, marker_length, marker_id)
        if marker is None:
            log.warning("marker not found in one image; pose skipped")
            continue
        grippers.append(chain.forward(pose[: chain.num_joints]))
        markers.append(marker)
    if len(markers) < 3:
        raise CameraCalibrationError(
            f"the marker was found in {len(markers)} of {len(images)} images; record at least 3 poses where it is fully visible"
        )
    return solve_hand_eye(np.array(grippers), np.array(markers), method)
