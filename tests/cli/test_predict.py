"""`tracegen predict` end to end on a small real checkpoint: the trace file `execute` reads, overlays,
several samples, 2D-only mode, batch mode, and one-line errors that leave nothing half-written."""

import json
import shutil

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from store.trace import grid_points, load_trace_file
from tracegen_cli.main import app

H, W = 48, 64
runner = CliRunner()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    import torch

    from model.checkpoint import save_checkpoint
    from model.config import preset
    from model.network import TraceFlowNet

    torch.manual_seed(0)
    cfg = preset("tiny", depth=1, width=64, heads=2, image_size=64)
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", TraceFlowNet(cfg), cfg)


@pytest.fixture()
def scene(tmp_path):
    rng = np.random.default_rng(0)
    cv2.imwrite(str(tmp_path / "scene.png"), (rng.random((H, W, 3)) * 255).astype(np.uint8))
    depth = np.linspace(0.6, 1.2, H * W, dtype=np.float32).reshape(H, W)
    np.savez(tmp_path / "depth.npz", depth=depth)
    return tmp_path, depth


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_prediction_is_a_trace_file_execute_reads(checkpoint, scene):
    folder, depth = scene
    result = _invoke("predict", "-c", checkpoint, "-i", folder / "scene.png", "--depth", folder / "depth.npz",
                     "--intrinsics", "60,61,31.5,23.5", "-t", "push the block left", "--out", folder / "t.npz",
                     "--render", folder / "o.png")
    assert result.exit_code == 0, result.output
    trace = load_trace_file(folder / "t.npz")
    assert trace.traj.shape == (400, 33, 3) and trace.valid.all() and trace.has_depth
    grid = grid_points(W, H)
    np.testing.assert_allclose(trace.traj[:, 0, :2], grid, atol=1e-3)  # paths start on the query grid
    rows, cols = np.round(grid[:, 1]).astype(int), np.round(grid[:, 0]).astype(int)
    np.testing.assert_allclose(trace.traj[:, 0, 2], depth[rows, cols], rtol=1e-5)  # ... at the given depth
    assert np.isfinite(trace.traj).all()
    np.testing.assert_array_equal(trace.intrinsics, [[60, 0, 31.5], [0, 61, 23.5], [0, 0, 1]])
    assert trace.image_size == (H, W) and trace.instruction == "push the block left"
    assert trace.checkpoint_id == json.loads((checkpoint / "config.json").read_text())["checkpoint_id"]
    overlay = cv2.imread(str(folder / "o.png"))
    assert overlay is not None and overlay.shape[1] == 2 * 8 * W  # two panels, upscaled 8x
    assert sorted(p.name for p in folder.iterdir()) == ["depth.npz", "o.png", "scene.png", "t.npz"]


def test_without_depth_the_prediction_is_2d_only_and_says_so(checkpoint, scene):
    folder, _ = scene
    result = _invoke("predict", "-c", checkpoint, "-i", folder / "scene.png", "-t", "push", "--out", folder / "t.npz")
    assert result.exit_code == 0, result.output
    assert "2D-only" in result.output and "60° horizontal field of view" in result.output
    trace = load_trace_file(folder / "t.npz")
    assert not trace.has_depth and np.isnan(trace.traj[..., 2]).all() and np.isfinite(trace.traj[..., :2]).all()
    np.testing.assert_allclose(trace.intrinsics[0, 0], (W / 2) / np.tan(np.radians(30)), rtol=1e-6)


def test_samples_are_all_saved_and_seeds_reproduce(checkpoint, scene):
    folder, _ = scene
    common = ["predict", "-c", checkpoint, "-i", folder / "scene.png", "-t", "open the drawer", "--samples", 3, "--steps", 2]
    assert _invoke(*common, "--seed", 5, "--out", folder / "a.npz").exit_code == 0
    assert _invoke(*common, "--seed", 5, "--out", folder / "b.npz").exit_code == 0
    assert _invoke(*common, "--seed", 6, "--out", folder / "c.npz").exit_code == 0
    a, b, c = (load_trace_file(folder / f"{n}.npz") for n in "abc")
    assert a.samples.shape == (3, 400, 33, 3)
    np.testing.assert_array_equal(a.traj, a.samples[0])
    np.testing.assert_array_equal(a.samples, b.samples)
    assert not np.allclose(a.samples[0, :, 1:, :2], a.samples[1, :, 1:, :2])  # distinct hypotheses
    assert not np.allclose(a.samples[..., :2], c.samples[..., :2])
    assert _invoke(*common, "--seed", 6, "--temperature", 0, "--out", folder / "d.npz").exit_code == 0
    cold = load_trace_file(folder / "d.npz").samples
    np.testing.assert_array_equal(cold[0], cold[2])  # no noise: every hypothesis is the mean-seeking trace


def test_verbose_reports_load_and_prediction_latency(checkpoint, scene):
    folder, _ = scene
    result = _invoke("-v", "predict", "-c", checkpoint, "-i", folder / "scene.png", "-t", "push", "--out", folder / "t.npz")
    assert result.exit_code == 0 and "model load" in result.output and "prediction" in result.output


def test_batch_mode(checkpoint, scene):
    folder, _ = scene
    images, out, renders = folder / "images", folder / "out", folder / "renders"
    for d in (images, out, renders):
        d.mkdir()
    shutil.copy(folder / "scene.png", images / "one.png")
    shutil.copy(folder / "scene.png", images / "two.png")
    shutil.copy(folder / "depth.npz", images / "two.npz")
    (folder / "table.csv").write_text("image,instruction,depth\none.png,pick up the cup,\ntwo.png,close the lid,two.npz\n")
    result = _invoke("predict", "-c", checkpoint, "--images", images, "--instructions", folder / "table.csv",
                     "--out", out, "--render", renders)
    assert result.exit_code == 0, result.output
    one, two = load_trace_file(out / "one.npz"), load_trace_file(out / "two.npz")
    assert (one.instruction, two.instruction) == ("pick up the cup", "close the lid")
    assert not one.has_depth and two.has_depth
    assert sorted(p.name for p in renders.iterdir()) == ["one.png", "two.png"]


def _bad_cases(folder, checkpoint):
    (folder / "corrupt.png").write_bytes(b"\x89PNG but not really")
    np.savez(folder / "small.npz", depth=np.ones((H // 2, W // 2), np.float32))
    old = folder / "old_ckpt"
    shutil.copytree(checkpoint, old)
    config = json.loads((old / "config.json").read_text())
    (old / "config.json").write_text(json.dumps({**config, "version": 99}))
    image = ["-i", folder / "scene.png"]
    return {
        "missing image": (["-i", folder / "nope.png", "-t", "x"], "nope.png does not exist"),
        "unreadable image": (["-i", folder / "corrupt.png", "-t", "x"], "corrupt.png is not a readable image"),
        "depth of another size": ([*image, "-t", "x", "--depth", folder / "small.npz"], "is 32x24 but the image is 64x48"),
        "bad intrinsics": ([*image, "-t", "x", "--intrinsics", "500,500,cx"], "intrinsics '500,500,cx' do not parse"),
        "empty instruction": ([*image, "-t", "   "], "--instruction is empty"),
        "incompatible checkpoint": ([*image, "-t", "x", "-c", old], "has version 99"),
    }


@pytest.mark.parametrize("case", ["missing image", "unreadable image", "depth of another size", "bad intrinsics",
                                  "empty instruction", "incompatible checkpoint"])
def test_bad_input_is_one_line_and_writes_nothing(checkpoint, scene, case):
    folder, _ = scene
    args, message = _bad_cases(folder, checkpoint)[case]
    if "-c" not in args:
        args = ["-c", checkpoint, *args]
    result = _invoke("predict", *args, "--out", folder / "t.npz", "--render", folder / "o.png")
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output
    assert not (folder / "t.npz").exists() and not (folder / "o.png").exists()
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporaries left either


def test_sampler_option_overrides_the_checkpoints_default(tmp_path, scene):
    import torch

    from model.checkpoint import load_checkpoint, save_checkpoint
    from model.config import preset
    from model.network import TraceFlowNet
    from model.predict import predict_traces

    torch.manual_seed(0)
    cfg = preset("tiny", depth=1, width=64, heads=2, image_size=64, sampler="euler", sample_steps=2)
    net = TraceFlowNet(cfg)
    with torch.no_grad():  # leave the zero-initialised state: an untrained net predicts no motion for any sampler
        for parameter in net.parameters():
            if not parameter.abs().sum():
                parameter.normal_(0.0, 0.05)
    path = save_checkpoint(tmp_path / "ckpt", net, cfg)
    folder, depth = scene
    image = cv2.cvtColor(cv2.imread(str(folder / "scene.png")), cv2.COLOR_BGR2RGB)
    model, _, _ = load_checkpoint(path)
    traces = {}
    for sampler in ("euler", "heun"):
        out = folder / f"{sampler}.npz"
        result = _invoke("predict", "-c", path, "-i", folder / "scene.png", "--depth", folder / "depth.npz", "-t", "push",
                         "--sampler", sampler, "--out", out)
        assert result.exit_code == 0, result.output
        traces[sampler] = load_trace_file(out).traj
        expected, _ = predict_traces(model, image, depth, load_trace_file(out).intrinsics, "push", sampler=sampler)
        np.testing.assert_allclose(traces[sampler], expected[0], atol=1e-4)
    assert np.abs(traces["euler"][:, 1:, :2] - traces["heun"][:, 1:, :2]).max() > 0.01
    result = _invoke("predict", "-c", path, "-i", folder / "scene.png", "-t", "push", "--sampler", "rk4", "--out", folder / "x.npz")
    assert result.exit_code != 0 and "rk4" in result.output and not (folder / "x.npz").exists()
