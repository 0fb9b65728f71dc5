"""`tracegen inspect` on stores written by the tests: tables, JSON, render, verify, export/import, errors."""

import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from store.trace_store import TraceStore
from tests.store.conftest import FORGE_ATTRS, make_video_samples, video_attrs
from tracegen_cli.main import app

runner = CliRunner()
CFG = "0123456789abcdef"
KEY_A, KEY_B = "ab" * 32, "cd" * 32


@pytest.fixture
def store_dir(tmp_path):
    path = tmp_path / "traces.zarr"
    store = TraceStore.create(path)
    store.write_video(KEY_A, video_attrs(instructions=("pick up the cup", "grab the cup")), CFG, FORGE_ATTRS, make_video_samples(3))
    store.write_video(KEY_B, video_attrs(embodiment="so101", instructions=("wipe",)), CFG, FORGE_ATTRS,
                      make_video_samples(2, with_depth=False, seed=3))
    return path


def invoke(*args):
    return runner.invoke(app, ["inspect", *map(str, args)])


def test_store_table_lists_videos_and_totals(store_dir):
    result = invoke(store_dir)
    assert result.exit_code == 0, result.output
    assert "abababababab" in result.output and "cdcdcdcdcdcd" in result.output and "so101" in result.output
    assert "videos 2 · samples 5 · forge configs 1" in result.output and "compression" in result.output


def test_store_json_is_machine_readable(store_dir):
    result = invoke(store_dir, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)["store"]
    assert summary["videos"] == 2 and summary["samples"] == 5 and summary["schema_version"] == 1
    assert summary["image_codec"] == "blosc"
    assert summary["embodiments"] == {"human": 1, "so101": 1} and summary["depth_sources"] == {"synthetic": 1, "none": 1}
    on_disk = sum(p.stat().st_size for p in store_dir.rglob("*") if p.is_file())
    assert summary["disk_bytes"] == on_disk
    raw = make_video_samples(3).nbytes() + make_video_samples(2, with_depth=False, seed=3).nbytes()
    assert summary["data_bytes"] == raw and summary["compression_ratio"] > 1.0


def test_one_video_with_motion_statistics(store_dir):
    result = invoke(store_dir, "cd", "--json")
    assert result.exit_code == 0, result.output
    video = json.loads(result.stdout)["video"]
    assert video["key"] == KEY_B and video["attrs"]["instructions"] == ["wipe"] and video["config"] == CFG
    samples = make_video_samples(2, with_depth=False, seed=3)
    for s, row in enumerate(video["samples"]):
        moved = np.linalg.norm(samples.raw_traces[s, 0, -1, :2] - samples.raw_traces[s, 0, 0, :2])  # constant velocity
        assert row["mean_disp_px"] == pytest.approx(moved, abs=0.02) and row["max_disp_px"] == pytest.approx(moved, abs=0.02)
        assert row["valid_steps"] == samples.valid[s].sum() - 1 and row["z_min"] is None
    table = invoke(store_dir, "ab")
    assert table.exit_code == 0 and "grab the cup" in table.output and "disp px" in table.output


def test_render_writes_time_and_depth_panels(store_dir, tmp_path):
    from tracegen_cli.render import BANNER_HEIGHT, LEGEND_HEIGHT, MIN_PANEL_WIDTH

    scale = -(-MIN_PANEL_WIDTH // 64)  # 48x64 frames upscaled by a whole factor
    expected = (BANNER_HEIGHT + 48 * scale + LEGEND_HEIGHT, 2 * 64 * scale, 3)  # time panel + z panel
    out = tmp_path / "render.png"
    result = invoke(store_dir, "ab", "--render", out, "--sample", 2)
    assert result.exit_code == 0, result.output
    assert cv2.imread(str(out)).shape == expected
    no_depth = tmp_path / "flat.png"
    assert invoke(store_dir, "cd", "--render", no_depth).exit_code == 0
    assert cv2.imread(str(no_depth)).shape == expected  # the z panel says "2D only"
    bad = invoke(store_dir, "ab", "--render", out, "--sample", 7)
    assert bad.exit_code == 1 and "sample 7 does not exist" in bad.output


def test_verify_exit_codes(store_dir):
    clean = invoke(store_dir, "--verify")
    assert clean.exit_code == 0 and "verify: ok" in clean.output
    chunk = next(p for p in (store_dir / "videos" / KEY_A / "forge" / CFG / "traces" / "c").rglob("*") if p.is_file())
    chunk.write_bytes(b"broken" * 20)
    damaged = invoke(store_dir, "--verify", "--json")
    assert damaged.exit_code == 1
    report = json.loads(damaged.stdout)["verify"]
    assert not report["ok"] and [p["kind"] for p in report["problems"]] == ["corrupt-chunk"]
    reading = invoke(store_dir, "ab")
    assert reading.exit_code == 1 and "traces cannot be read" in reading.output


def test_export_then_import_through_the_cli(store_dir, tmp_path):
    exported = invoke(store_dir, "--export", "traceforge", tmp_path / "tf")
    assert exported.exit_code == 0 and "exported 2 episode(s)" in exported.output
    assert (tmp_path / "tf" / KEY_A / "three_instructions.json").is_file()
    imported = invoke(tmp_path / "copy.zarr", "--import-from", "traceforge", tmp_path / "tf", "--json")
    assert imported.exit_code == 0, imported.output
    output = json.loads(imported.stdout)
    assert output["imported"] == [KEY_A, KEY_B] and output["store"]["samples"] == 5
    original = TraceStore.open(store_dir).read_samples(KEY_A)
    np.testing.assert_array_equal(TraceStore.open(tmp_path / "copy.zarr").read_samples(KEY_A).traces, original.traces)
    small = invoke(tmp_path / "jpeg.zarr", "--import-from", "traceforge", tmp_path / "tf", "--image-codec", "jpeg-95")
    assert small.exit_code == 0 and "images jpeg-95" in small.output
    assert TraceStore.open(tmp_path / "jpeg.zarr").root_attrs()["image_codec"] == "jpeg-95"
    unknown = invoke(tmp_path / "avif.zarr", "--import-from", "traceforge", tmp_path / "tf", "--image-codec", "avif")
    assert unknown.exit_code == 1 and "image codec 'avif' is unknown" in unknown.output
    bad = invoke(store_dir, "--export", "hdf5", tmp_path / "x")
    assert bad.exit_code == 2 and "format 'hdf5' is not supported" in bad.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("{tmp}/nowhere",), "is not a trace store"),
        (("{store}", "e"), "no video in"),
        (("{store}", "q"), "is not a video key prefix"),
    ],
)
def test_errors_are_one_line(store_dir, tmp_path, args, message):
    result = invoke(*(arg.format(tmp=tmp_path, store=store_dir) for arg in args))
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]


def test_ambiguous_prefix(tmp_path):
    store = TraceStore.create(tmp_path / "s.zarr")
    for key in ("ab" * 32, "ac" * 32):
        store.write_video(key, video_attrs(), CFG, FORGE_ATTRS, make_video_samples(1))
    result = invoke(tmp_path / "s.zarr", "a")
    assert result.exit_code == 1 and "ambiguous: it matches 2 videos" in result.output
