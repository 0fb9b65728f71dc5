"""Synthetic ground truth for forge: a textured floor and back wall, and a textured card sliding on
the floor, rendered by exact ray casting with known intrinsics, camera poses and depth.

World frame: z up, floor at z = 0, back wall at y = WALL_Y. The card is a horizontal rectangle at
height `card_height` whose pose changes per frame. Everything here is analytic, so the true 3D path of
every grid point is known exactly (`ground_truth_trace`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

WALL_Y = 0.6  # metres
TEXTURE_SIZE = 1024  # texels; one texel is 1 mm on the surfaces


@dataclass
class SceneSpec:
    """What to render.

    Attributes:
        width, height: frame size in pixels.
        num_frames: frames to render.
        moving_camera: the camera translates sideways and forward while looking at the card.
        card_height: height of the card above the floor in metres.
        card_travel: (dx, dy) metres the card slides over the video.
        card_turn: radians the card turns about the vertical over the video.
        still_frames: frames at the start where the card does not move yet.
        seed: texture seed.
    """

    width: int = 640
    height: int = 480
    num_frames: int = 48
    moving_camera: bool = False
    card_height: float = 0.004
    card_travel: tuple[float, float] = (0.12, 0.05)
    card_turn: float = 0.3
    still_frames: int = 0
    seed: int = 0
    card_size: tuple[float, float] = (0.30, 0.22)
    focal: float = 520.0


@dataclass
class Scene:
    """A rendered scene: frames and everything true about them."""

    spec: SceneSpec
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    depth: np.ndarray  # (T, H, W) float32 z-depth in metres
    intrinsics: np.ndarray  # (3, 3)
    camera: np.ndarray  # (T, 4, 4) world-to-camera
    card_pose: np.ndarray  # (T, 4, 4) card-to-world
    extras: dict = field(default_factory=dict)


def make_texture(seed: int, contrast: float = 1.0) -> np.ndarray:
    """A (1024, 1024, 3) uint8 multi-scale noise texture: rich in corners for LK and SIFT."""
    rng = np.random.default_rng(seed)
    image = np.zeros((TEXTURE_SIZE, TEXTURE_SIZE, 3), np.float32)
    for cells, weight in ((8, 0.5), (32, 0.35), (128, 0.25)):
        noise = rng.random((cells, cells, 3)).astype(np.float32)
        image += weight * cv2.resize(noise, (TEXTURE_SIZE, TEXTURE_SIZE), interpolation=cv2.INTER_CUBIC)
    image = (image - image.mean()) / (image.std() + 1e-6)
    return np.clip(128 + 55 * contrast * image, 0, 255).astype(np.uint8)


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """World-to-camera (4, 4) for an OpenCV camera (x right, y down, z forward) at `eye`."""
    forward = target - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.array([0.0, 0.0, 1.0]))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])  # rows: camera axes in world
    pose = np.eye(4)
    pose[:3, :3] = rotation
    pose[:3, 3] = -rotation @ eye
    return pose


def _camera_path(spec: SceneSpec) -> np.ndarray:
    phase = np.linspace(0.0, 1.0, spec.num_frames)
    target = np.array([0.0, 0.05, 0.0])
    poses = []
    for s in phase:
        if spec.moving_camera:
            eye = np.array([-0.18 + 0.36 * s, -0.58 + 0.08 * s, 0.52 - 0.04 * s])
            aim = target + np.array([0.03 * np.sin(3 * s), 0.0, 0.0])
        else:
            eye, aim = np.array([0.0, -0.55, 0.5]), target
        poses.append(look_at(eye, aim))
    return np.stack(poses)


def _card_path(spec: SceneSpec) -> np.ndarray:
    moving = max(1, spec.num_frames - spec.still_frames - 1)
    poses = []
    for t in range(spec.num_frames):
        s = np.clip((t - spec.still_frames) / moving, 0.0, 1.0)
        s = 0.5 - 0.5 * np.cos(np.pi * s)  # smooth start and stop
        angle = spec.card_turn * s
        pose = np.eye(4)
        pose[:3, :3] = [[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]
        pose[:3, 3] = [-0.06 + spec.card_travel[0] * s, -0.05 + spec.card_travel[1] * s, spec.card_height]
        poses.append(pose)
    return np.stack(poses)


def render(spec: SceneSpec) -> Scene:
    """Ray-cast every frame of `spec` (deterministic)."""
    intrinsics = np.array(
        [[spec.focal, 0, (spec.width - 1) / 2], [0, spec.focal, (spec.height - 1) / 2], [0, 0, 1]], np.float64
    )
    camera, card_pose = _camera_path(spec), _card_path(spec)
    textures = [make_texture(spec.seed), make_texture(spec.seed + 1, 0.8), make_texture(spec.seed + 2, 1.3)]
    frames = np.zeros((spec.num_frames, spec.height, spec.width, 3), np.uint8)
    depth = np.zeros((spec.num_frames, spec.height, spec.width), np.float32)
    for t in range(spec.num_frames):
        frames[t], depth[t] = _render_frame(spec, intrinsics, camera[t], card_pose[t], textures)
    return Scene(spec, frames, depth, intrinsics, camera, card_pose)


def _rays(spec: SceneSpec, intrinsics: np.ndarray, world_to_camera: np.ndarray):
    vv, uu = np.mgrid[0 : spec.height, 0 : spec.width].astype(np.float64)
    directions_cam = np.stack(
        [(uu - intrinsics[0, 2]) / intrinsics[0, 0], (vv - intrinsics[1, 2]) / intrinsics[1, 1], np.ones_like(uu)], -1
    )  # (H, W, 3), z = 1 so hit distance along the ray is the z-depth
    rotation = world_to_camera[:3, :3]
    centre = -rotation.T @ world_to_camera[:3, 3]
    return centre, directions_cam @ rotation  # (H, W, 3) world directions


def _render_frame(spec, intrinsics, world_to_camera, card_apply, textures):
    centre, directions = _rays(spec, intrinsics, world_to_camera)
    depth = np.full(directions.shape[:2], np.inf)
    tex_uv = np.zeros(directions.shape[:2] + (2,))
    surface = np.full(directions.shape[:2], -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_floor = -centre[2] / directions[..., 2]
        hit = centre + t_floor[..., None] * directions
        _take(t_floor > 0, t_floor, hit[..., 0], hit[..., 1], 0, depth, tex_uv, surface)
        t_wall = (WALL_Y - centre[1]) / directions[..., 1]
        hit = centre + t_wall[..., None] * directions
        _take((t_wall > 0) & (hit[..., 2] >= 0), t_wall, hit[..., 0], hit[..., 2], 1, depth, tex_uv, surface)
        local_centre = card_apply[:3, :3].T @ (centre - card_apply[:3, 3])
        local_dirs = directions @ card_apply[:3, :3]
        t_card = -local_centre[2] / local_dirs[..., 2]
        hit = local_centre + t_card[..., None] * local_dirs
        half_w, half_h = spec.card_size[0] / 2, spec.card_size[1] / 2
        inside = (t_card > 0) & (np.abs(hit[..., 0]) <= half_w) & (np.abs(hit[..., 1]) <= half_h)
        _take(inside, t_card, hit[..., 0] + half_w, hit[..., 1] + half_h, 2, depth, tex_uv, surface)
    image = np.zeros(directions.shape[:2] + (3,), np.uint8)
    for index, texture in enumerate(textures):
        mask = surface == index
        texel = np.mod(tex_uv * 1000.0, TEXTURE_SIZE).astype(np.float32)  # 1 texel per mm
        sampled = cv2.remap(texture, texel[..., 0], texel[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
        image[mask] = sampled[mask]
    depth = np.where(np.isfinite(depth), depth, 0.0)
    return image, depth.astype(np.float32)


def _take(mask, distance, tex_u, tex_v, index, depth, tex_uv, surface):
    closer = mask & (distance < depth)
    depth[closer] = distance[closer]
    tex_uv[closer, 0], tex_uv[closer, 1] = tex_u[closer], tex_v[closer]
    surface[closer] = index


def ground_truth_trace(scene: Scene, query_frame: int, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """True 3D path of the 20x20 grid laid on frame `query_frame`, in that frame's camera.

    Returns:
        xyz: (400, F, 3) metres in the reference camera, F = min(num_frames, T - query_frame).
        on_card: (400,) bool, the point lies on the moving card.
    """
    from store.trace import grid_points, unproject

    spec = scene.spec
    grid = grid_points(spec.width, spec.height).astype(np.float64)  # (K, 2)
    z = _depth_at(scene, query_frame, grid)
    ref = unproject(np.concatenate([grid, z[:, None]], 1), scene.intrinsics)  # (K, 3)
    world = _apply(np.linalg.inv(scene.camera[query_frame]), ref)  # camera -> world
    on_card = _on_card(scene, query_frame, world)
    count = min(num_frames, spec.num_frames - query_frame)
    xyz = np.zeros((len(grid), count, 3))
    card_local = _apply(np.linalg.inv(scene.card_pose[query_frame]), world)  # card frame
    for offset in range(count):
        t = query_frame + offset
        moved = _apply(scene.card_pose[t], card_local)
        world_t = np.where(on_card[:, None], moved, world)
        xyz[:, offset] = _apply(scene.camera[query_frame], world_t)
    return xyz, on_card


def _apply(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (4, 4) rigid transform to (N, 3) points."""
    return points @ transform[:3, :3].T + transform[:3, 3]


def _depth_at(scene: Scene, frame: int, pixels: np.ndarray) -> np.ndarray:
    spec = scene.spec
    # Exact analytic depth: cast just these rays against the three surfaces.
    world_to_camera = scene.camera[frame]
    rotation = world_to_camera[:3, :3]
    centre = -rotation.T @ world_to_camera[:3, 3]
    k = scene.intrinsics
    dirs_cam = np.stack([(pixels[:, 0] - k[0, 2]) / k[0, 0], (pixels[:, 1] - k[1, 2]) / k[1, 1], np.ones(len(pixels))], -1)
    dirs = dirs_cam @ rotation
    best = np.full(len(pixels), np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_floor = -centre[2] / dirs[:, 2]
        best = np.where(t_floor > 0, np.minimum(best, t_floor), best)
        t_wall = (WALL_Y - centre[1]) / dirs[:, 1]
        wall_z = centre[2] + t_wall * dirs[:, 2]
        best = np.where((t_wall > 0) & (wall_z >= 0), np.minimum(best, t_wall), best)
        card = scene.card_pose[frame]
        local_centre = card[:3, :3].T @ (centre - card[:3, 3])
        local_dirs = dirs @ card[:3, :3]
        t_card = -local_centre[2] / local_dirs[:, 2]
        hit = local_centre + t_card[:, None] * local_dirs
        inside = (t_card > 0) & (np.abs(hit[:, 0]) <= spec.card_size[0] / 2) & (np.abs(hit[:, 1]) <= spec.card_size[1] / 2)
        best = np.where(inside, np.minimum(best, t_card), best)
    return best


def _on_card(scene: Scene, frame: int, world: np.ndarray) -> np.ndarray:
    spec = scene.spec
    local = _apply(np.linalg.inv(scene.card_pose[frame]), world)
    return (
        (np.abs(local[:, 2]) < 1e-6)
        & (np.abs(local[:, 0]) <= spec.card_size[0] / 2 + 1e-9)
        & (np.abs(local[:, 1]) <= spec.card_size[1] / 2 + 1e-9)
    )


def write_video(scene: Scene, directory: Path, name: str, *, depth: bool = True, poses: bool = False,
                intrinsics: bool = True, instruction: str | None = "slide the card", fps: float = 30.0,
                frame_folder: bool = False) -> Path:
    """Write `scene` as `<name>.mp4` (H.264, near-lossless) or a frame folder, with sidecars.

    Sidecars: `<name>.json` (instruction, embodiment, fps, intrinsics, optional camera poses),
    `<name>.depth.npz` (metres) when `depth`, and `<name>.gt.npz` (camera, card poses, intrinsics).
    Returns the video path.
    """
    directory.mkdir(parents=True, exist_ok=True)
    if frame_folder:
        path = directory / name
        path.mkdir(exist_ok=True)
        for t, frame in enumerate(scene.frames):
            cv2.imwrite(str(path / f"{t:05d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    else:
        path = directory / f"{name}.mp4"
        write_mp4(path, scene.frames, fps)
    sidecar: dict = {"embodiment": "human", "fps": fps}
    if instruction is not None:
        sidecar["instruction"] = instruction
    if intrinsics:
        k = scene.intrinsics
        sidecar["intrinsics"] = {"fx": k[0, 0], "fy": k[1, 1], "cx": k[0, 2], "cy": k[1, 2]}
    if poses:
        sidecar["camera_poses"] = scene.camera.tolist()
    (directory / f"{name}.json").write_text(json.dumps(sidecar))
    if depth:
        np.savez_compressed(directory / f"{name}.depth.npz", depth=scene.depth)
    np.savez_compressed(
        directory / f"{name}.gt.npz", camera=scene.camera, card_pose=scene.card_pose, intrinsics=scene.intrinsics
    )
    return path


def write_mp4(path: Path, frames: np.ndarray, fps: float = 30.0, crf: int = 12) -> None:
    """Encode (T, H, W, 3) RGB frames as H.264 with PyAV (yuv420p, high quality)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=int(round(fps)))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def endpoint_errors(scene: Scene, raw: np.ndarray, intrinsics: np.ndarray, query_frame: int,
                    frame_ids: np.ndarray, align_scale: bool = False) -> dict:
    """Endpoint error of the card's grid points, per axis, against the exact trajectories.

    Args:
        raw: (K, F, 3) forged `(u, v, z)` per decoded frame from `query_frame` (NaN-padded).
        intrinsics: (3, 3) of the forged sample (to unproject).
        query_frame: decoded index of the sample's reference frame.
        frame_ids: (T,) source frame of each decoded frame.
        align_scale: fit one scale (median of |true| / |forged| over the static points) first,
            for metric-free SfM traces.
    Returns:
        {"x_cm", "y_cm", "z_cm": mean absolute endpoint errors of moving points, "moving": count,
         "scale": the fitted scale}.
    """
    from store.trace import unproject

    if np.isnan(raw[..., 2]).all():  # 2D-only: compare pixels of the reference camera instead
        return _pixel_endpoint_errors(scene, raw, query_frame, frame_ids)
    xyz = unproject(raw.astype(np.float64), intrinsics)  # (K, F, 3)
    finite_columns = np.flatnonzero(np.isfinite(xyz).all(-1).any(0))
    last = int(finite_columns[-1])
    source = frame_ids[query_frame : query_frame + last + 1] - frame_ids[query_frame]  # source offsets
    truth, on_card = ground_truth_trace(scene, int(frame_ids[query_frame]), int(source[-1]) + 1)
    truth = truth[:, source]  # (K, last+1, 3) at the decoded frames
    xyz = xyz[:, : last + 1]
    scale = 1.0
    if align_scale:
        static = ~on_card[:, None] & np.isfinite(xyz).all(-1)
        scale = float(np.median(np.linalg.norm(truth[static], axis=-1) / np.linalg.norm(xyz[static], axis=-1)))
    end = np.abs(scale * xyz[on_card, -1] - truth[on_card, -1])  # (M, 3)
    end = end[np.isfinite(end).all(-1)]
    x, y, z = (float(100 * end[:, i].mean()) if len(end) else float("nan") for i in range(3))
    return {"x_cm": x, "y_cm": y, "z_cm": z, "moving": int(len(end)), "scale": scale}


def _pixel_endpoint_errors(scene: Scene, raw: np.ndarray, query_frame: int, frame_ids: np.ndarray) -> dict:
    """Mean absolute endpoint error of the card's points in reference-image pixels (u, v)."""
    from store.trace import project

    last = int(np.flatnonzero(np.isfinite(raw[..., :2]).all(-1).any(0))[-1])
    source = frame_ids[query_frame : query_frame + last + 1] - frame_ids[query_frame]
    truth, on_card = ground_truth_trace(scene, int(frame_ids[query_frame]), int(source[-1]) + 1)
    true_uv = project(truth[:, source[-1]], scene.intrinsics)[:, :2]
    end = np.abs(raw[on_card, last, :2] - true_uv[on_card])
    end = end[np.isfinite(end).all(-1)]
    u, v = (float(end[:, i].mean()) if len(end) else float("nan") for i in range(2))
    return {"u_px": u, "v_px": v, "moving": int(len(end)), "scale": 1.0}
