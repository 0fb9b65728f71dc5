"""The demo's trial world on the real simulator: the camera observation is consistent with the arm, and
a trace executed with the real `tracegen execute` through the pty emulator moves the simulated tool by
the trace's displacement."""

import numpy as np
import pytest

from robot.camera_to_base import CameraToBase
from robot.execute import synthetic_gripper_trace
from store.trace import project, save_trace_file
from tracegen_cli.demo_sim import SimTrialWorld
from tracegen_cli.demo_trials import execute_on_emulator, oracle_predictor, run_trial, write_observation


@pytest.fixture
def world():
    trial = SimTrialWorld("place_block", 90_001)
    yield trial
    trial.close()


def test_observation_sees_the_tool_where_the_calibration_says(world):
    seen = world.observe()
    assert seen.image.dtype == np.uint8 and seen.image.shape == (240, 320, 3) and seen.image.std() > 10
    tool = world.tool_in_camera()  # (3,) camera frame
    u, v, z = project(tool, seen.intrinsics)
    assert 0 <= u < 320 and 0 <= v < 240 and 0.2 < z < 2.0  # the gripper is in view
    camera = CameraToBase(world.world.camera_to_base())
    np.testing.assert_allclose(camera.to_base(tool), world.world.tool_in_base(), atol=1e-9)
    assert world.success() is False  # nothing done yet


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_execute_through_the_emulator_moves_the_simulated_tool(world, tmp_path):
    write_observation(world.observe(), tmp_path)
    scene = world.world.scene
    start = np.r_[scene.data.qpos[scene.arm_qpos], scene.data.qpos[scene.grip_qpos[0]]]
    camera = CameraToBase(world.world.camera_to_base())
    displacement = np.array([0.04, 0.0, -0.02])  # metres, camera frame
    save_trace_file(tmp_path / "trace.npz", synthetic_gripper_trace(start, camera, displacement))
    before = world.tool_in_camera()
    path = execute_on_emulator(world, tmp_path / "trace.npz", tmp_path, tmp_path / "execute.log")
    moved = world.tool_in_camera() - before
    np.testing.assert_allclose(moved, displacement, atol=0.005)  # within 5 mm
    assert len(path) > 10 and np.linalg.norm(path[-1] - path[0] - displacement) < 0.01  # recorded while moving
    assert "all safety checks passed" in (tmp_path / "execute.log").read_text()


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("task", "mode", "seed"), [("place_block", "gripper", 90_000), ("sweep", "gripper", 90_000),
                                                   ("ball_in_bin", "object", 90_000), ("sweep", "object", 90_000),
                                                   ("open_drawer", "gripper", 90_002), ("open_drawer", "object", 90_000)])
def test_the_scripted_demos_exact_trace_completes_the_task(task, mode, seed, tmp_path):
    """The execution pipeline's ceiling: trace -> plan -> pty servo bus -> physics completes the task
    (in object mode the ball covers a single grid point: the plan grasps it and carries it to the bin; the
    sweep's item slides on the table in the trace, so object mode pushes it there; in layout 90002 the
    drawer's pull begins and ends inside trace steps, so the gripper must close and open inside them, or
    the drawer stops 1.7 cm short; object mode pulls the drawer by its front, as its cabinet stands behind it)."""
    trial = SimTrialWorld(task, seed)
    try:
        assert trial.success() is False
        record = run_trial(trial, oracle_predictor(task), task, "oracle", seed, tmp_path / "trial", tmp_path,
                           tmp_path / "execute.log", mode=mode)
    finally:
        trial.close()
    assert record.error == "" and record.success, (tmp_path / "execute.log").read_text()[-2000:]
    assert record.goal_cm < 0.5 * record.start_goal_cm  # the graded measure agrees: the object went most of the way
    assert record.travel > 0.5 and record.off_line_cm < record.start_goal_cm / 2  # along the way to the goal


@pytest.mark.timeout(180)
def test_trials_in_two_worker_processes_match_and_keep_their_order(tmp_path):
    """Two trials of the same layout at once, each in its own process with its own pty emulator and physics:
    both complete the task and end the block at the same place (to float noise: the real-time bus does not
    make physics depend on timing), the records come back in (condition, seed) order, and the task's log holds each
    trial's command output in that order."""
    from tests.cli.test_demo_trials import Bars
    from tracegen_cli.console import configure_logging
    from tracegen_cli.demo_evaluate import evaluate_conditions
    from tracegen_cli.demo_trials import OraclePredictor

    configure_logging(verbose=False, quiet=False)  # as the CLI does: the workers log as this process does
    bars = Bars()
    checkpoints = {"first": OraclePredictor("place_block"), "second": OraclePredictor("place_block")}
    records = evaluate_conditions(checkpoints, "place_block", [90_000], tmp_path / "trials", tmp_path / "report", "cpu",
                                  bars, tmp_path / "evaluate.log", workers=2)
    assert [(r.condition, r.seed) for r in records] == [("first", 90_000), ("second", 90_000)]
    assert bars.events == [("begin", "evaluate place_block", 2), *[("advance", "evaluate place_block")] * 2,
                           ("end", "evaluate place_block")]
    assert all(r.success and r.error == "" for r in records), (tmp_path / "evaluate.log").read_text()[-2000:]
    assert records[0].goal_cm == pytest.approx(records[1].goal_cm, abs=1e-6)  # bit-for-bit apart from float noise
    assert records[0].goal_cm < 0.5 * records[0].start_goal_cm
    log = (tmp_path / "evaluate.log").read_text()
    first, second = log.index("# trial first layout 90000"), log.index("# trial second layout 90000")
    assert first < log.index("all safety checks passed", first) < second < log.index("all safety checks passed", second)
    assert first < log.index("Return_Delay_Time set to 0", first) < second < log.index("Return_Delay_Time", second)
    assert (tmp_path / "trials" / "second" / "seed90000" / "trial.log").is_file()
