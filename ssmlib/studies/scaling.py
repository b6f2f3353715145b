"""The scaling study of data-parallel training (issue #7), from the run folders of ``scripts/gpu_scaling.sh``.

``python -m ssmlib.studies.scaling report --runs RUN ... --out results/scaling/<machine>.json`` reads one
training run per number of GPUs (its ``config.json``, ``summary.json`` and ``metrics.jsonl``) and
writes the steady-state training frames/s of each, the speed-up over one GPU and the efficiency
``fps_N / (N fps_1)``, with provenance. ``ssmlib.distributed`` says how the runs themselves are split.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Sequence

import torch

from ..distributed import MULTICAST_OFF
from ..errors import SsmlibError
from ..io import atomic_write_json, provenance
from ..runs import CONFIG, METRICS, SUMMARY
from .common import read_json, read_jsonl

TARGET_SPEEDUP = {2: 1.8, 4: 3.4}
"""Issue #7's targets: training frames/s at N GPUs over 1 GPU, same model and per-GPU batch."""


def steady_fps(records: list[dict], skip_steps: int) -> dict:
    """Frames/s of the logging intervals that end after ``skip_steps`` (compile and warm-up excluded)."""
    fps = [r["frames_per_s"] for r in records
           if r.get("split") == "train" and r.get("frames_per_s") and r["step"] > skip_steps]
    if not fps:
        return {"frames_per_s": None, "intervals": 0}
    return {"frames_per_s": statistics.median(fps), "frames_per_s_mean": statistics.fmean(fps),
            "frames_per_s_min": min(fps), "frames_per_s_max": max(fps), "intervals": len(fps)}


def scaling_report(runs: Sequence[str | os.PathLike], out, skip_steps: int, extra: dict | None = None) -> dict:
    """Write ``out`` (atomically, with provenance) from the run folders of one scaling session."""
    rows = []
    for run in runs:
        run = Path(run)
        if not (run / CONFIG).exists():
            raise SsmlibError(f"{run} holds no training run (no {CONFIG})")
        cfg = read_json(run / CONFIG)
        summary = read_json(run / SUMMARY, {})
        n = int(cfg.get("distributed", {}).get("world_size", 1))
        batch = int(cfg["train_cfg"]["batch_size"])
        rows.append({"gpus": n, "run": run.name, "model": cfg["model"], "global_batch": batch,
                     "per_gpu_batch": batch // n, "horizon": cfg["train_cfg"]["horizon"],
                     "status": summary.get("status"), "steps": summary.get("step"),
                     "compiled": cfg.get("compiled"), "amp_bf16": cfg.get("amp_bf16"),
                     "wall_s": summary.get("wall_s"), "data_fingerprint": cfg["data"]["fingerprint"],
                     **steady_fps(read_jsonl(run / METRICS), skip_steps)})
    rows.sort(key=lambda r: r["gpus"])
    base = next((r["frames_per_s"] for r in rows if r["gpus"] == 1), None)
    for r in rows:
        if base and r["frames_per_s"]:
            r["speedup"] = r["frames_per_s"] / base  # fps_N / fps_1
            r["efficiency"] = r["frames_per_s"] / (r["gpus"] * base)  # fps_N / (N fps_1)
            if r["gpus"] in TARGET_SPEEDUP:
                r["target_speedup"] = TARGET_SPEEDUP[r["gpus"]]
                r["meets_target"] = r["speedup"] >= TARGET_SPEEDUP[r["gpus"]]
    gpus = []
    if torch.cuda.is_available():
        gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    doc = {
        "study": "data-parallel training throughput (issue #7)",
        "measure": (f"median training frames/s (global: windows x horizon per step, all ranks) over the "
                    f"logging intervals after step {skip_steps} (torch.compile and warm-up excluded); "
                    f"efficiency = fps_N / (N fps_1); fps_1 is one process without DDP"),
        "batch": "per-GPU batch held fixed (--batch-size = per-GPU x N) for throughput; training itself "
                 "keeps the config's global batch whatever N is",
        "skip_steps": skip_steps, "rows": rows, "gpus": gpus,
        "provenance": provenance("cuda" if gpus else "cpu", torch=torch.__version__,
                                 nccl=".".join(map(str, torch.cuda.nccl.version())) if gpus else None,
                                 env={k: os.environ.get(k) for k in MULTICAST_OFF}),
        **(extra or {}),
    }
    atomic_write_json(out, doc)
    return doc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ssmlib.studies.scaling", description="the data-parallel scaling study")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("report", help="write the scaling study from the run folders of gpu_scaling.sh")
    r.add_argument("--runs", nargs="+", required=True, metavar="DIR", help="run folders (one per GPU count)")
    r.add_argument("--out", required=True, help="results/scaling/<machine>.json")
    r.add_argument("--skip-steps", type=int, default=100, help="steps excluded as compile/warm-up")
    r.add_argument("--note", action="append", default=[], metavar="KEY=VALUE", help="extra fields (repeatable)")
    args = p.parse_args(argv)
    try:
        extra = {}
        for note in args.note:
            if "=" not in note:
                raise SsmlibError(f"--note {note}: expected key=value")
            k, v = note.split("=", 1)
            try:  # numbers stay numbers
                extra[k] = json.loads(v)
            except json.JSONDecodeError:
                extra[k] = v
        doc = scaling_report(args.runs, args.out, args.skip_steps, extra)
    except SsmlibError as e:
        print(f"ssmlib: error: {e}", file=sys.stderr)
        return 2
    for row in doc["rows"]:
        fps = row["frames_per_s"]
        tail = f", {row['speedup']:.2f}x, efficiency {row['efficiency']:.2f}" if "speedup" in row else ""
        print(f"{row['gpus']} GPU(s): {fps:.0f} frames/s{tail}" if fps else f"{row['gpus']} GPU(s): no steady interval")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
