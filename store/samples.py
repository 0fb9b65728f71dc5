"""The store schema as data (DESIGN.md section 4) and one video's forged samples, validated on build.

Every array of a forge group is listed in `ARRAY_SPECS` with its dtype and its shape written in
named axes: S samples, K points, L = 129 trace steps, H x W reference image, F raw frames (F <= 128),
T decoded frames. `VideoSamples.validate` checks a concrete set of arrays against the table.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from store.errors import SchemaError
from store.trace import MAX_STEPS, NUM_POINTS, TRACE_LENGTH

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ArraySpec:
    """One array of a forge group.

    Attributes:
        name: array name inside `videos/<sha>/forge/<config-hash>/`.
        dtype: numpy dtype name.
        axes: named axes; integers are fixed sizes.
        required: false for arrays a forge run may omit (depth without a depth source).
    """

    name: str
    dtype: str
    axes: tuple[str | int, ...]
    required: bool = True


ARRAY_SPECS: tuple[ArraySpec, ...] = (
    ArraySpec("traces", "float32", ("S", NUM_POINTS, TRACE_LENGTH, 3)),
    ArraySpec("valid", "bool", ("S", TRACE_LENGTH)),
    ArraySpec("visible", "bool", ("S", NUM_POINTS, TRACE_LENGTH)),
    ArraySpec("query_frame", "int32", ("S",)),
    ArraySpec("image", "uint8", ("S", "H", "W", 3)),
    ArraySpec("intrinsics", "float32", ("S", 3, 3)),
    ArraySpec("raw_traces", "float32", ("S", NUM_POINTS, "F", 3)),
    ArraySpec("camera", "float32", ("T", 4, 4)),
    ArraySpec("depth", "float32", ("S", "H", "W"), required=False),
    ArraySpec("frame_index", "float32", ("S", TRACE_LENGTH), required=False),
)
SPECS_BY_NAME = {spec.name: spec for spec in ARRAY_SPECS}


def check_axes(arrays: dict[str, tuple[tuple[int, ...], str]], where: str) -> dict[str, int]:
    """Check `{name: (shape, dtype)}` against `ARRAY_SPECS`; named axes must agree across arrays.

    Returns:
        The size bound to each named axis (S, H, W, F, T).
    Raises:
        SchemaError: naming the first array whose presence, dtype, rank or size is wrong.
    """
    bound: dict[str, int] = {}
    for spec in ARRAY_SPECS:
        if spec.name not in arrays:
            if spec.required:
                raise SchemaError(f"{where}: array '{spec.name}' is missing; the schema requires it")
            continue
        shape, dtype = arrays[spec.name]
        if np.dtype(dtype) != np.dtype(spec.dtype):
            raise SchemaError(f"{where}: array '{spec.name}' has dtype {dtype}; the schema needs {spec.dtype}")
        if len(shape) != len(spec.axes):
            raise SchemaError(f"{where}: array '{spec.name}' has shape {tuple(shape)}; the schema needs {_axes_text(spec)}")
        for axis, size in zip(spec.axes, shape, strict=True):
            expected = axis if isinstance(axis, int) else bound.setdefault(axis, int(size))
            if int(size) != expected:
                detail = f" with {axis}={expected}" if isinstance(axis, str) else ""
                raise SchemaError(
                    f"{where}: array '{spec.name}' has shape {tuple(shape)}; the schema needs {_axes_text(spec)}{detail}"
                )
    unknown = sorted(set(arrays) - set(SPECS_BY_NAME))
    if unknown:
        raise SchemaError(f"{where}: unknown array(s) {', '.join(unknown)}; the schema has {', '.join(SPECS_BY_NAME)}")
    if bound.get("S", 0) < 1:
        raise SchemaError(f"{where}: holds 0 samples; write at least one sample")
    if not 1 <= bound.get("F", 1) <= MAX_STEPS:
        raise SchemaError(f"{where}: raw_traces has F={bound['F']} frames; the schema allows 1..{MAX_STEPS}")
    if bound.get("H", 2) < 2 or bound.get("W", 2) < 2:
        raise SchemaError(f"{where}: image size {bound.get('H')}x{bound.get('W')} is too small; need at least 2x2")
    return bound


def _axes_text(spec: ArraySpec) -> str:
    return f"{spec.dtype} [{', '.join(str(axis) for axis in spec.axes)}]"


@dataclass
class VideoSamples:
    """One video's forged samples: exactly the arrays of a forge group.

    Attributes:
        traces: float32 (S, K=400, 129, 3) `(u, v, z)` in the reference camera, NaN-padded.
        valid: bool (S, 129) real steps.
        visible: bool (S, K, 129) the point was seen at that step.
        query_frame: int32 (S,) index of each sample's reference frame in the decoded video.
        image: uint8 (S, H, W, 3) RGB reference frames.
        intrinsics: float32 (S, 3, 3) pinhole matrix of each reference frame.
        raw_traces: float32 (S, K, F, 3) per-frame trace before retargeting (F <= 128), NaN-padded.
        camera: float32 (T, 4, 4) world-to-camera per decoded frame (identity when static).
        depth: float32 (S, H, W) metres, NaN unknown; None when the video has no depth source.
        frame_index: float32 (S, 129) fractional source frame of each step, NaN-padded; optional.
    """

    traces: np.ndarray
    valid: np.ndarray
    visible: np.ndarray
    query_frame: np.ndarray
    image: np.ndarray
    intrinsics: np.ndarray
    raw_traces: np.ndarray
    camera: np.ndarray
    depth: np.ndarray | None = None
    frame_index: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.validate()

    def arrays(self) -> dict[str, np.ndarray]:
        """The present arrays by schema name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    def validate(self, where: str = "samples") -> None:
        """Check dtypes and shapes against the schema; raises `SchemaError` naming the mismatch."""
        for name, value in self.arrays().items():
            if not isinstance(value, np.ndarray):
                raise SchemaError(f"{where}: '{name}' is a {type(value).__name__}; pass a numpy array")
        check_axes({name: (a.shape, a.dtype.str) for name, a in self.arrays().items()}, where)
        if not self.valid[:, 0].all():
            raise SchemaError(f"{where}: valid[:, 0] has a false entry; the start of a trace is always valid")

    @property
    def num_samples(self) -> int:
        return int(self.traces.shape[0])

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of the reference frames."""
        return int(self.image.shape[1]), int(self.image.shape[2])

    def nbytes(self) -> int:
        """Uncompressed bytes of every array."""
        return int(sum(a.nbytes for a in self.arrays().values()))
