"""Demo videos: every task x embodiment x camera renders and is readable as forge expects; the target
robot's demonstrator succeeds; same seed, same bytes; the CLI writes the files."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from robot.sim.cameras import CAMERA_KINDS, sample_camera
from robot.sim.demonstrator import make_plan, run_plan, sample_style
from robot.sim.embodiments import EMBODIMENTS
from robot.sim.episode import EpisodeConfig, generate_episode
from robot.sim.errors import SimConfigError
from robot.sim.tasks import (
    DRAWER_OPEN_M,
    PAN_AXIS,
    TASKS,
    goal_distance,
    goal_offset,
    handle_offset,
    sample_layout,
    task_success,
)
from robot.sim.world import build_scene
from robot.sim.writer import episode_files, generate_demos, write_episode, written_episodes
from tracegen_cli.commands.sim import TASK_NAMES
from tracegen_cli.main import app


def _read_video(path):
    import av

    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def _check_files(paths, config):
    meta = json.loads(paths["json"].read_text())
    frames = _read_video(paths["video"])
    count = len(meta["camera_poses"])
    assert frames.shape == (count, config.height, config.width, 3)
    assert meta["instruction"] == meta["instructions"][0] and len(meta["instructions"]) >= 3
    assert meta["embodiment"] == config.embodiment and meta["task"] == config.task and meta["fps"] == config.fps
    assert set(meta["intrinsics"]) == {"fx", "fy", "cx", "cy"}
    poses = np.array(meta["camera_poses"])
    assert poses.shape == (count, 4, 4) and np.allclose(poses[:, 3], [0, 0, 0, 1])
    assert np.allclose(poses[:, :3, :3] @ poses[:, :3, :3].transpose(0, 2, 1), np.eye(3), atol=1e-9)
    gt = np.load(paths["gt"])
    assert gt["world"].dtype == np.float32 and gt["world"].shape == (count, 400, 3)
    assert gt["camera_uvz"].shape == (count, 400, 3) and gt["visible"].dtype == bool
    assert gt["geom"].dtype == np.int32 and gt["geom"].shape == (400,)
    if config.depth:
        depth = np.load(paths["depth"])["depth"]
        assert depth.dtype == np.float32 and depth.shape == (count, config.height, config.width)
    else:
        assert "depth" not in paths
    return meta, poses, gt


def test_episodes_filmed_in_parallel_are_the_bytes_of_one_process(tmp_path):
    """`workers` processes film the episodes of one run: the same files, summaries in episode order."""
    config = EpisodeConfig(task="ball_in_bin", embodiment="other_robot", camera="handheld", seed=5, width=64,
                           height=48, fps=5)
    one = generate_demos(config, 3, tmp_path / "one")
    seen = []
    parallel = generate_demos(config, 3, tmp_path / "parallel", on_episode=lambda s: seen.append(s["name"]), workers=2)
    assert [s["name"] for s in parallel] == [s["name"] for s in one] and sorted(seen) == sorted(s["name"] for s in one)
    for summary in one:
        for path in summary["paths"].values():
            assert (tmp_path / "parallel" / Path(path).name).read_bytes() == Path(path).read_bytes(), path
    with pytest.raises(SimConfigError, match="--workers 0"):
        generate_demos(config, 2, tmp_path / "none", workers=0)


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_every_embodiment_and_camera_renders_a_successful_demo(tmp_path, task):
    for embodiment in EMBODIMENTS:
        for camera in ("static", "handheld"):
            config = EpisodeConfig(task=task, embodiment=embodiment, camera=camera, seed=1, width=64, height=48,
                                   fps=4, depth=camera == "static")
            episode = generate_episode(config)
            meta, poses, gt = _check_files(write_episode(episode, tmp_path), config)
            assert meta["success"], f"{task} by {embodiment} failed"
            assert gt["visible"][0].mean() > 0.9  # the frame-0 grid sees what it was cast on
            moved = np.nanmax(np.linalg.norm(gt["world"] - gt["world"][:1], axis=-1))
            assert moved > 0.05  # something in view moved (the embodiment or the object)
            static_camera = np.allclose(poses, poses[:1])
            assert static_camera == (camera == "static")


def test_calibrated_camera_demos_share_the_arm_observation_view():
    """Target-robot demos filmed with `--camera calibrated` match what `SimArmWorld.observe` sees."""
    from robot.sim.arm_world import SimArmWorld

    episode = generate_episode(EpisodeConfig(task="sweep", camera="calibrated", seed=0, width=64, height=48, fps=3))
    world = SimArmWorld("place_block", seed=3, width=64, height=48)
    world_from_camera = world.base_to_world() @ world.camera_to_base()
    assert np.linalg.inv(episode.camera_poses[0]) == pytest.approx(world_from_camera, abs=1e-9)
    assert np.allclose(episode.camera_poses, episode.camera_poses[:1])
    assert episode.intrinsics == pytest.approx(world.intrinsics)
    assert "calibrated" in CAMERA_KINDS


def test_demos_from_the_ready_pose_start_where_the_trials_start():
    """`start="home"`: frame 0 shows the arm at its ready pose (as `SimArmWorld.move_to_home` leaves it),
    not folded away; the demonstration still succeeds and skips the unfolding move."""
    from robot.sim.arm_world import SimArmWorld

    config = EpisodeConfig(task="place_block", camera="calibrated", seed=0, width=64, height=48, fps=5, start="home")
    home, parked = generate_episode(config), generate_episode(EpisodeConfig(**{**config.__dict__, "start": "park"}))
    assert home.success and parked.success and len(home.frames) < len(parked.frames)
    world = SimArmWorld("place_block", seed=0, width=64, height=48)
    try:
        world.move_to_home()
        tool = world.tool_in_camera()  # (3,) the ready pose's tool in the calibrated camera
    finally:
        world.close()
    u, v = tool[0] / tool[2] * home.intrinsics[0, 0] + home.intrinsics[0, 2], tool[1] / tool[2] * home.intrinsics[1, 1] + home.intrinsics[1, 2]
    arm_in_first = [np.abs(frames[0].astype(int) - frames[-1].astype(int)).sum(-1)[int(round(v)), int(round(u))]
                    for frames in (home.frames, parked.frames)]
    assert arm_in_first[0] > arm_in_first[1]  # the tool's pixel changes by the end only when the arm stood there
    with pytest.raises(SimConfigError, match="pick one of park, home"):
        EpisodeConfig(start="standing").validate()


def test_same_seed_same_bytes_and_other_seed_other_layout(tmp_path):
    config = EpisodeConfig(task="sweep", embodiment="human", camera="handheld", seed=7, width=64, height=48, fps=5)
    first = write_episode(generate_episode(config), tmp_path / "a")
    second = write_episode(generate_episode(config), tmp_path / "b")
    for kind in first:
        assert first[kind].read_bytes() == second[kind].read_bytes(), kind
    other = write_episode(generate_episode(EpisodeConfig(**{**config.__dict__, "seed": 8})), tmp_path / "c")
    assert other["gt"].read_bytes() != first["gt"].read_bytes()


def test_a_run_continued_after_its_written_episodes_writes_the_bytes_of_one_run(tmp_path):
    """`written_episodes` counts what an interrupted run left; filming on from there (`--first`) must give
    exactly the files one uninterrupted run gives, and nothing from other settings may count."""
    config = EpisodeConfig(task="place_block", embodiment="human", camera="calibrated", seed=3, width=64, height=48, fps=5)
    whole = generate_demos(config, 3, tmp_path / "whole")
    generate_demos(config, 1, tmp_path / "parts")
    assert written_episodes(config, 3, tmp_path / "parts") == 1
    generate_demos(replace(config, index=1), 2, tmp_path / "parts")
    assert written_episodes(config, 3, tmp_path / "parts") == 3
    for summary in whole:
        for path in summary["paths"].values():
            assert (tmp_path / "parts" / Path(path).name).read_bytes() == Path(path).read_bytes(), path
    (tmp_path / "parts" / episode_files(replace(config, index=1))[2]).unlink()  # episode 1 lost its ground truth
    assert written_episodes(config, 3, tmp_path / "parts") == 1
    assert written_episodes(replace(config, start="home"), 3, tmp_path / "whole") == 0  # same names, other films
    assert written_episodes(replace(config, fps=10), 3, tmp_path / "whole") == 0


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_target_robot_demonstrator_succeeds_on_seeded_layouts(task):
    """The world is not the bottleneck: the SO-101's scripted demonstrator solves every seeded layout."""
    successes = 0
    seeds = range(100, 112)
    for seed in seeds:
        rng = np.random.default_rng(seed)
        layout = sample_layout(task, rng)
        scene = build_scene(task, "so101", layout, rng, 64, 48)
        style = sample_style("so101", rng)
        run_plan(scene, make_plan(scene, style, rng), style, rng, lambda t: None)
        successes += task_success(task, scene.model, scene.data, layout.params)
    assert successes >= 0.95 * len(seeds)


def test_success_check_is_false_before_the_demonstration():
    for task in TASKS:
        rng = np.random.default_rng(0)
        layout = sample_layout(task, rng)
        scene = build_scene(task, "so101", layout, rng, 64, 48)
        assert not task_success(task, scene.model, scene.data, layout.params), task


def test_goal_distance_is_how_far_the_object_has_left_to_go():
    """Analytic: the block set 3 cm from the square's centre is 3 cm away, set on the centre it is 0 and the
    task succeeds; a drawer 2 cm short of open is 2 cm away, and 0 once open."""
    rng = np.random.default_rng(0)
    layout = sample_layout("place_block", rng)
    scene = build_scene("place_block", "so101", layout, rng, 64, 48)
    scene.forward()
    block, region = scene.data.body("block").xpos.copy(), scene.data.body("region").xpos.copy()
    start = goal_distance("place_block", scene.model, scene.data, layout.params)
    assert start == pytest.approx(np.linalg.norm(block[:2] - region[:2])) and start > layout.params["region_half"]
    adr = scene.model.joint("block").qposadr[0]
    for offset, distance in ((np.array([0.0, 0.03]), 0.03), (np.zeros(2), 0.0)):
        scene.data.qpos[adr: adr + 3] = [*(region[:2] + offset), block[2]]
        scene.forward()
        assert goal_distance("place_block", scene.model, scene.data, layout.params) == pytest.approx(distance, abs=1e-9)
        np.testing.assert_allclose(goal_offset("place_block", scene.model, scene.data), -offset, atol=1e-9)  # block -> square
    assert task_success("place_block", scene.model, scene.data, layout.params)

    rng = np.random.default_rng(0)
    layout = sample_layout("open_drawer", rng)
    scene = build_scene("open_drawer", "so101", layout, rng, 64, 48)
    adr = scene.model.joint("drawer").qposadr[0]
    for opening, distance in ((DRAWER_OPEN_M - 0.02, 0.02), (DRAWER_OPEN_M + 0.01, 0.0)):
        scene.data.qpos[adr] = opening
        scene.forward()
        assert goal_distance("open_drawer", scene.model, scene.data, layout.params) == pytest.approx(distance)
        assert goal_offset("open_drawer", scene.model, scene.data)[0] == pytest.approx(DRAWER_OPEN_M - opening)  # < 0 past it


def test_bad_options_name_the_value_and_the_fix(tmp_path):
    with pytest.raises(SimConfigError, match="pick one of"):
        generate_demos(EpisodeConfig(task="fold_laundry"), 1, tmp_path)
    with pytest.raises(SimConfigError, match="even"):
        generate_demos(EpisodeConfig(width=321), 1, tmp_path)
    with pytest.raises(SimConfigError, match="at least 1"):
        generate_demos(EpisodeConfig(), 0, tmp_path)


def test_cli_writes_forge_inputs(tmp_path):
    assert TASK_NAMES == TASKS
    result = CliRunner().invoke(app, ["sim", "demos", "--task", "open_drawer", "--embodiment", "other_robot",
                                      "--episodes", "2", "--camera", "static", "--no-depth", "--out", str(tmp_path),
                                      "--seed", "4", "--size", "64x48", "--fps", "5"])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"open_drawer-other_robot-static-s4-00{i}.{ext}" for i in range(2) for ext in ("gt.npz", "json", "mp4")]
    meta = json.loads((tmp_path / "open_drawer-other_robot-static-s4-001.json").read_text())
    assert meta["success"] and meta["seed"] == 4 and meta["size"] == [64, 48]
    bad = CliRunner().invoke(app, ["sim", "demos", "--out", str(tmp_path), "--camera", "drone"])
    assert bad.exit_code == 1 and "unknown camera 'drone'" in bad.output


def test_the_drawer_slides_out_facing_the_calibrated_camera_within_reach():
    """The calibrated camera (the arm's observations and demos) sees the drawer's front in every layout (its
    view ray under 80 degrees off the front's normal; a median 56), so a trace filmed by it shows the drawer
    move; the handle stays within the arm's reach from closed to fully out."""
    eye = sample_camera("calibrated", np.random.default_rng(0)).eye
    for seed in range(200):
        layout = sample_layout("open_drawer", np.random.default_rng(seed))
        x, y, yaw = layout.objects["cabinet"]
        out = -np.array([np.cos(yaw), np.sin(yaw)])  # the drawer slides along the cabinet's local -x
        front = np.r_[np.array([x, y]) + out * (0.077 + layout.params["start"]), 0.034]
        to_camera = (eye - front) / np.linalg.norm(eye - front)
        assert to_camera[:2] @ out > np.cos(np.radians(80)), seed
        for opening in (0.0, layout.params["travel"]):
            handle = np.array([x, y]) + out * (-handle_offset()[0] + opening)
            assert 0.15 < np.linalg.norm(handle - PAN_AXIS) < 0.27, (seed, opening)
