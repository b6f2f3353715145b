"""The I2A study: every agent variant x seed trained for the same environment steps, then one report.

``python -m ssmlib agent report --runs runs/i2a/MsPacman --results results/i2a/MsPacman`` copies each
run's raw files (metrics, episodes, config, summary; not the checkpoints) and writes ``summary.json``
and ``table.md``: per variant and seed the steps reached, the score at the common budget (the mean
return of the last 100 episodes that ended by then) and the training throughput.

Two more scores of each run's FINAL weights, when present, separate learning from playing:

* ``eval.json`` in the run folder (``agent eval``): one whole game in each of 64 envs, weights frozen;
* ``--frozen DIR``: ``DIR/<run>`` is the same A2C loop restarted from the final weights with ``lr=0``
  (``agent train --init-from ... --set lr=0``): the training loop's own code, with learning switched
  off. Its last 100 games lean towards short games (a short run from a synchronised start ends the
  short games first), so where its episodes record their env the report also gives the mean of the
  first game of every env, which has no such bias. The training log's own score is of a policy
  updated every ``num_steps`` steps while it plays (over a hundred updates per game), in a steady
  state where the envs are out of step.

A score of final weights is used only if it was taken at the run's final step (``trained_steps`` /
``init_from.step``); a stale one (the run was resumed after it) is reported as such and left out.

``python -m ssmlib agent bench``: agent steps/s of the whole A2C loop (acting with imagination,
environment steps and the update) of each variant alone, for the cost of imagination relative to the
model-free agent, measured in one run.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from ..config import RESULTS_DIR
from ..errors import SsmlibError
from ..io import atomic_write_json, provenance, read_text, stored_path
from .common import copy_files, markdown_table, read_json, read_jsonl, results_relative, study_root, write_study

RUN_FILES = ("metrics.jsonl", "episodes.jsonl", "config.json", "summary.json")
VARIANTS = ("model-free", "copy-distill", "i2a-uniform", "i2a-distill", "i2a-learned")
"""Run-folder names: ``<agent>[-<rollout policy>]-s<seed>``."""
PILOT_COST_TARGET = 3.0
"""This (pilot) study's target for the cost of imagination: an I2A costs at most 3x the model-free agent per
agent step, alone (ours). The I2A campaign set its own, stricter one in its config (``cost_target``, 2.5)."""


def variant_args(variant: str) -> tuple[str, str]:
    """``'i2a-distill'`` -> ``('i2a', 'distill')``; ``'model-free'`` -> ``('model-free', 'uniform')``."""
    if variant == "model-free":
        return "model-free", "uniform"
    agent, _, mode = variant.partition("-")
    if agent not in ("i2a", "copy") or mode not in ("uniform", "distill", "learned"):
        raise SsmlibError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    return agent, mode


def variant_name(agent: str, rollout_policy: str) -> str:
    """The inverse of :func:`variant_args`: ``('i2a', 'distill')`` -> ``'i2a-distill'``; model-free has no rollout."""
    return agent if agent == "model-free" else f"{agent}-{rollout_policy}"


def score_at(episodes: list[dict], budget: int, last: int = 100) -> tuple[float | None, int]:
    """Mean return of the last ``last`` episodes that ended by agent step ``budget``, and how many there were."""
    rets = [e["return"] for e in episodes if e["step"] <= budget][-last:]
    return (float(np.mean(rets)) if rets else None), len(rets)


def curve(episodes: list[dict], window: int = 100) -> tuple[list[int], list[float]]:
    """Running mean of the last ``window`` returns against the agent step each episode ended at."""
    steps, rets = [e["step"] for e in episodes], [e["return"] for e in episodes]
    means = [float(np.mean(rets[max(0, i + 1 - window):i + 1])) for i in range(len(rets))]
    return steps, means


def games_table(returns):
    """A frozen evaluation's games as an EpisodeTable for the bootstrap: one 'episode' per game index (every
    run plays the same starts, so game i of one run pairs with game i of another), the return as the metric."""
    from ..stats import EpisodeTable

    ret = np.asarray(returns, np.float64)
    return EpisodeTable(np.arange(len(ret)), np.ones(len(ret), np.int64), {"return": ret})


def curve_area(episodes: list[dict], budget: int, window: int = 100) -> float | None:
    """Area under a run's learning curve (``curve``, up to ``budget``) by the trapezoid rule, divided by the
    budget: a mean return. It spans the first to the last episode end (no return exists before the first),
    the same span for every run at the same budget up to one episode's length."""
    steps, means = curve([e for e in episodes if e["step"] <= budget], window)
    return float(np.trapezoid(means, steps) / budget) if len(steps) >= 2 else None


def agent_tables(game: str = "MsPacman", results: Path = RESULTS_DIR) -> tuple[dict, dict, list]:
    """The pilot study for the claims: per variant one EpisodeTable per seed of its frozen evaluation games
    (one 'episode' per game index, the return as the metric), the per-run metadata, and the files read."""
    root = Path(results) / "i2a" / game
    f = stored_path(root / "summary.json")
    if not f.exists():
        raise SsmlibError(f"no I2A study in {root}")
    summary = json.loads(read_text(f))
    tables, meta, sources = {}, {}, [results_relative(f, results)]
    for r in summary["rows"]:
        ef = stored_path(root / r["run"] / "eval.json")
        if not ef.exists():
            continue
        ev = json.loads(read_text(ef))
        table = games_table(ev["returns"])
        ret = table.sums["return"]
        tables.setdefault(r["variant"], []).append(table)
        meta.setdefault(r["variant"], []).append({"run": r["run"], "games": len(ret),
                                                 "trained_steps": ev.get("trained_steps"),
                                                 "return_mean": float(ret.mean())})
        sources.append(results_relative(ef, results))
    return tables, meta, sources


def merge_benches(paths) -> dict | None:
    """One bench document from several ``agent bench`` files (e.g. one per GPU, run side by side)."""
    docs = [read_json(p) for p in paths if Path(p).exists()]
    if not docs:
        return None
    merged = dict(docs[0])
    merged["variants"] = {k: v for d in docs for k, v in d["variants"].items()}
    merged["devices"] = sorted({d["provenance"].get("device") or "" for d in docs})
    return merged


def _mean(rows: list[dict], key: str) -> float | None:
    """Mean of ``key`` over ``rows`` (the seeds of a variant); None unless every seed has it."""
    vals = [r.get(key) for r in rows]
    return float(np.mean(vals)) if vals and all(v is not None for v in vals) else None


def first_game_of_every_env(episodes: list[dict]) -> tuple[float | None, int]:
    """Mean return of the first game each env finished (needs the ``env`` field), and how many envs."""
    first: dict[int, float] = {}
    for e in episodes:
        if "env" in e:
            first.setdefault(e["env"], e["return"])
    return (float(np.mean(list(first.values()))) if first else None), len(first)


def report(runs: Path, results: Path, bench: list | None = None, frozen: Path | None = None) -> dict:
    runs, results = Path(runs), Path(results)
    folders = sorted(d for d in runs.iterdir() if d.is_dir() and (d / "summary.json").exists()) if runs.exists() else []
    if not folders:
        raise SsmlibError(f"no finished agent run (a folder with summary.json) under {runs}")
    results.mkdir(parents=True, exist_ok=True)
    rows = []
    for d in folders:
        s = read_json(d / "summary.json")
        name, _, seed = d.name.rpartition("-s")
        metrics, episodes = read_jsonl(d / "metrics.jsonl"), read_jsonl(d / "episodes.jsonl")
        sps = [m["steps_per_s"] for m in metrics[1:]]  # the first interval holds start-up
        row = {"run": d.name, "variant": name, "seed": int(seed), "steps": s["step"], "wall_s": s["wall_s"],
               "steps_per_s_shared": float(np.median(sps)) if sps else None,
               "episodes": len(episodes),
               # from the whole log (the summary's own mean covers only the last resumed call's games)
               "online_last100_at_end": score_at(episodes, s["step"])[0], "_episodes": episodes}
        out = results / d.name
        out.mkdir(parents=True, exist_ok=True)
        copy_files(d, out, RUN_FILES)
        if (d / "eval.json").exists():  # the final weights, frozen, one game per env
            ev = read_json(d / "eval.json")
            if ev.get("trained_steps") == s["step"]:
                row.update(eval_return_mean=ev.get("return_mean"), eval_return_std=ev.get("return_std"),
                           eval_episodes=ev.get("episodes"), eval_trained_steps=ev["trained_steps"])
                copy_files(d, out, ("eval.json",))
            else:
                row["eval_stale_at_step"] = ev.get("trained_steps")
        fz = Path(frozen) / d.name if frozen else None
        if fz is not None and (fz / "summary.json").exists():  # the final weights, frozen, in the A2C loop
            fs = read_json(fz / "summary.json")
            start = (fs.get("init_from") or {}).get("step", s["step"])  # (older summaries did not record it)
            if start == s["step"]:
                fe = read_jsonl(fz / "episodes.jsonl")
                first, envs = first_game_of_every_env(fe)
                row.update(frozen_loop_last100=fs.get("return_mean_100"), frozen_loop_episodes=len(fe),
                           frozen_loop_first_game=first, frozen_loop_envs=envs)
                copy_files(fz, out, ("episodes.jsonl", "summary.json"), prefix="frozen-loop-")
            else:
                row["frozen_loop_stale_at_step"] = start
        rows.append(row)
    budget = min(r["steps"] for r in rows)
    for r in rows:
        r["score_at_budget"], r["episodes_in_score"] = score_at(r.pop("_episodes"), budget)
    variants = {}
    for v in sorted({r["variant"] for r in rows}, key=lambda v: VARIANTS.index(v) if v in VARIANTS else 99):
        scores = [r["score_at_budget"] for r in rows if r["variant"] == v and r["score_at_budget"] is not None]
        variants[v] = {"seeds": sum(r["variant"] == v for r in rows),
                       "score_mean": float(np.mean(scores)) if scores else None,
                       "score_min": float(min(scores)) if scores else None,
                       "score_max": float(max(scores)) if scores else None,
                       **{k: _mean([r for r in rows if r["variant"] == v], k)
                          for k in ("online_last100_at_end", "eval_return_mean", "frozen_loop_last100",
                                    "frozen_loop_first_game")}}
    speed = merge_benches(bench or [])
    if speed:
        mf = speed["variants"].get("model-free", {}).get("steps_per_s")
        for v, rec in speed["variants"].items():
            if v in variants:
                variants[v]["steps_per_s_alone"] = rec["steps_per_s"]
                variants[v]["cost_vs_model_free"] = (mf / rec["steps_per_s"]) if mf and rec["steps_per_s"] else None
    summary = {"study": "i2a", "budget_agent_steps": budget, "budget_frames": 4 * budget, "score": "mean return of "
               "the last 100 episodes ended by the budget (whole games, unclipped)", "rows": rows,
               "variants": variants, "bench": speed, "provenance": provenance()}
    write_study(results, summary, format_table(summary))
    return summary


def format_table(summary: dict) -> str:
    def f(x, fmt="{:.0f}"):
        return "n/a" if x is None else fmt.format(x)

    variants = summary["variants"].items()
    text = (f"Budget: {summary['budget_agent_steps']:,} agent steps ({summary['budget_frames']:,} frames) per run.\n\n"
            + markdown_table(("variant", "seeds", "score (mean)", "min", "max", "steps/s alone", "cost vs model-free"),
                             [(v, r["seeds"], f(r["score_mean"]), f(r["score_min"]), f(r["score_max"]),
                               f(r.get("steps_per_s_alone")), f(r.get("cost_vs_model_free"), "{:.2f}x"))
                              for v, r in variants]))
    if any(r.get("eval_return_mean") is not None or r.get("frozen_loop_last100") is not None for _, r in variants):
        text += ("\nFinal weights (mean over seeds): the training log while learning vs the same weights frozen.\n"
                 "The lr=0 loop's last 100 games lean towards short games; its first game of every env does not.\n\n"
                 + markdown_table(("variant", "training log, last 100 at the end", "frozen: eval, 1 game per env",
                                   "frozen: A2C loop, lr=0, last 100", "frozen: A2C loop, lr=0, first game per env"),
                                  [(v, f(r.get("online_last100_at_end")), f(r.get("eval_return_mean")),
                                    f(r.get("frozen_loop_last100")), f(r.get("frozen_loop_first_game")))
                                   for v, r in variants]))
    return text


def load_study(game: str = "MsPacman", results: Path | None = None) -> dict:
    """``results/i2a/<game>/summary.json`` (written by ``python -m ssmlib agent report``) with, per run
    folder, its raw files: ``study["runs"][run] = {"episodes", "metrics", "config", "summary"}``."""
    root = study_root("i2a", game, results)
    study = read_json(root / "summary.json")
    if study is None:
        raise SsmlibError(f"no I2A study in {root} (scripts/gpu_i2a.sh writes it on a GPU)")
    study["runs"] = {}
    for row in study["rows"]:
        d = root / row["run"]
        study["runs"][row["run"]] = {
            "episodes": read_jsonl(d / "episodes.jsonl"), "metrics": read_jsonl(d / "metrics.jsonl"),
            "config": read_json(d / "config.json"), "summary": read_json(d / "summary.json")}
    study["root"] = str(root)
    return study


def runs_of(study: dict, variant: str) -> list[str]:
    """The run folders of ``variant`` (one per seed), in seed order."""
    return [r["run"] for r in sorted(study["rows"], key=lambda r: r["seed"]) if r["variant"] == variant]


def bench(variants: list[str], profile: str, env_model: str | None, seconds: float, out: Path,
          device: str | None = None, sets: list[str] | None = None) -> dict:
    """Steps/s of the full A2C loop for each variant, one after another in this process."""
    from ..agents.a2c import train_agent  # not at the top: ssmlib.agents' command line imports this module
    from ..config import agent_profile, with_sets

    res = {}
    for v in variants:
        agent, mode = variant_args(v)
        cfg = dataclasses.replace(agent_profile(profile), agent=agent, rollout_policy=mode, total_steps=10**12,
                                  log_every=5, ckpt_every=1e9)
        if env_model:
            cfg = dataclasses.replace(cfg, env_model=env_model)
        cfg = with_sets(cfg, sets)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            s = train_agent(cfg, Path(tmp) / "run", device=device, time_limit=seconds, progress=False)
            metrics = read_jsonl(Path(tmp) / "run" / "metrics.jsonl")
        sps = [m["steps_per_s"] for m in metrics[1:]]  # after the first interval (warm-up)
        res[v] = {"steps_per_s": float(np.median(sps)) if sps else None, "intervals": len(sps),
                  "steps_per_s_intervals": sps, "status": s["status"],  # "time-limit" unless stopped early
                  "steps": s["step"], "wall_s": time.perf_counter() - t0, "num_envs": cfg.num_envs,
                  "rollout_depth": cfg.rollout_depth}
        print(f"{v}: {res[v]['steps_per_s']} agent steps/s", flush=True)
    doc = {"bench": "agents", "profile": profile, "seconds_each": seconds, "env_model": env_model, "variants": res,
           "provenance": provenance(device)}
    atomic_write_json(out, doc)
    return doc
