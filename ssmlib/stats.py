"""Confidence intervals that respect how the test data clusters: a paired bootstrap over test episodes
(and over training seeds, when a study has several).

Test windows are not independent: the ~10k windows of the MsPacman test split come from ~30 episodes,
and windows of one episode share its maze, its level and its ghosts. So the unit of resampling is the
**episode**, never the window. ``ssmlib.evaluate`` therefore stores, per test episode, the SUM of every
per-window metric and the number of windows (a :class:`EpisodeTable`); any mean over windows is then a
ratio of sums, and one bootstrap replicate is a vector of multinomial episode counts ``w``:

.. math:: \\bar m^{(b)} = \\frac{\\sum_e w^{(b)}_e \\, S_e}{\\sum_e w^{(b)}_e \\, n_e},
          \\qquad w^{(b)} \\sim \\mathrm{Multinomial}(E, \\tfrac{1}{E}, \\dots, \\tfrac{1}{E})

with ``S_e`` the sum of the metric over the ``n_e`` windows of episode ``e``. **Paired**: every model of a
comparison is resampled with the SAME ``w`` (they were scored on the same test episodes), so a difference
or a ratio of two models keeps only the variation that is not shared. **Seeds**: when a model has several
training seeds, a replicate first draws seeds with replacement (independently per model: seeds are not
paired), then averages the seeds' ratio-of-sums means. With one seed (our model zoo) the interval covers
test-set variation only, and every verdict says so (``scale``).

Intervals are percentile intervals at ``level`` (95% by default) of ``n_boot`` replicates; replicate 0
is the point estimate (all weights one).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from .errors import SsmlibError

N_BOOT = 2000
LEVEL = 0.95


@dataclass
class EpisodeTable:
    """Per-episode sums of per-window metrics of one model (one seed) on one set of test windows.

    ``episodes``: episode ids ``(E,)``; ``windows``: windows per episode ``(E,)``; ``sums[name]``: the sum
    over that episode's windows, ``(E,)`` or ``(E, T)`` (per horizon).
    """

    episodes: np.ndarray
    windows: np.ndarray
    sums: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def from_windows(cls, episode_of_window: Sequence[int], values: Mapping[str, np.ndarray]) -> "EpisodeTable":
        """Sum per-window values ``(N, ...)`` by episode."""
        ep = np.asarray(episode_of_window)
        ids, inv, counts = np.unique(ep, return_inverse=True, return_counts=True)
        sums = {}
        for k, v in values.items():
            v = np.asarray(v, dtype=np.float64)
            out = np.zeros((len(ids),) + v.shape[1:])
            np.add.at(out, inv, v)
            sums[k] = out
        return cls(ids.astype(np.int64), counts.astype(np.int64), sums)

    @classmethod
    def from_json(cls, doc: Mapping) -> "EpisodeTable":
        return cls(np.asarray(doc["episodes"], np.int64), np.asarray(doc["windows"], np.int64),
                   {k: np.asarray(v, np.float64) for k, v in doc["sums"].items()})

    def to_json(self) -> dict:
        return {"episodes": self.episodes.tolist(), "windows": self.windows.tolist(),
                "sums": {k: np.asarray(v).tolist() for k, v in self.sums.items()}}

    def mean(self, name: str) -> np.ndarray:
        """The mean over all windows (the point estimate), ``()`` or ``(T,)``."""
        return self.sums[name].sum(0) / self.windows.sum()

    def aligned(self, episodes: np.ndarray) -> "EpisodeTable":
        """This table on ``episodes`` (in that order); an episode it lacks counts zero windows."""
        pos = {int(e): i for i, e in enumerate(self.episodes)}
        idx = np.array([pos.get(int(e), -1) for e in episodes])
        have = idx >= 0
        win = np.where(have, self.windows[np.maximum(idx, 0)], 0)
        sums = {}
        for k, v in self.sums.items():
            take = v[np.maximum(idx, 0)]
            take[~have] = 0
            sums[k] = take
        return EpisodeTable(np.asarray(episodes, np.int64), win, sums)


@dataclass
class Interval:
    """A point estimate with its bootstrap interval, and what it rests on."""

    point: float
    lo: float
    hi: float
    level: float = LEVEL
    n_boot: int = N_BOOT
    episodes: int = 0
    seeds: int = 1
    windows: int = 0

    def to_json(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}

    def __format__(self, spec: str) -> str:
        spec = spec or ".3g"
        return f"{self.point:{spec}} [{self.lo:{spec}}, {self.hi:{spec}}]"


def episode_weights(n_episodes: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_boot + 1, E)`` multinomial episode counts; row 0 is all ones (the point estimate)."""
    w = rng.multinomial(n_episodes, np.full(n_episodes, 1.0 / n_episodes), size=n_boot).astype(np.float64)
    return np.vstack([np.ones((1, n_episodes)), w])


def bootstrap(tables: Mapping[str, Sequence[EpisodeTable] | EpisodeTable],
              statistic: Callable[[dict[str, dict[str, np.ndarray]]], np.ndarray],
              n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0) -> Interval:
    """Paired episode (and seed) bootstrap of a scalar ``statistic`` of several models' window means.

    ``tables[model]``: one :class:`EpisodeTable` per seed (or one table). ``statistic(means)`` gets
    ``means[model][metric]``, arrays ``(R, ...)`` over ``R = n_boot + 1`` replicates (row 0 the point
    estimate), and returns ``(R,)``. Episodes are the union of every table's episodes, resampled with
    the same weights for every model (paired); a model's seeds are resampled independently.
    """
    if not tables:
        raise SsmlibError("bootstrap needs at least one table")
    rng = np.random.default_rng(seed)
    per_model = {m: ([t] if isinstance(t, EpisodeTable) else list(t)) for m, t in tables.items()}
    if any(not ts for ts in per_model.values()):
        raise SsmlibError("every model needs at least one seed's table")
    episodes = np.unique(np.concatenate([t.episodes for ts in per_model.values() for t in ts]))
    if len(episodes) < 2:
        raise SsmlibError(f"a bootstrap over episodes needs at least 2 episodes, got {len(episodes)}")
    W = episode_weights(len(episodes), n_boot, rng)  # (R, E)
    R = W.shape[0]
    means: dict[str, dict[str, np.ndarray]] = {}
    for m, ts in per_model.items():
        al = [t.aligned(episodes) for t in ts]
        S = len(al)
        # seed draws: (R, S) indices; replicate 0 keeps every seed once
        pick = rng.integers(0, S, size=(R, S))
        pick[0] = np.arange(S)
        den = np.stack([W @ t.windows for t in al], 1)  # (R, S)
        if np.any(den <= 0):
            # a replicate that drew only episodes this model has no window in: give it the full weight
            den = np.where(den <= 0, np.nan, den)
        means[m] = {}
        for k in al[0].sums:
            num = np.stack([np.tensordot(W, t.sums[k], axes=(1, 0)) for t in al], 1)  # (R, S, ...)
            per_seed = num / den.reshape(den.shape + (1,) * (num.ndim - 2))
            chosen = np.take_along_axis(per_seed, pick.reshape(pick.shape + (1,) * (num.ndim - 2)), 1)
            means[m][k] = np.nanmean(chosen, 1)
    vals = np.asarray(statistic(means), np.float64).reshape(R)
    boot = vals[1:][np.isfinite(vals[1:])]
    a = (1 - level) / 2
    lo, hi = (np.quantile(boot, [a, 1 - a]) if len(boot) else (np.nan, np.nan))
    seeds = max(len(ts) for ts in per_model.values())
    windows = int(sum(t.windows.sum() for t in next(iter(per_model.values()))))
    return Interval(float(vals[0]), float(lo), float(hi), level, n_boot, len(episodes), seeds, windows)


def seed_difference(a: Sequence[float], b: Sequence[float], n_boot: int = N_BOOT, level: float = LEVEL,
                    seed: int = 0) -> Interval:
    """Mean of ``a`` minus mean of ``b`` with a percentile bootstrap over each group's seeds (resampled
    independently): for one number per seed, e.g. the area under a training curve, where there are no
    episodes to pair. Two seeds per group at least."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2 or len(b) < 2:
        raise SsmlibError(f"a seed bootstrap needs at least 2 seeds per group, got {len(a)} and {len(b)}")
    rng = np.random.default_rng(seed)
    ra = a[rng.integers(0, len(a), (n_boot, len(a)))].mean(1)
    rb = b[rng.integers(0, len(b), (n_boot, len(b)))].mean(1)
    q = (1 - level) / 2
    lo, hi = np.quantile(ra - rb, [q, 1 - q])
    return Interval(float(a.mean() - b.mean()), float(lo), float(hi), level, n_boot, seeds=len(a) + len(b))


def decide(iv: Interval, threshold: float, better: str = "below", strict: bool = False) -> str:
    """A three-way verdict of an interval against a threshold written down before the numbers.

    ``better='below'``: the claim is ``statistic <= threshold`` (``<`` when ``strict``): ``reproduced`` if the
    whole interval satisfies it, ``not reproduced`` if no point of the interval does, ``inconclusive``
    otherwise (or when the interval is not finite). ``'above'``: the claim is ``statistic > threshold``,
    mirrored: reproduced if ``lo > threshold``, not reproduced if ``hi <= threshold``. A difference that must be negative (``better='below', strict=True``) is thus never
    reproduced by two identical models (interval [0, 0]).
    """
    lo, hi = iv.lo, iv.hi
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "inconclusive"
    if better == "below":
        ok = hi < threshold if strict else hi <= threshold
        bad = lo >= threshold if strict else lo > threshold
    elif better == "above":
        ok, bad = lo > threshold, hi <= threshold
    else:
        raise SsmlibError(f"better must be 'below' or 'above', got {better!r}")
    return "reproduced" if ok else "not reproduced" if bad else "inconclusive"


def combine_all(verdicts: list[str]) -> str:
    """Every part must hold: not reproduced if any part is not, reproduced if all are, else inconclusive."""
    if not verdicts or any(v == "not run" for v in verdicts):
        return "not run" if verdicts and all(v == "not run" for v in verdicts) else "inconclusive"
    if "not reproduced" in verdicts:
        return "not reproduced"
    return "reproduced" if all(v == "reproduced" for v in verdicts) else "inconclusive"


def combine_any(verdicts: list[str]) -> str:
    """One instance suffices: reproduced if any is, not reproduced if all are not, else inconclusive."""
    if not verdicts or all(v == "not run" for v in verdicts):
        return "not run"
    if "reproduced" in verdicts:
        return "reproduced"
    return "not reproduced" if all(v == "not reproduced" for v in verdicts) else "inconclusive"


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` by ranks (Mann-Whitney U):

    .. math:: \\mathrm{AUC} = \\frac{\\sum_{i: y_i = 1} \\mathrm{rank}_i - n_1 (n_1 + 1) / 2}{n_1 n_0}

    with average ranks for ties. NaN when one class is absent (nothing to rank).
    """
    s = np.asarray(scores, np.float64).ravel()
    y = np.asarray(labels).astype(bool).ravel()
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    # average ranks of ties: each run of equal scores gets the mean of its positions (1-based)
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def auc_by_episode(scores: np.ndarray, labels: np.ndarray, episodes: np.ndarray, n_boot: int = N_BOOT,
                   level: float = LEVEL, seed: int = 0) -> Interval:
    """The pooled AUC of per-window ``scores`` for ``labels`` with a bootstrap over the windows' ``episodes``
    (an AUC is no ratio of sums, so the replicate repeats each drawn episode's windows). Replicates with one
    class only are dropped."""
    s, y, ep = np.asarray(scores, np.float64), np.asarray(labels).astype(bool), np.asarray(episodes)
    ids, inv = np.unique(ep, return_inverse=True)
    if len(ids) < 2:
        raise SsmlibError(f"a bootstrap over episodes needs at least 2 episodes, got {len(ids)}")
    members = [np.flatnonzero(inv == i) for i in range(len(ids))]
    W = episode_weights(len(ids), n_boot, np.random.default_rng(seed)).astype(int)
    vals = []
    for w in W[1:]:
        idx = np.concatenate([np.repeat(members[i], w[i]) for i in np.flatnonzero(w)])
        vals.append(auc(s[idx], y[idx]))
    boot = np.asarray(vals)[np.isfinite(vals)]
    q = (1 - level) / 2
    lo, hi = np.quantile(boot, [q, 1 - q]) if len(boot) else (np.nan, np.nan)
    return Interval(auc(s, y), float(lo), float(hi), level, n_boot, len(ids), 1, len(s))


# --------------------------------------------------------------------------------------------------
# power: how many seeds a comparison of two arms needs (the I2A campaign's design)


def pooled_sd(groups: Mapping[str, Sequence[float]]) -> tuple[float, int]:
    """The pooled within-group standard deviation of per-seed scores and its degrees of freedom:

    .. math:: s_p = \\sqrt{\\frac{\\sum_g \\sum_i (x_{gi} - \\bar x_g)^2}{\\sum_g (n_g - 1)}}

    Groups with one value add nothing. Raises when no group has two values.
    """
    ss, df = 0.0, 0
    for values in groups.values():
        x = np.asarray(values, np.float64)
        if len(x) >= 2:
            ss += float(((x - x.mean()) ** 2).sum())
            df += len(x) - 1
    if df == 0:
        raise SsmlibError("a pooled standard deviation needs a group with at least two seeds")
    return math.sqrt(ss / df), df


def _z(p: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(p)


def detectable_difference(sd: float, seeds_per_arm: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true difference of two arms' means that a two-sided test at level ``alpha`` detects
    with probability ``power``, with ``seeds_per_arm`` seeds per arm whose scores spread with standard
    deviation ``sd`` (normal approximation):

    .. math:: \\delta = (z_{1-\\alpha/2} + z_{\\mathrm{power}}) \\, s \\, \\sqrt{2 / n}
    """
    if seeds_per_arm < 1 or not 0 < alpha < 1 or not 0 < power < 1:
        raise SsmlibError("seeds_per_arm >= 1, 0 < alpha < 1 and 0 < power < 1 are required")
    return (_z(1 - alpha / 2) + _z(power)) * sd * math.sqrt(2.0 / seeds_per_arm)


def seeds_needed(sd: float, difference: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Seeds per arm for ``detectable_difference`` to reach ``difference``:
    :math:`n = \\lceil 2 \\, ((z_{1-\\alpha/2} + z_{\\mathrm{power}}) \\, s / \\delta)^2 \\rceil`."""
    if difference <= 0:
        raise SsmlibError("the difference to detect must be positive")
    return max(2, math.ceil(2.0 * ((_z(1 - alpha / 2) + _z(power)) * sd / difference) ** 2))
