"""Camera motion: static or moving (from background motion), and for a moving camera the per-frame
poses and a sparse 3D scene from pycolmap (SIFT, sequential matching, incremental mapping).

COLMAP puts the centre of the top-left pixel at (0.5, 0.5); OpenCV and this project at (0, 0). Every
value crossing that boundary is shifted by 0.5 px here, and nowhere else.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from forge.errors import ReconstructionError
from forge.tracking import GridTracks

log = logging.getLogger(__name__)

COLMAP_PIXEL_OFFSET = 0.5  # colmap_uv = opencv_uv + 0.5
MIN_REGISTERED_SHARE = 0.5
INIT_MIN_TRIANGULATION_DEG = 4.0  # COLMAP's 16 deg suits photo collections, not a short handheld clip  # a reconstruction must place at least this share of the frames


def background_motion(tracks: list[GridTracks]) -> float:
    """Largest median displacement (px) of the grid from its query position over any frame.

    The median is over visible points, so a moving object covering less than half of the image does
    not count; a static camera gives ~0.
    """
    largest = 0.0
    for track in tracks:
        shift = np.linalg.norm(track.uv - track.uv[:, :1], axis=-1)  # (K, F)
        shift = np.where(track.visible, shift, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # frames where every point is lost
            per_frame = np.nanmedian(shift[:, 1:], axis=0) if track.num_frames > 1 else np.zeros(1)
        if np.isfinite(per_frame).any():
            largest = max(largest, float(np.nanmax(per_frame)))
    return largest


def default_intrinsics(width: int, height: int) -> np.ndarray:
    """COLMAP's prior for an unknown camera: focal 1.2 x the longer side, centred principal point."""
    focal = 1.2 * max(width, height)
    return np.array([[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1]], dtype=np.float64)


@dataclass
class Reconstruction:
    """What SfM recovered for one segment (metric-free: the scale is arbitrary).

    Attributes:
        world_to_camera: (F, 4, 4) per segment frame; frames SfM did not place are interpolated.
        registered: (F,) bool, the frame was placed by SfM.
        intrinsics: (3, 3) OpenCV pixel convention.
        observations: per frame, (N, 2) pixels and (N, 3) world points of its triangulated features.
    """

    world_to_camera: np.ndarray
    registered: np.ndarray
    intrinsics: np.ndarray
    observations: list[tuple[np.ndarray, np.ndarray]]


def sfm_options(intrinsics: np.ndarray | None, max_features: int, overlap: int, threads: int, seed: int):
    """Build and validate pycolmap options. Only SIFT on the CPU is allowed: other extractors and
    matchers (ALIKED, LightGlue) abort the whole process inside pycolmap instead of raising.

    Raises:
        ReconstructionError: an option pycolmap would reject.
    """
    import pycolmap

    extraction = pycolmap.FeatureExtractionOptions()
    extraction.type = pycolmap.FeatureExtractorType.SIFT
    extraction.use_gpu = False
    extraction.num_threads = threads
    extraction.sift.max_num_features = max_features
    extraction.sift.first_octave = 0  # no 2x upsampling: 4x faster, enough features at video sizes
    matching = pycolmap.FeatureMatchingOptions()
    matching.type = pycolmap.FeatureMatcherType.SIFT_BRUTEFORCE
    matching.use_gpu = False
    matching.num_threads = threads
    pairing = pycolmap.SequentialPairingOptions()
    pairing.overlap = overlap
    pairing.quadratic_overlap = True  # also pairs 2, 4, 8, ... apart: wide baselines for the start
    reader = pycolmap.ImageReaderOptions()
    mapping = pycolmap.IncrementalPipelineOptions()
    mapping.num_threads = threads
    mapping.random_seed = seed
    mapping.multiple_models = False
    mapping.mapper.init_min_tri_angle = INIT_MIN_TRIANGULATION_DEG
    if intrinsics is not None:
        reader.camera_model = "PINHOLE"
        fx, fy = intrinsics[0, 0], intrinsics[1, 1]
        cx, cy = intrinsics[0, 2] + COLMAP_PIXEL_OFFSET, intrinsics[1, 2] + COLMAP_PIXEL_OFFSET
        reader.camera_params = f"{fx},{fy},{cx},{cy}"
        mapping.ba_refine_focal_length = False
        mapping.ba_refine_principal_point = False
        mapping.ba_refine_extra_params = False
    else:
        reader.camera_model = "SIMPLE_PINHOLE"
    for name, options in (("extraction", extraction), ("matching", matching), ("pairing", pairing),
                          ("reader", reader), ("mapping", mapping)):
        if not options.check():
            raise ReconstructionError(f"pycolmap {name} options {options.summary()} are invalid; fix the forge config")
    if extraction.type != pycolmap.FeatureExtractorType.SIFT or matching.type != pycolmap.FeatureMatcherType.SIFT_BRUTEFORCE:
        raise ReconstructionError("only SIFT features with brute-force matching run on a CPU; keep the defaults")
    return extraction, matching, pairing, reader, mapping


def quiet_colmap() -> None:
    """Keep COLMAP's own log (glog, thousands of lines per reconstruction) to errors unless forge's
    logger is at DEBUG; libraries never print."""
    import pycolmap

    pycolmap.logging.minloglevel = 0 if log.isEnabledFor(logging.DEBUG) else 2


def reconstruct(frames: np.ndarray, intrinsics: np.ndarray | None, *, max_features: int = 2048,
                overlap: int = 6, threads: int = 2, seed: int = 0) -> Reconstruction:
    """Incremental SfM of one segment's frames.

    Args:
        frames: (F, H, W, 3) uint8 RGB.
        intrinsics: (3, 3) known pinhole matrix (OpenCV convention) or None to estimate the focal.
    Raises:
        ReconstructionError: fewer than half of the frames could be placed.
    """
    import pycolmap

    quiet_colmap()
    options = sfm_options(intrinsics, max_features, overlap, threads, seed)
    extraction, matching, pairing, reader, mapping = options
    with tempfile.TemporaryDirectory(prefix="tracegen-sfm-") as tmp:
        tmp_path = Path(tmp)
        image_dir, database = tmp_path / "images", tmp_path / "database.db"
        image_dir.mkdir()
        names = [f"{i:05d}.png" for i in range(len(frames))]
        for name, frame in zip(names, frames, strict=True):
            cv2.imwrite(str(image_dir / name), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
        pycolmap.set_random_seed(seed)
        pycolmap.extract_features(database, image_dir, names, camera_mode=pycolmap.CameraMode.SINGLE,
                                  reader_options=reader, extraction_options=extraction, device=pycolmap.Device.cpu)
        pycolmap.match_sequential(database, matching_options=matching, pairing_options=pairing,
                                  device=pycolmap.Device.cpu)
        models = pycolmap.incremental_mapping(database, image_dir, tmp_path / "sparse", options=mapping)
    if not models:
        raise ReconstructionError(f"SfM placed no frame of {len(frames)}; the camera barely moves or the scene lacks texture")
    model = max(models.values(), key=lambda m: m.num_reg_images())
    return _to_reconstruction(model, names)


def _to_reconstruction(model, names: list[str]) -> Reconstruction:
    index_of = {name: i for i, name in enumerate(names)}
    poses = np.full((len(names), 4, 4), np.nan)
    observations: list[tuple[np.ndarray, np.ndarray]] = [(np.zeros((0, 2)), np.zeros((0, 3)))] * len(names)
    camera = None
    for image in model.images.values():
        if not image.has_pose:
            continue
        i = index_of[image.name]
        poses[i] = np.vstack([image.cam_from_world().matrix(), [0, 0, 0, 1]])
        camera = image.camera
        points = [(p.xy, model.points3D[p.point3D_id].xyz) for p in image.points2D if p.has_point3D()]
        if points:
            uv = np.array([p[0] for p in points]) - COLMAP_PIXEL_OFFSET  # to OpenCV centres
            observations[i] = (uv, np.array([p[1] for p in points]))
    registered = np.isfinite(poses[:, 0, 0])
    if registered.mean() < MIN_REGISTERED_SHARE or camera is None:
        raise ReconstructionError(
            f"SfM placed {int(registered.sum())} of {len(names)} frames; too few for camera compensation "
            "(use --camera static or --depth none)"
        )
    intrinsics = camera.calibration_matrix().astype(np.float64)
    intrinsics[:2, 2] -= COLMAP_PIXEL_OFFSET
    poses = interpolate_poses(poses, registered)
    log.debug("SfM placed %d/%d frames with %d points", registered.sum(), len(names), len(model.points3D))
    return Reconstruction(poses, registered, intrinsics, observations)


def interpolate_poses(poses: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill unknown (F, 4, 4) poses: slerp rotations and lerp camera centres between known ones;
    hold the nearest known pose before the first and after the last."""
    from scipy.spatial.transform import Rotation, Slerp

    index = np.flatnonzero(known)
    if len(index) == len(poses):
        return poses
    rotations = Rotation.from_matrix(poses[index, :3, :3])
    centres = np.einsum("nji,nj->ni", poses[index, :3, :3], -poses[index, :3, 3])  # -R^T t
    frames = np.clip(np.arange(len(poses)), index[0], index[-1])
    rotation = Slerp(index, rotations)(frames) if len(index) > 1 else Rotation.concatenate([rotations] * len(poses))
    centre = np.stack([np.interp(frames, index, centres[:, k]) for k in range(3)], -1)  # (F, 3)
    out = np.tile(np.eye(4), (len(poses), 1, 1))
    out[:, :3, :3] = rotation.as_matrix()
    out[:, :3, 3] = -np.einsum("nij,nj->ni", out[:, :3, :3], centre)
    return out
