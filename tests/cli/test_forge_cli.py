"""`tracegen forge` end to end through the CLI: summary table, exit codes, one-line errors, dry run."""

import numpy as np
from typer.testing import CliRunner

from store.trace_store import TraceStore
from tests.forge.synthetic import SceneSpec, render, write_video
from tracegen_cli.main import app

runner = CliRunner()


def _scene():
    return render(SceneSpec(width=160, height=120, focal=130.0, num_frames=16, seed=7))


def test_forge_writes_the_store_and_a_second_run_skips(tmp_path):
    write_video(_scene(), tmp_path / "videos" / "wipe_the_table", "clip", instruction=None)
    store = tmp_path / "store"
    first = runner.invoke(app, ["forge", str(tmp_path / "videos"), "--store", str(store), "--embodiment", "robot"])
    assert first.exit_code == 0, first.output
    assert "forged 1" in first.output
    store_handle = TraceStore.open(store)
    (key,) = store_handle.keys()
    attrs = store_handle.video_attrs(key)
    assert attrs["instructions"] == ["wipe the table"] and attrs["instruction_from_folder_name"] is True
    assert attrs["embodiment"] == "human"  # the sidecar names it; --embodiment only fills gaps
    second = runner.invoke(app, ["forge", str(tmp_path / "videos"), "--store", str(store)])
    assert second.exit_code == 0 and "skipped 1" in second.output


def test_a_broken_video_fails_the_run_but_not_the_others(tmp_path):
    write_video(_scene(), tmp_path / "videos", "good")
    (tmp_path / "videos" / "broken.mp4").write_bytes(b"")
    result = runner.invoke(app, ["forge", str(tmp_path / "videos"), "--store", str(tmp_path / "store")])
    assert result.exit_code == 1
    assert "forged 1" in result.output and "failed 1" in result.output
    assert len(TraceStore.open(tmp_path / "store").keys()) == 1


def test_dry_run_lists_and_writes_nothing(tmp_path):
    write_video(_scene(), tmp_path / "videos", "good")
    result = runner.invoke(app, ["forge", str(tmp_path / "videos"), "--store", str(tmp_path / "store"), "--dry-run"])
    assert result.exit_code == 0 and "would forge" in result.output
    assert not (tmp_path / "store").exists()


def test_bad_options_give_one_line_errors(tmp_path):
    (tmp_path / "videos").mkdir()
    np.save(tmp_path / "videos" / "not_a_video.npy", np.zeros(3))
    cases = [
        (["--depth", "lidar"], "--depth 'lidar' is not one of"),
        (["--camera", "drone"], "--camera 'drone' is not one of"),
        (["--max-steps", "500"], "--max-steps 500 is outside 1..128"),
        (["--query-every", "0"], "--query-every 0 must be at least 1"),
        (["--sfm-threads", "0"], "--sfm-threads 0 must be at least 1"),
        ([], "no video"),
    ]
    for extra, message in cases:
        result = runner.invoke(app, ["forge", str(tmp_path / "videos"), "--store", str(tmp_path / "s"), *extra])
        assert result.exit_code == 1, (extra, result.output)
        assert message in result.output, (extra, result.output)
        assert result.output.strip().count("\n") == 0, result.output  # one line
    missing = runner.invoke(app, ["forge", str(tmp_path / "nowhere"), "--store", str(tmp_path / "s")])
    assert missing.exit_code == 1 and "does not exist" in missing.output


def test_sfm_threads_reaches_the_forge_config_but_not_its_hash(tmp_path, monkeypatch):
    import forge.runner
    from forge.config import ForgeConfig

    seen = []

    def capture(video_dir, store, config, on_event):
        seen.append(config)
        return forge.runner.ForgeSummary(config_hash="0" * 12)

    monkeypatch.setattr(forge.runner, "forge_directory", capture)
    (tmp_path / "videos").mkdir()
    result = runner.invoke(app, ["forge", str(tmp_path / "videos"), "--store", str(tmp_path / "s"), "--sfm-threads", "2"])
    assert result.exit_code == 0, result.output
    assert seen[0].sfm_threads == 2
    assert seen[0].hashed() == ForgeConfig().hashed()
