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
from .stats import EpisodeTable, auc, bootstrap

EPS_GRID = (1e-5, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.2, 0.4)
"""Candidate ``epsilon`` of the copy references; the best on the evaluated windows is kept."""
MOVING_TOL = 0.1
"""A moving element counts as predicted when the mean frame is within this of the real intensity."""
CI_KEYS = ("excess_joint_nats", "excess_open_loop_nats", "copy_prev_excess_nats", "copy_ctx_excess_nats",
           "ll_nats", "ll_open_loop_nats", "reward_nll_open_loop", "return_abs_err_open_loop")
"""Per-horizon means that ``evaluate`` gives with an episode-bootstrap interval (``ci``)."""
RATIOS = {"moving_mae": ("moving_abs_err", "moving_n"), "moving_within": ("moving_within_n", "moving_n"),
          "copy_ctx_moving_mae": ("copy_ctx_moving_abs_err", "moving_n"),
          "copy_ctx_moving_within": ("copy_ctx_moving_within_n", "moving_n")}
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
    reward_log_prob, reward_p_nonzero, reward_expected = model.reward_log_prob, model.reward_p_nonzero, model.reward_expected
    K = num_samples if model.latent else 1
    K_open = num_samples if model.stochastic else 1  # prior samples of the open-loop predictive LL
    H, W = model.cfg.height, model.cfg.width
    dims = 3 * H * W
    use_amp = amp and dev.type == "cuda"
    cols: dict[str, list[np.ndarray]] = {}

    def add(name: str, t: torch.Tensor) -> None:
        cols.setdefault(name, []).append(t.double().cpu().numpy())

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
            add("episode", batch["episode"])
            add("start", batch["start"])
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
                if K_open > 1:  # K prior samples in one batched rollout, sample-major: row k*B + b
                    rep = lambda t: t.repeat(K_open, *([1] * (t.dim() - 1)))  # noqa: E731
                    open_logits = model.imagine(s0.map(rep), rep(acts), decode=True, sample=True).frame_logits
            # F(o_h) = -sum H_b(o_h): the exact floor of each target frame, (B, T)
            floor = bernoulli_floor(target)
            add("floor", floor)
            # open loop: log p(o_h | o_<=0, a) ~ logmeanexp_k log Ber(o_h | l_h^(k))
            log_open = -F.binary_cross_entropy_with_logits(
                open_logits.float(), target.repeat(K_open, 1, 1, 1, 1), reduction="none").sum((-3, -2, -1))
            log_open = log_open.reshape(K_open, -1, T)  # (K, B, T)
            ll_open = _logmeanexp(log_open, 0)
            add("ll_open_loop", ll_open)
            add("ll_open_loop_joint", _logmeanexp(log_open.sum(-1), 0)[:, None])
            log_px, kl = s["log_px"][:K], s["kl"][:K]
            elbo = (log_px - kl).mean(0)
            if model.latent:  # L_K(h) - L_K(h-1), L_K(h) = logmeanexp_k sum_{t<=h} log p(o_t|.) p(z_t|.) / q(z_t|.)
                cum = _logmeanexp((log_px + s["log_pz"][:K] - s["log_qz"][:K]).cumsum(-1), 0)
                iwae = torch.diff(cum, dim=-1, prepend=torch.zeros_like(cum[:, :1]))
            else:  # exact log p(o_h | o_<h, a) (teacher-forced AR/RAR, open-loop dSSM-DET)
                iwae = elbo
            add("elbo", elbo)
            add("iwae", iwae)
            add("recon", log_px.mean(0))
            add("kl", kl.mean(0))
            # excess = F(o_h) - L = sum of per-pixel KL(Ber(o) || Ber(p)) >= 0 (exact LL; a bound adds its gap)
            add("excess_joint", floor - iwae)
            add("excess_open_loop", floor - ll_open)
            # the references: copy the previous real frame (teacher-forced), the last context frame (open loop)
            prev = batch["frames"][:, CONTEXT - 1:-1]
            add("copy_prev_grid", floor[..., None] - copy_log_likelihoods(prev, target))
            add("copy_ctx_grid", floor[..., None] - copy_log_likelihoods(last.expand_as(target), target))
            # moving elements: o_h != o_0; the open-loop mean frame's absolute error there
            moving = target != last
            mean_frame = torch.sigmoid(roll.frame_logits.float())
            err = (mean_frame - target).abs()
            err_copy = (last - target).abs()
            add("moving_n", moving.sum((-3, -2, -1)))
            add("moving_abs_err", (err * moving).sum((-3, -2, -1)))
            add("moving_within_n", ((err < MOVING_TOL) & moving).sum((-3, -2, -1)))
            add("copy_ctx_moving_abs_err", (err_copy * moving).sum((-3, -2, -1)))
            add("copy_ctx_moving_within_n", ((err_copy < MOVING_TOL) & moving).sum((-3, -2, -1)))
            add("frame_mse_teacher", s["frame_mse"][:K].mean(0))
            add("frame_mse_open_loop", (mean_frame - target).square().mean((-3, -2, -1)))
            # reward: -log p(r_h), P(r_h != 0), and the summed return of imagination vs. the all-zero guess
            rl = roll.reward_logits.float()
            add("reward", r)
            add("reward_nll_teacher", -s["reward_logp"][:K].mean(0))
            add("reward_nll_open_loop", -reward_log_prob(rl, r))
            add("reward_p_nonzero", reward_p_nonzero(rl))
            r_hat = reward_expected(rl)
            add("reward_acc_teacher", s["reward_correct"][:K].float().mean(0))
            add("reward_acc_open_loop", ((r_hat - r).abs() < 0.5).float())
            ret_err = r_hat.cumsum(-1) - r.cumsum(-1)
            add("return_abs_err_open_loop", ret_err.abs())
            add("return_abs_err_zero", r.cumsum(-1).abs())
            add("return_acc_open_loop", (ret_err.abs() < 0.5).float())
    model.train(was_training)

    a = {k: np.concatenate(v, 0) for k, v in cols.items()}  # each (N, T) (grids: (N, T, G))
    episode, start = a.pop("episode").astype(np.int64), a.pop("start").astype(np.int64)
    N, T = a["elbo"].shape
    # the references' epsilon: the grid value of the smallest mean excess over all windows and horizons
    eps = {}
    for ref in ("copy_prev", "copy_ctx"):
        grid = a.pop(f"{ref}_grid")
        g = int(np.argmin(grid.mean((0, 1))))
        eps[ref] = EPS_GRID[g]
        a[f"{ref}_excess"] = grid[..., g]
    a["reward_nll_base_rate"] = base_rate_nll(a["reward"])
    a["reward_nonzero"] = (a["reward"] != 0).astype(np.float64)
    a["ll"] = a["iwae"]
    return _summarise(model, a, episode, start, T, dims, K, K_open, eps, seed, n_boot)


def _finite(v: float) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


def _summarise(model, a: dict, episode: np.ndarray, start: np.ndarray, T: int, dims: int, K: int, K_open: int,
               eps: dict, seed: int, n_boot: int) -> dict:
    N = len(episode)
    bpd = -1.0 / (dims * math.log(2))

    def mean(x: np.ndarray) -> list[float]:
        return [float(v) for v in x.mean(0)]

    def ratio(num: str, den: str) -> list[float]:
        d = a[den].sum(0)
        return [float(v) if np.isfinite(v) else None for v in np.divide(a[num].sum(0), d, out=np.full(T, np.nan),
                                                                        where=d > 0)]

    def sem(x: np.ndarray) -> float:
        return float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else float("nan")

    auc_h = [auc(a["reward_p_nonzero"][:, h], a["reward_nonzero"][:, h]) for h in range(T)]
    auc_all = auc(a["reward_p_nonzero"].ravel(), a["reward_nonzero"].ravel())
    nan_none = lambda v: None if v is None or not math.isfinite(v) else float(v)  # noqa: E731
    per_h = {
        "h": list(range(1, T + 1)),
        "floor_nats": mean(a["floor"]),
        "ll_nats": mean(a["ll"]),
        "excess_joint_nats": mean(a["excess_joint"]),
        "ll_open_loop_nats": mean(a["ll_open_loop"]),
        "excess_open_loop_nats": mean(a["excess_open_loop"]),
        "copy_prev_excess_nats": mean(a["copy_prev_excess"]),
        "copy_ctx_excess_nats": mean(a["copy_ctx_excess"]),
        "nll_bits_per_dim": [v * bpd for v in mean(a["ll"])],
        "elbo_nats": mean(a["elbo"]),
        "elbo_nll_bits_per_dim": [v * bpd for v in mean(a["elbo"])],
        "iwae_nats": mean(a["iwae"]),
        "recon_nats": mean(a["recon"]),
        "kl_nats": mean(a["kl"]),
        "moving_share": [float(v) / dims for v in a["moving_n"].mean(0)],
        "frame_mse_teacher": mean(a["frame_mse_teacher"]),
        "frame_mse_open_loop": mean(a["frame_mse_open_loop"]),
        "reward_nonzero_rate": mean(a["reward_nonzero"]),
        "reward_nll_teacher": mean(a["reward_nll_teacher"]),
        "reward_nll_open_loop": mean(a["reward_nll_open_loop"]),
        "reward_nll_base_rate": mean(a["reward_nll_base_rate"]),
        "reward_acc_teacher": mean(a["reward_acc_teacher"]),
        "reward_acc_open_loop": mean(a["reward_acc_open_loop"]),
        "return_abs_err_open_loop": mean(a["return_abs_err_open_loop"]),
        "return_abs_err_zero": mean(a["return_abs_err_zero"]),
        "return_acc_open_loop": mean(a["return_acc_open_loop"]),
    }
    # ratios that are undefined (None) where nothing moved / where every window has the same reward class
    per_h_defined = {**{k: ratio(*nd) for k, nd in RATIOS.items()},
                     "reward_auc_open_loop": [nan_none(v) for v in auc_h]}
    iwae_tot, elbo_tot, open_tot = a["iwae"].sum(1), a["elbo"].sum(1), a["ll_open_loop"].sum(1)
    pf = lambda x: float(x.sum(1).mean() / T)  # noqa: E731  (a per-horizon metric's mean over h: per frame)
    moving_tot = {k: (float(a[n].sum() / a[d].sum()) if a[d].sum() > 0 else None) for k, (n, d) in RATIOS.items()}
    total = {
        "ll_nats": float(iwae_tot.mean()),
        "ll_nats_sem": sem(iwae_tot),
        "ll_nats_per_frame": float(iwae_tot.mean() / T),
        "nll_bits_per_dim": float(iwae_tot.mean() / T * bpd),
        "floor_nats_per_frame": pf(a["floor"]),
        "excess_joint_nats_per_frame": pf(a["excess_joint"]),
        "excess_open_loop_nats_per_frame": pf(a["excess_open_loop"]),
        "copy_prev_excess_nats_per_frame": pf(a["copy_prev_excess"]),
        "copy_ctx_excess_nats_per_frame": pf(a["copy_ctx_excess"]),
        "elbo_nats": float(elbo_tot.mean()),
        "elbo_nats_sem": sem(elbo_tot),
        "elbo_nll_bits_per_dim": float(elbo_tot.mean() / T * bpd),
        "iwae_nats": float(iwae_tot.mean()),
        "iwae_minus_elbo_nats": float((iwae_tot - elbo_tot).mean()),
        "ll_open_loop_nats": float(open_tot.mean()),
        "ll_open_loop_nats_sem": sem(open_tot),
        "ll_open_loop_nats_per_frame": float(open_tot.mean() / T),
        "ll_open_loop_joint_nats": float(a["ll_open_loop_joint"].mean()),
        "moving_share": float(a["moving_n"].mean() / dims),
        **moving_tot,
        "frame_mse_teacher": float(a["frame_mse_teacher"].mean()),
        "frame_mse_open_loop": float(a["frame_mse_open_loop"].mean()),
        "reward_nonzero_rate": float(a["reward_nonzero"].mean()),
        "reward_nll_teacher": float(a["reward_nll_teacher"].mean()),
        "reward_nll_open_loop": float(a["reward_nll_open_loop"].mean()),
        "reward_nll_base_rate": float(a["reward_nll_base_rate"].mean()),
        "reward_auc_open_loop": nan_none(auc_all),
        "reward_acc_teacher": float(a["reward_acc_teacher"].mean()),
        "reward_acc_open_loop": float(a["reward_acc_open_loop"].mean()),
        # the whole rollout's summed reward: the values at the last horizon
        "return_acc_open_loop": float(a["return_acc_open_loop"][:, -1].mean()),
        "return_abs_err_open_loop": float(a["return_abs_err_open_loop"][:, -1].mean()),
        "return_abs_err_zero": float(a["return_abs_err_zero"][:, -1].mean()),
    }
    table = EpisodeTable.from_windows(episode, {k: a[k] for k in EPISODE_KEYS})
    ci = {}
    if n_boot and len(table.episodes) >= 2:
        for k in CI_KEYS:
            src = {"excess_joint_nats": "excess_joint", "excess_open_loop_nats": "excess_open_loop",
                   "copy_prev_excess_nats": "copy_prev_excess", "copy_ctx_excess_nats": "copy_ctx_excess",
                   "ll_nats": "ll", "ll_open_loop_nats": "ll_open_loop"}.get(k, k)
            ivs = [bootstrap({"m": table}, lambda m, h=h, src=src: m["m"][src][:, h], n_boot=n_boot, seed=seed)
                   for h in range(T)]
            ci[k] = [[_finite(iv.lo), _finite(iv.hi)] for iv in ivs]
            tot = bootstrap({"m": table}, lambda m, src=src: m["m"][src].mean(-1), n_boot=n_boot, seed=seed)
            ci[k + "_per_frame" if k.endswith("nats") else k + "_mean"] = [_finite(tot.lo), _finite(tot.hi)]
    return {
        "model": model.name,
        "latent": bool(model.latent),
        "log_likelihood": (f"importance-weighted bound, K={K}" if model.latent else "exact"),
        "num_samples": K,
        "open_loop_samples": K_open,
        "windows": int(N),
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
        "total": total,
        "ci": ci,
        "per_episode": table.to_json(),
    }


EPISODE_KEYS = ("floor", "ll", "elbo", "ll_open_loop", "excess_joint", "excess_open_loop", "copy_prev_excess",
                "copy_ctx_excess", "moving_n", "moving_abs_err", "moving_within_n", "copy_ctx_moving_abs_err",
                "copy_ctx_moving_within_n", "frame_mse_open_loop", "reward_nonzero", "reward_nll_teacher",
                "reward_nll_open_loop", "reward_nll_base_rate", "return_abs_err_open_loop", "return_abs_err_zero")
"""Per-window metrics whose per-episode sums ``evaluate`` stores (``per_episode``), for paired bootstraps."""


def episode_table(ev: dict) -> EpisodeTable:
    """The per-episode sums of an ``evaluate`` result (or of its ``eval.json`` document)."""
    ev = ev.get("eval", ev)
    if "per_episode" not in ev:
        raise SsmlibError(f"the evaluation of {ev.get('model')} has no per-episode sums (written by an older "
                          f"evaluate: re-score it, scripts/gpu_rescore.sh)")
    return EpisodeTable.from_json(ev["per_episode"])


def format_eval(res: dict, game: str = "") -> str:
    """A short text report of an ``evaluate`` result: totals, then one line per horizon."""
    t, ph = res["total"], {**res["per_horizon"], **res.get("per_horizon_where_defined", {})}
    ci = res.get("ci", {})

    def band(key):
        lo_hi = ci.get(key)
        return f" [{lo_hi[0]:.1f}, {lo_hi[1]:.1f}]" if lo_hi and None not in lo_hi else ""

    def num(v, f=".3f"):
        return "-" if v is None else format(v, f)

    lines = [f"{res['model']} on {res['windows']} test windows of {res.get('episodes', '?')} episodes"
             f"{' of ' + game if game else ''} ({res['log_likelihood']}; open loop K={res['open_loop_samples']}):",
             f"  exact floor {t['floor_nats_per_frame']:.1f} nats/frame; excess over it (nats/frame, 95% CI over "
             f"episodes): joint {t['excess_joint_nats_per_frame']:.1f}{band('excess_joint_nats_per_frame')}, "
             f"open loop {t['excess_open_loop_nats_per_frame']:.1f}{band('excess_open_loop_nats_per_frame')}; "
             f"copy previous frame {t['copy_prev_excess_nats_per_frame']:.1f}, copy last context frame "
             f"{t['copy_ctx_excess_nats_per_frame']:.1f}",
             f"  moving pixels ({100 * t['moving_share']:.2f}% of elements): MAE {num(t['moving_mae'])} "
             f"(copy {num(t['copy_ctx_moving_mae'])}), within {MOVING_TOL}: {num(t['moving_within'])}",
             f"  reward: NLL open loop {t['reward_nll_open_loop']:.3f} (base rate {t['reward_nll_base_rate']:.3f}), "
             f"AUC {num(t['reward_auc_open_loop'])}, "
             f"|return error| at T {t['return_abs_err_open_loop']:.2f} (all-zero {t['return_abs_err_zero']:.2f})",
             "  h  floor     LL joint  excess   LL open   excess   copy-ctx  moving MAE"]
    for i, h in enumerate(ph["h"]):
        mae = ph["moving_mae"][i]
        lines.append(f"  {h:<2} {ph['floor_nats'][i]:9.1f} {ph['ll_nats'][i]:9.1f} {ph['excess_joint_nats'][i]:7.1f} "
                     f"{ph['ll_open_loop_nats'][i]:9.1f} {ph['excess_open_loop_nats'][i]:7.1f} "
                     f"{ph['copy_ctx_excess_nats'][i]:8.1f}  {'-' if mae is None else f'{mae:.3f}'}")
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
