"""Shared fixtures: a real, tiny MsPacman dataset collected once per test session (no synthetic frames)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("SSMLIB_PROFILE", "quick")


@pytest.fixture(scope="session")
def quick_dataset(tmp_path_factory):
    """Path of a real MsPacman dataset at 80x64: 2 shards x 4 envs x 300 steps, ~2.4k frames, with test episodes."""
    from ssmlib.config import get_profile
    from ssmlib.data.collect import collect, config_with

    cfg = config_with(get_profile("quick").data, steps_per_shard=300, test_fraction=0.3, seed=3)
    out = tmp_path_factory.mktemp("data") / "MsPacman"
    collect(cfg, out, total_steps=2 * cfg.num_envs * cfg.steps_per_shard, progress=False)
    return out


@pytest.fixture
def one_thread():
    """torch on one thread for the test, restored after (the explorer and play tests)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
