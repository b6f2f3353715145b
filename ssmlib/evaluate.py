"""The same metrics for every environment model, on the held-out test episodes, judged against the
exact floor of the frames they predict and against naive references.

For each test window (3 context frames o_{-2..0}, then ``T`` target frames o_1..o_T with the recorded
actions) and each horizon ``h = 1..T``:

**The floor and the excess.** A model gives each pixel and colour channel an independent Bernoulli
probability p; for an intensity o in [0, 1] the log-likelihood ``o log p + (1-o) log(1-p)`` is largest at
p = o, where it is ``-H_b(o)``. So no model of this family can do better than the **exact floor** of the
frame it predicts,

.. math:: F(o_h) = -\\sum_{c,y,x} H_b(o_{h,c,y,x}),

computed here on the very target frames (it moves with game progress, so a floor from other frames is
off by tens of nats). The **excess** of a log-likelihood ``L`` is ``F(o_h) - L``; for a per-pixel
Bernoulli model it is a sum of per-pixel binary KL divergences ``KL(Ber(o) || Ber(p))``, a proper
divergence, zero only for a perfect prediction. Every headline number is an excess in nats per frame,
beside the raw log-likelihood.

**Two likelihoods, the same estimator for every model:**

* *joint* (``ll_nats``, ``excess_joint_nats``): teacher-forced (AR, RAR: the real previous frames enter
  the model), exact for dSSM-DET (its state never sees a frame), and for the latent models (dSSM-VAE,
  sSSM) the importance-weighted bound with ``K`` filtering-posterior samples,
  ``L_K(h) = logmeanexp_k sum_{t<=h} (log p(o_t|..) + log p(z_t|..) - log q(z_t|..))``, per step as
  increments ``L_K(h) - L_K(h-1)`` (the per-step ELBO ``E_q[log p(o_h|...)] - KL`` is kept as
  ``elbo_nats``);
* *open-loop predictive* (``ll_open_loop_nats``, ``excess_open_loop_nats``): what a model that sees no
  frame after the context gives the real frame h steps ahead, imagining with the recorded actions:

  .. math:: \\log p(o_h \\mid o_{\\le 0}, a_{0:h-1}) \\approx \\mathrm{logmeanexp}_{k=1..K}
            \\log \\mathrm{Ber}(o_h \\mid \\ell^{(k)}_h)

  with :math:`\\ell^{(k)}_h` the frame logits of prior sample k after h transitions (in expectation a
  lower bound, Jensen). Models that imagine deterministically (``model.stochastic`` false: dSSM-DET, and
  AR/RAR, which feed back their mean frame ``sigmoid(l)`` as imagination and I2A do) use one sample.
  This is the likelihood imagination needs; for dSSM-DET it equals the joint one.

**Reference rows** (every number then has a floor and a naive ceiling), each with its own ``epsilon``
tuned on the evaluated windows themselves (which favours the references; the tuned value is reported):

* ``copy_prev``: teacher-forced, predicts the previous REAL frame, ``p = eps/2 + (1-eps) o_{h-1}``;
* ``copy_ctx``: open-loop, predicts the last context frame, ``p = eps/2 + (1-eps) o_0``.

**Moving pixels.** About 1% of a MsPacman frame changes from one frame to the next (the sprites), and
the whole-frame likelihood hides how those are predicted. On the elements (pixel and channel) of o_h
that differ from the last context frame o_0, the open-loop mean frame ``sigmoid(l_h)`` (prior mean for
latent models) gives ``moving_mae`` (mean absolute error) and ``moving_within`` (the share predicted
within ``MOVING_TOL`` = 0.1). ``copy_ctx`` scores MAE = |o_h - o_0| there, and rarely within 0.1.

**Reward** (``rewards`` are raw, summed over a jumpy chunk), through the model's reward methods
(``reward_log_prob``, ``reward_p_nonzero``, ``reward_expected``), so any reward head reads the same:

* NLL ``-log p(r_h)``, teacher-forced / filtered and open-loop, beside the **base rate**: the empirical
  distribution of the reward values at that horizon over the evaluated windows (an oracle of the
  marginal; in nats);
* AUC of ``P(r_h != 0)`` from open-loop imagination (rank-based, ``stats.auc``; NaN when every window
  has the same class), pooled over the evaluated windows at each horizon;
* ``return_abs_err``: ``|sum_{t<=h} r_hat_t - sum_{t<=h} r_t|`` with ``r_hat = reward_expected``, beside
  the all-zero predictor's ``|sum_{t<=h} r_t|``. (``reward_acc_*``, the share of steps whose predicted
  reward is right, is kept for old readers; on MsPacman it is close to the share of steps without a
  reward, so it is never judged alone.)

**Confidence intervals.** Windows cluster by episode. ``evaluate`` stores per test episode the sum of
every per-window metric and the window count (``per_episode``, a ``stats.EpisodeTable``), and gives
95% intervals of the main per-horizon means from a bootstrap over episodes (``ci``). Comparisons
between models (``ssmlib.claims``) bootstrap those tables paired, on the same episodes.

Per-horizon means are in ``per_horizon``; the ratios that can be undefined (moving-pixel metrics where
nothing moved, the AUC where one reward class is absent) are in ``per_horizon_where_defined`` (``None``
there). ``evaluate`` returns a JSON-ready dict; ``python -m ssmlib eval --checkpoint ... --data ...`` writes it
with provenance.

**Where a metric is declared.** Every reported number is an entry of the registry ``ssmlib.metrics.METRICS``
(its per-window columns, per-horizon and total reductions, interval, per-episode sums, unit, format, doc);
the batch helpers below (``_likelihood_columns``, ``_reference_columns``, ``_moving_columns``,
``_reward_columns``) compute the per-window columns, and ``_summarise`` reduces them as the registry says.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .config import CONTEXT
from .errors import SsmlibError
from .metrics import BY_NAME, METRICS, TOTAL_METRIC, Context, episode_columns, summarise_per_horizon, summarise_total
from .stats import EpisodeTable, bootstrap

EPS_GRID = (1e-5, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.2, 0.4)
"""Candidate ``epsilon`` of the copy references; the best on the evaluated windows is kept."""
MOVING_TOL = 0.1
"""A moving element counts as predicted when the mean frame is within this of the real intensity."""
CI_KEYS = tuple(m.name for m in METRICS if m.ci)
"""Per-horizon means that ``evaluate`` gives with an episode-bootstrap interval (``ci``), from the registry."""
RATIOS = {m.name: m.cols for m in METRICS if m.per_horizon == "ratio"}
"""Moving-pixel metrics: ratios of per-window sums (``numerator``, ``denominator``) pooled over windows."""


def _logmeanexp(x: torch.Tensor, dim: int = 0) -> torch.Tensor:
    return torch.logsumexp(x, dim) - math.log(x.shape[dim])


def _sampler_for(model, data, horizon: int | None, device):
    """``data`` is a WindowSampler (used as is) or a dataset (its test split)."""
    if hasattr(data, "iterate"):
        return data
    from .data.windows import WindowSampler

    for attr, want in (("height", model.cfg.height), ("width", model.cfg.width), ("num_actions", model.cfg.num_actions)):
        if getattr(data, attr) != want:
            raise SsmlibError(f"the model is for {model.cfg.height}x{model.cfg.width} frames with "
                              f"{model.cfg.num_actions} actions, the data has {data.height}x{data.width} "
                              f"with {data.num_actions}")
    return WindowSampler(data, split="test", context=CONTEXT, horizon=horizon or 10, jump=model.cfg.jump,
                         device=str(device), seed=0)


def bernoulli_ll(p: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``sum_{c,y,x} o log p + (1-o) log(1-p)`` over the last three dims: the log-likelihood (nats) of
    frames ``target`` under per-element Bernoulli probabilities ``p`` (both in [0, 1])."""
    return (torch.xlogy(target, p) + torch.xlogy(1 - target, 1 - p)).sum((-3, -2, -1))


def copy_log_likelihoods(pred: torch.Tensor, target: torch.Tensor, eps_grid=EPS_GRID) -> torch.Tensor:
    """Log-likelihood ``(..., G)`` of ``target`` when a copied frame ``pred`` is the prediction, smoothed
    towards 1/2 by each ``eps`` of the grid: ``p = eps/2 + (1 - eps) pred`` (no zero probabilities)."""
    return torch.stack([bernoulli_ll(eps / 2 + (1 - eps) * pred, target) for eps in eps_grid], -1)


def windows_sha(episodes: np.ndarray, starts: np.ndarray) -> str:
    """A fingerprint of a set of windows (their episode and start, in order): equal sets, paired scores."""
    a = np.stack([np.asarray(episodes, np.int64), np.asarray(starts, np.int64)], 1)
    return hashlib.sha256(a.tobytes()).hexdigest()[:16]


def base_rate_nll(rewards: np.ndarray) -> np.ndarray:
    """``-log f_h(r)`` per window ``(N, T)``: the empirical frequency ``f_h`` of each reward value among
    the windows at the same horizon (the marginal, the best constant predictor on these windows)."""
    out = np.zeros_like(rewards, dtype=np.float64)
    for h in range(rewards.shape[1]):
        vals, inv, counts = np.unique(rewards[:, h], return_inverse=True, return_counts=True)
        out[:, h] = -np.log(counts[inv] / len(rewards))
    return out


@torch.no_grad()
def evaluate(model, data, batch_size: int = 16, num_samples: int = 8, max_windows: int | None = None,
             horizon: int | None = None, seed: int = 0, amp: bool = False, progress: bool = False,
             n_boot: int = 1000) -> dict:
    """Per-horizon test metrics of ``model`` (see the module docstring) as a JSON-ready dict.

    ``data``: a test-split ``WindowSampler``, or a dataset (then its test split with ``horizon``
    target frames, default 10). ``num_samples`` posterior samples per window for latent models (ignored
    otherwise), and prior samples of the open-loop predictive LL for stochastic models. ``max_windows``:
    an evenly spaced subset of the test windows. Draws its random numbers from a fork of torch's RNG
    seeded with ``seed``, so results repeat and the caller's RNG is untouched. ``n_boot``: bootstrap
    replicates of the per-horizon intervals (0: none).
    """
    if num_samples < 1:
        raise SsmlibError(f"num_samples must be >= 1, got {num_samples}")
    dev = next(model.parameters()).device
    sampler = _sampler_for(model, data, horizon, dev)
    if len(sampler) == 0:
        raise SsmlibError("no test window to evaluate on (the test split is empty or its episodes too short)")
    K = num_samples if model.latent else 1
    K_open = num_samples if model.stochastic else 1  # prior samples of the open-loop predictive LL
    dims = 3 * model.cfg.height * model.cfg.width
    cols: dict[str, list[np.ndarray]] = {}
    was_training = model.training
    model.eval()
    total_batches = None
    if progress:
        n = len(sampler) if max_windows is None else min(len(sampler), max_windows)
        total_batches = math.ceil(n / batch_size)
    from tqdm.auto import tqdm

    with torch.random.fork_rng(devices=[dev.index or 0] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        for batch in tqdm(sampler.iterate(batch_size, max_windows=max_windows), total=total_batches,
                          disable=not progress, desc=f"eval {model.name}", unit="batch"):
            for k, v in _batch_columns(model, batch, K, K_open, amp and dev.type == "cuda").items():
                cols.setdefault(k, []).append(v.double().cpu().numpy())
    model.train(was_training)
    a = {k: np.concatenate(v, 0) for k, v in cols.items()}  # each (N, T) (grids: (N, T, G))
    episode, start = a.pop("episode").astype(np.int64), a.pop("start").astype(np.int64)
    eps = _finish_columns(a)
    return _summarise(model, a, episode, start, a["elbo"].shape[1], dims, K, K_open, eps, seed, n_boot)


def _batch_columns(model, batch: dict, K: int, K_open: int, use_amp: bool) -> dict[str, torch.Tensor]:
    """The per-window columns of one batch, each ``(B, T)`` (the copy grids ``(B, T, G)``)."""
    ids = {"episode": batch["episode"], "start": batch["start"]}
    batch = {k: batch[k] for k in ("frames", "actions", "rewards")}
    T = batch["frames"].shape[1] - CONTEXT
    acts = batch["actions"][:, CONTEXT - 1:CONTEXT - 1 + T]
    target = batch["frames"][:, CONTEXT:]  # o_1 .. o_T, (B, T, 3, H, W)
    last = batch["frames"][:, CONTEXT - 1:CONTEXT]  # o_0, the last context frame
    r = batch["rewards"][:, CONTEXT - 1:CONTEXT - 1 + T].float()  # r_1 .. r_T (raw, chunk sums)
    with torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else contextlib.nullcontext():
        s = model.score(batch, num_samples=K)
        s = {k: v.float() if v.is_floating_point() else v for k, v in s.items()}
        s0 = model.initial_state(batch["frames"][:, :CONTEXT])
        roll = model.imagine(s0, acts, decode=True, sample=False)  # the mean / prior-mean rollout
        open_logits = roll.frame_logits
        if K_open > 1:
            open_logits = prior_sample_logits(model, s0, acts, K_open)
    lik = _likelihood_columns(model, s, open_logits, target, K, K_open)
    return {**ids, **lik, **_reference_columns(batch["frames"], target, last, lik["floor"]),
            **_moving_columns(roll.frame_logits, s, target, last, K), **_reward_columns(model, s, roll, r, K)}


def prior_sample_logits(model, s0, acts: torch.Tensor, num_samples: int) -> torch.Tensor:
    """Frame logits of ``num_samples`` open-loop prior rollouts from the filtered state ``s0`` with the recorded
    actions, in one batched rollout, sample-major: row ``k*B + b`` is sample k of window b."""
    rep = lambda t: t.repeat(num_samples, *([1] * (t.dim() - 1)))  # noqa: E731
    return model.imagine(s0.map(rep), rep(acts), decode=True, sample=True).frame_logits


def sample_log_likelihoods(open_logits: torch.Tensor, target: torch.Tensor, num_samples: int) -> torch.Tensor:
    """``log Ber(o_h | l_h^(k))`` of every target frame under each of the ``num_samples`` sample-major rollouts
    in ``open_logits`` (rows ``k*B + b``), as ``(K, B, T)`` in nats."""
    log_p = -F.binary_cross_entropy_with_logits(
        open_logits.float(), target.repeat(num_samples, 1, 1, 1, 1), reduction="none").sum((-3, -2, -1))
    return log_p.reshape(num_samples, -1, target.shape[1])


def _likelihood_columns(model, s: dict, open_logits: torch.Tensor, target: torch.Tensor, K: int,
                        K_open: int) -> dict[str, torch.Tensor]:
    """The floor, the joint and open-loop log-likelihoods, the ELBO's terms and the excesses."""
    # F(o_h) = -sum H_b(o_h): the exact floor of each target frame, (B, T)
    floor = bernoulli_floor(target)
    log_open = sample_log_likelihoods(open_logits, target, K_open)  # (K, B, T)
    ll_open = _logmeanexp(log_open, 0)  # log p(o_h | o_<=0, a) ~ logmeanexp_k log Ber(o_h | l_h^(k))
    log_px, kl = s["log_px"][:K], s["kl"][:K]
    elbo = (log_px - kl).mean(0)
    if model.latent:  # L_K(h) - L_K(h-1), L_K(h) = logmeanexp_k sum_{t<=h} log p(o_t|.) p(z_t|.) / q(z_t|.)
        cum = _logmeanexp((log_px + s["log_pz"][:K] - s["log_qz"][:K]).cumsum(-1), 0)
        iwae = torch.diff(cum, dim=-1, prepend=torch.zeros_like(cum[:, :1]))
    else:  # exact log p(o_h | o_<h, a) (teacher-forced AR/RAR, open-loop dSSM-DET)
        iwae = elbo
    return {"floor": floor, "ll_open_loop": ll_open, "ll_open_loop_joint": _logmeanexp(log_open.sum(-1), 0)[:, None],
            "elbo": elbo, "iwae": iwae, "recon": log_px.mean(0), "kl": kl.mean(0),
            # excess = F(o_h) - L = sum of per-pixel KL(Ber(o) || Ber(p)) >= 0 (exact LL; a bound adds its gap)
            "excess_joint": floor - iwae, "excess_open_loop": floor - ll_open}


def _reference_columns(frames: torch.Tensor, target: torch.Tensor, last: torch.Tensor,
                       floor: torch.Tensor) -> dict[str, torch.Tensor]:
    """The copy references' excess for every ``eps`` of the grid, ``(B, T, G)``."""
    # the references: copy the previous real frame (teacher-forced), the last context frame (open loop)
    prev = frames[:, CONTEXT - 1:-1]
    return {"copy_prev_grid": floor[..., None] - copy_log_likelihoods(prev, target),
            "copy_ctx_grid": floor[..., None] - copy_log_likelihoods(last.expand_as(target), target)}


def _moving_columns(mean_logits: torch.Tensor, s: dict, target: torch.Tensor, last: torch.Tensor,
                    K: int) -> dict[str, torch.Tensor]:
    """Moving elements (o_h != o_0): counts and sums of the mean frame's and the copy's errors; frame MSEs."""
    # moving elements: o_h != o_0; the open-loop mean frame's absolute error there
    moving = target != last
    mean_frame = torch.sigmoid(mean_logits.float())
    err = (mean_frame - target).abs()
    err_copy = (last - target).abs()
    return {"moving_n": moving.sum((-3, -2, -1)),
            "moving_abs_err": (err * moving).sum((-3, -2, -1)),
            "moving_within_n": ((err < MOVING_TOL) & moving).sum((-3, -2, -1)),
            "copy_ctx_moving_abs_err": (err_copy * moving).sum((-3, -2, -1)),
            "copy_ctx_moving_within_n": ((err_copy < MOVING_TOL) & moving).sum((-3, -2, -1)),
            "frame_mse_teacher": s["frame_mse"][:K].mean(0),
            "frame_mse_open_loop": (mean_frame - target).square().mean((-3, -2, -1))}


def _reward_columns(model, s: dict, roll, r: torch.Tensor, K: int) -> dict[str, torch.Tensor]:
    """Reward NLLs, P(r_h != 0), accuracies and the return's error, teacher-forced and open loop."""
    # reward: -log p(r_h), P(r_h != 0), and the summed return of imagination vs. the all-zero guess
    rl = roll.reward_logits.float()
    r_hat = model.reward_expected(rl)
    ret_err = r_hat.cumsum(-1) - r.cumsum(-1)  # sum_{t<=h} r_hat_t - sum_{t<=h} r_t
    return {"reward": r,
            "reward_nll_teacher": -s["reward_logp"][:K].mean(0),
            "reward_nll_open_loop": -model.reward_log_prob(rl, r),
            "reward_p_nonzero": model.reward_p_nonzero(rl),
            "reward_acc_teacher": s["reward_correct"][:K].float().mean(0),
            "reward_acc_open_loop": ((r_hat - r).abs() < 0.5).float(),
            "return_abs_err_open_loop": ret_err.abs(),
            "return_abs_err_zero": r.cumsum(-1).abs(),
            "return_acc_open_loop": (ret_err.abs() < 0.5).float()}


def _finish_columns(a: dict) -> dict:
    """The columns that need every window: the references' tuned excess, the reward base rate; returns
    the references' ``eps``."""
    # the references' epsilon: the grid value of the smallest mean excess over all windows and horizons
    eps = {}
    for ref in ("copy_prev", "copy_ctx"):
        grid = a.pop(f"{ref}_grid")
        g = int(np.argmin(grid.mean((0, 1))))
        eps[ref] = EPS_GRID[g]
        a[f"{ref}_excess"] = grid[..., g]
    a["reward_nll_base_rate"] = base_rate_nll(a["reward"])  # -log f_h(r_h)
    a["reward_nonzero"] = (a["reward"] != 0).astype(np.float64)
    a["ll"] = a["iwae"]  # the joint LL: exact, or the importance-weighted bound
    return eps


def _finite(v: float) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


def _intervals(table: EpisodeTable, T: int, seed: int, n_boot: int) -> dict:
    """Episode-bootstrap 95% intervals of the registry's ``ci`` metrics: per horizon, and of the mean over h."""
    ci = {}
    if not n_boot or len(table.episodes) < 2:
        return ci
    for m in METRICS:
        if not m.ci:
            continue
        src = m.cols[0]
        ivs = [bootstrap({"m": table}, lambda t, h=h, src=src: t["m"][src][:, h], n_boot=n_boot, seed=seed)
               for h in range(T)]
        ci[m.name] = [[_finite(iv.lo), _finite(iv.hi)] for iv in ivs]
        tot = bootstrap({"m": table}, lambda t, src=src: t["m"][src].mean(-1), n_boot=n_boot, seed=seed)
        ci[m.ci_total_key] = [_finite(tot.lo), _finite(tot.hi)]
    return ci


def _summarise(model, a: dict, episode: np.ndarray, start: np.ndarray, T: int, dims: int, K: int, K_open: int,
               eps: dict, seed: int, n_boot: int) -> dict:
    ctx = Context(T=T, dims=dims)
    per_h, per_h_defined = summarise_per_horizon(a, ctx)
    table = EpisodeTable.from_windows(episode, {k: a[k] for k in EPISODE_KEYS})
    return {
        "model": model.name,
        "latent": bool(model.latent),
        "log_likelihood": (f"importance-weighted bound, K={K}" if model.latent else "exact"),
        "num_samples": K,
        "open_loop_samples": K_open,
        "windows": int(len(episode)),
        "episodes": int(len(table.episodes)),
        "windows_sha": windows_sha(episode, start),
        "context": CONTEXT,
        "horizon": int(T),
        "jump": int(model.cfg.jump),
        "frame_dims": dims,
        "seed": seed,
        "copy_eps": eps,
        "moving_tol": MOVING_TOL,
        "ci_level": 0.95,
        "n_boot": int(n_boot),
        "per_horizon": per_h,
        "per_horizon_where_defined": per_h_defined,
        "total": summarise_total(a, ctx),
        "ci": _intervals(table, T, seed, n_boot),
        "per_episode": table.to_json(),
        **({"reward_windows": _reward_windows(a, episode, T)} if "reward_p_nonzero" in a else {}),
    }


REWARD_WINDOW_HORIZONS = (1, 5)
"""The horizons whose per-window P(r != 0) ``evaluate`` keeps (``reward_windows``): an AUC is no ratio of
per-episode sums, so its episode bootstrap needs the windows (the reward target's horizons: rules.py)."""


def _reward_windows(a: dict, episode: np.ndarray, T: int) -> dict:
    hs = [h for h in REWARD_WINDOW_HORIZONS if h <= T]
    return {"horizons": hs, "episode": [int(e) for e in episode],
            # 4 significant digits, not decimals: calibrated P(r != 0) of a rare reward is ~1e-4 and must not tie at 0
            "p_nonzero": [[float(f"{x:.4g}") for x in a["reward_p_nonzero"][:, h - 1]] for h in hs],
            "nonzero": [[int(x) for x in a["reward_nonzero"][:, h - 1]] for h in hs]}


def reward_target(ev: dict, n_boot: int = 2000, seed: int = 0) -> dict:
    """``RULES['reward.target']`` on one evaluation (``evaluate``'s result or its ``eval.json``): the AUC
    of P(r_h != 0) at h = 1 and 5 and the 10-step return error over the all-zero predictor's, each with its
    episode-bootstrap interval and verdict, and ``verdict`` (``reproduced`` = the target met). An evaluation
    without per-window reward scores (an older evaluate) gives ``None`` for the AUC parts."""
    from .rules import REWARD_AUC_H1, REWARD_AUC_H5, REWARD_RETURN_RATIO
    from .stats import auc_by_episode, bootstrap, combine_all, decide

    ev = ev.get("results", ev)
    out = {}
    rw = ev.get("reward_windows")
    for h, threshold in ((1, REWARD_AUC_H1), (5, REWARD_AUC_H5)):
        if not rw or h not in rw["horizons"]:
            out[f"auc_h{h}"] = None
            continue
        i = rw["horizons"].index(h)
        iv = auc_by_episode(rw["p_nonzero"][i], rw["nonzero"][i], rw["episode"], n_boot=n_boot, seed=seed)
        out[f"auc_h{h}"] = {"value": iv.point, "ci": [iv.lo, iv.hi], "threshold": threshold,
                            "verdict": decide(iv, threshold, "above")}
    table, last = episode_table(ev), min(10, ev["horizon"]) - 1  # the rule's 10 steps (fewer if the horizon is shorter)
    iv = bootstrap({"m": table}, lambda t: t["m"]["return_abs_err_open_loop"][:, last]
                   / t["m"]["return_abs_err_zero"][:, last], n_boot=n_boot, seed=seed)
    out["return_ratio"] = {"value": iv.point, "ci": [iv.lo, iv.hi], "threshold": REWARD_RETURN_RATIO,
                           "horizon": last + 1, "verdict": decide(iv, REWARD_RETURN_RATIO, "below")}
    parts = [out[k]["verdict"] if out[k] else "inconclusive" for k in ("auc_h1", "auc_h5", "return_ratio")]
    out["verdict"] = combine_all(parts)
    return out


EPISODE_KEYS = episode_columns()
"""Per-window metrics whose per-episode sums ``evaluate`` stores (``per_episode``), for paired bootstraps
(the columns of the registry's ``episode`` metrics)."""


def episode_table(ev: dict) -> EpisodeTable:
    """The per-episode sums of an ``evaluate`` result (or of its ``eval.json`` document)."""
    ev = ev.get("eval", ev)
    if "per_episode" not in ev:
        raise SsmlibError(f"the evaluation of {ev.get('model')} has no per-episode sums (written by an older "
                          f"evaluate: re-score it, scripts/gpu_rescore.sh)")
    return EpisodeTable.from_json(ev["per_episode"])


TABLE_COLUMNS = (("floor_nats", 9), ("ll_nats", 9), ("excess_joint_nats", 7), ("ll_open_loop_nats", 9),
                 ("excess_open_loop_nats", 7), ("copy_ctx_excess_nats", 8))
"""``format_eval``'s per-horizon table: registry metrics and column widths (then ``moving_mae``)."""


def format_eval(res: dict, game: str = "") -> str:
    """A short text report of an ``evaluate`` result: totals, then one line per horizon (each number in
    its registry format)."""
    t, ph = res["total"], {**res["per_horizon"], **res.get("per_horizon_where_defined", {})}
    ci = res.get("ci", {})

    def band(key):
        lo_hi = ci.get(key)
        return f" [{lo_hi[0]:.1f}, {lo_hi[1]:.1f}]" if lo_hi and None not in lo_hi else ""

    def fmt(key, v, width=""):  # a value of metric (or total) ``key`` in its registry format
        return "-" if v is None else format(v, f"{width}{TOTAL_METRIC.get(key, BY_NAME.get(key)).fmt}")

    def num(key):
        return fmt(key, t[key])

    lines = [f"{res['model']} on {res['windows']} test windows of {res.get('episodes', '?')} episodes"
             f"{' of ' + game if game else ''} ({res['log_likelihood']}; open loop K={res['open_loop_samples']}):",
             f"  exact floor {num('floor_nats_per_frame')} nats/frame; excess over it (nats/frame, 95% CI over "
             f"episodes): joint {num('excess_joint_nats_per_frame')}{band('excess_joint_nats_per_frame')}, "
             f"open loop {num('excess_open_loop_nats_per_frame')}{band('excess_open_loop_nats_per_frame')}; "
             f"copy previous frame {num('copy_prev_excess_nats_per_frame')}, copy last context frame "
             f"{num('copy_ctx_excess_nats_per_frame')}",
             f"  moving pixels ({100 * t['moving_share']:.2f}% of elements): MAE {num('moving_mae')} "
             f"(copy {num('copy_ctx_moving_mae')}), within {MOVING_TOL}: {num('moving_within')}",
             f"  reward: NLL open loop {num('reward_nll_open_loop')} (base rate {num('reward_nll_base_rate')}), "
             f"AUC {num('reward_auc_open_loop')}, "
             f"|return error| at T {num('return_abs_err_open_loop')} (all-zero {num('return_abs_err_zero')})",
             "  h  floor     LL joint  excess   LL open   excess   copy-ctx  moving MAE"]
    for i, h in enumerate(ph["h"]):
        cells = " ".join(fmt(k, ph[k][i], w) for k, w in TABLE_COLUMNS)
        lines.append(f"  {h:<2} {cells}  {fmt('moving_mae', ph['moving_mae'][i])}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# command line


def run_cli(args: argparse.Namespace) -> int:
    """``python -m ssmlib eval --checkpoint ... --data ...``: print a table; write JSON with --out."""
    from .checkpoint import load_checkpoint, build_from_checkpoint
    from .data.store import open_dataset
    from .data.windows import WindowSampler
    from .distributed import resolve_device
    from .io import atomic_write_json, provenance, sha256_file

    dev = resolve_device(args.device)
    if Path(args.checkpoint).is_dir() and (Path(args.checkpoint) / "checkpoint.safetensors").exists():
        args.checkpoint = str(Path(args.checkpoint) / "checkpoint.safetensors")  # a run folder
    ds = open_dataset(args.data, verify=True)
    meta, tensors = load_checkpoint(args.checkpoint, dataset=ds)
    model = build_from_checkpoint(args.checkpoint, meta, tensors, device=dev).eval()
    del tensors
    horizon = args.horizon or (meta.get("train_cfg") or {}).get("horizon") or 10
    sampler = WindowSampler(ds, split="test", context=CONTEXT, horizon=horizon, jump=model.cfg.jump,
                            device=str(dev), seed=0)
    res = evaluate(model, sampler, batch_size=args.batch_size, num_samples=args.samples,
                   max_windows=args.max_windows, seed=args.seed, progress=True)
    print(format_eval(res, ds.game))
    if args.out:
        doc = {
            "results": res,
            "checkpoint": {"path": str(args.checkpoint), "sha256": sha256_file(args.checkpoint),
                           "step": meta.get("step"), "model_cfg": meta.get("model_cfg"),
                           "train_cfg": meta.get("train_cfg"),
                           "trained_on_fingerprint": meta.get("data_fingerprint")},
            "data": {"dir": str(args.data), "game": ds.game, "fingerprint": ds.fingerprint,
                     "split": "test"},
            "provenance": provenance(str(dev)),
        }
        atomic_write_json(Path(args.out), doc)
        print(f"wrote {args.out}")
    return 0


def add_cli(subparsers) -> argparse.ArgumentParser:
    """Register ``eval`` on an argparse subparsers object; dispatch via ``args.func(args)``."""
    p = subparsers.add_parser("eval", help="test log-likelihood, reward accuracy and rollout MSE of a checkpoint",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, metavar="PATH", help="a checkpoint.safetensors written by train, or its run folder")
    p.add_argument("--data", required=True, metavar="DIR", help="dataset folder (its test episodes are used)")
    p.add_argument("--samples", type=int, default=8, metavar="K",
                   help="posterior samples for the importance-weighted bound (latent models; default 8)")
    p.add_argument("--max-windows", type=int, default=None, metavar="N",
                   help="evaluate an evenly spaced subset of N test windows (default: all)")
    p.add_argument("--horizon", type=int, default=None, help="target frames per window (default: training's)")
    p.add_argument("--batch-size", type=int, default=16, help="windows per batch (default 16)")
    p.add_argument("--seed", type=int, default=0, help="seed of the posterior samples (default 0)")
    p.add_argument("--out", default=None, metavar="FILE.json", help="write the results here (atomically)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available)")
    p.set_defaults(func=run_cli)
    return p


# --------------------------------------------------------------------------------------------------
# diagnostics used by the book


def bernoulli_floor(frames) -> torch.Tensor:
    """The best log-likelihood any per-pixel Bernoulli model can reach on ``frames``, per frame (nats).

    For an intensity o in [0, 1], ``o log p + (1-o) log(1-p)`` is largest at p = o, where it equals
    ``-H_b(o)``, minus the binary entropy; summed over a frame: ``-sum_{c,y,x} H_b(o_{c,y,x})``. This
    part of every model's nats is irreducible, so differences between models are judged against it.
    ``frames``: uint8 (..., H, W, 3) (as stored) or float (..., 3, H, W) in [0, 1] (as in a batch).
    """
    x = torch.as_tensor(frames)
    if x.dtype == torch.uint8:
        x = x.float().div(255.0)
    x = x.float()
    return -(torch.special.entr(x) + torch.special.entr(1 - x)).sum((-3, -2, -1))


def count_pixel_calls(model, fn) -> dict[str, int]:
    """Run ``fn()`` and count what went through the model's pixel encoder and decoder: calls and frames.

    This is where the time of pixel-space imagination goes: AR/RAR encode and decode a frame at every
    step; a state-space model encodes only its context and decodes only when asked.
    """
    counts = {"encoder_calls": 0, "decoder_calls": 0, "encoder_frames": 0, "decoder_frames": 0}

    def hook(part):
        def count(module, inputs, output):
            counts[f"{part}_calls"] += 1
            counts[f"{part}_frames"] += int(output.shape[0])
        return count

    handles = [getattr(model, part).register_forward_hook(hook(part)) for part in ("encoder", "decoder")]
    try:
        with torch.no_grad():
            fn()
    finally:
        for h in handles:
            h.remove()
    return counts
