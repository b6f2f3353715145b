"""The jumpy study: dSSM-DET and sSSM at jump k in {1, 2, 4}, scored at matched environment steps.

A jumpy model makes one transition per k environment steps **[paper: the idea; ours: k in {1, 2, 4}]**:

.. math:: s_{t+k} = g(s_t, a_{t:t+k}), \\qquad r_{t:t+k} = \\sum_{i=0}^{k-1} r_{t+i} \\sim p(r \\mid s_{t+k}),
          \\qquad o_{t+k} \\sim p(o \\mid s_{t+k})

with the chunk of k actions fed as k tiled one-hot maps (``k * A`` channels, ``blocks.tile_actions``) and
the rewards of the chunk summed (``WindowSampler(jump=k)``); sSSM adds ``z`` as at k = 1. A model is
jumpy by ``ModelConfig.jump`` alone (``--set jump=k``): nothing else changes.

``python -m ssmlib jumpy train`` trains every (model, k) in its own run folder ``<runs>/<model>-k<k>``
(one ``python -m ssmlib train --resume`` process each, as the model zoo, all with the same time limit
and configs but ``jump``). ``python -m ssmlib jumpy report`` scores every run with ``ssmlib.evaluate``
on the SAME test windows, read at the SAME environment steps: the windows share their last context
frame (the "anchor"), a k = 1 model is evaluated over ``max(env_steps)`` transitions, a k = 4 model over
a quarter as many, and each is read at the transitions that land on ``env_steps``. There the metrics
that need no real frame after the context compare across k: the open-loop predictive log-likelihood,
the open-loop frame MSE and the cumulative reward of imagination, and the excess of the open-loop
likelihood over the exact floor of the target frames beside that of copying the last context frame
(``ssmlib.evaluate``; the per-episode sums in each ``eval.json`` let ``ssmlib.claims`` bootstrap the
comparison across k, paired on the same windows). The filtering LL of ``evaluate`` is
reported too, but a k = 1 model's posterior (or teacher forcing) sees every real frame and a k = 4
model's every fourth, so it does not compare across k. It writes ``results/jumpy/<game>/``:
``summary.json`` (rows + provenance), ``table.md`` and per run ``eval.json``, ``metrics.jsonl``,
``config.json``, ``summary.json``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ..config import CONTEXT, run_name  # (re-exported: jumpy.run_name)
from ..errors import SsmlibError
from ..io import provenance, stored_path
from .common import (add_eval_args, add_train_args, check_exit_codes, format_table, parse_models, read_json,
                     read_jsonl, results_dir, run_commands, save_run, study_root, torch_device, train_command,
                     write_study)

MODELS = ("dSSM-DET", "sSSM")
"""The models of the study (any model accepts ``jump``; these are the paper's jumpy SSMs)."""
JUMPS = (1, 2, 4)
"""Jump lengths k (the paper's are unknown; ours)."""
ENV_STEPS = (4, 8, 12, 16, 20)
"""Environment steps after the last context frame at which every run is read (multiples of every k)."""
MATCHED = ("ll_open_loop_nats", "floor_nats", "excess_open_loop_nats", "copy_ctx_excess_nats", "frame_mse_open_loop",
           "reward_nll_open_loop", "reward_nll_base_rate", "reward_acc_open_loop", "return_acc_open_loop",
           "return_abs_err_open_loop", "return_abs_err_zero")
"""Per-horizon metrics of ``evaluate`` that compare across k at one env step (see the module docstring)."""


def check_env_steps(env_steps, jumps) -> tuple[int, ...]:
    """``env_steps`` sorted, refused unless positive multiples of every jump."""
    steps = tuple(sorted(set(int(e) for e in env_steps)))
    bad = [e for e in steps if e < 1 or any(e % k for k in jumps)]
    if not steps or bad:
        raise SsmlibError(f"env steps {list(env_steps)}: each must be a positive multiple of every jump {list(jumps)}")
    return steps


def train_runs(data: Path, runs: Path, models=MODELS, jumps=JUMPS, profile: str = "quick",
               time_limit: float | None = None, parallel: bool = True, device: str | None = None,
               sets: list[str] = ()) -> dict[str, int]:
    """One ``python -m ssmlib train --resume`` process per (model, k), fresh unless its folder has a
    checkpoint; returns each run's exit code."""
    runs = Path(runs)
    runs.mkdir(parents=True, exist_ok=True)
    cmds = {run_name(m, k): train_command(m, data, runs / run_name(m, k), profile, time_limit, device,
                                          [*sets, f"jump={k}"]) for m in models for k in jumps}
    return run_commands(cmds, runs, parallel)


def anchor_rows(ds, env_max: int, jumps, max_windows: int | None = None) -> torch.Tensor:
    """Rows (in the test split, as ``WindowSampler`` numbers them) of the last context frame of every test
    window that every jump can score: jump k reads context rows ``anchor - 2k, anchor - k, anchor`` and
    targets up to ``anchor + env_max``. An evenly spaced subset of ``max_windows`` if given."""
    from ..data.windows import window_starts

    lengths = np.array([e.length for e in ds.split("test")], np.int64)
    offsets = np.r_[0, np.cumsum(lengths)[:-1]].astype(np.int64)
    back = (CONTEXT - 1) * max(jumps)
    anchors = torch.from_numpy(window_starts(lengths, offsets, back + env_max + 1) + back)
    if max_windows is not None and max_windows < len(anchors):
        anchors = anchors[torch.linspace(0, len(anchors) - 1, max_windows).round().long()]
    return anchors


def anchored_sampler(ds, k: int, env_max: int, anchors: torch.Tensor, device="cpu"):
    """The test windows of jump ``k`` (``env_max // k`` targets) whose last context frame is ``anchors``."""
    from ..data.windows import WindowSampler

    sampler = WindowSampler(ds, "test", context=CONTEXT, horizon=env_max // k, jump=k, device=str(device))
    starts = (anchors - (CONTEXT - 1) * k).to(sampler.starts.device)
    if not bool(torch.isin(starts, sampler.starts).all()):
        raise SsmlibError(f"anchors do not give valid jump-{k} windows of {env_max} env steps")
    sampler.starts = starts  # only these windows, in this order (iterate reads ``starts``)
    return sampler


def at_env_steps(ev: dict, k: int, env_steps) -> dict[str, list]:
    """The ``MATCHED`` per-horizon values of an ``evaluate`` result of a jump-``k`` model at ``env_steps``."""
    ph = {**ev["per_horizon"], **ev.get("per_horizon_where_defined", {})}
    idx = [e // k - 1 for e in env_steps]
    if any(e % k for e in env_steps) or max(idx) >= len(ph["h"]):
        raise SsmlibError(f"env steps {list(env_steps)} are not transitions 1..{len(ph['h'])} of a jump-{k} model")
    return {"env_step": list(env_steps), "transition": [i + 1 for i in idx],
            **{key: [ph[key][i] for i in idx] for key in MATCHED + ("moving_mae",) if key in ph}}


def score(model, ds, anchors: torch.Tensor, env_steps=ENV_STEPS, samples: int = 8, batch_size: int = 16,
          samplers: dict | None = None, amp: bool = False) -> tuple[dict, dict]:
    """``evaluate`` of ``model`` on the anchored test windows over ``max(env_steps)`` env steps, and its
    values at ``env_steps`` (``at_env_steps``). ``samplers``: a cache of the windows per jump."""
    from ..evaluate import evaluate

    k, env_max = model.cfg.jump, max(env_steps)
    samplers = {} if samplers is None else samplers
    if k not in samplers:
        samplers[k] = anchored_sampler(ds, k, env_max, anchors, next(model.parameters()).device)
    ev = evaluate(model, samplers[k], batch_size=batch_size, num_samples=samples, amp=amp)
    return ev, at_env_steps(ev, k, env_steps)


WEIGHTS = ("checkpoint.safetensors", "weights.safetensors")
"""What a run folder may hold: the training checkpoint, or its weights-only export (gpu_jumpy.sh packs those)."""


def run_weights(run: Path) -> Path | None:
    """The weights of a run folder (the training checkpoint first), or None."""
    return next((Path(run) / w for w in WEIGHTS if (Path(run) / w).exists()), None)


def report(data: Path, runs: Path, results: Path, models=MODELS, jumps=JUMPS, env_steps=ENV_STEPS,
           samples: int = 8, max_windows: int | None = 512, batch_size: int = 16, device: str | None = None,
           amp: bool = False, note: str | None = None) -> dict:
    """Score every trained run at matched env steps with the same code; write the study under ``results``."""
    from ..checkpoint import load_model
    from ..data.store import open_dataset

    env_steps = check_env_steps(env_steps, jumps)
    dev = torch_device(device)
    ds = open_dataset(data)
    anchors = anchor_rows(ds, max(env_steps), jumps, max_windows)
    if len(anchors) == 0:
        raise SsmlibError(f"no test episode of {data} is long enough for {max(env_steps)} env steps at jump {max(jumps)}")
    results.mkdir(parents=True, exist_ok=True)
    rows, samplers = [], {}
    for m in models:
        for k in jumps:
            name = run_name(m, k)
            weights = run_weights(runs / name)
            if weights is None:
                print(f"{name}: no checkpoint in {runs / name}, skipped", flush=True)
                continue
            model = load_model(weights, expect_model=m, device=dev, dataset=ds)
            if model.cfg.jump != k:
                raise SsmlibError(f"{runs / name} holds a jump-{model.cfg.jump} {m}, expected jump {k}")
            t0 = time.perf_counter()
            ev, at = score(model, ds, anchors, env_steps, samples, batch_size, samplers, amp)
            run = save_run(runs / name, results / name, {
                "eval": ev, "at_env_steps": at, "eval_seconds": time.perf_counter() - t0, "samples": samples,
                "max_windows": max_windows, "provenance": provenance(str(dev))})
            fps = run.get("frames_per_s_steady")
            rows.append({
                "run": name, "model": m, "jump": k, "parameters": sum(p.numel() for p in model.parameters()),
                "train_steps": run.get("step"), "train_wall_s": run.get("wall_s"),
                "train_frames_per_s_steady": fps,
                # a training frame is one transition, i.e. k env steps
                "train_env_steps_per_s_steady": None if fps is None else fps * k,
                "horizon": ev["horizon"], "test_windows": ev["windows"],
                "filtering_log_likelihood": ev["log_likelihood"],
                "filtering_ll_nats_per_frame": ev["total"]["ll_nats_per_frame"],
                "ll_open_loop_nats_matched_mean": float(np.mean(at["ll_open_loop_nats"])),
                "excess_open_loop_nats_matched_mean": float(np.mean(at["excess_open_loop_nats"])),
                "copy_ctx_excess_nats_matched_mean": float(np.mean(at["copy_ctx_excess_nats"])),
                "frame_mse_open_loop_matched_mean": float(np.mean(at["frame_mse_open_loop"])),
                "at_env_steps": at,
            })
            print(f"{name}: open-loop excess over the floor at env steps {list(env_steps)}: "
                  + ", ".join(f"{v:.1f}" for v in at["excess_open_loop_nats"]) + " nats/frame (copy last context frame: "
                  + ", ".join(f"{v:.1f}" for v in at["copy_ctx_excess_nats"]) + ")", flush=True)
    if not rows:
        raise SsmlibError(f"no trained run found under {runs} (expected folders like {run_name(models[0], jumps[0])})")
    summary = {"study": "jumpy", "game": ds.game, "env_steps": list(env_steps), "jumps": list(jumps),
               "samples": samples, "test_windows": len(anchors),
               "windows": "test windows sharing their last context frame across every jump (jumpy.anchor_rows)",
               "data": {"dir": str(data), "fingerprint": ds.fingerprint, "frames": len(ds),
                        "episodes": len(ds.episodes), "height": ds.height, "width": ds.width},
               "rows": rows, "provenance": provenance(str(dev))}
    if note:
        summary["note"] = note
    write_study(results, summary, format_tables(rows))
    return summary


RUN_COLUMNS = [("run", "{}"), ("jump", "{}"), ("parameters", "{:,}"), ("train_steps", "{}"),
               ("train_env_steps_per_s_steady", "{:.0f}"), ("filtering_ll_nats_per_frame", "{:.1f}"),
               ("ll_open_loop_nats_matched_mean", "{:.1f}"), ("excess_open_loop_nats_matched_mean", "{:.1f}"),
               ("copy_ctx_excess_nats_matched_mean", "{:.1f}"), ("frame_mse_open_loop_matched_mean", "{:.5f}")]
STEP_COLUMNS = [("run", "{}"), ("env_step", "{}"), ("transition", "{}"), ("ll_open_loop_nats", "{:.1f}"),
                ("excess_open_loop_nats", "{:.1f}"), ("copy_ctx_excess_nats", "{:.1f}"), ("moving_mae", "{:.3f}"),
                ("reward_nll_open_loop", "{:.3f}"), ("reward_nll_base_rate", "{:.3f}"),
                ("return_abs_err_open_loop", "{:.2f}"), ("return_abs_err_zero", "{:.2f}")]


def step_rows(rows: list[dict]) -> list[dict]:
    """One flat dict per (run, matched env step), from the study's rows."""
    return [{"run": r["run"], "model": r["model"], "jump": r["jump"],
             **{key: vals[i] for key, vals in r["at_env_steps"].items()}}
            for r in rows for i in range(len(r["at_env_steps"]["env_step"]))]


def format_tables(rows: list[dict]) -> str:
    """table.md: one line per run, then one line per (run, env step)."""
    return (format_table(rows, RUN_COLUMNS) + "\nAt matched env steps (open-loop imagination from the same "
            "context frame; reward: of the transition that ends there, i.e. summed over its k env steps; "
            "return: summed from the context on):\n\n" + format_table(step_rows(rows), STEP_COLUMNS))


def load_study(game: str = "MsPacman", results: Path | None = None) -> dict | None:
    """The jumpy study of ``game`` (summary, plus ``evals[run]`` and ``curves[run]``), or None if not run."""
    root = study_root("jumpy", game, results)
    study = read_json(root / "summary.json")
    if study is None:
        return None
    study["evals"] = {r["run"]: read_json(root / r["run"] / "eval.json") for r in study["rows"]}
    study["curves"] = {r["run"]: read_jsonl(root / r["run"] / "metrics.jsonl") for r in study["rows"]
                       if stored_path(root / r["run"] / "metrics.jsonl").exists()}
    study["root"] = str(root)
    return study


# --------------------------------------------------------------------------------------------------
# command line


def _cli_train(args) -> int:
    from .speed import _ints

    codes = train_runs(Path(args.data), Path(args.runs), parse_models(args.models), _ints(args.jumps, "--jumps"),
                       args.profile, args.time_limit, not args.sequential, args.device, args.set or [])
    check_exit_codes(codes, f"{args.runs}/<run>.log")
    return 0


def _cli_report(args) -> int:
    from .speed import _ints

    results = results_dir(args, "jumpy")
    jumps = _ints(args.jumps, "--jumps")
    summary = report(Path(args.data), Path(args.runs), results, parse_models(args.models), jumps,
                     check_env_steps(_ints(args.env_steps, "--env-steps"), jumps), args.samples,
                     args.max_windows or None, args.batch_size, args.device, args.amp, args.note)
    print(format_tables(summary["rows"]))
    print(f"wrote {results}")
    return 0


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("jumpy", help="the jumpy study: models at jump k, scored at matched env steps")
    sub = p.add_subparsers(dest="jumpy", required=True)
    t = sub.add_parser("train", help="train every (model, k) in <runs>/<model>-k<k> (resumable), in parallel")
    add_train_args(t, models=",".join(MODELS), what="(model, k)")
    t.add_argument("--jumps", default=",".join(map(str, JUMPS)), help="comma-separated jump lengths k")
    t.set_defaults(func=_cli_train)
    r = sub.add_parser("report", help="score every run at matched env steps, write results/jumpy/<game>/")
    r.add_argument("--data", required=True)
    r.add_argument("--runs", required=True)
    r.add_argument("--models", default=",".join(MODELS))
    r.add_argument("--jumps", default=",".join(map(str, JUMPS)))
    r.add_argument("--env-steps", default=",".join(map(str, ENV_STEPS)),
                   help="env steps after the context at which every run is read (multiples of every k)")
    add_eval_args(r, "jumpy")
    r.add_argument("--note", default=None, help="a note for the study's summary.json (e.g. unmatched training)")
    r.set_defaults(func=_cli_report)
