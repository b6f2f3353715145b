"""How many prior samples the open-loop likelihood of a stochastic model needs (``results/open_loop_samples/``).

The evaluator scores what a model imagines, ``h`` steps after the context, with the recorded actions. For a model
whose imagination samples (sSSM, dSSM-VAE) that likelihood is a mixture over prior samples, estimated with ``K``
of them (``ssmlib.evaluate``; the model-zoo campaign uses ``K = 4``, its ``eval_samples``):

.. math:: \\hat L_K(h) = \\log \\frac{1}{K} \\sum_{k=1}^K \\mathrm{Ber}(o_h \\mid \\ell^{(k)}_h),
          \\qquad \\mathbb{E}\\,\\hat L_K \\le \\mathbb{E}\\,\\hat L_{2K} \\le \\log p(o_h \\mid o_{\\le 0}, a)

(Jensen; the expectation rises with ``K`` towards the true log-likelihood, as for the importance-weighted bound).
A frame has 96,000 Bernoulli pixels, so two samples' log-likelihoods differ by hundreds of nats and the estimate is
close to the best of ``K`` samples: how far ``K = 4`` is from the limit is a property of the model, and it can
grow as a model learns to use its latent. The campaign's stop rule and claim 3 compare such estimates across
training and across models, so this study measures the gap.

For each checkpoint, ``K_max`` prior samples per test window (:func:`sample_log_likelihoods`); for each ``K`` in
``ks``, the mean of :math:`\\hat L_K` over the ``K_max / K`` disjoint groups of ``K`` samples (an unbiased
estimate of its expectation, :func:`estimates_by_k`); the excess ``F(o_h) - \\hat L_K`` per window, averaged
over horizons; episode-bootstrap intervals of each excess, of each checkpoint's drop from ``K`` to ``K_max``,
and of the difference between two checkpoints at each ``K`` (:func:`summarise`).

``python scripts/open_loop_samples.py --data DIR --checkpoint NAME=PATH ... --out results/open_loop_samples/<game>.json``
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..config import CONTEXT, RESULTS_DIR, jump_name
from ..errors import SsmlibError
from ..models import logmeanexp
from ..stats import EpisodeTable, bootstrap

KS = (1, 2, 4, 8, 16, 32, 64)
"""The sample counts compared by default (each divides ``K_max`` = 64)."""


def check_ks(ks, k_max: int) -> tuple[int, ...]:
    """``ks`` sorted, each a divisor of ``k_max`` (so that ``k_max`` samples give whole groups)."""
    ks = tuple(sorted(set(int(k) for k in ks)))
    bad = [k for k in ks if k < 1 or k_max % k]
    if not ks or bad:
        raise SsmlibError(f"every K must divide K_max = {k_max} (got {', '.join(map(str, bad or ks))}); "
                          f"e.g. --ks {','.join(str(k) for k in KS if k_max % k == 0)}")
    return ks


def estimates_by_k(log_p: np.ndarray, ks) -> dict[int, np.ndarray]:
    """Per ``K``: the mean over disjoint groups of ``K`` samples of ``logmeanexp`` within the group.

    ``log_p``: ``(K_max, ...)`` per-sample log-likelihoods; returns ``{K: (...)}``. Samples ``g*K .. g*K+K-1``
    form group ``g``, so every sample is used once per ``K``."""
    k_max = log_p.shape[0]
    out = {}
    for k in check_ks(ks, k_max):
        groups = torch.from_numpy(np.asarray(log_p, np.float64)).reshape(k_max // k, k, *log_p.shape[1:])
        out[k] = logmeanexp(groups, dim=1).mean(0).numpy()  # L_K = log (1/K) sum_k Ber(o_h | l^(k)), per group
    return out


@torch.no_grad()
def sample_log_likelihoods(model, sampler, k_max: int, max_windows: int, batch_size: int = 8,
                           chunk: int = 16, seed: int = 0) -> dict[str, np.ndarray]:
    """``k_max`` open-loop prior rollouts per test window of ``sampler``: ``log_p`` ``(k_max, N, T)`` nats, the
    exact ``floor`` ``(N, T)``, and each window's ``episode`` and ``start``. Samples are drawn ``chunk`` at a time
    (memory), from a fork of torch's RNG seeded with ``seed``. A model that imagines deterministically (dSSM-DET,
    AR, RAR) has one future: its exact log-likelihood fills every row, a K-free reference on the same windows."""
    from ..evaluate import bernoulli_floor, prior_sample_logits, sample_log_likelihoods as sample_ll

    if k_max % chunk:
        raise SsmlibError(f"K_max = {k_max} must be a multiple of the chunk ({chunk})")
    dev = next(model.parameters()).device
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("log_p", "floor", "episode", "start")}
    with torch.random.fork_rng(devices=[dev.index or 0] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        for batch in sampler.iterate(batch_size, max_windows=max_windows):
            frames = batch["frames"]
            T = frames.shape[1] - CONTEXT
            acts = batch["actions"][:, CONTEXT - 1:CONTEXT - 1 + T]
            target = frames[:, CONTEXT:]
            s0 = model.initial_state(frames[:, :CONTEXT])
            if model.stochastic:
                parts = [sample_ll(prior_sample_logits(model, s0, acts, chunk), target, chunk)
                         for _ in range(k_max // chunk)]
                log_p = torch.cat(parts, 0)
            else:  # one future, its exact likelihood: the same at every K (a reference on the same windows)
                logits = model.imagine(s0, acts, decode=True, sample=False).frame_logits
                log_p = sample_ll(logits, target, 1).expand(k_max, -1, -1)
            cols["log_p"].append(log_p.double().cpu().numpy())
            cols["floor"].append(bernoulli_floor(target).double().cpu().numpy())
            cols["episode"].append(batch["episode"].cpu().numpy())
            cols["start"].append(batch["start"].cpu().numpy())
    return {"log_p": np.concatenate(cols["log_p"], 1), "floor": np.concatenate(cols["floor"], 0),
            "episode": np.concatenate(cols["episode"]).astype(np.int64),
            "start": np.concatenate(cols["start"]).astype(np.int64)}


def excess_rows(samples: dict[str, np.ndarray], ks) -> dict[str, list]:
    """Per window and horizon, the open-loop excess ``F(o_h) - L_K(h)`` for every ``K`` (nats/frame, to 0.1), in
    the form a results file stores (``excess[str(K)]``: one list of ``T`` floats per window)."""
    est = estimates_by_k(samples["log_p"], ks)
    return {"episode": samples["episode"].tolist(), "start": samples["start"].tolist(),
            "excess": {str(k): np.round(samples["floor"] - v, 1).tolist() for k, v in est.items()}}


def _table(rows: dict, columns=None) -> EpisodeTable:
    """Per window, each ``K``'s excess averaged over the horizons in ``columns`` (default all)."""
    pick = (lambda v: v) if columns is None else (lambda v: v[:, list(columns)])  # noqa: E731
    return EpisodeTable.from_windows(rows["episode"], {f"k{k}": pick(np.asarray(v, np.float64)).mean(1)
                                                       for k, v in rows["excess"].items()})


def jumpy_ratio(doc: dict, jumpy: str, base: str, jump: int, n_boot: int = 2000, seed: int = 0) -> dict:
    """Claim 3's accuracy statistic at every ``K``: the jump-``jump`` checkpoint's open-loop excess over the
    one-step checkpoint's at matched environment steps (chunk ``j`` of the jumpy model ends at env step
    ``jump*(j+1)``, the one-step model's horizon ``jump*(j+1)``), paired by episode (the two models' windows
    differ). ``{K: Interval}``."""
    runs = doc["checkpoints"]
    T = len(next(iter(runs[base]["windows"]["excess"].values()))[0])  # any K: K = 1 need not have been asked
    chunks = list(range(T // jump))
    if not chunks:
        raise SsmlibError(f"a jump of {jump} leaves no matched step within {T} horizons")
    ks = sorted(int(k) for k in runs[base]["windows"]["excess"])
    tables = {"jumpy": _table(runs[jumpy]["windows"], chunks),
              "base": _table(runs[base]["windows"], [jump * (j + 1) - 1 for j in chunks])}
    return {k: bootstrap(tables, lambda m, k=k: m["jumpy"][f"k{k}"] / m["base"][f"k{k}"], n_boot, seed=seed)
            for k in ks}


def summarise(doc: dict, n_boot: int = 2000, seed: int = 0, names=None, pairs=None) -> dict:
    """The study's readings from a results ``doc`` (``checkpoints[name]['windows']`` as :func:`excess_rows`), each
    over the mean of the horizons ``h = 1..T`` of a window:

    * ``excess[name][K]``: mean open-loop excess with its 95% episode-bootstrap interval;
    * ``drop[name][K]``: ``excess(K) - excess(K_max)``, how much ``K`` samples overstate the excess that
      ``K_max`` give (paired over windows);
    * ``difference[(a, b)][K]``: ``excess_a(K) - excess_b(K)`` for every pair of checkpoints scored on the same
      windows, paired over episodes, and whether its sign is decided (the interval excludes 0) at each ``K``.

    ``names`` restricts it to those checkpoints and ``pairs`` the differences to those pairs (default: every
    pair of ``names``; a study that grows lease by lease has too many for all of them).
    """
    runs = {n: doc["checkpoints"][n] for n in (doc["checkpoints"] if names is None else names)}
    if not runs:
        raise SsmlibError("no checkpoint to summarise")
    ks = sorted(int(k) for k in next(iter(runs.values()))["windows"]["excess"])
    k_max = ks[-1]
    tables = {name: _table(r["windows"]) for name, r in runs.items()}
    out = {"ks": ks, "excess": {}, "drop": {}, "difference": {}}
    for name, t in tables.items():
        out["excess"][name] = {k: _excess(t, k, n_boot, seed) for k in ks}
        out["drop"][name] = {k: bootstrap({name: t}, lambda m, k=k, n=name: m[n][f"k{k}"] - m[n][f"k{k_max}"],
                                          n_boot, seed=seed) for k in ks[:-1]}
    names = list(runs)
    todo = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]] if pairs is None else [tuple(p) for p in pairs]
    for a, b in todo:
        if runs[a]["windows"]["start"] != runs[b]["windows"]["start"] or \
                runs[a]["windows"]["episode"] != runs[b]["windows"]["episode"]:
            continue  # different test windows (another game or data): not paired
        out["difference"][(a, b)] = {
            k: bootstrap({a: tables[a], b: tables[b]}, lambda m, k=k, a=a, b=b: m[a][f"k{k}"] - m[b][f"k{k}"],
                         n_boot, seed=seed) for k in ks}
    return out


def _excess(table: EpisodeTable, k: int, n_boot: int, seed: int):
    return bootstrap({"m": table}, lambda m: m["m"][f"k{k}"], n_boot, seed=seed)


def excess_at(doc: dict, name: str, k: int, n_boot: int = 2000, seed: int = 0):
    """One checkpoint's open-loop excess with ``k`` prior samples (mean over its windows and horizons) and its 95%
    episode-bootstrap interval, as in :func:`summarise`."""
    return _excess(_table(doc["checkpoints"][name]["windows"]), k, n_boot, seed)


def sign(iv) -> str:
    """``'+'`` or ``'-'`` when the interval excludes 0, else ``'?'`` (the sign is not decided)."""
    return "+" if iv.lo > 0 else "-" if iv.hi < 0 else "?"


def ordering_flips(summary: dict, k_small: int, k_large: int | None = None) -> list[tuple[str, str]]:
    """Pairs of checkpoints whose decided order at ``k_small`` samples is not the order at ``k_large`` (default
    the largest ``K``): the reading the smaller estimate gives is overturned, or left undecided, by more samples."""
    k_large = k_large or summary["ks"][-1]
    return [pair for pair, by_k in summary["difference"].items()
            if sign(by_k[k_small]) != "?" and sign(by_k[k_small]) != sign(by_k[k_large])]


def markdown(summary: dict, doc: dict, pairs=None) -> str:
    """The study as Markdown tables: excess by ``K`` per checkpoint, then the differences of ``pairs`` (default
    every paired one; ``[]`` for none)."""
    ks = summary["ks"]
    head = "| checkpoint | frames | " + " | ".join(f"K = {k}" for k in ks) + f" | K = {ks[0]} minus K = {ks[-1]} |"
    lines = [head, "|" + "---|" * (len(ks) + 3)]
    for name, by_k in summary["excess"].items():
        frames = doc["checkpoints"][name].get("frames")
        lines.append(f"| {name} | {'-' if frames is None else f'{frames / 1e6:.2f}M'} | "
                     + " | ".join(f"{by_k[k]:.1f}" for k in ks) + f" | {summary['drop'][name][ks[0]]:.1f} |")
    pairs = list(summary["difference"]) if pairs is None else [tuple(p) for p in pairs]
    if pairs:
        lines += ["", "| a minus b | " + " | ".join(f"K = {k}" for k in ks) + " |", "|" + "---|" * (len(ks) + 1)]
        for a, b in pairs:
            by_k = summary["difference"][(a, b)]
            lines.append(f"| {a} - {b} | " + " | ".join(f"{by_k[k]:.1f}" for k in ks) + " |")
    return "\n".join(lines)


def results_file(game: str = "MsPacman", variant: str = "", results: Path = RESULTS_DIR) -> Path:
    """Where the study of ``game`` is stored: ``results/open_loop_samples/<game>[-<variant>].json`` (variants:
    ``K256``, fewer windows and more samples; ``campaign``, the campaign's own windows on its GPU, stored
    gzip-compressed as ``.json.gz`` since 2026-12-04: read it with ``studies.common.read_json``, which finds it)."""
    return Path(results) / "open_loop_samples" / f"{game}{'-' + variant if variant else ''}.json"


def runs_of(doc: dict) -> dict[str, list[str]]:
    """The checkpoints of ``doc`` by run (a name ``<run>@<frames>M``; a name without ``@`` is a run of its own),
    each run's in order of training frames: ``[-1]`` is its latest."""
    out: dict[str, list[str]] = {}
    for name in doc["checkpoints"]:
        out.setdefault(name.split("@")[0], []).append(name)
    for names in out.values():
        names.sort(key=lambda n: doc["checkpoints"][n].get("frames") or 0)
    return out


def _colour_key(c: dict) -> str:
    return jump_name(c["model"], c.get("jump", 1))  # the book's shade of a jumpy model


def plot(ax, summary: dict, doc: dict, colour) -> None:
    """Open-loop excess against the number of prior samples ``K`` (log scale), one line per checkpoint with its
    95% interval, in ``colour(model)`` (``colour('sSSM-k4')`` for a jumpy one); a checkpoint named ``<run>@...`` is dashed when a later point of the same
    run (more frames) is in ``doc`` too."""
    ks = summary["ks"]
    latest = {names[-1] for names in runs_of(doc).values()}
    for name, by_k in summary["excess"].items():
        col = colour(_colour_key(doc["checkpoints"][name]))
        pts = [by_k[k] for k in ks]
        ax.plot(ks, [p.point for p in pts], "-" if name in latest else "--", marker="o", ms=3, color=col, label=name)
        ax.fill_between(ks, [p.lo for p in pts], [p.hi for p in pts], color=col, alpha=0.12)
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("prior samples K per window")
    ax.set_ylabel("open-loop excess (nats/frame)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def plot_training(ax, doc: dict, ks, colour, n_boot: int = 300) -> list[str]:
    """Each run scored at two or more points (``<run>@<frames>M``): its open-loop excess against training frames
    at each ``K`` in ``ks`` (dotted the smallest, solid the largest), with 95% intervals, in ``colour(model)``
    (``colour('sSSM-k4')`` for a jumpy one). Where the small-``K`` line rises and the large-``K`` one does not, the
    rise is the estimator's. Returns the runs drawn (none: a note in the axes says so)."""
    drawn = []
    for run, names in runs_of(doc).items():
        if len(names) < 2:
            continue
        col = colour(_colour_key(doc["checkpoints"][names[0]]))
        frames = [doc["checkpoints"][n]["frames"] for n in names]
        tables = [_table(doc["checkpoints"][n]["windows"]) for n in names]
        for k in ks:
            pts = [_excess(t, k, n_boot, 0) for t in tables]
            style = ":" if k == min(ks) else "-"
            ax.plot(frames, [p.point for p in pts], style, marker="o", ms=3, color=col, label=f"{run}, K = {k}")
            ax.fill_between(frames, [p.lo for p in pts], [p.hi for p in pts], color=col, alpha=0.1)
        drawn.append(run)
    if not drawn:
        ax.text(0.5, 0.5, "no run scored at two points yet", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.legend(fontsize=8)
    ax.set_xlabel("training frames")
    ax.set_ylabel("open-loop excess (nats/frame)")
    ax.grid(alpha=0.3)
    return drawn
