"""An image codec for the `image` array: each RGB frame of a chunk encoded as PNG, WebP or JPEG (cv2).

Measured on real 128x128 frames (benchmarks/store_bench.py), blosc-zstd keeps images exact and decodes
fastest, so it stays the default; a store created with another `image_codec` trades exactness or
decode speed for size, which matters for full-resolution frames (78% of a forged store's bytes at
640x272). The codec is registered with zarr as `tracegen.image`; any process that imports `store`
can read it, a plain zarr reader cannot.

Chunk layout: b"TGI1", uint32 count, `count` uint32 byte lengths, then the encoded images.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
from zarr.abc.codec import ArrayBytesCodec
from zarr.core.common import parse_named_configuration
from zarr.registry import register_codec

from store.errors import SchemaError

CODEC_NAME = "tracegen.image"
MAGIC = b"TGI1"
# store-level choices: name -> (format, quality); None is blosc-zstd (lossless, exact)
IMAGE_CODECS: dict[str, tuple[str, int] | None] = {
    "blosc": None,
    "png": ("png", 3),
    "webp-lossless": ("webp", 101),
    "webp-95": ("webp", 95),
    "jpeg-95": ("jpeg", 95),
}
LOSSLESS = {"blosc", "png", "webp-lossless"}


def check_image_codec(name: str) -> str:
    if name not in IMAGE_CODECS:
        raise SchemaError(f"image codec '{name}' is unknown; use one of {', '.join(IMAGE_CODECS)}")
    return name


@dataclass(frozen=True)
class ImageCodec(ArrayBytesCodec):
    """zarr v3 array-to-bytes codec for uint8 (n, H, W, 3) RGB chunks.

    Attributes:
        format: "png", "webp" or "jpeg".
        quality: PNG compression level 0-9; WebP 1-100 (101 = lossless); JPEG 1-100.
    """

    is_fixed_size = False
    format: str
    quality: int

    def __init__(self, *, format: str = "webp", quality: int = 101) -> None:
        if format not in ("png", "webp", "jpeg"):
            raise ValueError(f"image format {format!r} is not png, webp or jpeg")
        object.__setattr__(self, "format", format)
        object.__setattr__(self, "quality", int(quality))

    @classmethod
    def from_dict(cls, data: dict) -> ImageCodec:
        _, configuration = parse_named_configuration(data, CODEC_NAME)
        return cls(**configuration)

    def to_dict(self) -> dict:
        return {"name": CODEC_NAME, "configuration": {"format": self.format, "quality": self.quality}}

    def _params(self) -> list[int]:
        import cv2

        flag = {"png": cv2.IMWRITE_PNG_COMPRESSION, "webp": cv2.IMWRITE_WEBP_QUALITY, "jpeg": cv2.IMWRITE_JPEG_QUALITY}
        return [flag[self.format], self.quality]

    def _encode_sync(self, chunk_array, chunk_spec):
        import cv2

        images = np.asarray(chunk_array.as_numpy_array())  # (n, H, W, 3) uint8 RGB
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(f"{CODEC_NAME} encodes uint8 (n, H, W, 3) chunks, got {images.dtype} {images.shape}")
        blobs = []
        for image in images:
            ok, blob = cv2.imencode(f".{self.format}", np.ascontiguousarray(image[:, :, ::-1]), self._params())
            if not ok:
                raise ValueError(f"cv2 could not encode a {image.shape} image as {self.format}")
            blobs.append(blob.tobytes())
        header = MAGIC + struct.pack(f"<I{len(blobs)}I", len(blobs), *map(len, blobs))
        return chunk_spec.prototype.buffer.from_bytes(header + b"".join(blobs))

    def _decode_sync(self, chunk_bytes, chunk_spec):
        import cv2

        raw = chunk_bytes.to_bytes()
        if raw[:4] != MAGIC:
            raise ValueError(f"chunk does not start with {MAGIC!r}; it is not a {CODEC_NAME} chunk")
        (count,) = struct.unpack_from("<I", raw, 4)
        lengths = struct.unpack_from(f"<{count}I", raw, 8)
        offset, images = 8 + 4 * count, []
        for length in lengths:
            image = cv2.imdecode(np.frombuffer(raw, np.uint8, length, offset), cv2.IMREAD_COLOR)
            if image is None:
                raise ValueError(f"an encoded {self.format} image of the chunk cannot be decoded")
            images.append(image[:, :, ::-1])
            offset += length
        array = np.ascontiguousarray(np.stack(images))  # (n, H, W, 3)
        if array.shape != tuple(chunk_spec.shape):
            raise ValueError(f"decoded images have shape {array.shape}, the chunk needs {tuple(chunk_spec.shape)}")
        return chunk_spec.prototype.nd_buffer.from_ndarray_like(array)

    async def _encode_single(self, chunk_array, chunk_spec):
        return self._encode_sync(chunk_array, chunk_spec)

    async def _decode_single(self, chunk_bytes, chunk_spec):
        return self._decode_sync(chunk_bytes, chunk_spec)

    def compute_encoded_size(self, input_byte_length: int, _chunk_spec) -> int:
        raise NotImplementedError  # variable size, like every compressor


register_codec(CODEC_NAME, ImageCodec)
