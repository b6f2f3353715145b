"""The learned model as a gymnasium environment: ``ImaginedEnv`` passes gymnasium's own checker, and
``ImaginedVectorEnv`` follows gymnasium 1.x's vector API (same-step autoreset with final_obs/final_info,
strict actions, its own RNG, float64 rewards) and works under gymnasium's own vector wrappers."""

from __future__ import annotations

import dataclasses
import warnings

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from gymnasium.wrappers.vector import ClipReward, NormalizeReward, RecordEpisodeStatistics

import ssmlib.agents  # noqa: F401  (registers ssmlib/Imagined-v0)
from ssmlib.agents import ImaginedVectorEnv
from ssmlib.agents.imagined_env import ImaginedEnv
from ssmlib.config import get_profile
from ssmlib.data.store import open_dataset
from ssmlib.errors import SsmlibError
from ssmlib.models import build_model

torch.set_num_threads(1)


def quick_model(name="sSSM", seed=0):
    torch.manual_seed(seed)
    return build_model(dataclasses.replace(get_profile("quick").model, model=name)).eval()


@pytest.fixture(scope="module")
def ds(quick_dataset):
    return open_dataset(quick_dataset)


@pytest.mark.parametrize("name,decode", [("sSSM", True), ("dSSM-DET", False), ("RAR", True)])
def test_the_single_env_passes_gymnasiums_checker(ds, name, decode):
    env = gymnasium.make("ssmlib/Imagined-v0", model=quick_model(name), data=ds, max_steps=4, decode=decode)
    assert isinstance(env.unwrapped, ImaginedEnv)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a gymnasium warning is a failure too, except:
        if not decode:  # latent features are unbounded reals: their Box is (-inf, inf) on purpose
            warnings.filterwarnings("ignore", message=".*Box observation space (minimum|maximum) value is .*infinity")
        check_env(env.unwrapped, skip_render_check=not decode)
    env.close()


def test_the_single_env_runs_an_episode_and_asks_for_reset(ds):
    env = ImaginedEnv(quick_model(), ds, max_steps=3, render_mode="rgb_array")
    obs, info = env.reset(seed=5)
    assert obs.shape == (3, 80, 64, 3) and obs.dtype == np.uint8 and info == {}
    for t in range(3):
        new, r, term, trunc, _ = env.step(np.int64(t))
        assert np.array_equal(new[:2], obs[1:])  # the last frame of this episode, not a new context
        assert isinstance(r, float) and term is False and trunc is (t == 2)
        obs = new
    assert np.array_equal(env.render(), obs[-1])
    with pytest.raises(SsmlibError, match="call reset"):
        env.step(0)
    env.reset()
    with pytest.raises(SsmlibError, match="one action"):
        env.step(np.array([1, 2]))
    with pytest.raises(SsmlibError, match="integers"):
        env.step(1.0)


def test_vector_env_declares_what_it_returns(ds):
    for decode in (True, False):
        env = ImaginedVectorEnv(quick_model(), ds, num_envs=3, max_steps=2, decode=decode)
        obs, _ = env.reset(seed=0)
        assert obs in env.observation_space and obs.dtype == env.single_observation_space.dtype
        obs, r, term, trunc, _ = env.step(np.array([0, 1, 2]))
        assert obs in env.observation_space
        assert r.dtype == np.float64 and r.shape == (3,)  # gymnasium's reward dtype
        assert term.dtype == np.bool_ and trunc.dtype == np.bool_


def test_same_step_autoreset_gives_final_obs_and_final_info(ds):
    env = ImaginedVectorEnv(quick_model(), ds, num_envs=3, max_steps=2, seed=1)
    obs0, _ = env.reset(seed=0)
    obs1, _, _, trunc, info = env.step(np.array([0, 1, 2]))
    assert not trunc.any() and "final_obs" not in info
    obs2, _, term, trunc, info = env.step(np.array([3, 4, 5]))
    assert trunc.all() and not term.any()
    assert info["_final_obs"].tolist() == [True] * 3 and info["_final_info"].tolist() == [True] * 3
    assert info["final_obs"].dtype == object and info["final_info"] == {}
    for i in range(3):
        final = info["final_obs"][i]
        assert final.shape == (3, 80, 64, 3) and np.array_equal(final[:2], obs1[i, 1:])  # the episode's end
    # the returned observations start new episodes: 3 real frames of the test split
    real = {ds.episode(e)["frames"][t:t + 3].tobytes() for e in ds.split("test")
            for t in range(e.length - 2)}
    assert all(obs2[i].tobytes() in real for i in range(3))
    assert all(obs0[i].tobytes() in real for i in range(3))
    assert env.t.tolist() == [0, 0, 0]


@pytest.mark.parametrize("actions,message", [
    (np.array([0, 1]), r"shape \(3,\), got shape \(2,\)"),
    (np.array([0, 1, 2, 3]), r"shape \(3,\), got shape \(4,\)"),
    (np.array([[0], [1], [2]]), r"got shape \(3, 1\)"),
    (np.array([0.0, 1.0, 2.0]), "integers .* got dtype float64"),
    (np.array([True, False, True]), "integers .* got dtype bool"),
    (np.array([0, 1, 9]), r"lie in 0\.\.8"),
    (np.array([0, -1, 2]), r"lie in 0\.\.8"),
])
def test_vector_env_refuses_bad_actions_clearly(ds, actions, message):
    env = ImaginedVectorEnv(quick_model(), ds, num_envs=3)
    env.reset(seed=0)
    with pytest.raises(SsmlibError, match=message):
        env.step(actions)
    env.step([0, 1, 2])  # a plain list of ints is an action batch too


def test_vector_env_has_its_own_rng(ds):
    def run(env, steps=3):
        return [env.step(np.array([1, 2]))[0] for _ in range(steps)]

    torch.manual_seed(123)
    before = torch.get_rng_state()
    a, b = (ImaginedVectorEnv(quick_model("sSSM"), ds, num_envs=2, max_steps=10) for _ in range(2))
    torch.set_rng_state(before)
    a.reset(seed=7)
    b.reset(seed=7)
    assert torch.equal(torch.get_rng_state(), before)  # reset(seed=) leaves the caller's RNG alone
    alternating = [(a.step(np.array([1, 2]))[0], b.step(np.array([1, 2]))[0]) for _ in range(3)]
    assert torch.equal(torch.get_rng_state(), before)  # and so does step
    assert all(np.array_equal(x, y) for x, y in alternating)  # one seed, one episode, however interleaved
    c = ImaginedVectorEnv(quick_model("sSSM"), ds, num_envs=2, max_steps=10)
    c.reset(seed=7)
    assert all(np.array_equal(x, y) for (x, _), y in zip(alternating, run(c)))
    c.reset(seed=8)
    assert not all(np.array_equal(x, y) for (x, _), y in zip(alternating, run(c)))  # the seed matters


def test_vector_env_under_gymnasiums_wrappers(ds):
    env = ImaginedVectorEnv(quick_model("sSSM"), ds, num_envs=3, max_steps=4)
    stats = RecordEpisodeStatistics(env)
    obs, _ = stats.reset(seed=0)
    returns = np.zeros(3)
    episodes = []
    for t in range(10):
        obs, r, term, trunc, info = stats.step(np.array([t % 9, 1, 2]))
        returns += r
        if trunc.any():
            episodes.append(info["episode"])
            assert np.allclose(info["episode"]["r"][trunc], returns[trunc])
            returns[trunc] = 0.0
    assert len(episodes) == 2  # steps 4 and 8 end episodes of exactly max_steps
    assert all(e["l"].tolist() == [4, 4, 4] for e in episodes)
    assert stats.episode_count == 6 and list(stats.length_queue) == [4] * 6

    raw = ImaginedVectorEnv(quick_model("sSSM"), ds, num_envs=3, max_steps=4)
    clipped = ClipReward(ImaginedVectorEnv(quick_model("sSSM"), ds, num_envs=3, max_steps=4), -0.001, 0.001)
    raw.reset(seed=3)
    clipped.reset(seed=3)
    for _ in range(5):
        _, r_raw, *_ = raw.step(np.array([0, 4, 8]))
        _, r_clip, *_ = clipped.step(np.array([0, 4, 8]))
        assert np.array_equal(r_clip, np.clip(r_raw, -0.001, 0.001))

    norm = NormalizeReward(ImaginedVectorEnv(quick_model("sSSM"), ds, num_envs=3, max_steps=4), gamma=0.9)
    raw.reset(seed=4)
    norm.reset(seed=4)
    for t in range(6):
        _, r_raw, _, trunc, _ = raw.step(np.array([1, 1, 1]))
        _, r_norm, _, trunc_n, _ = norm.step(np.array([1, 1, 1]))
        assert np.array_equal(trunc, trunc_n) and np.isfinite(r_norm).all()
        assert np.allclose(r_norm, r_raw / np.sqrt(norm.return_rms.var + norm.epsilon))
        if trunc.any():  # same-step autoreset: the discounted return restarts at once
            assert (norm.accumulated_reward[trunc] == 0).all()


def test_make_vec_builds_the_vector_env_from_paths(quick_dataset, tmp_path):
    from ssmlib.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "m.safetensors", quick_model("dSSM-DET"))
    env = gymnasium.make_vec("ssmlib/Imagined-v0", num_envs=2, vectorization_mode="vector_entry_point",
                             model=str(tmp_path / "m.safetensors"), data=str(quick_dataset), max_steps=3)
    assert isinstance(env.unwrapped, ImaginedVectorEnv) and env.num_envs == 2
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2, 3, 80, 64, 3)
    env.close()
