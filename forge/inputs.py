"""Find forge inputs under a directory and read their sidecars.

A source is a video file (.mp4 .avi .mov .mkv .webm) or a folder of frames (images sorted by name).
Beside a source named `<name>` may sit:
  `<name>.json`       {"instruction": str | "instructions": [str], "embodiment", "fps",
                       "intrinsics": {"fx","fy","cx","cy"}, "depth_units": "m"|"mm",
                       "camera_poses": [T x 4x4 world-to-camera], "dataset"}
  `<name>.txt`        the instruction
  `<name>.depth.npz`  key `depth`, (T, H, W) float metres, 0 or NaN = unknown
  `<name>.depth/`     16-bit PNGs, one per frame, units from the json (default mm)
  `<name>.gt.npz`     ground truth written by the simulator: ignored here.

A source may also be a TAPIP3D / SpatialTrackerV2 result `.npz` (`video` (T, 3, H, W) in [0, 1],
`depths` (T, H, W) metres with 0 unknown, `intrinsics` (T, 3, 3), `extrinsics` (T, 4, 4)
world-to-camera): its frames, depth, intrinsics and poses are used as if given by sidecars.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from forge.errors import InputError

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")
TRACKER_NPZ_KEYS = ("video", "depths", "intrinsics", "extrinsics")  # TAPIP3D / SpatialTrackerV2 layout
SIDECAR_NPZ_SUFFIXES = (".depth.npz", ".gt.npz")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
MIN_FOLDER_FRAMES = 2


@dataclass
class Sidecar:
    """What the files beside a source say about it (all optional).

    Attributes:
        instructions: task instructions; empty when none was given.
        embodiment: "human", "robot" or a robot name.
        fps: frames per second of the source.
        intrinsics: (3, 3) pinhole matrix in pixels of the source frames (OpenCV centres).
        depth_units: metres per unit of PNG depth.
        camera_poses: (T, 4, 4) world-to-camera per source frame.
        dataset: dataset tag.
        depth_path: `.depth.npz` file or `.depth/` folder, when present.
        depth_array: (T, H, W) metres carried inside a tracker `.npz` source.
    """

    instructions: list[str] = field(default_factory=list)
    embodiment: str | None = None
    fps: float | None = None
    intrinsics: np.ndarray | None = None
    depth_units: float = 0.001
    camera_poses: np.ndarray | None = None
    dataset: str | None = None
    depth_path: Path | None = None
    depth_array: np.ndarray | None = None


@dataclass
class VideoSource:
    """One forge input: a video file or a frame folder, and its sidecar."""

    path: Path
    is_frame_folder: bool
    sidecar: Sidecar

    @property
    def name(self) -> str:
        return self.path.name


def discover(root: Path) -> list[VideoSource]:
    """Every video file and frame folder under `root`, sorted by path (sidecars are not sources).

    Raises:
        InputError: `root` is missing.
    """
    root = Path(root)
    if not root.exists():
        raise InputError(f"video directory {root} does not exist; pass a folder of videos")
    if root.is_file():
        candidates = [root] if root.suffix.lower() in VIDEO_SUFFIXES or is_tracker_npz(root) else []
    else:
        candidates = sorted(_walk(root))
    return [VideoSource(path, path.is_dir(), Sidecar()) for path in candidates]


def _walk(folder: Path):
    entries = sorted(folder.iterdir())
    images = [p for p in entries if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if folder.name.endswith(".depth"):
        return
    if len(images) >= MIN_FOLDER_FRAMES:
        yield folder
        return
    for entry in entries:
        if entry.is_dir() and not entry.name.startswith("."):
            yield from _walk(entry)
        elif entry.is_file() and not entry.name.startswith(".") and (
            entry.suffix.lower() in VIDEO_SUFFIXES or is_tracker_npz(entry)
        ):
            yield entry


def is_tracker_npz(path: Path) -> bool:
    """A TAPIP3D / SpatialTrackerV2 result `.npz` (not a `.depth.npz` or `.gt.npz` sidecar)."""
    name = path.name.lower()
    if not name.endswith(".npz") or name.endswith(SIDECAR_NPZ_SUFFIXES):
        return False
    try:
        with np.load(path, allow_pickle=False) as data:
            return all(key in data.files for key in TRACKER_NPZ_KEYS)
    except (OSError, ValueError):
        return False


def stem_of(path: Path) -> Path:
    """`dir/name` for `dir/name.mp4`, `dir/name.npz` or a frame folder `dir/name`."""
    return path if path.is_dir() else path.with_suffix("")


def read_sidecar(path: Path) -> Sidecar:
    """Parse the sidecars beside `path`.

    Raises:
        InputError: a sidecar that does not parse or holds values of the wrong kind.
    """
    stem = stem_of(Path(path))
    sidecar = Sidecar()
    json_path = stem.parent / f"{stem.name}.json"
    if json_path.is_file():
        _apply_json(sidecar, json_path)
    text_path = stem.parent / f"{stem.name}.txt"
    if not sidecar.instructions and text_path.is_file():
        text = text_path.read_text(encoding="utf-8").strip()
        sidecar.instructions = [line.strip() for line in text.splitlines() if line.strip()][:1] if text else []
    for candidate in (stem.parent / f"{stem.name}.depth.npz", stem.parent / f"{stem.name}.depth"):
        if candidate.exists():
            sidecar.depth_path = candidate
            break
    if Path(path).suffix.lower() == ".npz":
        _apply_tracker_npz(sidecar, Path(path))
    return sidecar


def _apply_tracker_npz(sidecar: Sidecar, path: Path) -> None:
    """Depth, intrinsics (of the first frame) and world-to-camera poses from a tracker `.npz`."""
    with np.load(path, allow_pickle=False) as data:
        depth, intrinsics, extrinsics = (np.asarray(data[k], np.float64) for k in TRACKER_NPZ_KEYS[1:])
    if intrinsics.ndim == 3:
        intrinsics = intrinsics[0]
    if intrinsics.shape != (3, 3) or extrinsics.ndim != 3 or extrinsics.shape[1:] != (4, 4):
        raise InputError(f"{path}: intrinsics {intrinsics.shape} / extrinsics {extrinsics.shape} are not "
                         "(T, 3, 3) / (T, 4, 4); write the TAPIP3D layout")
    sidecar.intrinsics = sidecar.intrinsics if sidecar.intrinsics is not None else intrinsics
    sidecar.camera_poses = sidecar.camera_poses if sidecar.camera_poses is not None else extrinsics
    sidecar.depth_array = depth.astype(np.float32)


def _apply_json(sidecar: Sidecar, json_path: Path) -> None:
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"sidecar {json_path} is not valid JSON ({exc}); fix or remove it") from exc
    if not isinstance(data, dict):
        raise InputError(f"sidecar {json_path} holds a {type(data).__name__}, not an object; write a JSON object")
    if "instructions" in data:
        values = data["instructions"]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise InputError(f"sidecar {json_path}: 'instructions' must be a list of strings")
        sidecar.instructions = [v.strip() for v in values if v.strip()]
    elif "instruction" in data:
        if not isinstance(data["instruction"], str):
            raise InputError(f"sidecar {json_path}: 'instruction' must be a string")
        sidecar.instructions = [data["instruction"].strip()] if data["instruction"].strip() else []
    sidecar.embodiment = _optional(data, "embodiment", str, json_path)
    sidecar.dataset = _optional(data, "dataset", str, json_path)
    fps = _optional(data, "fps", (int, float), json_path)
    if fps is not None and not fps > 0:
        raise InputError(f"sidecar {json_path}: fps {fps} must be positive")
    sidecar.fps = None if fps is None else float(fps)
    units = data.get("depth_units", "mm")
    if units not in ("m", "mm"):
        raise InputError(f"sidecar {json_path}: depth_units {units!r} must be 'm' or 'mm'")
    sidecar.depth_units = 1.0 if units == "m" else 0.001
    if "intrinsics" in data:
        sidecar.intrinsics = _intrinsics(data["intrinsics"], json_path)
    if data.get("camera_poses") is not None:
        poses = np.asarray(data["camera_poses"], dtype=np.float64)
        if poses.ndim != 3 or poses.shape[1:] != (4, 4) or not np.isfinite(poses).all():
            raise InputError(f"sidecar {json_path}: camera_poses has shape {poses.shape}; expected (T, 4, 4) finite")
        sidecar.camera_poses = poses


def _optional(data: dict, key: str, kind, json_path: Path):
    value = data.get(key)
    if value is not None and not isinstance(value, kind):
        raise InputError(f"sidecar {json_path}: {key!r} has the wrong type ({type(value).__name__})")
    return value


def _intrinsics(value, json_path: Path) -> np.ndarray:
    try:
        fx, fy, cx, cy = (float(value[k]) for k in ("fx", "fy", "cx", "cy"))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"sidecar {json_path}: intrinsics {value!r} needs numbers fx, fy, cx, cy") from exc
    if not (fx > 0 and fy > 0):
        raise InputError(f"sidecar {json_path}: intrinsics fx={fx}, fy={fy} must be positive")
    return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=np.float64)


def with_sidecar(source: VideoSource) -> VideoSource:
    """`source` with its sidecar read from disk."""
    return VideoSource(source.path, source.is_frame_folder, read_sidecar(source.path))
