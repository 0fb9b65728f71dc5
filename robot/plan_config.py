"""How a trace becomes motion: the planner's settings, and the gripper states they ask for."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from robot.errors import PlanningError
from robot.kinematics import IKConfig

MODES = ("gripper", "object")


@dataclass(frozen=True)
class PlanConfig:
    """How a trace becomes motion.

    Attributes:
        mode: "gripper" follows the trace points on the gripper; "object" grasps the moving object
            and carries it along its path, level (see `carry_orientation`), or pushes it from behind
            when the trace slides it along its surface (see `slide_tolerance`), or pulls it by its
            front when something stands behind it (see `pull_depth`).
        gripper: "auto" (co-motion), "open", "closed", or a schedule "close@12,open@30" (trace steps).
        speed: cruise speed of the tool along the path, m/s.
        acceleration: tool acceleration limit, m/s^2.
        joint_length: metres of path one radian of the fastest joint counts as (bounds joint speed
            at speed / joint_length rad/s where the tool barely moves).
        sample_rate_hz: rate of the planned joint table.
        max_segment: longest tool move between two IK waypoints, metres.
        gripper_radius_px: grid points this close to the projected tool are gripper points...
        gripper_depth_tolerance: ... this close in depth, metres...
        gripper_radius_m: ... and this close to the tool in 3D, metres (a grid point beside the gripper
            in the image but on the table behind it is not on the gripper).
        gripper_mask: (K,) bool, the gripper points given explicitly (overrides the three above).
        min_rotation_points: rotation is followed only when at least this many points agree...
        min_rotation_spread: ... spread at least this much (RMS off their main axis, metres).
        ransac_threshold: inlier distance of RANSAC-Kabsch, metres.
        ransac_iterations: RANSAC hypotheses per step.
        moving_threshold: a point moved when it left its start by this much, metres.
        comotion_min_step: a point moves over a step when it moves more than this, metres...
        comotion_ratio: ... and it moves with the gripper when its offset to the tool changes by less
            than this fraction of its motion.
        min_comoving: co-moving points needed to say the gripper holds something.
        hold_reach: a co-moving point farther than this from the controlled gripper point is not held
            by it (a predicted smear of the arm's surroundings moves with the gripper too), metres.
        arm_clearance: trace points starting this close to the arm's links (the polyline through its
            joints and tool at the start pose) are the arm itself: never an object, never "held", metres.
        object_reach: object mode only takes points that start this close to the base origin for the
            object (a predicted wobble of the far background is no object to grasp), metres...
        object_min_height: ... and at least this high above the base's plane (the table the arm stands
            on: a predicted smear of the table top is no object to pick up), metres.
        object_link: object mode's moving points are one object when their start positions chain together
            in steps no longer than this (a 4.2 cm block's predicted points lie up to 5.3 cm apart); the object
            is the group whose point moves furthest (a predicted nudge of a container 10 cm away is another,
            nearly still group), metres.
        object_agreement: points of the group whose displacements lie within this of one of theirs move
            alike (`robot.object_mode.moving_alike`), metres (a predicted drawer front's end points scatter
            by 2-3 cm along a 6-9 cm pull).
        support_radius: object mode keeps a carried object above the surface under it: the surface's
            height under a point is a low quantile (`support_quantile`) of the start heights of the
            still trace points within this distance in the base plane (the table, not what stands on
            it; the base plane where there are none), metres.
        support_quantile: see `support_radius`.
        approach_height: object mode comes down onto the grasp point from this far above it and goes
            back up as far after the release, metres.
        carry_orientation: object mode's tool orientation while it holds the object, turned with the arm's
            pan so a 5-DoF arm can keep it anywhere: "down" (top-down) or "start" (the start pose's, slant
            and all; from a slanted start IK folds the arm into its limits on lifted carries:
            `benchmarks/plan_reach.py`).
        slide_tolerance: object mode pushes the object instead of grasping it when its path stays within
            this height of its start (the trace slides it along its surface: a sweep; a pick-and-place lifts
            it, a move off a shelf takes it down), metres...
        push_offset: ... holding the tool point this far behind the object's back-most moving point seen
            in the push direction (the jaws' half thickness plus what the grid leaves unseen of the
            object), metres...
        push_height: ... this high above the surface under it, metres...
        push_gap: ... starting this much further back, so it comes down clear of the object, metres;
            the tool points straight down, turned so the jaws spread across the push...
        push_opening: ... open this far under `gripper="auto"` (two fingertips a few centimetres apart
            hold the object's face square; one point lets it turn and slide off), radians.
        pull_depth: a sliding object that still points stand behind, higher than it is held (a drawer in its
            cabinet), cannot be pushed: object mode grasps its front's middle, as far forward as the moving
            points this close to its front-most one along the slide (`robot.object_mode.leading_part`), and pulls, metres.
        jaw_axis: the axis the moving jaw opens along, in the tool frame (the SO-101's).
        gripper_open: gripper joint when open, radians.
        gripper_closed: gripper joint when closed, radians.
        gripper_dwell: pause while the gripper opens or closes, seconds.
        ik: inverse-kinematics settings.
        seed: RANSAC seed.
    """

    mode: str = "gripper"
    gripper: str = "auto"
    speed: float = 0.03
    acceleration: float = 0.1
    joint_length: float = 0.1
    sample_rate_hz: float = 100.0
    max_segment: float = 0.005
    gripper_radius_px: float = 40.0
    gripper_depth_tolerance: float = 0.08
    gripper_radius_m: float = 0.05
    gripper_mask: np.ndarray | None = None
    min_rotation_points: int = 6
    min_rotation_spread: float = 0.01
    ransac_threshold: float = 0.005
    ransac_iterations: int = 64
    moving_threshold: float = 0.01
    comotion_min_step: float = 0.001
    comotion_ratio: float = 0.3
    min_comoving: int = 1
    hold_reach: float = 0.08
    arm_clearance: float = 0.045
    object_reach: float = 0.5
    object_min_height: float = 0.01
    object_link: float = 0.07
    object_agreement: float = 0.03
    support_radius: float = 0.05
    support_quantile: float = 0.25
    approach_height: float = 0.06
    carry_orientation: str = "down"
    slide_tolerance: float = 0.01
    push_offset: float = 0.025
    push_height: float = 0.01
    push_gap: float = 0.03
    push_opening: float = 0.4
    pull_depth: float = 0.015
    jaw_axis: tuple[float, float, float] = (0.0, 0.0, 1.0)
    gripper_open: float = 1.0
    gripper_closed: float = 0.0
    gripper_dwell: float = 1.0
    ik: IKConfig = field(default_factory=lambda: IKConfig(limit_margin=0.02))
    seed: int = 0


def parse_gripper_schedule(text: str) -> list[tuple[int, bool]]:
    """`"close@12,open@30"` -> [(12, True), (30, False)] (step, closed), sorted by step."""
    events = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = re.fullmatch(r"(open|close|closed)@(\d+)", part)
        if not match:
            raise PlanningError(f"gripper schedule item {part!r} is not open@STEP or close@STEP; e.g. 'close@12,open@30'")
        events.append((int(match.group(2)), match.group(1) != "open"))
    if not events:
        raise PlanningError(f"gripper schedule {text!r} is empty; e.g. 'close@12,open@30'")
    return sorted(events)


def gripper_states(steps: int, config: PlanConfig, auto: np.ndarray | None) -> np.ndarray:
    """(S,) bool closed-state per trace step from the `gripper` setting."""
    if config.gripper in ("open", "closed"):
        return np.full(steps, config.gripper == "closed")
    if config.gripper == "auto":
        return np.zeros(steps, dtype=bool) if auto is None else auto
    events = parse_gripper_schedule(config.gripper)
    states = np.full(steps, not events[0][1])
    for step, closed in events:
        if step >= steps:
            raise PlanningError(f"gripper schedule step {step} is past the trace's last step {steps - 1}")
        states[step:] = closed
    return states


def gripper_joint(closed: np.ndarray, config: PlanConfig) -> np.ndarray:
    """(N,) gripper joint, radians, for the closed states (N,) bool."""
    return np.where(closed, config.gripper_closed, config.gripper_open).astype(np.float64)
