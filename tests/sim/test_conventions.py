"""Camera conventions, depth conversion and ground truth checked against independent computations."""

import json

import numpy as np
import pytest

from robot.sim.cameras import intrinsics_matrix, sample_camera, world_to_camera
from robot.sim.episode import EpisodeConfig, generate_episode
from robot.sim.groundtruth import cast_rays, pixel_rays
from robot.sim.render import FrameRenderer
from robot.sim.tasks import sample_layout
from robot.sim.world import build_scene
from robot.sim.writer import write_episode
from store.trace import grid_points


def test_intrinsics_from_fovy_match_the_pinhole_formula():
    k = intrinsics_matrix(60.0, 320, 240)
    assert k[0, 0] == pytest.approx(120.0 / np.tan(np.radians(30.0)))
    assert k[1, 1] == k[0, 0]
    assert (k[0, 2], k[1, 2]) == (159.5, 119.5)


def test_world_to_camera_puts_the_look_at_target_on_the_optical_axis():
    rig = sample_camera("static", np.random.default_rng(4))
    rotation, position = rig.pose(0.0)
    transform = world_to_camera(rotation, position)
    target = transform @ np.r_[rig.target, 1.0]
    assert target[:2] == pytest.approx([0.0, 0.0], abs=1e-9)
    assert target[2] == pytest.approx(np.linalg.norm(rig.target - rig.eye))
    assert rotation.T @ rotation == pytest.approx(np.eye(3))
    # OpenCV: image y points down, so the world's up projects upwards (negative camera y).
    assert (rotation.T @ np.array([0.0, 0.0, 1.0]))[1] < 0


@pytest.fixture(scope="module")
def rendered_scene():
    rng = np.random.default_rng(11)
    layout = sample_layout("ball_in_bin", rng)
    scene = build_scene("ball_in_bin", "so101", layout, rng, 160, 120)
    rig = sample_camera("static", rng)
    scene.model.cam_fovy[scene.camera_id] = rig.fovy
    renderer = FrameRenderer(scene.model, 160, 120, scene.camera_id)
    scene.forward()
    rotation, position = rig.pose(0.0)
    rgb, depth = renderer.render(scene.data, rotation, position)
    renderer.close()
    return scene, rig, intrinsics_matrix(rig.fovy, 160, 120), rotation, position, rgb, depth


def test_rendered_depth_is_the_ray_cast_z_depth_at_every_pixel_centre(rendered_scene):
    scene, _, k, rotation, position, _, depth = rendered_scene
    vv, uu = np.mgrid[0:120, 0:160]
    uv = np.stack([uu.ravel(), vv.ravel()], axis=1).astype(float)
    directions = pixel_rays(uv, k, rotation)
    geom, dist = cast_rays(scene.model, scene.data, position, directions)
    z = (directions @ rotation)[:, 2] * dist  # z-depth of the analytic hit
    flat = np.isin(geom, [scene.model.geom("table").id, scene.model.geom("floor").id])
    error = np.abs(depth.ravel() - z)
    assert flat.sum() > 5000
    assert np.median(error[flat]) < 1e-5  # exact up to float32 and rasterisation
    assert np.percentile(error[flat], 99) < 1e-4
    # Curved geoms are tessellated for rendering: still within a millimetre almost everywhere.
    assert np.percentile(error[np.isfinite(error)], 95) < 1e-3


def test_half_pixel_shift_is_detectably_wrong(rendered_scene):
    """The principal point convention (origin at the top-left pixel centre) is the one that fits."""
    scene, _, k, rotation, position, _, depth = rendered_scene
    vv, uu = np.mgrid[0:120:2, 0:160:2]
    uv = np.stack([uu.ravel(), vv.ravel()], axis=1).astype(float)
    errors = []
    for shift in (0.0, 0.5):
        directions = pixel_rays(uv + shift, k, rotation)
        geom, dist = cast_rays(scene.model, scene.data, position, directions)
        errors.append(np.nanmedian(np.abs(depth[vv.ravel(), uu.ravel()] - (directions @ rotation)[:, 2] * dist)))
    assert errors[0] * 100 < errors[1]


def test_a_known_world_point_projects_onto_its_object(rendered_scene):
    """Project the ball's top with the published intrinsics and pose: the pixel shows the ball."""
    scene, rig, k, rotation, position, rgb, depth = rendered_scene
    top = scene.data.body("ball").xpos + [0, 0, scene.layout.params["ball_radius"]]
    camera = world_to_camera(rotation, position) @ np.r_[top, 1.0]
    u, v = k[0, 0] * camera[0] / camera[2] + k[0, 2], k[1, 1] * camera[1] / camera[2] + k[1, 2]
    assert 0 <= u < 160 and 0 <= v < 120
    assert depth[int(round(v)), int(round(u))] == pytest.approx(camera[2], abs=0.004)
    ball_color = np.asarray(scene.layout.colors["a"])
    pixel = rgb[int(round(v)), int(round(u))] / 255.0
    assert np.corrcoef(pixel, ball_color)[0, 1] > 0.8  # the ball's hue, whatever the lighting


@pytest.mark.parametrize("camera", ["static", "handheld"])
def test_ground_truth_agrees_with_rendered_depth(tmp_path, camera):
    config = EpisodeConfig(task="place_block", embodiment="so101", camera=camera, seed=3, width=160, height=120, fps=6)
    paths = write_episode(generate_episode(config), tmp_path)
    meta = json.loads(paths["json"].read_text())
    gt, depth = np.load(paths["gt"]), np.load(paths["depth"])["depth"]
    k = np.array([[meta["intrinsics"]["fx"], 0, meta["intrinsics"]["cx"]], [0, meta["intrinsics"]["fy"], meta["intrinsics"]["cy"]], [0, 0, 1]])
    poses = np.array(meta["camera_poses"])
    assert gt["world"].shape == (len(poses), 400, 3) and gt["visible"].shape == (len(poses), 400)
    # Frame 0: the grid's points sit on the grid pixels of the frame-0 camera.
    assert gt["camera_uvz"][0, :, :2] == pytest.approx(grid_points(160, 120), abs=1e-3)
    errors, smooth = [], []
    for t, pose in enumerate(poses):
        camera_points = gt["world"][t] @ pose[:3, :3].T + pose[:3, 3]  # (K, 3)
        z = camera_points[:, 2]
        u, v = k[0, 0] * camera_points[:, 0] / z + k[0, 2], k[1, 1] * camera_points[:, 1] / z + k[1, 2]
        seen = gt["visible"][t]
        # 1/z is affine in (u, v) on a plane, so bilinear inverse depth is exact inside flat faces.
        sampled, spread = _bilinear(1.0 / depth[t], u[seen], v[seen])
        errors.append(np.abs(1.0 / sampled - z[seen]))
        smooth.append(spread * z[seen] < 0.01)  # the four pixels around the point lie on one surface
    error, smooth = np.concatenate(errors), np.concatenate(smooth)
    assert len(error) > 0.5 * gt["visible"].size
    assert smooth.mean() > 0.9
    assert np.median(error) < 1e-4
    assert np.percentile(error[smooth], 90) < 5e-4  # tessellated curved geoms and depth rounding remain
    assert np.percentile(error[smooth], 99) < 0.005
    # Frame-0 camera coordinates are the world points seen from the first pose.
    first = gt["world"][-1] @ poses[0][:3, :3].T + poses[0][:3, 3]
    assert gt["camera_uvz"][-1, :, 2] == pytest.approx(first[:, 2], abs=1e-5)


def _bilinear(image: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear samples at (u, v) and the spread (max - min) of the four pixels used."""
    height, width = image.shape
    u0 = np.clip(np.floor(u).astype(int), 0, width - 2)
    v0 = np.clip(np.floor(v).astype(int), 0, height - 2)
    a, b = np.clip(u - u0, 0, 1), np.clip(v - v0, 0, 1)
    corners = np.stack([image[v0, u0], image[v0, u0 + 1], image[v0 + 1, u0], image[v0 + 1, u0 + 1]])  # (4, N)
    sampled = (1 - a) * (1 - b) * corners[0] + a * (1 - b) * corners[1] + (1 - a) * b * corners[2] + a * b * corners[3]
    return sampled, corners.max(axis=0) - corners.min(axis=0)
