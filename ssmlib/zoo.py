"""The model-zoo study: every environment model trained on one dataset and scored by the same code.

``python -m ssmlib zoo train``  trains the chosen models (in parallel processes on one GPU, or one
after another), each resumable, each with an optional time limit, so the study continues across GPU
leases. ``python -m ssmlib zoo report`` evaluates every checkpoint on the held-out test episodes with
``ssmlib.evaluate`` and writes ``results/model_zoo/<game>/``: per model the raw learning curve
(``metrics.jsonl``), ``config.json`` (configs + provenance), ``summary.json`` of the run and
``eval.json``; for the study ``summary.json`` (one row per model, with provenance), ``table.md`` and
``rollouts.png`` (real frames next to each model's open-loop predictions).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from .config import MODEL_NAMES, RESULTS_DIR
from .errors import SsmlibError
from .io import atomic_write, atomic_write_bytes, atomic_write_json, provenance

CKPT = "checkpoint.safetensors"
RUN_FILES = ("metrics.jsonl", "config.json", "summary.json")


def parse_models(spec: str) -> list[str]:
    models = list(MODEL_NAMES) if spec == "all" else [m.strip() for m in spec.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODEL_NAMES]
    if unknown:
        raise SsmlibError(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODEL_NAMES)} or 'all'")
    return models


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


def train_command(model: str, data: Path, out: Path, profile: str, time_limit: float | None = None,
                  device: str | None = None, sets: list[str] = ()) -> list[str]:
    """The ``python -m ssmlib train --resume`` command line of one run folder."""
    cmd = [sys.executable, "-m", "ssmlib", "train", "--model", model, "--data", str(data), "--out", str(out),
           "--profile", profile, "--resume", "--no-progress"]
    if time_limit:
        cmd += ["--time-limit", str(time_limit)]
    if device:
        cmd += ["--device", device]
    for s in sets:
        cmd += ["--set", s]
    return cmd


def run_commands(cmds: dict[str, list[str]], logs: Path, parallel: bool = True) -> dict[str, int]:
    """One process per named command, logging to ``logs/<name>.log``; returns each process's exit code."""
    procs = {}
    for name, cmd in cmds.items():
        log = open(logs / f"{name}.log", "a")
        procs[name] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log)
        print(f"started {name}: {' '.join(cmd[3:])}", flush=True)
        if not parallel:
            procs[name][0].wait()
    codes = {}
    for name, (p, log) in procs.items():
        codes[name] = p.wait()
        log.close()
        print(f"{name}: exit {codes[name]}; last log line: {_last_line(logs / f'{name}.log')}", flush=True)
    return codes


def _last_line(path: Path) -> str:
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else ""


@torch.no_grad()
def rollout_panel(models: dict, ds, device, window: int = 0, horizon: int = 10, seed: int = 0):
    """Real frames of one test window next to each model's open-loop prediction (stochastic models: one
    prior sample). The window is read from the memory-mapped shards: nothing else is loaded."""
    from .data.windows import WindowDataset, to_device
    from .viz.frames import frame_strip

    windows = WindowDataset(ds, "test", context=3, horizon=horizon)
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


def report(data: Path, runs: Path, results: Path, models: list[str], samples: int = 8, max_windows: int = 512,
           batch_size: int = 16, device: str | None = None) -> dict:
    """Evaluate each trained model with the same code and write the study's files under ``results``."""
    from .checkpoint import load_model
    from .data.store import open_dataset
    from .evaluate import evaluate

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    ds = open_dataset(data)
    results.mkdir(parents=True, exist_ok=True)
    rows, loaded = [], {}
    for m in models:
        ckpt = runs / m / CKPT
        if not ckpt.exists():
            print(f"{m}: no checkpoint in {runs / m}, skipped", flush=True)
            continue
        model = load_model(ckpt, expect_model=m, device=dev, dataset=ds)
        t0 = time.perf_counter()
        ev = evaluate(model, ds, batch_size=batch_size, num_samples=samples, max_windows=max_windows)
        eval_s = time.perf_counter() - t0
        run = save_run(runs / m, results / m, {"eval": ev, "eval_seconds": eval_s, "samples": samples,
                                               "max_windows": max_windows, "provenance": provenance(str(dev))})
        tot, ph = ev["total"], ev["per_horizon"]
        rows.append({
            "model": m, "parameters": sum(p.numel() for p in model.parameters()),
            "train_steps": run.get("step"), "train_wall_s": run.get("wall_s"),
            "train_frames_per_s_steady": run.get("frames_per_s_steady"),
            "horizon": ev["horizon"],
            "ll_nats_per_frame": tot["ll_nats_per_frame"], "ll_nats_sequence": tot["ll_nats"],
            "ll_nats_sequence_sem": tot["ll_nats_sem"],
            "elbo_nats_per_frame": tot["elbo_nats"] / ev["horizon"],
            "iwae_minus_elbo_nats_sequence": tot["iwae_minus_elbo_nats"],
            "nll_bits_per_dim": tot["nll_bits_per_dim"],
            "ll_nats_h1": ph["ll_nats"][0], "ll_nats_h10": ph["ll_nats"][-1],
            "reward_acc_open_loop": tot.get("reward_acc_open_loop"),
            "reward_acc_teacher": tot.get("reward_acc_teacher"),
            "frame_mse_open_loop": tot.get("frame_mse_open_loop"),
            "frame_mse_open_loop_h1": ph["frame_mse_open_loop"][0],
            "frame_mse_open_loop_h10": ph["frame_mse_open_loop"][-1],
            "test_windows": ev.get("windows"),
        })
        loaded[m] = model
        print(f"{m}: LL {tot['ll_nats_per_frame']:.1f} nats/frame, open-loop MSE {tot['frame_mse_open_loop']:.5f}",
              flush=True)
    if not rows:
        raise SsmlibError(f"no trained model found under {runs}")
    summary = {"study": "model_zoo", "game": ds.game, "data": {"dir": str(data), "fingerprint": ds.fingerprint,
               "frames": len(ds), "episodes": len(ds.episodes), "height": ds.height, "width": ds.width},
               "rows": rows, "provenance": provenance(str(dev))}
    atomic_write_json(results / "summary.json", summary)
    atomic_write(results / "table.md", lambda f: f.write(format_table(rows)), mode="w")
    fig = rollout_panel(loaded, ds, dev)
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(results / "rollouts.png", buf.getvalue())
    return summary


def save_run(run: Path, out: Path, eval_doc: dict) -> dict:
    """Copy a run folder's metrics, config and summary into ``out``, write ``eval_doc`` as its
    ``eval.json``; return the run's summary (``{}`` if it has none)."""
    out.mkdir(parents=True, exist_ok=True)
    for f in RUN_FILES:
        if (run / f).exists():
            shutil.copyfile(run / f, out / f)
    atomic_write_json(out / "eval.json", eval_doc)
    return json.loads((run / "summary.json").read_text()) if (run / "summary.json").exists() else {}


def load_study(game: str = "MsPacman", results: Path | None = None) -> dict:
    """The committed model-zoo study of ``game``: its summary (rows + provenance) and, per model, the
    raw learning curve (``curves[model]``: the metrics.jsonl records) and evaluation (``evals[model]``)."""
    from .train import read_metrics

    root = Path(results) if results else RESULTS_DIR / "model_zoo" / game
    if not (root / "summary.json").exists():
        raise SsmlibError(f"no model-zoo study for {game} in {root} (run scripts/gpu_model_zoo.sh on a GPU)")
    study = json.loads((root / "summary.json").read_text())
    study["curves"], study["evals"], study["configs"] = {}, {}, {}
    for row in study["rows"]:
        m = row["model"]
        study["curves"][m] = read_metrics(root / m / "metrics.jsonl")
        study["evals"][m] = json.loads((root / m / "eval.json").read_text())["eval"]
        study["configs"][m] = json.loads((root / m / "config.json").read_text())
    study["root"] = str(root)
    return study


TABLE_COLUMNS = [("model", "{}"), ("parameters", "{:,}"), ("train_steps", "{}"), ("ll_nats_per_frame", "{:.1f}"),
                 ("nll_bits_per_dim", "{:.4f}"), ("ll_nats_h1", "{:.1f}"), ("ll_nats_h10", "{:.1f}"),
                 ("reward_acc_teacher", "{:.3f}"), ("reward_acc_open_loop", "{:.3f}"),
                 ("frame_mse_open_loop", "{:.5f}")]
"""(key, format) of the columns of the study's table.md."""


def format_table(rows: list[dict], cols: list[tuple[str, str]] = TABLE_COLUMNS) -> str:
    """A Markdown table of ``rows`` (dicts) with columns ``cols``, ``-`` where a value is missing."""
    head = "| " + " | ".join(c for c, _ in cols) + " |\n|" + "---|" * len(cols) + "\n"
    body = "".join("| " + " | ".join(("-" if r.get(c) is None else f.format(r[c])) for c, f in cols) + " |\n"
                   for r in rows)
    return head + body


def _cli_train(args) -> int:
    codes = train_all(Path(args.data), Path(args.runs), parse_models(args.models), args.profile, args.time_limit,
                      not args.sequential, args.device, args.set or [], args.init_from)
    failed = {m: c for m, c in codes.items() if c != 0}
    if failed:
        raise SsmlibError(f"training failed for {', '.join(f'{m} (exit {c})' for m, c in failed.items())}; "
                          f"see {args.runs}/<model>.log")
    return 0


def _cli_report(args) -> int:
    from .data.store import read_manifest

    game = read_manifest(args.data)["game"]
    results = Path(args.results) if args.results else RESULTS_DIR / "model_zoo" / game
    summary = report(Path(args.data), Path(args.runs), results, parse_models(args.models), args.samples,
                     args.max_windows, device=args.device)
    print(format_table(summary["rows"]))
    print(f"wrote {results}")
    return 0


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("zoo", help="the model-zoo study: train every model, evaluate, write results/")
    sub = p.add_subparsers(dest="zoo", required=True)
    t = sub.add_parser("train", help="train the models (resumable), in parallel processes by default")
    t.add_argument("--data", required=True)
    t.add_argument("--runs", required=True, help="folder of the run folders, one per model")
    t.add_argument("--models", default="all", help="comma-separated model names, or 'all'")
    t.add_argument("--profile", default="quick", choices=("quick", "paper"))
    t.add_argument("--time-limit", type=float, default=None, metavar="SECONDS")
    t.add_argument("--sequential", action="store_true", help="one model after another")
    t.add_argument("--device", default=None)
    t.add_argument("--set", action="append", metavar="KEY=VALUE")
    t.add_argument("--init-from", default=None, metavar="DIR",
                   help="folder of <model>.safetensors to start new runs from (e.g. checkpoints/MsPacman)")
    t.set_defaults(func=_cli_train)
    r = sub.add_parser("report", help="evaluate every trained model and write results/model_zoo/<game>/")
    r.add_argument("--data", required=True)
    r.add_argument("--runs", required=True)
    r.add_argument("--models", default="all")
    r.add_argument("--results", default=None, help="default: results/model_zoo/<game>")
    r.add_argument("--samples", type=int, default=8, help="K of the importance-weighted bound")
    r.add_argument("--max-windows", type=int, default=512)
    r.add_argument("--device", default=None)
    r.set_defaults(func=_cli_report)

