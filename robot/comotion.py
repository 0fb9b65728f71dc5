"""When the gripper holds something, told from the trace: points off the gripper that move with it.

A trace step is coarse (a whole demonstration is 10 to 30 of them), so the step in which the gripper
reaches an object and starts carrying it usually holds both motions, and so does the one in which it
sets the object down and leaves. `split_grasp_moves` cuts such a step where the carrying starts or ends,
so the gripper closes where the object is and opens where the object stops, not a step early or late
(a drawer pulled only over the steps that are carrying from end to end stops short).
"""

from __future__ import annotations

import numpy as np

from robot.plan_config import PlanConfig


def comoving_points(points: np.ndarray, candidates: np.ndarray, tool_path: np.ndarray, config: PlanConfig) -> np.ndarray:
    """(K, S-1) bool: point k moves with the gripper over move s (trace step s -> s + 1).

    A held point keeps its offset from the tool while both move: over the move it moves more than
    `comotion_min_step`, its offset to the tool changes by less than `comotion_ratio` of that, and it
    lies within `hold_reach` of the tool.

    Args:
        points: (K, S, 3) base-frame trace (NaN where unknown).
        candidates: (K,) the points that may be held: off the gripper and its rim, off the arm.
        tool_path: (S, 3) tool positions.
    """
    motion = np.diff(points, axis=1)  # (K, S-1, 3)
    offset_change = motion - np.diff(tool_path, axis=0)[None]  # (K, S-1, 3)
    moved = np.linalg.norm(motion, axis=2)  # (K, S-1); NaN where unknown
    held = (moved > config.comotion_min_step) & (np.linalg.norm(offset_change, axis=2) < config.comotion_ratio * moved)
    held &= np.linalg.norm(points[:, :-1] - tool_path[None, :-1], axis=2) < config.hold_reach  # within the gripper's grasp
    return held & candidates[:, None]


def gripper_closed_by_comotion(held: np.ndarray, tool_path: np.ndarray, config: PlanConfig) -> np.ndarray:
    """(S,) bool: closed when at least `min_comoving` points move with the gripper (`comoving_points`).

    The state at waypoint i governs the move i -> i + 1, so the gripper closes before the object moves;
    while the tool rests nothing can be told, so the state is kept.
    """
    holding = held.sum(0) >= config.min_comoving  # (S-1,) per move
    tool_moves = np.linalg.norm(np.diff(tool_path, axis=0), axis=1) > config.comotion_min_step
    closed = np.zeros(len(tool_path), dtype=bool)
    for move in range(len(holding)):
        closed[move] = holding[move] if tool_moves[move] else (closed[move - 1] if move else False)
    closed[-1] = closed[-2] if len(closed) > 1 else False
    return closed


def split_grasp_moves(
    points: np.ndarray, held: np.ndarray, closed: np.ndarray, tool_path: np.ndarray, config: PlanConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Add a waypoint inside the move before each carry and the move after it, where the carrying starts or ends.

    Before a carry (moves a..b closed), the points held over move a also moved over move a - 1: the
    carrying began inside it, that far before its end. The tool goes first to waypoint a less that
    motion, closes there and carries on to waypoint a. After it, the points held over move b still
    moved over move b + 1: the tool carries them that far past waypoint b + 1, opens, then goes on. A
    motion under `comotion_min_step`, or one against the tool's, adds nothing, and a move between two
    carries is left whole.

    Args:
        points: (K, S, 3) base-frame trace. held: (K, S-1) `comoving_points`. closed: (S,) the states.
        tool_path: (S, 3) tool positions.
    Returns:
        ((N, 3) positions, (N,) closed states, (N,) the input waypoint each output one takes its
        orientation and trace step from), N >= S.
    """
    positions, states, source = list(tool_path), list(closed), list(range(len(tool_path)))
    inserts = []  # (before waypoint index, position, closed state, source waypoint)
    edges = np.diff(closed.astype(int))
    starts, ends = np.flatnonzero(edges == 1) + 1, np.flatnonzero(edges == -1)  # closed from `start` / up to `end`
    for first in starts:  # move first - 1 comes before the carry
        carried = _carried(points, held[:, first], first - 1, tool_path, config)
        if carried is not None and first - 2 not in ends:
            inserts.append((first, tool_path[first] - carried, True, first))
    for last in ends:  # move last + 1 comes after it
        carried = _carried(points, held[:, last], last + 1, tool_path, config) if last + 2 < len(tool_path) else None
        if carried is not None and last + 2 not in starts:
            states[last + 1] = True
            inserts.append((last + 2, tool_path[last + 1] + carried, False, last + 1))
    for before, position, state, origin in sorted(inserts, key=lambda item: item[0], reverse=True):
        positions.insert(before, position)
        states.insert(before, state)
        source.insert(before, origin)
    return np.array(positions), np.array(states, dtype=bool), np.array(source)


def _carried(points: np.ndarray, held: np.ndarray, move: int, tool_path: np.ndarray, config: PlanConfig) -> np.ndarray | None:
    """(3,) the mean motion over `move` of the points `held` (K,); None if it adds nothing."""
    motion = points[held, move + 1] - points[held, move]
    motion = motion[np.isfinite(motion).all(1)]
    tool = tool_path[move + 1] - tool_path[move]
    if not len(motion):
        return None
    carried = motion.mean(0)
    if np.linalg.norm(carried) <= config.comotion_min_step or carried @ tool <= 0:
        return None
    return carried
