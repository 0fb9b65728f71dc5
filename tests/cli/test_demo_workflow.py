"""The demo's plumbing: in-process commands with captured output, resumable stages, config checks."""

from pathlib import Path

import pytest
import typer

from store.errors import StoreError
from tracegen_cli import demo_config, demo_stages, demo_workflow
from tracegen_cli.console import console, err_console, settings
from tracegen_cli.demo_cli import DemoError, last_error_line, require_commands, run_command
from tracegen_cli.demo_config import DemoConfig, DemoPaths, NoProgress, cached_stage, stage_is_done
from tracegen_cli.demo_stages import pretrain
from tracegen_cli.demo_workflow import describe_setup, stage_keys


def _fake_app(calls: list) -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        pass

    @app.command("write")
    def write(path: Path, text: str = typer.Option("x", "--text")) -> None:
        path.write_text(text)
        console.print(f"wrote {path} quiet={settings.quiet}")
        calls.append(text)

    @app.command("broken")
    def broken() -> None:
        raise StoreError("store /nowhere is not a trace store; pass a folder made by `tracegen forge`")

    @app.command("fails")
    def fails() -> None:
        err_console.print("error: the demo folder is read-only; pick another --out")
        raise typer.Exit(2)

    sim = typer.Typer()

    @sim.command("demos")
    def demos(out: Path = typer.Option(..., "--out")) -> None:
        out.mkdir(parents=True)

    app.add_typer(sim, name="sim")
    return app


def test_run_command_runs_quietly_and_captures_output(tmp_path):
    calls: list = []
    app, log = _fake_app(calls), tmp_path / "logs" / "stage.log"
    before = (console._file, err_console._file, settings.quiet)
    run_command(["write", tmp_path / "a.txt", "--text", "hello"], log, app=app)
    assert (tmp_path / "a.txt").read_text() == "hello" and calls == ["hello"]
    text = log.read_text()
    assert "$ tracegen write" in text and "quiet=True" in text  # output went to the log, run quietly
    assert (console._file, err_console._file, settings.quiet) == before  # consoles restored, still dynamic
    run_command(["sim", "demos", "--out", tmp_path / "videos"], log, app=app)
    assert (tmp_path / "videos").is_dir()


def test_library_errors_propagate_unchanged(tmp_path):
    with pytest.raises(StoreError, match="not a trace store"):
        run_command(["broken"], tmp_path / "log", app=_fake_app([]))
    assert settings.quiet is False  # restored even on error


def test_nonzero_exit_names_the_command_and_its_error(tmp_path):
    with pytest.raises(DemoError, match=r"tracegen fails.*code 2.*read-only"):
        run_command(["fails"], tmp_path / "log", app=_fake_app([]))


def test_missing_commands_are_named(tmp_path):
    app = _fake_app([])
    require_commands(["write", "sim demos"], app=app)
    with pytest.raises(DemoError, match=r"`tracegen pretrain`, `tracegen sim render`"):
        require_commands(["write", "pretrain", "sim render"], app=app)
    with pytest.raises(DemoError, match="tracegen adapt"):
        run_command(["adapt", "--steps", "3"], tmp_path / "log", app=app)


def test_last_error_line(tmp_path):
    log = tmp_path / "log"
    log.write_text("step 1\nERROR: disk full\nstep 2\n")
    assert last_error_line(log) == "ERROR: disk full"
    log.write_text("only this\n\n")
    assert last_error_line(log) == "only this"


def test_cached_stage_reruns_only_when_settings_change(tmp_path):
    paths, runs = DemoPaths(tmp_path), []
    assert cached_stage(paths, "corpus", {"seed": 1}, lambda: runs.append(1)) is True
    assert cached_stage(paths, "corpus", {"seed": 1}, lambda: runs.append(2)) is False
    assert cached_stage(paths, "corpus", {"seed": 2}, lambda: runs.append(3)) is True
    assert runs == [1, 3] and stage_is_done(paths, "corpus", {"seed": 2})


def test_failed_stage_is_not_marked_done(tmp_path):
    paths = DemoPaths(tmp_path)

    def boom():
        raise DemoError("stage failed")

    with pytest.raises(DemoError):
        cached_stage(paths, "forge", {"a": 1}, boom)
    assert not stage_is_done(paths, "forge", {"a": 1})


def test_stage_keys_carry_upstream_settings():
    base = DemoConfig.full()
    keys = stage_keys(base, ("place_block",), "place_block")
    more_steps = stage_keys(DemoConfig.full(pretrain_steps=base.pretrain_steps + 1), ("place_block",), "place_block")
    assert keys["corpus"] == more_steps["corpus"]  # the corpus does not depend on training
    assert keys["pretrain"] != more_steps["pretrain"] and keys["adapt"] != more_steps["adapt"]
    other_seed = stage_keys(DemoConfig.full(seed=1), ("place_block",), "place_block")
    assert all(keys[name] != other_seed[name] for name in keys)


def test_a_pretraining_rate_reaches_the_command_and_the_stage_keys(monkeypatch, tmp_path):
    keys = stage_keys(DemoConfig.full(), ("place_block",), "place_block")
    faster = stage_keys(DemoConfig.full(pretrain_lr=2e-3), ("place_block",), "place_block")
    assert "pretrain_lr" not in keys["pretrain"]  # runs at the default rate keep the keys they were stored with
    assert keys["forge"] == faster["forge"]
    assert keys["pretrain"] != faster["pretrain"] and keys["adapt"] != faster["adapt"]
    calls = []
    monkeypatch.setattr(demo_stages, "run_command", lambda argv, log, **kw: calls.append([str(a) for a in argv]))
    paths = DemoPaths(tmp_path)
    pretrain(DemoConfig.full(pretrain_lr=2e-3), paths, NoProgress(), faster["pretrain"])
    pretrain(DemoConfig.full(), paths, NoProgress(), keys["pretrain"])
    assert calls[0][calls[0].index("--lr") + 1] == "0.002"
    assert "--lr" not in calls[1]


def test_stages_after_filming_are_keyed_by_forges_settings(monkeypatch):
    keys = stage_keys(DemoConfig.full(), ("place_block",), "place_block")
    monkeypatch.setattr(demo_workflow, "forge_settings", lambda *settings: {"reacquire_every": 0})
    other = stage_keys(DemoConfig.full(), ("place_block",), "place_block")
    assert keys["corpus"] == other["corpus"] and keys["target demos"] == other["target demos"]  # films stay
    assert all(keys[name] != other[name] for name in ("forge", "pretrain", "adapt"))


def test_the_colour_check_reaches_forge_and_the_stage_keys():
    keys = stage_keys(DemoConfig.full(), ("place_block",), "place_block")
    checked = stage_keys(DemoConfig.full(colour_drift=25.0), ("place_block",), "place_block")
    assert keys["corpus"] == checked["corpus"]
    assert all(keys[name] != checked[name] for name in ("forge", "pretrain", "adapt"))
    assert checked["forge"]["forge"]["colour_drift"] == 25.0 and "colour_drift" not in keys["forge"]["forge"]
    assert demo_stages.forge_options(25.0) == ["--colour-drift", 25.0] and demo_stages.forge_options(0.0) == []


def test_plain_objects_reach_forge_and_the_stage_keys():
    keys = stage_keys(DemoConfig.full(), ("place_block",), "place_block")
    plain = stage_keys(DemoConfig.full(plain_objects=True), ("place_block",), "place_block")
    assert keys["corpus"] == plain["corpus"]
    assert all(keys[name] != plain[name] for name in ("forge", "pretrain", "adapt"))
    assert plain["forge"]["forge"]["plain_objects"] is True and "plain_objects" not in keys["forge"]["forge"]
    assert demo_stages.forge_options(0.0, True) == ["--plain-objects"]


def test_workers_reach_filming_and_forging_and_leave_the_stage_keys_alone(monkeypatch, tmp_path):
    keys = stage_keys(DemoConfig.full(), ("place_block",), "place_block")
    assert keys == stage_keys(DemoConfig.full(workers=3), ("place_block",), "place_block")  # same traces
    calls = []
    monkeypatch.setattr(demo_stages, "run_command", lambda argv, log, **kw: calls.append([str(a) for a in argv]))
    monkeypatch.setattr(demo_stages, "prune_store", lambda *args: [])
    monkeypatch.setattr(demo_stages.os, "cpu_count", lambda: 6)
    for workers in (3, 0):
        demo_stages.forge_corpus(DemoPaths(tmp_path), ("place_block",), NoProgress(), workers=workers)
        demo_stages.generate_demos("sweep", "human", tmp_path / "films", 2, 0, tmp_path / "log", workers=workers)
    assert [(call[0], call[call.index("--workers") + 1]) for call in calls] == [
        ("forge", "3"), ("sim", "3"), ("forge", "6"), ("sim", "6")]  # 0: one per CPU core
    with pytest.raises(DemoError, match="workers=-1"):
        DemoConfig.full(workers=-1).validate()


def test_prune_store_removes_the_videos_of_earlier_corpus_settings(tmp_path):
    from store.hashing import sha256_of_path
    from store.trace_store import TraceStore
    from tests.store.conftest import FORGE_ATTRS, make_video_samples, video_attrs

    now, before = tmp_path / "corpus" / "now", tmp_path / "corpus" / "before"
    keys = {}
    for folder, name in ((now, "a.mp4"), (now, "b.mp4"), (before, "c.mp4")):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(name.encode() * 100)  # distinct bytes, distinct keys
        keys[name] = sha256_of_path(folder / name)
    store = TraceStore.create(tmp_path / "store")
    for key in keys.values():
        store.write_video(key, video_attrs(), "0123456789abcdef", FORGE_ATTRS, make_video_samples(num_samples=1))
    removed = demo_stages.prune_store(tmp_path / "store", [now])
    assert removed == [keys["c.mp4"]]
    assert TraceStore.open(tmp_path / "store").keys() == sorted([keys["a.mp4"], keys["b.mp4"]])


def test_config_presets_and_validation():
    quick, full = DemoConfig.quick_run(), DemoConfig.full()
    assert quick.quick and not full.quick
    assert quick.pretrain_steps < full.pretrain_steps and quick.trials < full.trials
    assert sum(e.episodes for e in quick.corpus) < sum(e.episodes for e in full.corpus)
    assert {e.embodiment for e in full.corpus} == {"human", "other_robot"}  # never the target robot
    assert {e.camera for e in full.corpus} == {"static", "handheld"} and {e.depth for e in full.corpus} == {True, False}
    for bad in ({"trials": 0}, {"adapt_steps": 0}, {"conditions": ("perfect",)}, {"conditions": ()},
                {"execute_mode": "teleport"}):
        with pytest.raises(DemoError):
            DemoConfig.full(**bad).validate()
    notes = describe_setup(full, ("place_block", "sweep"), "place_block")
    videos = 2 * sum(e.episodes for e in full.corpus)
    assert notes[0].startswith(f"pretraining corpus: {videos} videos") and "no SO-101 footage" in notes[0]


def test_target_demos_are_filmed_by_the_camera_the_trials_observe_with(tmp_path, monkeypatch):
    """The five SO-101 demos come from the workstation's calibrated camera, like every evaluation
    observation (`SimArmWorld` renders that camera), not from a random pose per demo."""
    import tracegen_cli.demo_stages as stages
    from tracegen_cli.demo_stages import generate_target_demos

    calls = []
    monkeypatch.setattr(stages, "run_command", lambda argv, log, app=None: calls.append([str(a) for a in argv]))
    generate_target_demos(DemoConfig.quick_run(out=tmp_path), DemoPaths(tmp_path), "place_block", NoProgress())
    (argv,) = calls
    assert argv[:2] == ["sim", "demos"] and argv[argv.index("--camera") + 1] == "calibrated"
    assert argv[argv.index("--embodiment") + 1] == "so101" and argv[argv.index("--episodes") + 1] == "5"
    assert argv[argv.index("--start") + 1] == "home"  # where every trial starts


def test_demo_folders_hold_only_the_videos_of_the_present_settings(tmp_path, monkeypatch):
    """A demo stage rerun with another camera or seed writes other file names: the old videos must not stay
    beside the new ones (adapt trains on the whole folder)."""
    folder, calls = tmp_path / "human_demos", []
    folder.mkdir()
    (folder / "place_block-human-calibrated-s70000-000.mp4").write_bytes(b"old settings")
    monkeypatch.setattr(demo_stages, "run_command", lambda argv, log: calls.append([str(a) for a in argv]))
    demo_stages.generate_demos("place_block", "human", folder, 5, 70000, tmp_path / "log", camera="handheld")
    assert list(folder.iterdir()) == [] and calls[0][calls[0].index("--out") + 1] == str(folder)
    assert calls[0][calls[0].index("--first") + 1] == "0" and calls[0][calls[0].index("--episodes") + 1] == "5"


def _fake_episode(folder: Path, config) -> None:
    """The files of one filmed episode of `config`, with the sidecar fields `written_episodes` compares."""
    import json

    from robot.sim.writer import config_name, episode_files

    for name in episode_files(config):
        (folder / name).write_bytes(b"film")
    (folder / f"{config_name(config)}.json").write_text(json.dumps({
        "task": config.task, "embodiment": config.embodiment, "camera": config.camera, "seed": config.seed,
        "episode": config.index, "start": config.start, "size": [config.width, config.height], "fps": config.fps}))


def test_a_demo_stage_films_only_the_episodes_it_lacks(tmp_path, monkeypatch):
    """An interrupted corpus stage, or a corpus grown from 2 to 5 episodes, keeps the complete episodes of
    the same settings and films on after them; a half-written episode and everything after it are redone."""
    from dataclasses import replace

    from robot.sim.episode import EpisodeConfig
    from robot.sim.writer import episode_files

    folder, calls = tmp_path / "human_calibrated", []
    folder.mkdir()
    config = EpisodeConfig(task="place_block", embodiment="human", camera="calibrated", seed=10105)
    for index in range(4):
        _fake_episode(folder, replace(config, index=index))
    (folder / episode_files(replace(config, index=2))[0]).unlink()  # episode 2 cut short: no video
    monkeypatch.setattr(demo_stages, "run_command", lambda argv, log: calls.append([str(a) for a in argv]))
    demo_stages.generate_demos("place_block", "human", folder, 5, 10105, tmp_path / "log", camera="calibrated")
    (argv,) = calls
    assert argv[argv.index("--first") + 1] == "2" and argv[argv.index("--episodes") + 1] == "3"
    kept = {name for index in range(2) for name in episode_files(replace(config, index=index))}
    assert {p.name for p in folder.iterdir()} == kept  # episodes 2 and 3 are filmed again, not mixed in

    calls.clear()
    demo_stages.generate_demos("place_block", "human", folder, 2, 10105, tmp_path / "log", camera="calibrated")
    assert calls == [] and {p.name for p in folder.iterdir()} == kept  # nothing missing: nothing filmed
    demo_stages.generate_demos("place_block", "human", folder, 2, 10105, tmp_path / "log", camera="calibrated",
                                 start="home")  # same file names, other films
    assert calls[0][calls[0].index("--first") + 1] == "0" and list(folder.iterdir()) == []


def test_training_stages_replace_a_stale_checkpoint(tmp_path, monkeypatch):
    """A checkpoint left by other settings would make `tracegen pretrain`/`adapt` refuse the folder: the stage
    (run only when not done with these settings) starts it afresh."""
    paths, seen = DemoPaths(tmp_path), []
    monkeypatch.setattr(demo_stages, "run_command", lambda argv, log: seen.append(Path(argv[argv.index("--out") + 1]).exists()))
    for folder in (paths.checkpoint("pretrained"), paths.checkpoint("adapted")):
        _fake_checkpoint(folder)
    demo_stages.pretrain(DemoConfig(out=tmp_path), paths, demo_config.NoProgress(), {"pretrain_steps": 800})
    demo_stages.adapt_checkpoint(paths.checkpoint("pretrained"), tmp_path, paths.checkpoint("adapted"), 5, tmp_path / "log", tmp_path)
    assert seen == [False, False]


def test_an_interrupted_pretraining_run_of_the_same_settings_resumes(tmp_path, monkeypatch):
    """An hour of pretraining cut short is continued from its last checkpoint (`--resume`), not thrown away;
    a folder without training state, or one started with other settings, starts over."""
    paths, calls = DemoPaths(tmp_path), []
    monkeypatch.setattr(demo_stages, "run_command", lambda argv, log: calls.append([str(a) for a in argv]))
    folder, key = paths.checkpoint("pretrained"), {"pretrain_steps": 800, "seed": 0}

    def run(settings):
        demo_stages.pretrain(DemoConfig(out=tmp_path), paths, demo_config.NoProgress(), settings)
        return "--resume" in calls[-1], folder.exists()

    assert run(key) == (False, False)  # first start: nothing to resume
    _fake_checkpoint(folder)  # the run saved a checkpoint, then was killed
    assert run(key) == (True, True)
    assert run({**key, "pretrain_steps": 1600}) == (False, False)  # other settings: the old run is removed
    _fake_checkpoint(folder, train_state=False)  # a checkpoint without the state to continue from
    assert run({**key, "pretrain_steps": 1600}) == (False, False)


def test_an_interrupted_adapt_stage_of_the_same_settings_resumes(tmp_path, monkeypatch):
    """Of the adapt stage's runs (adapted, then scratch), one that finished is not run again and one cut short
    continues where it last saved (`tracegen adapt --resume`); under other settings, or without a save to
    continue from, a run starts over; a finished stage runs nothing and keeps its checkpoints."""
    paths, calls = DemoPaths(tmp_path), []
    config, key = DemoConfig(out=tmp_path, conditions=("adapted", "scratch")), {"adapt_steps": 500, "seed": 0}
    adapted, scratch = paths.checkpoint("adapted"), paths.checkpoint("scratch")

    def adapt(argv, log):
        calls.append(("--resume" in argv, "--from-scratch" in argv))
        if "--from-scratch" in argv and interrupt:
            _fake_checkpoint(scratch)  # it saved, then was killed
            raise KeyboardInterrupt
        _fake_checkpoint(Path(argv[argv.index("--out") + 1]), train_state=False)  # finished: no state left

    def run(settings):
        calls.clear()
        cached_stage(paths, "adapt", settings, lambda: demo_stages.adapt(config, paths, NoProgress(), settings))
        return calls

    monkeypatch.setattr(demo_stages, "run_command", adapt)
    interrupt = True
    with pytest.raises(KeyboardInterrupt):
        run(key)
    assert calls == [(False, False), (False, True)]
    interrupt = False
    assert run(key) == [(True, True)]  # adapted finished: kept; scratch continues
    assert run(key) == [] and adapted.exists() and scratch.exists()  # the stage finished: nothing runs
    assert run({**key, "adapt_steps": 600}) == [(False, False), (False, True)]  # other settings: both start over
    paths.stage_marker("adapt").unlink()
    paths.stage_marker("adapt-scratch").unlink()
    _fake_checkpoint(scratch, train_state=False)  # a checkpoint with no training state to continue from
    assert run({**key, "adapt_steps": 600}) == [(False, True)]


def test_a_finished_pretraining_is_extended_not_restarted(tmp_path, monkeypatch):
    """`pretrain_extend_from` continues the finished shorter run in `out` (`--resume` with the longer `--steps`)
    under a key of its own, and refuses, running nothing, when that run is not there to continue."""
    paths, calls = DemoPaths(tmp_path), []
    monkeypatch.setattr(demo_stages, "run_command", lambda argv, log: calls.append([str(a) for a in argv]))
    short = DemoConfig(out=tmp_path, pretrain_steps=800)
    longer = DemoConfig(out=tmp_path, pretrain_steps=1600, pretrain_extend_from=800)
    key, extended = (stage_keys(c, ("place_block",), "place_block")["pretrain"] for c in (short, longer))
    fresh = stage_keys(DemoConfig(out=tmp_path, pretrain_steps=1600), ("place_block",), "place_block")["pretrain"]
    assert extended["extended_from"] == 800 and extended != fresh and "extended_from" not in fresh
    with pytest.raises(DemoError, match="no finished 800-step pretraining"):
        pretrain(longer, paths, NoProgress(), extended)
    folder = paths.checkpoint("pretrained")
    _fake_checkpoint(folder)
    demo_config.mark_stage_done(paths, "pretrain", key)  # the 800-step run finished here
    with pytest.raises(DemoError, match="no finished 700-step"):
        pretrain(DemoConfig(out=tmp_path, pretrain_steps=1600, pretrain_extend_from=700), paths, NoProgress(),
                 {**fresh, "extended_from": 700})
    assert calls == [] and folder.exists()
    pretrain(longer, paths, NoProgress(), extended)
    assert "--resume" in calls[-1] and calls[-1][calls[-1].index("--steps") + 1] == "1600" and folder.exists()
    assert stage_is_done(paths, demo_config.PRETRAIN_STARTED, extended)
    pretrain(longer, paths, NoProgress(), extended)  # an interrupted extension resumes too
    assert "--resume" in calls[-1]
    demo_config.mark_stage_done(paths, "pretrain", extended)  # the extension finished: it can be extended again
    again = DemoConfig(out=tmp_path, pretrain_steps=2400, pretrain_extend_from=1600)
    chained = stage_keys(again, ("place_block",), "place_block")["pretrain"]
    pretrain(again, paths, NoProgress(), chained)
    assert "--resume" in calls[-1] and calls[-1][calls[-1].index("--steps") + 1] == "2400"
    with pytest.raises(DemoError, match="no finished 1600-step"):  # other settings than the finished run's
        pretrain(again, paths, NoProgress(), {**chained, "batch_size": chained["batch_size"] * 2})
    with pytest.raises(DemoError, match="pretrain_extend_from=1600"):
        DemoConfig(pretrain_steps=1600, pretrain_extend_from=1600).validate()


def _fake_checkpoint(folder: Path, train_state: bool = True) -> None:
    from model.checkpoint import CONFIG, TRAIN_STATE, WEIGHTS

    folder.mkdir(parents=True, exist_ok=True)
    for name in (WEIGHTS, CONFIG, *([TRAIN_STATE] if train_state else [])):
        (folder / name).write_bytes(b"saved")


def test_adapt_checkpoint_passes_no_holdout_and_select_only_when_asked(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(demo_stages, "run_command", lambda argv, log: calls.append([str(a) for a in argv]))
    for holdout in (True, False):
        demo_stages.adapt_checkpoint(tmp_path / "base", tmp_path, tmp_path / "out", 5, tmp_path / "log", tmp_path,
                                       holdout=holdout)
    demo_stages.adapt_checkpoint(tmp_path / "base", tmp_path, tmp_path / "out", 5, tmp_path / "log", tmp_path, select="ade")
    assert "--no-holdout" not in calls[0] and calls[1][-1] == "--no-holdout" and calls[1][0] == "adapt"
    assert not any("--select" in call for call in calls[:2]) and calls[2][-2:] == ["--select", "ade"]
    assert all(call[call.index("--workers") + 1] == "1" for call in calls)  # forging the demos: one process unless asked


def test_so101_footage_of_other_tasks_skips_the_target_task(tmp_path, monkeypatch):
    """An `other_tasks_only` entry films the target robot (calibrated camera, ready pose) on every pretraining
    task but the target one, so pretraining never sees the SO-101 doing the task it adapts to."""
    import tracegen_cli.demo_stages as stages
    from tracegen_cli.demo_config import QUICK_CORPUS, so101_other_tasks
    from tracegen_cli.demo_stages import generate_corpus

    calls = []
    monkeypatch.setattr(stages, "run_command", lambda argv, log, app=None: calls.append([str(a) for a in argv]))
    config = DemoConfig.quick_run(out=tmp_path, corpus=(*QUICK_CORPUS, so101_other_tasks(3)))
    config.validate()
    generate_corpus(config, DemoPaths(tmp_path), ("place_block", "sweep"), NoProgress(), "place_block")

    def option(argv, name):
        return argv[argv.index(name) + 1]

    filmed = [(option(a, "--task"), option(a, "--embodiment")) for a in calls]
    assert filmed == [("place_block", "human"), ("place_block", "other_robot"),
                      ("sweep", "human"), ("sweep", "other_robot"), ("sweep", "so101")]
    so101 = calls[-1]
    assert (option(so101, "--camera"), option(so101, "--start"), option(so101, "--episodes")) == ("calibrated", "home", "3")
    seeds = [option(a, "--seed") for a in calls]
    assert len(set(seeds)) == len(seeds)  # every kind of video has its own layouts
    notes = describe_setup(config, ("place_block", "sweep"), "place_block")
    assert notes[0].startswith("pretraining corpus: 7 videos") and "SO-101 footage of other tasks only" in notes[0]
    assert "SO-101 footage of 'place_block'" in notes[1]
    keys = {task: stage_keys(config, ("place_block", "sweep"), task)["corpus"] for task in ("place_block", "sweep")}
    assert keys["place_block"] != keys["sweep"]  # which task is skipped is part of the corpus


def test_target_robot_footage_of_the_target_task_is_refused():
    from tracegen_cli.demo_config import CorpusEntry

    leaking = DemoConfig.full(corpus=(CorpusEntry("so101", "calibrated", True, 2),))
    with pytest.raises(DemoError, match="so101_calibrated.*other_tasks_only"):
        leaking.validate()


def test_two_corpus_entries_in_one_folder_are_refused():
    """Entries differing only in start (or episodes) would render into one folder, the second over the first."""
    from tracegen_cli.demo_config import CorpusEntry

    clash = DemoConfig.full(corpus=(CorpusEntry("human", "static", True, 2),
                                    CorpusEntry("human", "static", True, 3, start="home")))
    with pytest.raises(DemoError, match="same folder human_static"):
        clash.validate()
    DemoConfig.full(corpus=(CorpusEntry("human", "static", True, 2), CorpusEntry("human", "static", False, 3))).validate()
