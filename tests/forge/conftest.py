"""Shared synthetic scenes for forge tests (rendered once per session; small frames keep it fast)."""

import pytest

from tests.forge.synthetic import SceneSpec, render


@pytest.fixture(scope="session")
def static_scene():
    return render(SceneSpec(width=320, height=240, focal=260.0, num_frames=32, seed=1))


@pytest.fixture(scope="session")
def moving_scene():
    return render(SceneSpec(width=320, height=240, focal=260.0, num_frames=32, moving_camera=True, seed=2))
