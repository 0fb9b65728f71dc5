"""benchmarks/fit_check.py: its travel figure (analytic cases) and its choice of split."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from fit_check import end_travel, split_keys  # noqa: E402


def test_travel_along_the_true_way_at_its_end_and_at_the_horizon():
    target = np.full((3, 5, 3), np.nan)
    target[:, :3] = [[10.0, 10.0, 1.0]]
    target[0, 1:3, 0] = [20.0, 30.0]  # point 0 is carried 20 px right by step 2, where the true trace ends
    target[2, 2] = np.nan  # point 2 is unknown at the end: not taken for carried
    valid = np.array([True, True, True, False, False])
    pred = np.repeat(target[:, :1], 5, axis=1).copy()
    pred[0, :, 0] = [10.0, 18.0, 25.0, 22.0, 20.0]  # 3/4 of the way at the true end, drifting back to 1/2
    pred[0, :, 1] += [0.0, 0.0, 4.0, 4.0, 4.0]  # off the way: does not count along it
    assert end_travel(pred, target, valid, side=100.0) == (0.75, 0.5)


def test_no_point_ending_far_gives_none():
    target = np.zeros((2, 3, 3))
    target[0, 2, 0] = 7.0  # below 8 % of a 100 px side
    assert end_travel(target, target, np.ones(3, dtype=bool), side=100.0) is None


def test_split_keys_keeps_the_checkpoints_training_or_validation_videos():
    keys = ["a1", "b2", "c3", "d4"]
    assert split_keys(keys, ["b2", "zz"], "val") == ["b2"]
    assert split_keys(keys, ["b2", "zz"], "train") == ["a1", "c3", "d4"]
    assert split_keys(keys, [], "all") == keys
    with pytest.raises(SystemExit, match="no validation videos"):
        split_keys(keys, [], "train")
    with pytest.raises(SystemExit, match="no val video"):
        split_keys(keys, ["zz"], "val")
