"""The four tabletop tasks: object layouts, instruction phrasings, scripted plans, success checks.

All positions are world metres; the table top is z = 0 and the SO-101's shoulder-pan axis stands at
`PAN_AXIS`, reaching towards +x. Layouts are sampled in polar coordinates around that axis so every
object lies where the SO-101 can reach it with the gripper pointing down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from robot.sim.mjcf import rgba, vec, yaw_quat

PAN_AXIS = np.array([0.0231, 0.0208])
OBJECT_COLLISION = 'contype="1" conaffinity="3"'
VISUAL_ONLY = 'contype="0" conaffinity="0"'
PALETTE = ((0.85, 0.15, 0.15), (0.15, 0.45, 0.85), (0.2, 0.7, 0.3), (0.9, 0.75, 0.1), (0.6, 0.25, 0.75),
           (0.95, 0.5, 0.1), (0.1, 0.7, 0.7))

INSTRUCTIONS: dict[str, tuple[str, ...]] = {
    "place_block": ("place the block in the square", "put the cube on the marked region",
                    "move the block onto the target area", "pick up the block and set it down in the square"),
    "ball_in_bin": ("put the ball in the bin", "drop the ball into the box", "place the ball inside the container",
                    "pick up the ball and put it in the bin"),
    "open_drawer": ("open the drawer", "pull the drawer open", "slide the drawer out"),
    "close_drawer": ("close the drawer", "push the drawer shut", "slide the drawer back in"),
    "sweep": ("sweep the item to the target", "push the sponge onto the circle", "slide the item to the marked spot",
              "sweep the object over to the target"),
}
TASKS = tuple(INSTRUCTIONS)
DRAWER_OPEN_M, DRAWER_CLOSED_M = 0.06, 0.015  # the drawer counts as open / closed beyond / within this, metres


@dataclass(frozen=True)
class Waypoint:
    """One straight segment of a scripted plan, ending at `position` (tool point, world metres).

    Attributes:
        position: (3,) end of the segment.
        gripper: 1.0 open ... 0.0 closed, reached over the segment.
        speed: m/s along the segment (the duration has a floor of 0.25 s).
        action: "grasp" or "release" after the segment ends; "push" (closed-loop sweep towards the target);
            "lift" (`position` is an offset from where the previous segment ended); else "".
        pause: seconds to hold after the segment.
    """

    position: np.ndarray
    gripper: float
    speed: float
    action: str = ""
    pause: float = 0.0


@dataclass
class Layout:
    """Where a task's objects start, plus anything the plan and the success check need."""

    task: str
    objects: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (x, y, yaw)
    params: dict[str, float] = field(default_factory=dict)
    colors: dict[str, tuple[float, float, float]] = field(default_factory=dict)


def _polar(rng: np.random.Generator, radius: tuple[float, float], angle: tuple[float, float]) -> np.ndarray:
    r, theta = rng.uniform(*radius), rng.uniform(*angle)
    return PAN_AXIS + r * np.array([math.cos(theta), math.sin(theta)])


def _two_apart(rng: np.random.Generator, min_gap: float, radius_a, radius_b) -> tuple[np.ndarray, np.ndarray]:
    for _ in range(200):
        a, b = _polar(rng, radius_a, (-0.75, 0.75)), _polar(rng, radius_b, (-0.75, 0.75))
        if np.linalg.norm(a - b) >= min_gap:
            return a, b
    from robot.sim.errors import SimError

    raise SimError("no layout satisfies the spacing; widen the sampling ranges")  # unreachable as configured


def sample_layout(task: str, rng: np.random.Generator) -> Layout:
    """A random object layout for `task` (see `TASKS`)."""
    colors = [PALETTE[i] for i in rng.permutation(len(PALETTE))[:2]]
    layout = Layout(task=task, colors={"a": colors[0], "b": colors[1]})
    if task == "place_block":
        block, region = _two_apart(rng, 0.12, (0.15, 0.24), (0.15, 0.24))
        layout.objects = {"block": np.r_[block, rng.uniform(-0.6, 0.6)], "region": np.r_[region, 0.0]}
        layout.params = {"block_half": 0.021, "region_half": 0.045}
    elif task == "ball_in_bin":
        ball, bin_ = _two_apart(rng, 0.14, (0.15, 0.24), (0.17, 0.23))
        layout.objects = {"ball": np.r_[ball, 0.0], "bin": np.r_[bin_, rng.uniform(-0.4, 0.4)]}
        layout.params = {"ball_radius": 0.021, "bin_half": 0.052, "bin_height": 0.035}
    elif task in ("open_drawer", "close_drawer"):
        # The drawer slides out sideways across the arm's reach, towards +y (along the pan's turn, give or take
        # 0.15 rad): its front faces the calibrated camera (which looks from +x, +y), so a trace filmed by it
        # shows the drawer move. A drawer pulled straight at the arm would show that camera only its back.
        bearing, handle_r = rng.uniform(-0.55, 0.05), rng.uniform(0.19, 0.225)
        handle = PAN_AXIS + handle_r * np.array([math.cos(bearing), math.sin(bearing)])
        pull = bearing + rng.uniform(math.pi / 2 - 0.15, math.pi / 2 + 0.15)  # 0 would pull straight outwards
        axis = np.array([math.cos(pull), math.sin(pull)])  # the drawer slides out along this
        start = rng.uniform(0.0, 0.01) if task == "open_drawer" else rng.uniform(0.08, 0.09)
        cabinet = handle - axis * (-handle_offset()[0] + start)
        layout.objects = {"cabinet": np.r_[cabinet, math.atan2(-axis[1], -axis[0])]}
        layout.params = {"start": start, "travel": 0.095}
    elif task == "sweep":
        for _ in range(200):
            item = _polar(rng, (0.16, 0.23), (-0.6, 0.6))
            direction_angle = rng.uniform(0, 2 * math.pi)
            distance = rng.uniform(0.09, 0.13)
            target = item + distance * np.array([math.cos(direction_angle), math.sin(direction_angle)])
            radius = np.linalg.norm(target - PAN_AXIS)
            bearing = math.atan2(*(target - PAN_AXIS)[::-1])
            pusher = item - 0.055 * (target - item) / distance
            pusher_r = np.linalg.norm(pusher - PAN_AXIS)
            if 0.15 <= radius <= 0.25 and abs(bearing) < 0.8 and 0.13 <= pusher_r <= 0.26:
                break
        layout.objects = {"item": np.r_[item, math.atan2(*(target - item)[::-1])], "target": np.r_[target, 0.0]}
        layout.params = {"item_half": 0.022, "item_height": 0.014, "target_radius": 0.045}
    else:
        from robot.sim.errors import SimConfigError

        raise SimConfigError(f"unknown task {task!r}; pick one of {', '.join(TASKS)}")
    return layout


def objects_xml(layout: Layout) -> str:
    """MJCF bodies (under `<worldbody>`) for the layout's objects."""
    o, p, c = layout.objects, layout.params, layout.colors
    if layout.task == "place_block":
        bx, by, byaw = o["block"]
        h, rh = p["block_half"], p["region_half"]
        return (f'<body name="region" pos="{vec([o["region"][0], o["region"][1], 0.0006])}">'
                f'<geom type="box" size="{rh} {rh} 0.0005" rgba="{rgba(c["b"])}" {VISUAL_ONLY}/></body>'
                f'<body name="block" pos="{vec([bx, by, h])}" quat="{vec(yaw_quat(byaw))}"><freejoint name="block"/>'
                f'<geom type="box" size="{h} {h} {h}" mass="0.05" rgba="{rgba(c["a"])}" {OBJECT_COLLISION}/></body>')
    if layout.task == "ball_in_bin":
        r, bh, bz = p["ball_radius"], p["bin_half"], p["bin_height"]
        walls = "".join(
            f'<geom type="box" pos="{vec(pos)}" size="{vec(size)}" rgba="{rgba(c["b"])}" {OBJECT_COLLISION}/>'
            for pos, size in (((bh, 0, bz / 2), (0.004, bh + 0.004, bz / 2)), ((-bh, 0, bz / 2), (0.004, bh + 0.004, bz / 2)),
                              ((0, bh, bz / 2), (bh, 0.004, bz / 2)), ((0, -bh, bz / 2), (bh, 0.004, bz / 2)),
                              ((0, 0, 0.002), (bh, bh, 0.002))))
        return (f'<body name="bin" pos="{vec([o["bin"][0], o["bin"][1], 0])}" quat="{vec(yaw_quat(o["bin"][2]))}">{walls}</body>'
                f'<body name="ball" pos="{vec([o["ball"][0], o["ball"][1], r])}"><freejoint name="ball"/>'
                f'<geom type="sphere" size="{r}" mass="0.03" rgba="{rgba(c["a"])}" {OBJECT_COLLISION}/></body>')
    if layout.task in ("open_drawer", "close_drawer"):
        return _drawer_xml(layout)
    ih, iz = p["item_half"], p["item_height"]
    target = o["target"]
    return (f'<body name="target" pos="{vec([target[0], target[1], 0.0006])}">'
            f'<geom type="cylinder" size="{p["target_radius"]} 0.0005" rgba="{rgba(c["b"])}" {VISUAL_ONLY}/></body>'
            f'<body name="item" pos="{vec([o["item"][0], o["item"][1], iz / 2])}" quat="{vec(yaw_quat(o["item"][2]))}">'
            f'<freejoint name="item"/><geom type="box" size="{ih} {ih * 1.3} {iz / 2}" mass="0.04" friction="0.4 0.01 0.001" '
            f'rgba="{rgba(c["a"])}" {OBJECT_COLLISION}/></body>')


def _drawer_xml(layout: Layout) -> str:
    """A cabinet (static) whose drawer slides along the cabinet's local -x (sideways across the arm's reach: `sample_layout`)."""
    cx, cy, yaw = layout.objects["cabinet"]
    body, front = rgba(np.asarray(layout.colors["a"]) * 0.6 + 0.3), rgba(layout.colors["b"])
    wall = f'rgba="{body}" {VISUAL_ONLY}'
    cabinet = "".join(f'<geom type="box" pos="{vec(pos)}" size="{vec(size)}" {wall}/>' for pos, size in (
        ((0, 0, 0.071), (0.075, 0.07, 0.004)), ((0, 0.067, 0.035), (0.075, 0.004, 0.035)),
        ((0, -0.067, 0.035), (0.075, 0.004, 0.035)), ((0.072, 0, 0.035), (0.004, 0.07, 0.035))))
    drawer = (f'<geom type="box" pos="-0.073 0 0.034" size="0.004 0.065 0.032" rgba="{front}" {VISUAL_ONLY}/>'
              f'<geom type="box" pos="0 0 0.004" size="0.07 0.06 0.004" rgba="{body}" {VISUAL_ONLY}/>'
              f'<geom type="box" pos="0 0.058 0.025" size="0.07 0.003 0.02" rgba="{body}" {VISUAL_ONLY}/>'
              f'<geom type="box" pos="0 -0.058 0.025" size="0.07 0.003 0.02" rgba="{body}" {VISUAL_ONLY}/>'
              f'<geom type="capsule" fromto="-0.092 -0.03 0.045 -0.092 0.03 0.045" size="0.006" rgba="0.2 0.2 0.2 1" {VISUAL_ONLY}/>'
              f'<geom type="box" pos="-0.084 0.027 0.045" size="0.008 0.004 0.004" rgba="0.2 0.2 0.2 1" {VISUAL_ONLY}/>'
              f'<geom type="box" pos="-0.084 -0.027 0.045" size="0.008 0.004 0.004" rgba="0.2 0.2 0.2 1" {VISUAL_ONLY}/>')
    return (f'<body name="cabinet" pos="{vec([cx, cy, 0])}" quat="{vec(yaw_quat(yaw))}">{cabinet}'
            f'<body name="drawer" pos="0 0 0"><joint name="drawer" type="slide" axis="-1 0 0" range="0 {layout.params["travel"]}" '
            f'damping="2" ref="0"/><inertial pos="0 0 0.03" mass="0.2" diaginertia="1e-3 1e-3 1e-3"/>{drawer}</body>'
            f'</body>')


def handle_offset() -> np.ndarray:
    """The handle bar's centre in the drawer's frame (metres)."""
    return np.array([-0.092, 0.0, 0.045])


def goal_offset(task: str, model, data) -> np.ndarray:
    """What still separates the task's object from its goal, metres: the horizontal vector (2,) from the
    object's centre to the goal's centre (place_block / ball_in_bin / sweep), or the drawer's slide still
    to go (1,), negative once past the mark (open_drawer / close_drawer). Its change over a trial is how
    the object moved, in the goal's terms (see `tracegen_cli.demo_trials.travel_along`)."""
    if task in ("open_drawer", "close_drawer"):
        opening = float(data.qpos[model.joint("drawer").qposadr[0]])
        return np.array([DRAWER_OPEN_M - opening if task == "open_drawer" else opening - DRAWER_CLOSED_M])
    item, goal = {"place_block": ("block", "region"), "ball_in_bin": ("ball", "bin")}.get(task, ("item", "target"))
    return np.array(data.body(goal).xpos[:2] - data.body(item).xpos[:2], dtype=np.float64)


def goal_distance(task: str, model, data, params: dict[str, float]) -> float:
    """How far the current object state is from the task's goal, metres (0: exactly there).

    A graded companion to `task_success`: a failed trial that got the object close differs from one
    that did not move it, and the distance at the start is what staying still would leave.

    * place_block / ball_in_bin / sweep: horizontal distance from the object's centre to the centre of
      the square / bin / target circle (success needs it within about 4.5 / 5 / 4.5 cm).
    * open_drawer / close_drawer: how much further the drawer must slide (0 once the success check holds).
    """
    offset = goal_offset(task, model, data)
    return max(0.0, float(offset[0])) if task in ("open_drawer", "close_drawer") else float(np.linalg.norm(offset))


def task_success(task: str, model, data, params: dict[str, float]) -> bool:
    """Whether the final object state completes `task` (the object must also be at rest on something).

    * place_block: block centre inside the region's square, block resting on the table.
    * ball_in_bin: ball centre inside the bin's walls and below their top.
    * open_drawer / close_drawer: drawer out by >= 6 cm / in to <= 1.5 cm.
    * sweep: item centre within the target circle.
    """
    if task == "place_block":
        offset = data.body("region").xmat.reshape(3, 3).T @ (data.body("block").xpos - data.body("region").xpos)
        return bool(np.all(np.abs(offset[:2]) <= params["region_half"]) and data.body("block").xpos[2] < params["block_half"] + 0.004)
    if task == "ball_in_bin":
        offset = data.body("bin").xmat.reshape(3, 3).T @ (data.body("ball").xpos - data.body("bin").xpos)
        return bool(np.all(np.abs(offset[:2]) <= params["bin_half"]) and offset[2] < params["bin_height"])
    if task in ("open_drawer", "close_drawer"):
        return goal_distance(task, model, data, params) == 0.0
    return goal_distance(task, model, data, params) <= params["target_radius"]
