"""Camera-to-base calibration recovers known transforms: hand-eye, ArUco detection, point registration."""

import json
import math

import cv2
import numpy as np
import pytest

from robot.camera_to_base import (
    CameraToBase,
    detect_marker_pose,
    kabsch,
    marker_corners,
    register_points,
    solve_hand_eye,
)
from robot.errors import CameraCalibrationError
from robot.kinematics import SO101, make_transform, rotation_exp, rotation_log

READY = np.array([0.0, -1.0, 1.0, 0.5, 0.0])
INTRINSICS = np.array([[600.0, 0.0, 320.0], [0.0, 600.0, 240.0], [0.0, 0.0, 1.0]])


def camera_facing_arm() -> np.ndarray:
    """base_from_camera: a camera 0.55 m in front of the arm, looking back at it, z forward."""
    forward = np.array([0.05, 0.95, -0.45])
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return make_transform(np.stack([right, down, forward], axis=1), np.array([0.0, -0.75, 0.40]))


# The marker is fixed on the gripper, its face towards the camera side.
GRIPPER_FROM_MARKER = make_transform(rotation_exp(np.array([math.pi / 2, 0.0, 0.0])), np.array([0.0, 0.02, -0.04]))


def sample_gripper_poses(count: int, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    joints = SO101.clamp(READY + rng.uniform(-0.5, 0.5, size=(count, 5)))
    return np.array([SO101.forward(q) for q in joints])  # (N, 4, 4)


def angle_between(a: np.ndarray, b: np.ndarray) -> float:
    return math.degrees(float(np.linalg.norm(rotation_log(a[:3, :3] @ b[:3, :3].T))))


@pytest.mark.parametrize("method", ["park", "tsai", "daniilidis"])
def test_hand_eye_recovers_known_transform_noise_free(method):
    truth = camera_facing_arm()
    grippers = sample_gripper_poses(10)
    markers = np.linalg.inv(truth) @ grippers @ GRIPPER_FROM_MARKER  # camera_from_marker
    solved = solve_hand_eye(grippers, markers, method)
    assert np.linalg.norm(solved.base_from_camera[:3, 3] - truth[:3, 3]) < 1e-3
    assert angle_between(solved.base_from_camera, truth) < 0.1
    assert solved.residual_m < 1e-3 and solved.num_samples == 10


def render_marker(camera_from_marker: np.ndarray, length: float, marker_id: int = 7) -> np.ndarray:
    """A 640x480 grey image of an ArUco marker (with its white quiet zone) at a known pose."""
    pixels, border = 240, 60
    marker = cv2.aruco.generateImageMarker(cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_4X4_50), marker_id, pixels)
    sheet = np.full((pixels + 2 * border, pixels + 2 * border), 255, np.uint8)
    sheet[border:-border, border:-border] = marker
    scale = length / pixels  # metres per sheet pixel
    sheet_corners = np.array([[0, 0], [sheet.shape[1], 0], [sheet.shape[1], sheet.shape[0]], [0, sheet.shape[0]]], float)
    # Sheet pixel (x, y) sits at marker-frame ((x - c) * scale, (c - y) * scale, 0), c the centre.
    centre = sheet.shape[0] / 2.0 - 0.5  # pixel centres are integers: the sheet spans -0.5 .. size - 0.5
    sheet_corners -= 0.5
    points = np.stack([(sheet_corners[:, 0] - centre) * scale, (centre - sheet_corners[:, 1]) * scale, np.zeros(4)], 1)
    camera_points = points @ camera_from_marker[:3, :3].T + camera_from_marker[:3, 3]
    image_points = camera_points @ INTRINSICS.T
    image_points = image_points[:, :2] / image_points[:, 2:]
    # Render 4x supersampled (pixel centre u maps to 4u + 1.5), then average down: no aliasing.
    homography = cv2.getPerspectiveTransform(sheet_corners.astype(np.float32), (4 * image_points + 1.5).astype(np.float32))
    fine = cv2.warpPerspective(sheet, homography, (4 * 640, 4 * 480), flags=cv2.INTER_LINEAR, borderValue=180)
    return cv2.resize(fine, (640, 480), interpolation=cv2.INTER_AREA)


def test_detect_marker_pose_from_rendered_image():
    length = 0.05
    truth = make_transform(rotation_exp(np.array([math.pi + 0.3, 0.2, 0.1])), np.array([0.02, -0.01, 0.45]))
    image = render_marker(truth, length)
    pose = detect_marker_pose(image, INTRINSICS, length, marker_id=7)
    assert pose is not None
    assert np.linalg.norm(pose[:3, 3] - truth[:3, 3]) < 3e-3
    assert angle_between(pose, truth) < 2.0
    # The corners reproject where they were drawn (sub-pixel).
    drawn = (marker_corners(length) @ truth[:3, :3].T + truth[:3, 3]) @ INTRINSICS.T
    found = (marker_corners(length) @ pose[:3, :3].T + pose[:3, 3]) @ INTRINSICS.T
    np.testing.assert_allclose(found[:, :2] / found[:, 2:], drawn[:, :2] / drawn[:, 2:], atol=0.7)
    assert detect_marker_pose(np.full((480, 640), 200, np.uint8), INTRINSICS, length) is None


def test_hand_eye_end_to_end_through_rendered_markers():
    truth = camera_facing_arm()
    grippers = sample_gripper_poses(12, seed=5)
    truths = np.linalg.inv(truth) @ grippers @ GRIPPER_FROM_MARKER
    detected = [detect_marker_pose(render_marker(m, 0.06), INTRINSICS, 0.06, marker_id=7) for m in truths]
    keep = [i for i, pose in enumerate(detected) if pose is not None]
    assert len(keep) >= 8
    solved = solve_hand_eye(grippers[keep], np.array([detected[i] for i in keep]))
    # A single 6 cm marker at ~0.6 m gives per-pose errors of a few mm and ~2 degrees (oblique views);
    # the solution must still land within 2 cm and 1.5 degrees (a wrong convention is off by decimetres).
    assert np.linalg.norm(solved.base_from_camera[:3, 3] - truth[:3, 3]) < 0.02
    assert angle_between(solved.base_from_camera, truth) < 1.5


def test_point_registration_recovers_transform_and_reports_residual():
    truth = camera_facing_arm()
    rng = np.random.default_rng(0)
    base_points = rng.uniform([-0.2, -0.4, 0.0], [0.2, -0.1, 0.3], size=(20, 3))
    camera_points = base_points @ np.linalg.inv(truth)[:3, :3].T + np.linalg.inv(truth)[:3, 3]
    solved = register_points(camera_points, base_points)
    np.testing.assert_allclose(solved.base_from_camera, truth, atol=1e-9)
    noisy = register_points(camera_points + rng.normal(0, 0.002, camera_points.shape), base_points)
    assert 0.001 < noisy.residual_m < 0.004
    with pytest.raises(CameraCalibrationError, match="collinear"):
        register_points(np.outer(np.arange(5.0), [0.1, 0.0, 0.0]), np.outer(np.arange(5.0), [0.0, 0.1, 0.0]))


def test_kabsch_never_returns_a_reflection():
    rng = np.random.default_rng(1)
    source = rng.normal(size=(10, 3))
    mirrored = source * np.array([1.0, 1.0, -1.0])
    rotation, _ = kabsch(source, mirrored)
    assert abs(np.linalg.det(rotation) - 1.0) < 1e-9


def test_json_round_trip_and_conversions(tmp_path):
    calibration = CameraToBase(camera_facing_arm(), "hand_eye_park", 0.0012, 9)
    loaded = CameraToBase.load(calibration.save(tmp_path / "cam.json"))
    np.testing.assert_allclose(loaded.base_from_camera, calibration.base_from_camera)
    assert (loaded.method, loaded.residual_m, loaded.num_samples) == ("hand_eye_park", 0.0012, 9)
    point = np.array([0.1, -0.05, 0.6])
    np.testing.assert_allclose(loaded.to_camera(loaded.to_base(point)), point, atol=1e-12)
    assert json.loads((tmp_path / "cam.json").read_text())["format"] == "tracegen-camera-to-base"


def test_bad_files_name_the_problem(tmp_path):
    with pytest.raises(CameraCalibrationError, match="does not exist"):
        CameraToBase.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text(json.dumps({"base_from_camera": (2 * np.eye(4)).tolist()}))
    with pytest.raises(CameraCalibrationError, match="not a rigid 4x4"):
        CameraToBase.load(tmp_path / "bad.json")
    with pytest.raises(CameraCalibrationError, match="N >= 3"):
        solve_hand_eye(np.repeat(np.eye(4)[None], 2, 0), np.repeat(np.eye(4)[None], 2, 0))


def test_hand_eye_from_joint_readings_and_images():
    from robot.camera_to_base import hand_eye_from_observations

    truth = camera_facing_arm()
    rng = np.random.default_rng(5)
    joints = SO101.clamp(READY + rng.uniform(-0.5, 0.5, size=(12, 5)))
    markers = np.linalg.inv(truth) @ np.array([SO101.forward(q) for q in joints]) @ GRIPPER_FROM_MARKER
    images = [render_marker(m, 0.06) for m in markers]
    images[0] = np.full_like(images[0], 200)  # a pose where the marker was hidden: skipped
    solved = hand_eye_from_observations(np.hstack([joints, np.zeros((12, 1))]), images, INTRINSICS, 0.06, marker_id=7)
    assert solved.num_samples <= 11
    assert np.linalg.norm(solved.base_from_camera[:3, 3] - truth[:3, 3]) < 0.02
    with pytest.raises(CameraCalibrationError, match="found in 0 of 2 images"):
        hand_eye_from_observations(joints[:2], [images[0], images[0]], INTRINSICS, 0.06)
