"""The agent chapters' helpers: ssmlib.viz.agent_view (playing, pictures, players, the study's files) and
ssmlib.agents.quick (the quick environment model for live I2A cells)."""

from __future__ import annotations

import dataclasses

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

from ssmlib.agents import I2AAgent, ModelFreeAgent, make_agent_env  # noqa: E402
from ssmlib.config import get_profile  # noqa: E402
from ssmlib.models import build_model  # noqa: E402
from ssmlib.studies.i2a import load_study, runs_of  # noqa: E402
from ssmlib.viz import agent_view as av  # noqa: E402

torch.set_num_threads(1)
A, H, W = 9, 80, 64
NAMES = ["NOOP", "UP", "RIGHT", "LEFT", "DOWN", "UPRIGHT", "UPLEFT", "DOWNRIGHT", "DOWNLEFT"]


def quick_i2a(depth=2, mode="distill"):
    torch.manual_seed(0)
    model = build_model(dataclasses.replace(get_profile("quick").model, model="dSSM-DET")).eval()
    return I2AAgent(model, A, H, W, rollout_policy=mode, depth=depth, hidden=32, lstm=16)


def fake_clip(T=3, D=2, imagined=True):
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(A), T)
    return av.AgentClip(
        frames=rng.integers(0, 256, (T, H, W, 3), dtype=np.uint8), actions=rng.integers(0, A, T),
        rewards=np.array([0.0, 10.0, 0.0][:T]), probs=probs, values=rng.normal(size=T), scores=np.arange(T) * 10.0,
        dones=np.zeros(T, bool), action_names=NAMES, start=5,
        imagined=rng.integers(0, 256, (T, A, D, H, W, 3), dtype=np.uint8) if imagined else None,
        rollout_actions=rng.integers(0, A, (T, A, D)) if imagined else None,
        imagined_rewards=np.zeros((T, A, D)) if imagined else None)


def test_play_agent_records_the_imagination_the_agent_used():
    agent = quick_i2a(depth=2)
    agent.train()
    env = make_agent_env("MsPacman", 1, H, W, seed=0, num_threads=1)
    clip = av.play_agent(agent, env, 3, warmup=2, seed=0, action_names=NAMES)
    env.close()
    assert agent.training and not agent.env_model.training  # its mode is given back; the model stays frozen
    assert len(clip) == 3 and clip.start == 2 and clip.depth == 2
    assert clip.frames.shape == (3, H, W, 3) and clip.imagined.shape == (3, A, 2, H, W, 3)
    assert clip.imagined.dtype == np.uint8
    assert np.array_equal(clip.rollout_actions[:, :, 0], np.tile(np.arange(A), (3, 1)))  # first action forced
    assert np.allclose(clip.probs.sum(1), 1) and clip.rollout_probs.shape == (3, A)
    assert "imagine" not in vars(agent)  # the spy is removed again
    # the recorded rollouts are the ones of the forward pass that chose the action: replaying the same
    # seed without recording gives the same actions
    env = make_agent_env("MsPacman", 1, H, W, seed=0, num_threads=1)
    again = av.play_agent(agent, env, 3, warmup=2, seed=0, action_names=NAMES, decode=False)
    env.close()
    assert np.array_equal(again.actions, clip.actions) and again.imagined is None
    assert np.array_equal(again.rollout_actions, clip.rollout_actions)


def test_play_agent_with_a_model_free_agent_and_one_env_only():
    torch.manual_seed(0)
    agent = ModelFreeAgent(A, H, W, 1, 32)
    env = make_agent_env("MsPacman", 1, H, W, seed=0, num_threads=1)
    clip = av.play_agent(agent, env, 4, seed=0, action_names=NAMES)
    env.close()
    assert clip.imagined is None and clip.rollout_actions is None and clip.depth == 0
    assert av.compose_step(clip, 0).shape[2] == 3
    env2 = make_agent_env("MsPacman", 2, H, W, seed=0, num_threads=1)
    with pytest.raises(ValueError, match="num_envs=1"):
        av.play_agent(agent, env2, 1)
    env2.close()


def test_compose_step_frames_and_differences():
    clip = fake_clip()
    img = av.compose_step(clip, 1, pool=2)
    assert img.dtype == np.uint8 and img.ndim == 3
    # wide enough for the real frame plus 9 columns of pooled imagined frames
    assert img.shape[1] >= W + A * (W // 2)
    diff = av.compose_step(clip, 1, pool=2, view="diff")
    assert diff.shape == img.shape
    full = av.compose_step(clip, 1, pool=1)
    assert full.shape[1] > img.shape[1]
    with pytest.raises(ValueError, match="view"):
        av.compose_step(clip, 0, view="pixels")
    # identical rollouts have no difference at all: the diff cells are black
    same = fake_clip()
    same.imagined[:] = same.imagined[:, :1]
    d = av.compose_step(same, 0, pool=1, view="diff")
    f = av.compose_step(same, 0, pool=1, view="frames")
    assert d.mean() < f.mean()  # black cells where the frames view has the (random) frames


def test_downsample_mean_and_max():
    x = np.zeros((4, 4, 3), np.uint8)
    x[0, 0] = 200
    assert av._downsample(x, 2)[0, 0, 0] == 50
    assert av._downsample(x, 2, "max")[0, 0, 0] == 200
    assert av._downsample(x, 1) is x


def test_players_work_without_a_kernel():
    clip = fake_clip(T=3)
    html = av.clip_jshtml(clip, fps=2)
    assert html.count("data:image/png;base64,") == 3
    assert "maxcdn" not in html and "font-awesome" not in html
    player = av.imagination_player(clip, fps=2)
    bundle = player._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle and "text/html" in bundle
    stack = player.children[1]
    assert len(stack.children) == 3 and all(c.format == "png" for c in stack.children)
    assert av.imagination_player(clip, fallback=False)._repr_mimebundle_().get("text/html") is None


def test_small_pngs_keep_the_picture():
    from PIL import Image
    import io

    img = av.compose_step(fake_clip(), 0)
    back = np.asarray(Image.open(io.BytesIO(av._encode(img))).convert("RGB"))
    assert back.shape == img.shape
    assert np.abs(back.astype(int) - img.astype(int)).mean() < 20


def test_draw_i2a_and_figure():
    ax = av.draw_i2a(num_actions=9, depth=3)
    assert ax.patches and ax.texts
    fig = av.imagination_figure(fake_clip(), 0)
    assert fig.get_size_inches()[0] > 0


def test_mean_over_seeds_interpolates_on_the_common_range():
    grid, mean, ys = av.mean_over_seeds([([0, 10], [0, 10]), ([5, 20], [5, 20])], points=6)
    assert grid[0] == 5 and grid[-1] == 10
    assert np.allclose(mean, grid) and ys.shape == (2, 6)
    g, m, _ = av.mean_over_seeds([])
    assert len(g) == 0 and len(m) == 0


def test_load_i2a_study_reads_the_committed_results():
    from ssmlib.config import RESULTS_DIR

    root = RESULTS_DIR / "i2a" / "MsPacman"
    if not (root / "summary.json").exists():
        pytest.skip("no I2A study committed")
    study = load_study(results=root)
    for v in study["variants"]:
        runs = runs_of(study, v)
        assert runs and all(study["runs"][r]["episodes"] for r in runs)
    ax = av.plot_study_curves(matplotlib.pyplot.subplots()[1], study, list(study["variants"]))
    assert ax.lines


def test_load_i2a_study_missing_is_one_clear_error(tmp_path):
    from ssmlib.errors import SsmlibError

    with pytest.raises(SsmlibError, match="no I2A study"):
        load_study(results=tmp_path)


def test_quick_env_model_trains_once_then_reuses(quick_dataset, tmp_path, monkeypatch):
    from ssmlib.agents import quick
    from ssmlib.checkpoint import read_meta

    monkeypatch.setattr(quick, "CHAPTER4_DET", tmp_path / "ch4" / "dSSM-DET")
    monkeypatch.setattr(quick, "AGENTS_DET", tmp_path / "agents-env" / "dSSM-DET")
    path = quick.quick_env_model(quick_dataset, steps=3)
    assert path == tmp_path / "agents-env" / "dSSM-DET" / "checkpoint.safetensors"
    meta = read_meta(path)
    assert meta["model"] == "dSSM-DET" and meta["step"] == 3
    mtime = path.stat().st_mtime_ns
    assert quick.quick_env_model(quick_dataset, steps=3) == path and path.stat().st_mtime_ns == mtime  # reused
    # chapter 4's run is preferred when it was trained on the same data
    monkeypatch.setattr(quick, "CHAPTER4_DET", tmp_path / "agents-env" / "dSSM-DET")
    assert quick.quick_env_model(quick_dataset) == path
