"""`forge` reads the simulator's demos: sidecars parsed as written, sensor depth used, and the forged
frame-0 grid lands on the ground-truth surface points."""

import json

import numpy as np
import pytest

from robot.sim.episode import EpisodeConfig, generate_episode
from robot.sim.writer import write_episode

forge_pipeline = pytest.importorskip("forge.pipeline")


@pytest.mark.slow
def test_forge_accepts_a_sim_demo_and_its_first_grid_matches_the_ground_truth(tmp_path):
    from forge.config import ForgeConfig
    from forge.inputs import discover, with_sidecar

    config = EpisodeConfig(task="ball_in_bin", embodiment="human", camera="static", seed=2, width=160, height=120)
    paths = write_episode(generate_episode(config), tmp_path)
    meta = json.loads(paths["json"].read_text())
    sources = [with_sidecar(s) for s in discover(tmp_path)]
    assert [s.path for s in sources] == [paths["video"]]
    sidecar = sources[0].sidecar
    assert sidecar.instructions == meta["instructions"] and sidecar.embodiment == "human"
    assert sidecar.intrinsics[0, 0] == pytest.approx(meta["intrinsics"]["fx"]) and sidecar.depth_path == paths["depth"]
    forged = forge_pipeline.forge_video(sources[0], ForgeConfig())
    assert forged.forge_attrs.get("depth_source", "sensor") == "sensor"
    first = int(np.flatnonzero(forged.samples.query_frame == 0)[0])
    start = forged.samples.raw_traces[first][:, 0]  # (K, 3) u, v, z at the query frame
    truth = np.load(paths["gt"])["camera_uvz"][0]  # (K, 3)
    assert start[:, :2] == pytest.approx(truth[:, :2], abs=0.51)  # forge may snap the grid to pixel centres
    dz = np.abs(start[:, 2] - truth[:, 2])
    assert np.nanmedian(dz) < 0.005  # sensor depth at the grid: the gt surface, up to sampling at edges
