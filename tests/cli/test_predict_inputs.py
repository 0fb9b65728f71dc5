"""`tracegen predict`'s input readers: images, depth maps, intrinsics, batch tables, and their errors."""

import json
import math

import cv2
import numpy as np
import pytest

from model.errors import ModelError
from tracegen_cli.predict_inputs import (
    DEFAULT_HFOV_DEG,
    PredictInputError,
    check_instruction,
    default_intrinsics,
    parse_intrinsics,
    read_batch,
    read_depth,
    read_image,
)


def _write_png(path, array):
    assert cv2.imwrite(str(path), array)
    return path


def test_read_image_returns_rgb(tmp_path):
    bgr = np.zeros((6, 8, 3), np.uint8)
    bgr[..., 0] = 200  # blue in OpenCV's BGR order
    rgb = read_image(_write_png(tmp_path / "a.png", bgr))
    assert rgb.shape == (6, 8, 3) and rgb.dtype == np.uint8
    assert (rgb[..., 2] == 200).all() and (rgb[..., 0] == 0).all()


def test_missing_and_corrupt_images_name_the_file(tmp_path):
    with pytest.raises(PredictInputError, match="does not exist"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "bad.png").write_bytes(b"not an image at all")
    with pytest.raises(PredictInputError, match="bad.png is not a readable image"):
        read_image(tmp_path / "bad.png")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(PredictInputError, match="empty.jpg"):
        read_image(tmp_path / "empty.jpg")
    assert issubclass(PredictInputError, ModelError)  # the CLI root prints it as one line


def test_depth_npz_is_metres_and_non_positive_is_unknown(tmp_path):
    depth = np.full((4, 5), 1.25, np.float32)
    depth[0, 0] = 0.0
    depth[1, 1] = np.inf
    np.savez(tmp_path / "d.npz", depth=depth)
    read = read_depth(tmp_path / "d.npz", (4, 5))
    assert read.dtype == np.float32 and read.shape == (4, 5)
    assert np.isnan(read[0, 0]) and np.isnan(read[1, 1]) and read[2, 2] == pytest.approx(1.25)


@pytest.mark.parametrize(("units", "metres"), [("mm", 1.5), ("m", 1500.0)])
def test_depth_png_units(tmp_path, units, metres):
    png = np.full((3, 4), 1500, np.uint16)
    png[0, 0] = 0
    read = read_depth(_write_png(tmp_path / "d.png", png), (3, 4), units)
    assert np.isnan(read[0, 0]) and read[1, 1] == pytest.approx(metres)


def test_depth_errors(tmp_path):
    np.savez(tmp_path / "d.npz", depth=np.ones((4, 5), np.float32))
    with pytest.raises(PredictInputError, match=r"depth .* is 5x4 but the image is 6x3"):
        read_depth(tmp_path / "d.npz", (3, 6))
    np.savez(tmp_path / "k.npz", z=np.ones((4, 5)))
    with pytest.raises(PredictInputError, match="key 'depth'"):
        read_depth(tmp_path / "k.npz", (4, 5))
    with pytest.raises(PredictInputError, match="--depth-units m or mm"):
        read_depth(tmp_path / "d.npz", (4, 5), units="cm")
    with pytest.raises(PredictInputError, match="16-bit"):
        read_depth(_write_png(tmp_path / "rgb.png", np.zeros((4, 5, 3), np.uint8)), (4, 5))
    np.savez(tmp_path / "zero.npz", depth=np.zeros((4, 5)))
    with pytest.raises(PredictInputError, match="no positive finite value"):
        read_depth(tmp_path / "zero.npz", (4, 5))
    with pytest.raises(PredictInputError, match="does not exist"):
        read_depth(tmp_path / "missing.npz", (4, 5))


def test_default_intrinsics_have_the_documented_field_of_view():
    k = default_intrinsics(640, 480)
    half_fov = math.degrees(math.atan((640 / 2) / k[0, 0]))
    assert 2 * half_fov == pytest.approx(DEFAULT_HFOV_DEG, abs=1e-4)
    assert k[1, 1] == k[0, 0] and (k[0, 2], k[1, 2]) == (319.5, 239.5)
    matrix, is_default = parse_intrinsics(None, 640, 480)
    assert is_default and np.array_equal(matrix, k)


def test_parse_intrinsics():
    matrix, is_default = parse_intrinsics("500, 510,320.5,240", 640, 480)
    assert not is_default
    assert np.array_equal(matrix, np.array([[500, 0, 320.5], [0, 510, 240], [0, 0, 1]], np.float32))
    for bad in ("500,510,320", "a,b,c,d", "500,510,320,240,1", "nan,1,2,3"):
        with pytest.raises(PredictInputError, match="do not parse"):
            parse_intrinsics(bad, 640, 480)
    with pytest.raises(PredictInputError, match="must be positive"):
        parse_intrinsics("0,510,320,240", 640, 480)


def test_empty_instruction():
    assert check_instruction("  pick up the cube ") == "pick up the cube"
    for empty in ("", "   ", None):
        with pytest.raises(PredictInputError, match="--instruction is empty"):
            check_instruction(empty)


def test_batch_csv_and_json(tmp_path):
    for name in ("a.png", "b.png"):
        _write_png(tmp_path / name, np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "t.csv").write_text("image,instruction,depth\na.png,open the drawer,a.npz\nb.png,close it,\n")
    items = read_batch(tmp_path, tmp_path / "t.csv")
    assert [(i.image.name, i.instruction) for i in items] == [("a.png", "open the drawer"), ("b.png", "close it")]
    assert items[0].depth == tmp_path / "a.npz" and items[1].depth is None
    (tmp_path / "t.json").write_text(json.dumps({"b.png": "push", "a.png": "pull"}))
    assert [i.instruction for i in read_batch(tmp_path, tmp_path / "t.json")] == ["push", "pull"]


def test_batch_errors(tmp_path):
    _write_png(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "cols.csv").write_text("file,text\na.png,x\n")
    with pytest.raises(PredictInputError, match="'image,instruction'"):
        read_batch(tmp_path, tmp_path / "cols.csv")
    (tmp_path / "ghost.csv").write_text("image,instruction\nghost.png,x\n")
    with pytest.raises(PredictInputError, match="ghost.png"):
        read_batch(tmp_path, tmp_path / "ghost.csv")
    (tmp_path / "blank.csv").write_text("image,instruction\na.png,  \n")
    with pytest.raises(PredictInputError, match="row 1 instruction is empty"):
        read_batch(tmp_path, tmp_path / "blank.csv")
    (tmp_path / "bad.json").write_text("[1, 2")
    with pytest.raises(PredictInputError, match="not valid JSON"):
        read_batch(tmp_path, tmp_path / "bad.json")
