"""Safety checks: every violation is found and named; clamp_step is exact."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from robot.errors import SafetyError
from robot.execute import READY_POSE, synthetic_gripper_trace
from robot.planning import plan_trace
from robot.safety import SafetyLimits, check_plan, clamp_step
from tests.robot.test_planning import CAMERA, DISPLACEMENT


@pytest.fixture(scope="module")
def plan():
    return plan_trace(synthetic_gripper_trace(READY_POSE, CAMERA, DISPLACEMENT), CAMERA, READY_POSE)


def test_clamp_step_by_hand():
    goal = np.array([1.0, -1.0, 0.05, 0.0])
    present = np.array([0.0, 0.0, 0.0, 0.2])
    np.testing.assert_allclose(clamp_step(goal, present, 0.1), [0.1, -0.1, 0.05, 0.1])
    np.testing.assert_allclose(clamp_step(goal, present, np.array([2.0, 0.5, 0.0, 0.1])), [1.0, -0.5, 0.0, 0.1])
    with pytest.raises(SafetyError, match="non-negative"):
        clamp_step(goal, present, -0.1)


@given(st.lists(st.floats(-10, 10), min_size=6, max_size=6), st.lists(st.floats(-10, 10), min_size=6, max_size=6),
       st.floats(0, 1))
def test_clamp_step_never_exceeds_and_is_identity_when_close(goal, present, delta):
    goal, present = np.array(goal), np.array(present)
    clamped = clamp_step(goal, present, delta)
    assert (np.abs(clamped - present) <= delta + 1e-12).all()
    close = np.abs(goal - present) < delta - 1e-9  # clearly inside (present - delta rounds at the edge)
    np.testing.assert_array_equal(clamped[close], goal[close])


def test_a_good_plan_passes_every_check(plan):
    checks = check_plan(plan)
    assert len(checks) == 5 and checks[0].startswith("IK residual")


def with_joints(plan, joints):
    return dataclasses.replace(plan, joints=joints)


def test_joint_limit_violation_named(plan):
    joints = plan.joints.copy()
    joints[50, 2] = 1.68  # elbow_flex inside its 1.69 limit but not inside the 0.02 margin
    with pytest.raises(SafetyError, match=r"row 50 \(t=0.50 s\): elbow_flex = 1.680 rad is outside"):
        check_plan(with_joints(plan, joints), SafetyLimits(max_joint_step=10, max_joint_speed=1e3, max_tool_speed=1e3))


def test_workspace_violation_named(plan):
    limits = SafetyLimits(workspace_max=(0.45, 0.45, 0.15))
    with pytest.raises(SafetyError, match="leaves the workspace box on z"):
        check_plan(plan, limits)


def test_jump_and_speed_violations_named(plan):
    joints = plan.joints.copy()
    joints[100:, 0] += 0.2
    with pytest.raises(SafetyError, match=r"row 100 .*shoulder_pan jumps 0\.(19|20)\d rad in one row > 0.05"):
        check_plan(with_joints(plan, joints))
    with pytest.raises(SafetyError, match="moves at .* rad/s > 0.05 rad/s"):
        check_plan(plan, SafetyLimits(max_joint_speed=0.05))
    with pytest.raises(SafetyError, match="the tool moves at .* m/s > 0.01 m/s"):
        check_plan(plan, SafetyLimits(max_tool_speed=0.01))


def test_ik_residual_violation_named(plan):
    errors = plan.waypoints.position_error.copy()
    errors[7] = 0.02
    bad = dataclasses.replace(plan, waypoints=dataclasses.replace(plan.waypoints, position_error=errors))
    with pytest.raises(SafetyError, match="waypoint 7 .* unreachable: IK misses it by 20.0 mm"):
        check_plan(bad)


def test_unreachable_trace_is_rejected():
    far = synthetic_gripper_trace(READY_POSE, CAMERA, np.array([0.0, 0.0, -0.5]))  # half a metre toward the camera
    with pytest.raises(SafetyError, match="unreachable"):
        check_plan(plan_trace(far, CAMERA, READY_POSE))
