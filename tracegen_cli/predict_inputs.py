"""Readers for `tracegen predict`'s inputs: an image, an optional depth map, intrinsics, a batch file.

Every reader validates what it reads and raises `PredictInputError` (a `ModelError`, so the CLI root
prints it as one red line, exit code 1) whose message names the bad value and the fix.

Default intrinsics: when none are given, a pinhole camera with a 60 degree horizontal field of view,
square pixels and the principal point at the image centre (`DEFAULT_HFOV_DEG`).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.errors import ModelError

DEFAULT_HFOV_DEG = 60.0  # horizontal field of view assumed when no intrinsics are given
DEPTH_UNITS = {"m": 1.0, "mm": 1e-3}  # metres per stored unit of a 16-bit depth PNG
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


class PredictInputError(ModelError, ValueError):
    """An image, depth map, intrinsics string or batch file that `tracegen predict` cannot use."""


def read_image(path: str | Path) -> np.ndarray:
    """Read an RGB image.

    Args:
        path: a PNG/JPEG/... file.
    Returns:
        (H, W, 3) uint8 RGB.
    Raises:
        PredictInputError: the file is missing, unreadable, or too small for a trace grid.
    """
    import cv2

    path = Path(path)
    if not path.is_file():
        raise PredictInputError(f"image {path} does not exist; pass --image with a PNG or JPEG file")
    raw = np.fromfile(path, dtype=np.uint8)
    bgr = cv2.imdecode(raw, cv2.IMREAD_COLOR) if raw.size else None
    if bgr is None:
        raise PredictInputError(f"image {path} is not a readable image (empty or corrupt); pass a PNG or JPEG file")
    if bgr.shape[0] < 2 or bgr.shape[1] < 2:
        raise PredictInputError(f"image {path} is {bgr.shape[1]}x{bgr.shape[0]} pixels; a trace grid needs at least 2x2")
    return np.ascontiguousarray(bgr[..., ::-1])  # (H, W, 3) RGB


def read_depth(path: str | Path, image_size: tuple[int, int], units: str = "mm") -> np.ndarray:
    """Read a depth map aligned with the image, in metres.

    Accepted forms: `.npz` with key `depth` (already metres), `.npy` (metres), or a single-channel
    16-bit PNG whose values are in `units` (`m` or `mm`; 0 means unknown).

    Args:
        path: the depth file.
        image_size: (H, W) of the image it must match.
        units: unit of the integers in a 16-bit PNG; ignored for `.npz`/`.npy`.
    Returns:
        (H, W) float32 metres, NaN where unknown (non-finite or <= 0).
    Raises:
        PredictInputError: missing/unreadable file, no `depth` key, wrong size, bad units.
    """
    path = Path(path)
    if units not in DEPTH_UNITS:
        raise PredictInputError(f"depth units '{units}' are not known; pass --depth-units m or mm")
    if not path.is_file():
        raise PredictInputError(f"depth {path} does not exist; pass --depth with a .npz (key 'depth') or 16-bit PNG")
    suffix = path.suffix.lower()
    if suffix in (".npz", ".npy"):
        depth = _read_depth_array(path)
    elif suffix == ".png":
        depth = _read_depth_png(path) * DEPTH_UNITS[units]
    else:
        raise PredictInputError(f"depth {path} has suffix '{path.suffix}'; pass a .npz (key 'depth'), .npy or 16-bit .png")
    if depth.shape != tuple(image_size):
        raise PredictInputError(
            f"depth {path} is {depth.shape[1]}x{depth.shape[0]} but the image is {image_size[1]}x{image_size[0]}; "
            "pass a depth map of the image's size"
        )
    depth = depth.astype(np.float32)
    depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
    if np.isnan(depth).all():
        raise PredictInputError(f"depth {path} holds no positive finite value; pass a real depth map or omit --depth")
    return depth


def _read_depth_array(path: Path) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as data:
            if isinstance(data, np.ndarray):
                depth = data
            elif "depth" not in data.files:
                raise PredictInputError(f"depth {path} has keys {', '.join(data.files) or 'none'}; store the map under key 'depth'")
            else:
                depth = data["depth"]
    except (OSError, ValueError) as exc:
        if isinstance(exc, PredictInputError):
            raise
        raise PredictInputError(f"depth {path} is not a readable numpy file ({exc}); re-save it with numpy.savez") from exc
    depth = np.squeeze(np.asarray(depth))
    if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.number):
        raise PredictInputError(f"depth {path} has shape {depth.shape} dtype {depth.dtype}; expected a numeric (H, W) map")
    return depth.astype(np.float64)


def _read_depth_png(path: Path) -> np.ndarray:
    import cv2

    raw = np.fromfile(path, dtype=np.uint8)
    depth = cv2.imdecode(raw, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_UNCHANGED) if raw.size else None
    if depth is None:
        raise PredictInputError(f"depth {path} is not a readable PNG; pass a single-channel 16-bit PNG")
    if depth.ndim != 2 or depth.dtype != np.uint16:
        raise PredictInputError(
            f"depth {path} is a {depth.dtype} PNG with shape {depth.shape}; a depth PNG must be single-channel 16-bit"
        )
    return depth.astype(np.float64)


def default_intrinsics(width: int, height: int, hfov_deg: float = DEFAULT_HFOV_DEG) -> np.ndarray:
    """Pinhole intrinsics for a `hfov_deg` horizontal field of view, square pixels, centred.

    `fx = fy = (W / 2) / tan(hfov / 2)`, `cx = (W - 1) / 2`, `cy = (H - 1) / 2` (pixel-centre origin).

    Returns:
        (3, 3) float32.
    """
    focal = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    return np.array([[focal, 0, (width - 1) / 2.0], [0, focal, (height - 1) / 2.0], [0, 0, 1]], dtype=np.float32)


def parse_intrinsics(text: str | None, width: int, height: int) -> tuple[np.ndarray, bool]:
    """Parse `fx,fy,cx,cy` (pixels) or fall back to `default_intrinsics`.

    Args:
        text: "fx,fy,cx,cy" or None.
        width, height: image size, for the default.
    Returns:
        ((3, 3) float32 matrix, True when the default was used).
    Raises:
        PredictInputError: not four numbers, or fx/fy not positive.
    """
    if text is None or not text.strip():
        return default_intrinsics(width, height), True
    parts = [part.strip() for part in text.replace(" ", ",").split(",") if part.strip()]
    try:
        values = [float(part) for part in parts]
    except ValueError:
        values = []
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise PredictInputError(f"intrinsics '{text}' do not parse; pass four numbers in pixels: --intrinsics fx,fy,cx,cy")
    fx, fy, cx, cy = values
    if fx <= 0 or fy <= 0:
        raise PredictInputError(f"intrinsics '{text}' have fx={fx}, fy={fy}; focal lengths must be positive pixels")
    return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=np.float32), False


def check_instruction(instruction: str | None, where: str = "--instruction") -> str:
    """The stripped instruction; raises `PredictInputError` when it is empty."""
    text = (instruction or "").strip()
    if not text:
        raise PredictInputError(f"{where} is empty; pass the task in words, e.g. --instruction 'pick up the red cube'")
    return text


@dataclass(frozen=True)
class BatchItem:
    """One prediction of a batch.

    Attributes:
        image: path of the image.
        instruction: the task instruction.
        depth: path of its depth map, or None.
    """

    image: Path
    instruction: str
    depth: Path | None = None


def read_batch(folder: str | Path, table: str | Path) -> list[BatchItem]:
    """Read a batch: images in `folder`, instructions from a CSV or JSON `table`.

    CSV: a header with columns `image`, `instruction` and optionally `depth` (paths relative to
    `folder`). JSON: a list of objects with the same keys, or an object mapping image name to
    instruction.

    Returns:
        The items in table order.
    Raises:
        PredictInputError: unreadable table, missing columns, unknown images, empty instructions.
    """
    folder, table = Path(folder), Path(table)
    if not folder.is_dir():
        raise PredictInputError(f"batch folder {folder} is not a directory; pass --images with a folder of images")
    if not table.is_file():
        raise PredictInputError(f"instructions file {table} does not exist; pass a .csv or .json table")
    rows = _read_json_rows(table) if table.suffix.lower() == ".json" else _read_csv_rows(table)
    if not rows:
        raise PredictInputError(f"instructions file {table} lists no images; add one row per image")
    items = []
    for number, row in enumerate(rows, start=1):
        name = str(row.get("image") or "").strip()
        if not name:
            raise PredictInputError(f"{table} row {number} has no 'image'; give every row an image name")
        image = folder / name
        if not image.is_file():
            raise PredictInputError(f"{table} row {number} names image '{name}', which is not in {folder}")
        instruction = check_instruction(row.get("instruction"), f"{table} row {number} instruction")
        depth = str(row.get("depth") or "").strip()
        items.append(BatchItem(image=image, instruction=instruction, depth=folder / depth if depth else None))
    return items


def _read_csv_rows(table: Path) -> list[dict]:
    try:
        with table.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            fields = [name.strip() for name in reader.fieldnames or []]
            if "image" not in fields or "instruction" not in fields:
                raise PredictInputError(f"{table} has columns {fields}; a batch CSV needs a header with 'image,instruction'")
            return [{key.strip(): value for key, value in row.items() if key} for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise PredictInputError(f"instructions file {table} is not a readable UTF-8 CSV ({exc})") from exc


def _read_json_rows(table: Path) -> list[dict]:
    try:
        data = json.loads(table.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PredictInputError(f"instructions file {table} is not valid JSON ({exc})") from exc
    if isinstance(data, dict):
        return [{"image": name, "instruction": text} for name, text in data.items()]
    if isinstance(data, list) and all(isinstance(row, dict) for row in data):
        return data
    raise PredictInputError(
        f"instructions file {table} holds a {type(data).__name__}; use a list of {{image, instruction}} objects"
        " or an object mapping image name to instruction"
    )


def list_images(folder: Path) -> list[Path]:
    """Image files directly in `folder`, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def resolve_device(name: str) -> str:
    """A torch device string for `--device`: "auto" picks CUDA when present, else the CPU.

    Raises:
        PredictInputError: an unknown name, or "cuda" on a machine without a CUDA device.
    """
    import torch

    if name not in ("auto", "cpu", "cuda"):
        raise PredictInputError(f"--device '{name}' is not known; pass auto, cpu or cuda")
    if name == "cuda" and not torch.cuda.is_available():
        raise PredictInputError("--device cuda was asked for but no CUDA device is available; pass --device cpu or auto")
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name
