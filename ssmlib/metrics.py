"""The registry of ``evaluate``'s metrics: one :class:`Metric` per number it reports.

``evaluate``'s batch pass (``ssmlib.evaluate``) computes per-window columns, ``(N, T)`` arrays named
like ``"excess_joint"`` or ``"moving_abs_err"``; each entry of :data:`METRICS` says which columns a
reported metric reads and how they are reduced:

* ``per_horizon``: over the windows at each horizon (a key of :data:`PER_HORIZON`); ``"ratio"`` and
  ``"auc"`` can be undefined and go to ``per_horizon_where_defined`` (``None`` there), the others to
  ``per_horizon``;
* ``total``: to the whole-rollout numbers in ``total``, each reduction giving the key ``name + suffix``
  (:data:`TOTALS`);
* ``ci``: an episode-bootstrap interval of the per-horizon means and of their mean over h (``ci``);
* ``episode``: the per-episode sums of its columns are stored (``per_episode``), for paired bootstraps.

Adding a metric: an entry here, and the line computing its column in one of ``evaluate``'s batch
helpers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .stats import auc


@dataclass(frozen=True)
class Metric:
    """One reported metric: its name (the key in ``per_horizon`` / ``total`` / ``ci``), the per-window
    columns it reads, its reductions, whether it gets an interval and per-episode sums, unit, format."""

    name: str
    cols: tuple[str, ...]
    per_horizon: str | None = "mean"
    total: tuple[str, ...] = ()
    ci: bool = False
    episode: bool = False
    unit: str = "nats"
    fmt: str = ".1f"
    doc: str = ""

    @property
    def where_defined(self) -> bool:
        """Its per-horizon values can be undefined (``per_horizon_where_defined``, ``None`` there)."""
        return self.per_horizon in WHERE_DEFINED

    @property
    def ci_total_key(self) -> str:
        """The key of the interval of its mean over the horizons."""
        return self.name + ("_per_frame" if self.name.endswith("nats") else "_mean")

    def total_keys(self) -> list[str]:
        return [self.name + TOTALS[r][0] for r in self.total]


@dataclass(frozen=True)
class Context:
    """What the reductions need besides the columns: the horizon, the frame's elements, bits per nat."""

    T: int
    dims: int

    @property
    def bpd(self) -> float:  # nats of a frame -> bits per dimension of its negative
        return -1.0 / (self.dims * math.log(2))


def _mean(x: np.ndarray) -> list[float]:
    return [float(v) for v in x.mean(0)]


def _ratio_h(num: np.ndarray, den: np.ndarray, c: Context) -> list[float | None]:
    d = den.sum(0)
    return [float(v) if np.isfinite(v) else None for v in np.divide(num.sum(0), d, out=np.full(c.T, np.nan),
                                                                    where=d > 0)]


def _nan_none(v):
    return None if v is None or not math.isfinite(v) else float(v)


def _sem(x: np.ndarray) -> float:
    return float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else float("nan")


PER_HORIZON = {
    "mean": lambda c, x: _mean(x),  # mean over windows
    "bits": lambda c, x: [v * c.bpd for v in _mean(x)],  # -mean / (dims ln 2): bits per dimension
    "share": lambda c, x: [float(v) / c.dims for v in x.mean(0)],  # mean count / elements of a frame
    "ratio": lambda c, num, den: _ratio_h(num, den, c),  # sum num / sum den over windows (None: den 0)
    "auc": lambda c, p, y: [_nan_none(auc(p[:, h], y[:, h])) for h in range(c.T)],  # pooled over windows
}
"""Reductions over the windows at each horizon: ``f(context, *columns) -> list`` of length T."""
WHERE_DEFINED = frozenset({"ratio", "auc"})
"""Per-horizon reductions that can be undefined."""

TOTALS = {
    "sum_mean": ("", lambda c, x: float(x.sum(1).mean())),  # the rollout's sum over h, mean over windows
    "sum_sem": ("_sem", lambda c, x: _sem(x.sum(1))),  # its standard error over windows
    "per_frame": ("_per_frame", lambda c, x: float(x.sum(1).mean() / c.T)),  # per-horizon mean, mean over h
    "bits": ("", lambda c, x: float(x.sum(1).mean() / c.T * c.bpd)),
    "mean": ("", lambda c, x: float(x.mean())),  # over windows and horizons
    "share": ("", lambda c, x: float(x.mean() / c.dims)),
    "last": ("", lambda c, x: float(x[:, -1].mean())),  # at the last horizon (the whole rollout's sum)
    "gap": ("", lambda c, a, b: float((a.sum(1) - b.sum(1)).mean())),  # of the rollout sums
    "ratio": ("", lambda c, num, den: float(num.sum() / den.sum()) if den.sum() > 0 else None),
    "auc": ("", lambda c, p, y: _nan_none(auc(p.ravel(), y.ravel()))),
}
"""Reductions to ``total``: ``reduction -> (key suffix, f(context, *columns))``."""


def _m(name, cols, per_horizon="mean", total=(), **kw) -> Metric:
    return Metric(name, (cols,) if isinstance(cols, str) else tuple(cols), per_horizon,
                  (total,) if isinstance(total, str) else tuple(total), **kw)


METRICS: tuple[Metric, ...] = (
    _m("floor_nats", "floor", total="per_frame", episode=True,
       doc="F(o_h) = -sum H_b(o_h): the exact floor of any per-pixel Bernoulli model on the target frame"),
    _m("ll_nats", "ll", total=("sum_mean", "sum_sem", "per_frame"), ci=True, episode=True,
       doc="joint log-likelihood: teacher-forced / exact, the importance-weighted increments for latent models"),
    _m("excess_joint_nats", "excess_joint", total="per_frame", ci=True, episode=True,
       doc="F(o_h) - joint LL: a sum of per-pixel KL(Ber(o) || Ber(p)) for an exact LL"),
    _m("ll_open_loop_nats", "ll_open_loop", total=("sum_mean", "sum_sem", "per_frame"), ci=True, episode=True,
       doc="open-loop predictive log p(o_h | o_<=0, a), logmeanexp over K prior samples"),
    _m("excess_open_loop_nats", "excess_open_loop", total="per_frame", ci=True, episode=True,
       doc="F(o_h) - open-loop LL"),
    _m("copy_prev_excess_nats", "copy_prev_excess", total="per_frame", ci=True, episode=True,
       doc="excess of the teacher-forced reference copying the previous real frame (tuned eps)"),
    _m("copy_ctx_excess_nats", "copy_ctx_excess", total="per_frame", ci=True, episode=True,
       doc="excess of the open-loop reference copying the last context frame (tuned eps)"),
    _m("nll_bits_per_dim", "ll", "bits", total="bits", unit="bits/dim", fmt=".3f",
       doc="the joint negative log-likelihood in bits per dimension"),
    _m("elbo_nats", "elbo", total=("sum_mean", "sum_sem"), episode=True,
       doc="per-step ELBO E_q[log p(o_h|...)] - KL (latent models), the exact LL otherwise"),
    _m("elbo_nll_bits_per_dim", "elbo", "bits", total="bits", unit="bits/dim", fmt=".3f",
       doc="the negative ELBO in bits per dimension"),
    _m("iwae_nats", "iwae", total="sum_mean", doc="the importance-weighted bound's increments (= ll_nats)"),
    _m("recon_nats", "recon", doc="E_q[log p(o_h | ...)]: the ELBO's reconstruction term"),
    _m("kl_nats", "kl", doc="the ELBO's KL term"),
    _m("moving_share", "moving_n", "share", total="share", episode=True, unit="share", fmt=".4f",
       doc="the share of a frame's elements that differ from the last context frame o_0"),
    _m("frame_mse_teacher", "frame_mse_teacher", total="mean", unit="mse", fmt=".4f",
       doc="teacher-forced mean squared error of the predicted frame"),
    _m("frame_mse_open_loop", "frame_mse_open_loop", total="mean", episode=True, unit="mse", fmt=".4f",
       doc="mean squared error of the open-loop mean frame sigmoid(l_h)"),
    _m("reward_nonzero_rate", "reward_nonzero", total="mean", episode=True, unit="share", fmt=".3f",
       doc="the share of steps with a nonzero reward"),
    _m("reward_nll_teacher", "reward_nll_teacher", total="mean", episode=True, fmt=".3f",
       doc="-log p(r_h), teacher-forced / filtered"),
    _m("reward_nll_open_loop", "reward_nll_open_loop", total="mean", ci=True, episode=True, fmt=".3f",
       doc="-log p(r_h) from open-loop imagination"),
    _m("reward_nll_base_rate", "reward_nll_base_rate", total="mean", episode=True, fmt=".3f",
       doc="-log f_h(r_h), the empirical reward distribution at that horizon (oracle of the marginal)"),
    _m("reward_acc_teacher", "reward_acc_teacher", total="mean", unit="share", fmt=".3f",
       doc="share of steps whose teacher-forced predicted reward is right (old readers; not judged alone)"),
    _m("reward_acc_open_loop", "reward_acc_open_loop", total="mean", unit="share", fmt=".3f",
       doc="share of steps whose open-loop expected reward is within 0.5"),
    _m("return_abs_err_open_loop", "return_abs_err_open_loop", total="last", ci=True, episode=True,
       unit="reward", fmt=".2f", doc="|sum_{t<=h} r_hat_t - sum_{t<=h} r_t|, r_hat = reward_expected"),
    _m("return_abs_err_zero", "return_abs_err_zero", total="last", episode=True, unit="reward", fmt=".2f",
       doc="|sum_{t<=h} r_t|: the all-zero predictor's return error"),
    _m("return_acc_open_loop", "return_acc_open_loop", total="last", unit="share", fmt=".3f",
       doc="share of windows whose imagined return is within 0.5"),
    _m("moving_mae", ("moving_abs_err", "moving_n"), "ratio", total="ratio", episode=True, unit="abs", fmt=".3f",
       doc="mean |sigmoid(l_h) - o_h| over the elements that moved (o_h != o_0)"),
    _m("moving_within", ("moving_within_n", "moving_n"), "ratio", total="ratio", episode=True, unit="share",
       fmt=".3f", doc="share of moved elements the open-loop mean frame predicts within MOVING_TOL"),
    _m("copy_ctx_moving_mae", ("copy_ctx_moving_abs_err", "moving_n"), "ratio", total="ratio", episode=True,
       unit="abs", fmt=".3f", doc="the copy_ctx reference's moving_mae, |o_0 - o_h|"),
    _m("copy_ctx_moving_within", ("copy_ctx_moving_within_n", "moving_n"), "ratio", total="ratio", episode=True,
       unit="share", fmt=".3f", doc="the copy_ctx reference's moving_within"),
    _m("reward_auc_open_loop", ("reward_p_nonzero", "reward_nonzero"), "auc", total="auc", unit="auc", fmt=".3f",
       doc="AUC of open-loop P(r_h != 0) against r_h != 0 (NaN -> None with one class)"),
    _m("iwae_minus_elbo_nats", ("iwae", "elbo"), None, total="gap",
       doc="the rollout's importance-weighted bound minus its ELBO"),
    _m("ll_open_loop_joint_nats", "ll_open_loop_joint", None, total="mean",
       doc="log p(o_1..o_T | o_<=0, a) of the whole rollout, logmeanexp_k of the summed frame LLs"),
)
"""Every metric ``evaluate`` reports."""

BY_NAME = {m.name: m for m in METRICS}
"""The registry by metric name (the key in ``per_horizon`` / ``per_horizon_where_defined``)."""
TOTAL_METRIC = {k: m for m in METRICS for k in m.total_keys()}
"""The registry by key in ``total``."""


def episode_columns() -> tuple[str, ...]:
    """The per-window columns whose per-episode sums are stored, in registry order."""
    return tuple(dict.fromkeys(c for m in METRICS if m.episode for c in m.cols))


def summarise_per_horizon(cols: dict, c: Context) -> tuple[dict, dict]:
    """``(per_horizon, per_horizon_where_defined)`` of the per-window columns ``cols``."""
    per_h, defined = {"h": list(range(1, c.T + 1))}, {}
    for m in METRICS:
        if m.per_horizon is not None:
            (defined if m.where_defined else per_h)[m.name] = PER_HORIZON[m.per_horizon](c, *(cols[k] for k in m.cols))
    return per_h, defined


def summarise_total(cols: dict, c: Context) -> dict:
    """The whole-rollout numbers (``total``) of the per-window columns ``cols``."""
    total = {}
    for m in METRICS:
        for r in m.total:
            suffix, f = TOTALS[r]
            total[m.name + suffix] = f(c, *(cols[k] for k in m.cols))
    return total
