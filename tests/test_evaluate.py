"""The evaluator's metrics against hand computations: the exact floor and the excess, the copy references,
moving pixels, reward AUC and base rate, the per-episode sums, and the episode bootstrap."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from ssmlib import evaluate as ev
from ssmlib.config import ModelConfig
from ssmlib.data import store
from ssmlib.data.store import open_dataset
from ssmlib.data.windows import WindowSampler
from ssmlib.errors import SsmlibError
from ssmlib.models import build_model
from ssmlib.models.base import Rollout, State
from ssmlib.stats import EpisodeTable, Interval, auc, bootstrap, decide


class CopyLastFrame(nn.Module):
    """A naive 'model' with the EnvironmentModel surface that evaluate reads: it predicts the last
    context frame for every horizon (open loop) and the previous real frame when teacher-forced, each as
    ``p = eps/2 + (1-eps) o``, and always P(r = 0) = 1 - p_reward."""

    latent = stochastic = False

    def __init__(self, height, width, num_actions, eps=1e-3, p_reward=0.1, name="copy"):
        super().__init__()
        self.cfg = ModelConfig(model="dSSM-DET", height=height, width=width, num_actions=num_actions)
        self.name, self.eps, self.p_reward = name, eps, p_reward
        self.dummy = nn.Parameter(torch.zeros(1))

    def _logits(self, frames):
        p = self.eps / 2 + (1 - self.eps) * frames
        return torch.log(p) - torch.log1p(-p)

    def _reward_logits(self, shape):
        return torch.full((*shape, 2), 0.0).log_softmax(-1) + torch.tensor([math.log(1 - self.p_reward),
                                                                              math.log(self.p_reward)])

    def reward_log_prob(self, logits, r):
        lp = logits.log_softmax(-1)
        return torch.where(r != 0, lp[..., 1], lp[..., 0])

    def reward_p_nonzero(self, logits):
        return logits.softmax(-1)[..., 1]

    def reward_expected(self, logits):
        return torch.zeros(logits.shape[:-1])

    def score(self, batch, num_samples=1):
        f, r = batch["frames"], batch["rewards"][:, ev.CONTEXT - 1:]
        target, prev = f[:, ev.CONTEXT:], f[:, ev.CONTEXT - 1:-1]
        log_px = ev.bernoulli_ll(self.eps / 2 + (1 - self.eps) * prev, target)
        z = torch.zeros_like(log_px)
        rl = self._reward_logits(log_px.shape)
        out = {"log_px": log_px, "log_pz": z, "log_qz": z, "kl": z, "reward_logp": self.reward_log_prob(rl, r),
               "reward_correct": r == 0, "frame_mse": (prev - target).square().mean((-3, -2, -1))}
        return {k: v[None].expand(num_samples, *v.shape) for k, v in out.items()}

    def initial_state(self, context):
        return State(frames=context[:, -1:])

    def imagine(self, state, actions, *, decode=False, sample=True):
        B, T = actions.shape[:2]
        logits = self._logits(state.frames).expand(B, T, *state.frames.shape[2:])
        return Rollout(features=torch.zeros(B, T, 1), reward_logits=self._reward_logits((B, T)),
                       frame_logits=logits if decode else None, final=state)


def _episode(n, value_of_row, reward_every=4):
    rows = np.arange(n)
    frames = np.stack([value_of_row(i) for i in rows]).astype(np.uint8)
    rewards = np.where(rows % reward_every == reward_every - 1, 10.0, 0.0).astype(np.float32)
    rewards[-1] = 0
    done = np.zeros(n, np.uint8)
    done[-1] = store.TERMINATED
    return frames, rewards, done


@pytest.fixture(scope="module")
def sprite_dataset(tmp_path_factory):
    """Three hand-made episodes of 8x8 frames: a grey background (value 60) with one white 'sprite'
    pixel moving one column per step; the test split is all of it."""
    root = tmp_path_factory.mktemp("sprite")
    parts = []
    for e, n in enumerate((20, 24, 16)):
        def frame(i, e=e):
            f = np.full((8, 8, 3), 60, np.uint8)
            f[e, i % 8] = 255
            return f
        frames, rewards, done = _episode(n, frame)
        parts.append({"frames": frames, "actions": (np.arange(n) % 4).astype(np.uint8), "rewards": rewards,
                      "episode": np.full(n, e, np.int64), "done": done})
    arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    entry = store.write_shard(root, 0, arrays)
    store.write_manifest(root, {"format": store.FORMAT, "game": "MsPacman", "height": 8, "width": 8,
                                "num_actions": 4, "action_meanings": [str(a) for a in range(4)], "seed": 0,
                                "test_fraction": 1.0, "complete": True, "shards": [entry]})
    return root


def test_floor_is_the_best_bernoulli_likelihood_and_excess_is_a_sum_of_kls():
    torch.manual_seed(0)
    o = torch.rand(2, 3, 8, 8)
    floor = ev.bernoulli_floor(o)
    assert torch.allclose(ev.bernoulli_ll(o, o), floor, atol=1e-4)
    for _ in range(5):
        p = torch.rand(2, 3, 8, 8).clamp(0.01, 0.99)
        kl = (torch.xlogy(o, o / p) + torch.xlogy(1 - o, (1 - o) / (1 - p))).sum((-3, -2, -1))
        assert torch.allclose(floor - ev.bernoulli_ll(p, o), kl, atol=1e-3)
        assert (kl > 0).all()


def test_copy_references_reach_the_floor_only_when_the_frame_repeats():
    o = torch.rand(1, 3, 8, 8)
    ll = ev.copy_log_likelihoods(o, o, eps_grid=(1e-6, 0.1))
    assert ll[..., 0].item() == pytest.approx(ev.bernoulli_floor(o).item(), abs=0.05)
    assert ll[..., 1].item() < ll[..., 0].item()
    moved = torch.roll(o, 1, -1)
    assert (ev.copy_log_likelihoods(moved, o) < ev.bernoulli_floor(o)[..., None] - 1).all()


def test_auc_matches_pairwise_counting_and_is_nan_with_one_class():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 5, 60).astype(float)  # many ties
    y = rng.random(60) < 0.3
    pairs = [(1.0 if a > b else 0.5 if a == b else 0.0) for a, b in itertools.product(s[y], s[~y])]
    assert auc(s, y) == pytest.approx(np.mean(pairs))
    assert auc([0.1, 0.9], [0, 1]) == 1.0 and auc([0.9, 0.1], [0, 1]) == 0.0
    assert auc([0.3, 0.3, 0.3], [0, 1, 1]) == 0.5
    assert math.isnan(auc([0.2, 0.4], [0, 0]))


def test_base_rate_nll_by_hand():
    r = np.array([[0, 10], [0, 0], [10, 0], [0, 0]], float)
    got = ev.base_rate_nll(r)
    assert got[:, 0] == pytest.approx([-math.log(0.75)] * 2 + [-math.log(0.25), -math.log(0.75)])
    assert got[0, 1] == pytest.approx(-math.log(0.25))


def test_episode_table_sums_and_aligns():
    t = EpisodeTable.from_windows([5, 3, 5, 5], {"x": np.array([[1, 2], [3, 4], [5, 6], [7, 8]], float)})
    assert t.episodes.tolist() == [3, 5] and t.windows.tolist() == [1, 3]
    assert t.sums["x"].tolist() == [[3, 4], [13, 16]]
    assert t.mean("x").tolist() == [4, 5]
    al = t.aligned(np.array([5, 9, 3]))
    assert al.windows.tolist() == [3, 0, 1] and al.sums["x"][1].tolist() == [0, 0]
    assert EpisodeTable.from_json(t.to_json()).sums["x"].tolist() == t.sums["x"].tolist()


def test_bootstrap_interval_covers_the_point_pairs_models_and_decides():
    rng = np.random.default_rng(1)
    E = 30
    base = rng.normal(100, 20, (E, 1))
    win = np.full(E, 10)
    a = EpisodeTable(np.arange(E), win, {"x": base * 10})
    b = EpisodeTable(np.arange(E), win, {"x": (base + 5 + rng.normal(0, 1, (E, 1))) * 10})
    diff = bootstrap({"a": a, "b": b}, lambda m: m["b"]["x"][:, 0] - m["a"]["x"][:, 0], n_boot=500)
    assert diff.lo < diff.point < diff.hi and 4 < diff.point < 6
    assert diff.hi - diff.lo < 1.5  # paired: the shared episode-to-episode spread (sd 20) cancels
    one = bootstrap({"a": a}, lambda m: m["a"]["x"][:, 0], n_boot=500)
    assert one.hi - one.lo > 5  # unpaired level: the spread is there
    same = bootstrap({"a": a, "b": a}, lambda m: m["b"]["x"][:, 0] - m["a"]["x"][:, 0], n_boot=200)
    assert same.lo == same.hi == same.point == 0
    assert (diff.episodes, diff.seeds, diff.windows) == (E, 1, 300)
    # seeds: two seeds of b that disagree widen the interval
    b2 = EpisodeTable(np.arange(E), win, {"x": (base + 15) * 10})
    two = bootstrap({"a": a, "b": [b, b2]}, lambda m: m["b"]["x"][:, 0] - m["a"]["x"][:, 0], n_boot=500)
    assert two.seeds == 2 and two.hi - two.lo > diff.hi - diff.lo and 9 < two.point < 11
    assert decide(Interval(1.0, 0.5, 0.9), 1.0) == "reproduced"
    assert decide(Interval(1.5, 1.2, 1.9), 1.0) == "not reproduced"
    assert decide(Interval(1.0, 0.8, 1.2), 1.0) == "inconclusive"
    assert decide(Interval(1.0, 1.2, 1.9), 1.0, better="above") == "reproduced"
    assert decide(Interval(1.0, float("nan"), 1.9), 1.0) == "inconclusive"
    # a difference that must be negative: two identical models give [0, 0], which must not pass
    assert decide(Interval(0.0, 0.0, 0.0), 0.0, strict=True) == "not reproduced"
    assert decide(Interval(0.0, 0.0, 0.0), 0.0) == "reproduced"  # (non-strict: <= 0 holds)
    assert decide(Interval(-1.0, -2.0, -0.5), 0.0, strict=True) == "reproduced"
    with pytest.raises(SsmlibError, match="at least 2 episodes"):
        bootstrap({"a": EpisodeTable(np.arange(1), win[:1], {"x": base[:1]})}, lambda m: m["a"]["x"][:, 0])


def test_copy_model_scores_exactly_the_copy_reference(sprite_dataset):
    """End to end on hand-made frames: a model that copies the last context frame IS the open-loop copy
    reference, its moving-pixel error is the copy's, and the moving share is the one sprite pixel."""
    ds = open_dataset(sprite_dataset)
    sampler = WindowSampler(ds, "test", horizon=4)
    res = ev.evaluate(CopyLastFrame(8, 8, 4, eps=ev.EPS_GRID[2]), sampler, batch_size=5, n_boot=200)
    ph, tot = {**res["per_horizon"], **res["per_horizon_where_defined"]}, res["total"]
    assert res["episodes"] == 3 and res["windows"] == len(sampler)
    # the sprite moves one column per step: o_h differs from o_0 in 2 pixels x 3 channels (h < 8)
    assert ph["moving_share"] == pytest.approx([6 / 192] * 4)
    assert ph["moving_mae"] == pytest.approx(ph["copy_ctx_moving_mae"], rel=1e-3)
    assert ph["moving_within"] == [0.0] * 4 and ph["copy_ctx_moving_within"] == [0.0] * 4
    # with the eps the copy references pick on these frames (the best of the grid), the model IS them: equal excess
    eps = res["copy_eps"]["copy_ctx"]
    assert res["copy_eps"] == {"copy_prev": eps, "copy_ctx": eps} and eps != ev.EPS_GRID[2]
    same = ev.evaluate(CopyLastFrame(8, 8, 4, eps=eps), sampler, batch_size=5, n_boot=200)["per_horizon"]
    assert same["excess_open_loop_nats"] == pytest.approx(same["copy_ctx_excess_nats"], rel=1e-4)
    assert same["excess_joint_nats"] == pytest.approx(same["copy_prev_excess_nats"], rel=1e-4)
    # excess = floor - LL, and both exceed zero: the copy misses the moving sprite
    for i in range(4):
        assert ph["excess_open_loop_nats"][i] == pytest.approx(ph["floor_nats"][i] - ph["ll_open_loop_nats"][i])
        assert ph["excess_open_loop_nats"][i] > 1
    # the per-episode sums give back every mean, and the interval holds the point
    t = ev.episode_table(res)
    assert t.mean("excess_open_loop").tolist() == pytest.approx(ph["excess_open_loop_nats"])
    lo, hi = res["ci"]["excess_open_loop_nats_per_frame"]
    assert lo <= tot["excess_open_loop_nats_per_frame"] <= hi
    # reward: rewards every 4th step; a constant P(r != 0) ranks nothing (AUC 1/2), zero return guess
    assert all(a == pytest.approx(0.5) for a in ph["reward_auc_open_loop"] if a is not None)
    assert ph["return_abs_err_open_loop"] == pytest.approx(ph["return_abs_err_zero"])
    assert 0 < tot["reward_nonzero_rate"] < 0.5
    assert "excess over it" in ev.format_eval(res)
    # the reward target on this naive model: not met (AUC 1/2 at h = 1, the return error the all-zero guess's)
    rw = res["reward_windows"]
    assert rw["horizons"] == [1] and len(rw["episode"]) == res["windows"]  # h = 5 is past this horizon
    assert auc(rw["p_nonzero"][0], rw["nonzero"][0]) == pytest.approx(ph["reward_auc_open_loop"][0])
    tgt = ev.reward_target(res, n_boot=200)
    assert tgt["auc_h1"]["value"] == pytest.approx(0.5) and tgt["auc_h5"] is None
    assert tgt["return_ratio"]["value"] == pytest.approx(1.0) and tgt["return_ratio"]["verdict"] == "not reproduced"
    assert tgt["verdict"] == "not reproduced"


def _planted_eval(scores: np.ndarray, labels: np.ndarray, err_share: float) -> dict:
    """An evaluation of 12 episodes x 40 windows whose P(r != 0) at h = 1 and 5 are ``scores`` and whose 10-step
    return error is ``err_share`` of the all-zero predictor's."""
    E, n, T = 12, 40, 10
    episode = np.repeat(np.arange(E), n)
    zero = np.tile(np.linspace(10, 30, T), (E, 1)) * n
    table = EpisodeTable(np.arange(E), np.full(E, n), {"return_abs_err_open_loop": err_share * zero,
                                                        "return_abs_err_zero": zero})
    return {"horizon": T, "per_episode": table.to_json(),
            "reward_windows": {"horizons": [1, 5], "episode": episode.tolist(),
                               "p_nonzero": [scores.tolist()] * 2, "nonzero": [labels.tolist()] * 2}}


def test_reward_target_is_met_by_a_head_that_ranks_and_missed_by_chance():
    rng = np.random.default_rng(0)
    labels = (rng.random(480) < 0.1).astype(int)
    good = ev.reward_target(_planted_eval(labels * 0.8 + rng.random(480) * 0.1, labels, 0.4), n_boot=300)
    assert good["auc_h1"]["value"] == 1.0 and good["verdict"] == "reproduced"
    assert good["return_ratio"]["ci"] == pytest.approx([0.4, 0.4])
    chance = ev.reward_target(_planted_eval(rng.random(480), labels, 0.4), n_boot=300)
    assert chance["auc_h1"]["verdict"] == "not reproduced" and chance["verdict"] == "not reproduced"
    lo, hi = chance["auc_h1"]["ci"]
    assert lo < chance["auc_h1"]["value"] < hi and hi - lo > 0.05  # episodes resampled: a real interval
    noisy = ev.reward_target(_planted_eval(labels * 0.8 + rng.random(480) * 0.1, labels, 1.0), n_boot=300)
    assert noisy["return_ratio"]["verdict"] == "not reproduced" and noisy["verdict"] == "not reproduced"


@pytest.mark.parametrize("name", ["dSSM-DET", "sSSM", "RAR"])
def test_real_models_excess_ll_and_floor_agree(quick_dataset, name):
    ds = open_dataset(quick_dataset)
    torch.manual_seed(0)
    model = build_model(ModelConfig(model=name, height=ds.height, width=ds.width, num_actions=ds.num_actions,
                                    channel_scale=0.25, z_channels=16))
    res = ev.evaluate(model, ds, batch_size=4, num_samples=3, max_windows=8, horizon=3, n_boot=100)
    ph = res["per_horizon"]
    assert all(math.isfinite(x) for v in ph.values() for x in v)  # undefined ratios live elsewhere
    for i in range(3):
        assert ph["excess_joint_nats"][i] == pytest.approx(ph["floor_nats"][i] - ph["ll_nats"][i], rel=1e-6)
        assert ph["excess_open_loop_nats"][i] == pytest.approx(ph["floor_nats"][i] - ph["ll_open_loop_nats"][i],
                                                               rel=1e-6)
    if not model.latent:  # an exact likelihood never beats the floor
        assert min(ph["excess_joint_nats"]) > 0 and min(ph["excess_open_loop_nats"]) > 0
    if name == "dSSM-DET":
        assert ph["excess_open_loop_nats"] == pytest.approx(ph["excess_joint_nats"], rel=1e-6)
    assert res["open_loop_samples"] == (3 if name == "sSSM" else 1)
    t = ev.episode_table(res)
    assert int(t.windows.sum()) == res["windows"] == 8
    assert res["copy_eps"]["copy_prev"] in ev.EPS_GRID
    import json

    json.dumps(res, allow_nan=False)


def test_episode_table_refuses_an_old_evaluation():
    with pytest.raises(SsmlibError, match="re-score"):
        ev.episode_table({"model": "AR", "per_horizon": {}})


def test_metric_registry_is_what_evaluate_reports(quick_dataset):
    """Every registry metric is computed and lands where the registry says (per_horizon or
    per_horizon_where_defined, total, ci, per_episode), nothing else is reported, and evaluate.py keeps no
    hand-typed list of metric names beside the registry."""
    import ast
    from pathlib import Path

    from ssmlib import metrics as mx

    names = [m.name for m in mx.METRICS]
    assert len(set(names)) == len(names)
    total_keys = [k for m in mx.METRICS for k in m.total_keys()]
    assert len(set(total_keys)) == len(total_keys)
    for m in mx.METRICS:
        assert m.per_horizon is None or m.per_horizon in mx.PER_HORIZON, m.name
        assert all(r in mx.TOTALS for r in m.total) and (m.per_horizon or m.total), m.name
        assert m.doc and m.unit and format(1.0, m.fmt), m.name
        if m.ci:  # the interval is a bootstrap of the per-episode sums of its one column
            assert m.episode and len(m.cols) == 1 and m.per_horizon == "mean", m.name
    # the module's key lists are the registry's
    assert ev.CI_KEYS == tuple(m.name for m in mx.METRICS if m.ci)
    assert ev.EPISODE_KEYS == mx.episode_columns()
    assert ev.RATIOS == {m.name: m.cols for m in mx.METRICS if m.per_horizon == "ratio"}

    ds = open_dataset(quick_dataset)
    torch.manual_seed(0)
    model = build_model(ModelConfig(model="dSSM-VAE", height=ds.height, width=ds.width,
                                    num_actions=ds.num_actions, channel_scale=0.25, z_channels=16))
    res = ev.evaluate(model, ds, batch_size=4, num_samples=2, max_windows=8, horizon=3, n_boot=20)
    T = res["horizon"]
    assert res["episodes"] >= 2  # so that the intervals are there
    want_h = {"h"} | {m.name for m in mx.METRICS if m.per_horizon and not m.where_defined}
    want_def = {m.name for m in mx.METRICS if m.where_defined}
    assert set(res["per_horizon"]) == want_h and set(res["per_horizon_where_defined"]) == want_def
    assert all(len(v) == T for v in (*res["per_horizon"].values(), *res["per_horizon_where_defined"].values()))
    assert set(res["total"]) == set(total_keys)
    assert set(res["ci"]) == {k for m in mx.METRICS if m.ci for k in (m.name, m.ci_total_key)}
    assert all(len(res["ci"][m.name]) == T for m in mx.METRICS if m.ci)
    assert set(res["per_episode"]["sums"]) == {c for m in mx.METRICS if m.episode for c in m.cols}
    assert "excess over it" in ev.format_eval(res)
    for k, _ in ev.TABLE_COLUMNS:
        assert k in mx.BY_NAME and not mx.BY_NAME[k].where_defined

    # no hand-typed list of metric (or column) names in evaluate.py: no tuple/list/set literal with two
    # or more of them, no dict literal mapping names to names (the registry is the one list); the one
    # exception is format_eval's table layout, whose names are checked against the registry above
    known = set(names) | set(total_keys) | {c for m in mx.METRICS for c in m.cols}
    tree = ast.parse(Path(ev.__file__).read_text())
    allowed = {id(n.value) for n in tree.body if isinstance(n, ast.Assign)
               and [t.id for t in n.targets if isinstance(t, ast.Name)] == ["TABLE_COLUMNS"]}

    def strings(node):  # the names a literal lists: its string elements, also inside nested tuples/lists
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [node.value]
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return [s for e in node.elts for s in strings(e)]
        return []

    for node in ast.walk(tree):
        if id(node) in allowed:
            continue
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            hits = [s for s in strings(node) if s in known]
            assert len(hits) < 2, f"a hand-typed list of metric names in evaluate.py (line {node.lineno}): {hits}"
        if isinstance(node, ast.Dict):
            vals = [s for v in node.values if v is not None for s in strings(v) if s in known]
            assert len(vals) < 2, f"a hand-typed map of metric names in evaluate.py (line {node.lineno}): {vals}"


def test_reward_windows_keep_the_ranking_of_tiny_probabilities():
    """Calibrated P(r != 0) of a rare reward is ~1e-4: stored to 4 decimals they would tie at 0 and the AUC drop."""
    rng = np.random.default_rng(1)
    y = (rng.random((400, 5)) < 0.05).astype(np.float64)
    p = 1e-5 * np.exp(rng.normal(size=(400, 5)) + 2.0 * y)
    rw = ev._reward_windows({"reward_p_nonzero": p, "reward_nonzero": y}, np.repeat(np.arange(8), 50), 5)
    assert rw["horizons"] == [1, 5] and len(rw["episode"]) == 400
    for i, h in enumerate(rw["horizons"]):
        assert auc(rw["p_nonzero"][i], rw["nonzero"][i]) == pytest.approx(auc(p[:, h - 1], y[:, h - 1]), abs=1e-3)
