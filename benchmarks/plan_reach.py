"""Object mode's reach: how many tabletop carries and pushes the SO-101 can plan, by start pose and orientation.

Prints one JSON object per line:
    python benchmarks/plan_reach.py [--cases 30] [--seed 0]

Each case is a synthetic trace (`robot.execute.synthetic_tabletop_trace`) of a 3 cm object moved between two
random points of the arm's front (0.15-0.27 m from the base, within 0.9 rad of straight ahead): lifted 5 cm
on the way (a carry) or slid over the table (a push). It is planned from the execute command's default ready
pose and from the simulator's ready pose, carries both top-down and with the start pose's slant
(`PlanConfig.carry_orientation`), and counted as reached when IK meets every waypoint within the safety
check's 5 mm, and as safe when the whole `check_plan` passes (floor 3 mm, as the simulated trials set it).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time

import numpy as np

from robot.camera_to_base import CameraToBase
from robot.errors import RobotError
from robot.execute import READY_POSE, synthetic_tabletop_trace
from robot.kinematics import make_transform
from robot.plan_config import PlanConfig
from robot.planning import plan_trace
from robot.safety import SafetyLimits, check_plan

SIM_HOME = np.array([0.0, -1.2, 1.2, 0.9, 0.0, 1.0])  # robot.sim's SO-101 ready pose (`EmbodimentSpec.home`), gripper open
FLOOR = 0.003


def camera() -> CameraToBase:
    """A camera 75 cm in front of the arm and 40 cm up, looking back at it."""
    forward = np.array([0.05, 0.95, -0.45]) / np.linalg.norm([0.05, 0.95, -0.45])
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    return CameraToBase(make_transform(np.stack([right, np.cross(forward, right), forward], 1), np.array([0.0, -0.75, 0.40])))


def front_point(rng: np.random.Generator) -> np.ndarray:
    """A base-plane point of the arm's front (it reaches along -y)."""
    radius, angle = rng.uniform(0.15, 0.27), rng.uniform(-0.9, 0.9)
    return np.array([radius * math.sin(angle), -radius * math.cos(angle)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    cases = [(front_point(rng), front_point(rng)) for _ in range(args.cases)]
    view = camera()
    limits = SafetyLimits(workspace_min=(*SafetyLimits().workspace_min[:2], FLOOR))
    s = np.linspace(0.0, 1.0, 33)[:, None]
    for start_name, start in (("execute ready pose", READY_POSE), ("sim ready pose", SIM_HOME)):
        for kind, lift, orientation in (("carry", 0.05, "down"), ("carry", 0.05, "start"), ("push", 0.0, "down")):
            reached = safe = 0
            began = time.perf_counter()
            for grasp, place in cases:
                path = s * np.r_[place - grasp, 0.0] + np.sin(np.pi * s) * [0.0, 0.0, lift]
                trace, _ = synthetic_tabletop_trace(path, view, centre=tuple(grasp))
                try:
                    plan = plan_trace(trace, view, start, PlanConfig(mode="object", carry_orientation=orientation))
                except RobotError:
                    continue
                reached += bool(plan.waypoints.position_error.max() <= limits.max_ik_residual)
                try:
                    check_plan(plan, limits)
                except RobotError:
                    continue
                safe += 1
            print(json.dumps({"benchmark": "plan_reach", "start": start_name, "kind": kind, "carry_orientation": orientation,
                              "cases": len(cases), "reached": reached, "safe": safe,
                              "ms_per_plan": round(1000 * (time.perf_counter() - began) / len(cases), 1),
                              "machine": platform.machine(), "python": platform.python_version()}), flush=True)


if __name__ == "__main__":
    main()
