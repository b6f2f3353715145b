"""The model-zoo study: every environment model trained on one dataset and scored by the same code.

``python -m ssmlib zoo train``  trains the chosen models (in parallel processes on one GPU, or one
after another), each resumable, each with an optional time limit, so the study continues across GPU
leases. ``python -m ssmlib zoo report`` evaluates every checkpoint on the held-out test episodes with
``ssmlib.evaluate`` and writes ``results/model_zoo/<game>/``: per model the raw learning curve
(``metrics.jsonl``), ``config.json`` (configs + provenance), ``summary.json`` of the run and
``eval.json``; for the study ``summary.json`` (one row per model, with provenance), ``table.md`` and
``rollouts.png`` (real frames next to each model's open-loop predictions). ``python -m ssmlib zoo rescore``
evaluates exported weights (``checkpoints/<game>/<model>.safetensors``) the same way
(``evaluate_checkpoints``, which other scripts call with a ``{model: checkpoint}`` dict).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ..config import CONTEXT
from ..errors import SsmlibError
from ..io import atomic_write_bytes, atomic_write_json, drop_other_form, provenance, sha256_file
from .common import (add_eval_args, add_train_args, check_exit_codes, format_table, parse_models, read_json,
                     read_jsonl, results_dir, run_commands, save_run, study_root, torch_device, train_command,
                     write_study)

CKPT = "checkpoint.safetensors"


def train_all(data: Path, runs: Path, models: list[str], profile: str, time_limit: float | None = None,
              parallel: bool = True, device: str | None = None, sets: list[str] = (),
              init_from: Path | None = None) -> dict[str, int]:
    """One ``python -m ssmlib train --resume`` process per model; returns each process's exit code.

    A model without a run folder yet starts from ``init_from/<model>.safetensors`` when that exists
    (e.g. the committed ``checkpoints/<game>``: weights carried on with a fresh optimiser).
    """
    runs.mkdir(parents=True, exist_ok=True)
    cmds = {}
    for m in models:
        cmds[m] = train_command(m, data, runs / m, profile, time_limit, device, sets)
        start = Path(init_from) / f"{m}.safetensors" if init_from else None
        if start is not None and start.exists() and not (runs / m / CKPT).exists():
            cmds[m] += ["--init-from", str(start)]
    return run_commands(cmds, runs, parallel)


@torch.no_grad()
def rollout_panel(models: dict, ds, device, window: int = 0, horizon: int = 10, seed: int = 0):
    """Real frames of one test window next to each model's open-loop prediction (stochastic models: one
    prior sample). The window is read from the memory-mapped shards: nothing else is loaded."""
    from ..data.windows import WindowDataset, to_device
    from ..viz.frames import frame_strip

    windows = WindowDataset(ds, "test", context=CONTEXT, horizon=horizon)
    batch = to_device(WindowDataset.collate([windows[window]]), device)
    frames, actions = batch["frames"], batch["actions"]
    rows, labels = [list(frames[0, 3:])], ["real"]
    for name, model in models.items():
        torch.manual_seed(seed)
        state = model.initial_state(frames[:, :3])
        roll = model.imagine(state, actions[:, 2:2 + horizon], decode=True, sample=model.stochastic)
        pred = torch.sigmoid(roll.frame_logits.float())[0]
        rows.append(list(pred))
        labels.append(name)
    cols = [f"t+{i + 1}\n{ds.action_meanings[a]}" for i, a in enumerate(actions[0, 2:2 + horizon].tolist())]
    return frame_strip(rows, row_labels=labels, col_labels=cols, scale=1.4)


def evaluate_checkpoints(checkpoints: dict, data: Path, results: Path, samples: int = 8,
                         max_windows: int | None = None, batch_size: int = 16, device: str | None = None,
                         run_dirs: dict | None = None, amp: bool = False, panel: bool = True,
                         n_boot: int = 1000) -> dict:
    """Evaluate each checkpoint (``{model name: path of a .safetensors}``) with ``ssmlib.evaluate`` on the
    SAME test windows of ``data`` and write the study under ``results`` (``results/model_zoo/<game>/``):
    per model ``eval.json`` (with per-episode sums for the paired bootstraps of ``ssmlib.claims``), and
    the study's ``summary.json`` (one row per model, then the two copy references), ``table.md`` and
    ``rollouts.png``. ``run_dirs[name]``: a run folder whose metrics/config/summary are copied beside the
    eval (without one, files already in ``results/<name>/`` are kept, e.g. when re-scoring exported weights).
    ``max_windows``: an evenly spaced subset of the test windows (None: all of them).
    """
    from ..checkpoint import load_model
    from ..data.store import open_dataset
    from ..evaluate import evaluate, format_eval

    dev = torch_device(device)
    ds = open_dataset(data)
    results = Path(results)
    results.mkdir(parents=True, exist_ok=True)
    rows, loaded, evals = [], {}, {}
    for m, ckpt in checkpoints.items():
        ckpt = Path(ckpt)
        if not ckpt.exists():
            print(f"{m}: no checkpoint at {ckpt}, skipped", flush=True)
            continue
        model = load_model(ckpt, expect_model=m, device=dev, dataset=ds)
        t0 = time.perf_counter()
        ev = evaluate(model, ds, batch_size=batch_size, num_samples=samples, max_windows=max_windows, amp=amp,
                      n_boot=n_boot)
        eval_s = time.perf_counter() - t0
        doc = {"eval": ev, "eval_seconds": eval_s, "samples": samples, "max_windows": max_windows,
               "checkpoint": {"path": str(ckpt), "sha256": sha256_file(ckpt)},
               "data": {"game": ds.game, "fingerprint": ds.fingerprint, "split": "test"},
               "provenance": provenance(str(dev))}
        run_dir = (run_dirs or {}).get(m)
        if run_dir is not None:
            run = save_run(Path(run_dir), results / m, doc)
        else:
            (results / m).mkdir(parents=True, exist_ok=True)
            atomic_write_json(results / m / "eval.json", doc)
            drop_other_form(results / m / "eval.json")  # a compressed one from before is stale now
            run = read_json(results / m / "summary.json", {})
        rows.append(study_row(m, ev, run, sum(p.numel() for p in model.parameters())))
        evals[m] = ev
        if panel:
            loaded[m] = model
        print(format_eval(ev, ds.game), flush=True)
        print(f"{m}: evaluated in {eval_s:.1f} s", flush=True)
    if not rows:
        raise SsmlibError("no checkpoint found to evaluate")
    rows += reference_rows(next(iter(evals.values())))
    summary = {"study": "model_zoo", "game": ds.game,
               "data": {"dir": str(data), "fingerprint": ds.fingerprint, "frames": len(ds),
                        "episodes": len(ds.episodes), "test_episodes": len(ds.split("test")),
                        "height": ds.height, "width": ds.width},
               "evaluation": {"samples": samples, "max_windows": max_windows, "windows": rows[0]["test_windows"],
                              "episodes": rows[0]["test_episodes"], "seeds": 1, "ci": "95%, bootstrap over test episodes",
                              "same_windows": len({e["windows_sha"] for e in evals.values()}) == 1},
               "rows": rows, "provenance": provenance(str(dev))}
    write_study(results, summary, format_table(rows, TABLE_COLUMNS))
    if panel and loaded:
        fig = rollout_panel(loaded, ds, dev)
        import io

        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        plt.close(fig)
        atomic_write_bytes(results / "rollouts.png", buf.getvalue())
    return summary


def study_row(m: str, ev: dict, run: dict, parameters: int | None) -> dict:
    """One model's row of the study: training facts, the raw and excess likelihoods with their intervals,
    moving pixels and reward (see ``ssmlib.evaluate``)."""
    tot, ph, ci = ev["total"], ev["per_horizon"], ev.get("ci", {})
    return {
        "model": m, "kind": "model", "parameters": parameters,
        "train_steps": run.get("step"), "train_wall_s": run.get("wall_s"),
        "train_frames_per_s_steady": run.get("frames_per_s_steady"),
        "horizon": ev["horizon"], "test_windows": ev["windows"], "test_episodes": ev.get("episodes"),
        "log_likelihood": ev["log_likelihood"],
        "floor_nats_per_frame": tot["floor_nats_per_frame"],
        "ll_nats_per_frame": tot["ll_nats_per_frame"], "ll_nats_sequence": tot["ll_nats"],
        "ll_nats_sequence_sem": tot["ll_nats_sem"],
        "excess_joint_nats_per_frame": tot["excess_joint_nats_per_frame"],
        "excess_joint_ci": ci.get("excess_joint_nats_per_frame"),
        "ll_open_loop_nats_per_frame": tot["ll_open_loop_nats_per_frame"],
        "excess_open_loop_nats_per_frame": tot["excess_open_loop_nats_per_frame"],
        "excess_open_loop_ci": ci.get("excess_open_loop_nats_per_frame"),
        "excess_joint_h": ph["excess_joint_nats"], "excess_open_loop_h": ph["excess_open_loop_nats"],
        "elbo_nats_per_frame": tot["elbo_nats"] / ev["horizon"],
        "iwae_minus_elbo_nats_sequence": tot["iwae_minus_elbo_nats"],
        "nll_bits_per_dim": tot["nll_bits_per_dim"],
        "ll_nats_h1": ph["ll_nats"][0], "ll_nats_h10": ph["ll_nats"][-1],
        "moving_share": tot["moving_share"], "moving_mae": tot.get("moving_mae"),
        "moving_within": tot.get("moving_within"),
        "reward_nll_teacher": tot["reward_nll_teacher"], "reward_nll_open_loop": tot["reward_nll_open_loop"],
        "reward_nll_base_rate": tot["reward_nll_base_rate"], "reward_auc_open_loop": tot["reward_auc_open_loop"],
        "return_abs_err_open_loop": tot["return_abs_err_open_loop"], "return_abs_err_zero": tot["return_abs_err_zero"],
        "reward_acc_open_loop": tot.get("reward_acc_open_loop"),
        "reward_acc_teacher": tot.get("reward_acc_teacher"),
        "frame_mse_open_loop": tot.get("frame_mse_open_loop"),
        "frame_mse_open_loop_h1": ph["frame_mse_open_loop"][0],
        "frame_mse_open_loop_h10": ph["frame_mse_open_loop"][-1],
    }


def reference_rows(ev: dict) -> list[dict]:
    """The two copy references of an evaluation's windows as study rows (a floor and a naive ceiling):
    copying the previous real frame (teacher-forced, a 'joint' number) and copying the last context frame
    (open loop), each with its tuned epsilon."""
    tot, ph, ci = ev["total"], ev["per_horizon"], ev.get("ci", {})
    base = {"kind": "reference", "horizon": ev["horizon"], "test_windows": ev["windows"],
            "test_episodes": ev.get("episodes"), "floor_nats_per_frame": tot["floor_nats_per_frame"]}
    prev = {**base, "model": "copy previous frame", "eps": ev["copy_eps"]["copy_prev"],
            "excess_joint_nats_per_frame": tot["copy_prev_excess_nats_per_frame"],
            "excess_joint_ci": ci.get("copy_prev_excess_nats_per_frame"),
            "ll_nats_per_frame": tot["floor_nats_per_frame"] - tot["copy_prev_excess_nats_per_frame"],
            "excess_joint_h": ph["copy_prev_excess_nats"]}
    ctx = {**base, "model": "copy last context frame", "eps": ev["copy_eps"]["copy_ctx"],
           "excess_open_loop_nats_per_frame": tot["copy_ctx_excess_nats_per_frame"],
           "excess_open_loop_ci": ci.get("copy_ctx_excess_nats_per_frame"),
           "ll_open_loop_nats_per_frame": tot["floor_nats_per_frame"] - tot["copy_ctx_excess_nats_per_frame"],
           "excess_open_loop_h": ph["copy_ctx_excess_nats"],
           "moving_mae": tot.get("copy_ctx_moving_mae"), "moving_within": tot.get("copy_ctx_moving_within"),
           "return_abs_err_open_loop": tot["return_abs_err_zero"]}
    return [prev, ctx]


def report(data: Path, runs: Path, results: Path, models: list[str], samples: int = 8, max_windows: int | None = 512,
           batch_size: int = 16, device: str | None = None, amp: bool = False) -> dict:
    """Evaluate each trained model of the run folders ``runs/<model>`` with the same code and write the
    study's files under ``results`` (see ``evaluate_checkpoints``)."""
    runs = Path(runs)
    present = [m for m in models if (runs / m / CKPT).exists()]
    for m in models:
        if m not in present:
            print(f"{m}: no checkpoint in {runs / m}, skipped", flush=True)
    if not present:
        raise SsmlibError(f"no trained model found under {runs}")
    return evaluate_checkpoints({m: runs / m / CKPT for m in present}, data, results, samples, max_windows,
                                batch_size, device, run_dirs={m: runs / m for m in present}, amp=amp)


def load_study(game: str = "MsPacman", results: Path | None = None) -> dict:
    """The committed model-zoo study of ``game``: its summary (rows + provenance) and, per model, the
    raw learning curve (``curves[model]``: the metrics.jsonl records) and evaluation (``evals[model]``)."""
    root = study_root("model_zoo", game, results)
    study = read_json(root / "summary.json")
    if study is None:
        raise SsmlibError(f"no model-zoo study for {game} in {root} (run scripts/gpu_model_zoo.sh on a GPU)")
    study["curves"], study["evals"], study["configs"] = {}, {}, {}
    for row in study["rows"]:
        if row.get("kind") == "reference":
            continue
        m = row["model"]
        study["curves"][m] = read_jsonl(root / m / "metrics.jsonl")
        study["evals"][m] = read_json(root / m / "eval.json")["eval"]
        study["configs"][m] = read_json(root / m / "config.json", {})
    study["root"] = str(root)
    return study


TABLE_COLUMNS = [("model", "{}"), ("parameters", "{:,}"), ("train_steps", "{}"), ("floor_nats_per_frame", "{:.1f}"),
                 ("ll_nats_per_frame", "{:.1f}"), ("excess_joint_nats_per_frame", "{:.1f}"), ("excess_joint_ci", "ci"),
                 ("ll_open_loop_nats_per_frame", "{:.1f}"), ("excess_open_loop_nats_per_frame", "{:.1f}"),
                 ("excess_open_loop_ci", "ci"), ("moving_mae", "{:.3f}"), ("moving_within", "{:.3f}"),
                 ("reward_nll_open_loop", "{:.3f}"), ("reward_nll_base_rate", "{:.3f}"),
                 ("reward_auc_open_loop", "{:.3f}"), ("return_abs_err_open_loop", "{:.2f}"),
                 ("return_abs_err_zero", "{:.2f}")]
"""(key, format) of the columns of the study's table.md."""


def _cli_train(args) -> int:
    codes = train_all(Path(args.data), Path(args.runs), parse_models(args.models), args.profile, args.time_limit,
                      not args.sequential, args.device, args.set or [], args.init_from)
    check_exit_codes(codes, f"{args.runs}/<model>.log")
    return 0


def _cli_report(args) -> int:
    results = results_dir(args, "model_zoo")
    summary = report(Path(args.data), Path(args.runs), results, parse_models(args.models), args.samples,
                     args.max_windows or None, args.batch_size, device=args.device, amp=args.amp)
    print(format_table(summary["rows"], TABLE_COLUMNS))
    print(f"wrote {results}")
    return 0


def _cli_rescore(args) -> int:
    results = results_dir(args, "model_zoo")
    folder = Path(args.checkpoints)
    ckpts = {m: folder / f"{m}.safetensors" for m in parse_models(args.models)}
    summary = evaluate_checkpoints(ckpts, Path(args.data), results, args.samples, args.max_windows or None,
                                   args.batch_size, args.device, amp=args.amp)
    print(format_table(summary["rows"], TABLE_COLUMNS))
    print(f"wrote {results}")
    return 0


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("zoo", help="the model-zoo study: train every model, evaluate, write results/")
    sub = p.add_subparsers(dest="zoo", required=True)
    t = sub.add_parser("train", help="train the models (resumable), in parallel processes by default")
    add_train_args(t, models="all")
    t.add_argument("--init-from", default=None, metavar="DIR",
                   help="folder of <model>.safetensors to start new runs from (e.g. checkpoints/MsPacman)")
    t.set_defaults(func=_cli_train)
    r = sub.add_parser("report", help="evaluate every trained model and write results/model_zoo/<game>/")
    r.add_argument("--data", required=True)
    r.add_argument("--runs", required=True)
    r.add_argument("--models", default="all")
    add_eval_args(r, "model_zoo")
    r.set_defaults(func=_cli_report)
    q = sub.add_parser("rescore", help="evaluate exported weights (<dir>/<model>.safetensors) into results/model_zoo/<game>/, "
                                       "keeping the training files already there")
    q.add_argument("--data", required=True)
    q.add_argument("--checkpoints", required=True, metavar="DIR", help="e.g. checkpoints/MsPacman")
    q.add_argument("--models", default="all")
    add_eval_args(q, "model_zoo", max_windows=0)
    q.set_defaults(func=_cli_rescore)
