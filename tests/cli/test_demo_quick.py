"""`tracegen demo --quick` for real: every stage runs (sim videos, forge, pretrain, adapt, predict,
execute through the pty emulator, success check) and leaves a report a person can read. A smoke run:
it checks that the chain is whole and its outputs are consistent, not the success rate."""

import json

import pytest
from typer.testing import CliRunner

from tracegen_cli.main import app


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_quick_demo_runs_every_stage_and_writes_the_report(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "SMOKE RUN" in result.output

    metrics = json.loads((out / "report" / "metrics.json").read_text())
    assert metrics["smoke_run"] is True
    assert list(metrics["stage_seconds"]) == ["corpus", "forge", "pretrain", "target demos", "adapt", "evaluate"]
    conditions = metrics["settings"]["conditions"]
    trials = metrics["trials"]
    assert len(trials) == len(conditions) * metrics["settings"]["trials"]
    for condition in conditions:
        rows = [t for t in trials if t["condition"] == condition]
        assert metrics["conditions"][condition]["successes"] == sum(t["success"] for t in rows)
    # every trial either predicted (latency, trace file, overlay) or names why it could not
    for trial in trials:
        folder = out / "trials" / trial["condition"] / f"seed{trial['seed']}"
        assert (folder / "image.png").is_file() and (folder / "depth.npz").is_file()
        if trial["predict_ms"] is not None:
            assert (folder / "trace.npz").is_file() and (out / "report" / trial["overlay"]).is_file()
        else:
            assert trial["error"]
    # the checkpoints the chain made are loadable, and the adapted one names its base
    from model.checkpoint import read_checkpoint_config

    adapted = read_checkpoint_config(out / "checkpoints" / "adapted")
    assert "pretrained" in json.dumps(adapted)
    page = (out / "report" / "report.html").read_text()
    assert "SMOKE RUN" in page and page.count("<img") == sum(bool(t["overlay"]) for t in trials)
