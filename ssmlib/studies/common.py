"""What every study shares: run many training processes, read and write a study's files, its tables, and the
command-line flags of its training and evaluation settings.

A study runs many ``python -m ssmlib train --resume`` processes (``train_command``, ``run_commands``),
scores each run with the shared evaluator (``ssmlib.evaluate``), writes ``results/<study>/<game>/``
(``save_run``, ``write_study``: ``summary.json`` and ``table.md``) and loads it again for the book
(``study_root``, ``read_json``, ``read_jsonl``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterable, Sequence

from ..config import MODEL_NAMES, PROFILES, RESULTS_DIR
from ..errors import SsmlibError
from ..io import atomic_write_json, atomic_write_text, drop_other_form, read_text, stored_path
from ..runs import TIME_UP

RUN_FILES = ("metrics.jsonl", "config.json", "summary.json")
"""The files of a training run folder copied beside its evaluation (not the checkpoint)."""


# --------------------------------------------------------------------------------------- run many
def parse_models(spec: str) -> list[str]:
    """``'all'`` or comma-separated model names -> the names, refused unless each is a model."""
    models = list(MODEL_NAMES) if spec == "all" else [m.strip() for m in spec.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODEL_NAMES]
    if unknown:
        raise SsmlibError(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODEL_NAMES)} or 'all'")
    return models


def train_command(model: str, data: Path, out: Path, profile: str, time_limit: float | None = None,
                  device: str | None = None, sets: Sequence[str] = ()) -> list[str]:
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


def add_why_argument(parser) -> None:
    """The ``--why`` of every command that amends a study's design on the record."""
    parser.add_argument("--why", required=True, help="the reason, stored with the date in the config's design_changes")


STOP_AFTER_HELP = ("stop the runs still training this many seconds after they start (as at their time limit: each saves "
                   "its state) "
                   "so that they are recorded before an outer time limit ends the lease (a run's own time limit "
                   "leaves a first compilation out); default: no bound")
"""The ``--stop-after`` flag of the campaigns' ``lease`` commands (``run_commands``'s ``stop_after``)."""


def run_commands(cmds: dict[str, list[str]], logs: Path, parallel: bool = True, on_exit=None,
                 stop_after: float | None = None, interrupt_after: float | None = None) -> dict[str, int]:
    """One process per named command, logging to ``logs/<name>.log``; returns each process's exit code.
    ``on_exit(name, code)`` is called as each process ends, in the order they end (a lease records a
    finished run while the others still train, so a lease cut short keeps what finished).
    ``stop_after`` (> 0; parallel only): seconds after the start at which every process still running is sent
    ``runs.TIME_UP`` once: train and the agents then end as at their time limit (finish the step, score, save,
    status "time-limit"), so that a caller bounded from outside records them before its own end. A run's
    ``--time-limit`` leaves compilation out, and a first compilation once ran two runs past their lease's end
    (2026-12-02, the jumpy sSSM runs' first lease). A process that has not installed its handler yet (still
    starting) is ended by the signal without saving.
    ``interrupt_after`` (with ``stop_after``): seconds after TIME_UP at which a process still running is sent
    SIGTERM (train: finish the step, save, status "interrupted"), so that it is recorded well before the caller's
    outer bound: twice a campaign's sSSM trained on past TIME_UP until that bound (2026-12-03 11:51 and
    2026-12-05 04:57). Not for a process that ignores TIME_UP on purpose (an I2A run's frozen games). Both signals
    are sent from timers, so they come on time even while ``on_exit`` scores a run that ended."""
    if stop_after is not None and stop_after <= 0:
        raise SsmlibError(f"stop_after must be positive (got {stop_after}): the runs would be stopped before they start")
    procs = {}
    t0 = time.monotonic()
    for name, cmd in cmds.items():
        log = open(logs / f"{name}.log", "a")
        procs[name] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log)
        print(f"started {name}: {' '.join(cmd[3:])}", flush=True)
        if not parallel:
            procs[name][0].wait()
    codes: dict[str, int] = {}

    def signal_running(signum, after: float, words: str) -> None:  # on a timer: on_exit may take a while
        running = [n for n, (p, _) in procs.items() if p.poll() is None]
        for n in running:
            procs[n][0].send_signal(signum)
        if running:
            print(f"stop: {', '.join(running)} still running {after:.0f} s {words}", flush=True)

    timers = []
    if stop_after is not None:
        timers.append(threading.Timer(stop_after, signal_running,
                                      (TIME_UP, stop_after, "after the start: told their time is up")))
        if interrupt_after is not None:
            timers.append(threading.Timer(stop_after + interrupt_after, signal_running, (
                signal.SIGTERM, interrupt_after, "after their TIME_UP: sent SIGTERM (each saves and ends "
                "\"interrupted\"; its log says what TIME_UP's state was if it never came)")))
    for timer in timers:
        timer.daemon = True
        timer.start()
    try:
        while len(codes) < len(procs):
            for name, (p, log) in procs.items():
                if name in codes or p.poll() is None:
                    continue
                codes[name] = p.returncode
                log.close()
                print(f"{name}: exit {codes[name]} at {time.monotonic() - t0:.0f} s; last log line: "
                      f"{_last_line(logs / f'{name}.log')}", flush=True)
                if on_exit is not None:
                    on_exit(name, codes[name])
            if len(codes) < len(procs):
                time.sleep(0.5)
    finally:
        for timer in timers:
            timer.cancel()
    return {name: codes[name] for name in procs}


def _last_line(path: Path) -> str:
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def check_exit_codes(codes: dict[str, int], logs: str) -> None:
    """Refuse (one error naming each) if any process of ``run_commands`` failed; ``logs``: where to look."""
    failed = {r: c for r, c in codes.items() if c != 0}
    if failed:
        raise SsmlibError(f"training failed for {', '.join(f'{r} (exit {c})' for r, c in failed.items())}; "
                          f"see {logs}")


def torch_device(device: str | None = None):
    """``device``, or CUDA when there is one, else the CPU."""
    import torch

    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


# ------------------------------------------------------------------------------------------ files
def study_root(study: str, game: str, results: Path | None = None) -> Path:
    """``results`` if given, else the committed study's folder ``results/<study>/<game>``."""
    return Path(results) if results else RESULTS_DIR / study / game


def read_json(path: Path, default=None):
    """The JSON document at ``path`` (gzip-compressed when its name ends in ``.gz``), or ``default`` when there is
    no such file."""
    path = stored_path(path)
    return json.loads(read_text(path)) if path.exists() else default


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSON-lines file (``metrics.jsonl``, ``episodes.jsonl``; gzip-compressed when its name ends
    in ``.gz``); ``[]`` when there is none."""
    path = stored_path(path)
    if not path.exists():
        return []
    return [json.loads(s) for s in read_text(path).splitlines() if s.strip()]


def copy_files(src: Path, dst: Path, names: Iterable[str], prefix: str = "") -> None:
    """Copy each of ``names`` that ``src`` holds to ``dst/<prefix><name>``."""
    for f in names:
        if (Path(src) / f).exists():
            shutil.copyfile(Path(src) / f, Path(dst) / f"{prefix}{f}")
            drop_other_form(Path(dst) / f"{prefix}{f}")  # a compressed copy from before is stale now


def save_run(run: Path, out: Path, eval_doc: dict) -> dict:
    """Copy a run folder's metrics, config and summary into ``out``, write ``eval_doc`` as its
    ``eval.json``; return the run's summary (``{}`` if it has none)."""
    out.mkdir(parents=True, exist_ok=True)
    copy_files(run, out, RUN_FILES)
    atomic_write_json(out / "eval.json", eval_doc)
    drop_other_form(out / "eval.json")
    return read_json(run / "summary.json", {})


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (gzip-compressed when its name ends in ``.gz``)."""
    atomic_write_text(path, text)


def rewrite_block(path: Path, markers: tuple[str, str], body: str) -> bool:
    """Replace what lies between the two ``markers`` lines of the text file ``path`` with ``body`` (a generated
    block of a README); False (nothing written) when the file has no such block."""
    text = Path(path).read_text()
    start, end = markers
    if start not in text or end not in text:
        return False
    head, rest = text.split(start, 1)
    write_text(Path(path), f"{head}{start}\n{body}{end}{rest.split(end, 1)[1]}")
    return True


def write_study(results: Path, summary: dict, table: str) -> None:
    """A study's own files: ``summary.json`` (rows + provenance) and ``table.md``."""
    atomic_write_json(Path(results) / "summary.json", summary)
    write_text(Path(results) / "table.md", table)


# ----------------------------------------------------------------------------------------- tables
def markdown_table(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    """A Markdown table: ``| a | b |``, ``|---|---|``, then one line per row (cells as ``str``)."""
    def line(cells):
        return "| " + " | ".join(str(c) for c in cells) + " |\n"

    return line(header) + "|" + "---|" * len(header) + "\n" + "".join(line(r) for r in rows)


def format_table(rows: list[dict], cols: Sequence[tuple[str, str]]) -> str:
    """A Markdown table of ``rows`` (dicts) with columns ``cols`` (key, format; ``"ci"``: a ``[lo, hi]``
    interval), ``-`` where a value is missing."""
    def cell(v, f):
        if v is None:
            return "-"
        if f == "ci":
            return "-" if None in v else f"[{v[0]:.1f}, {v[1]:.1f}]"
        return f.format(v)

    return markdown_table([c for c, _ in cols], ([cell(r.get(c), f) for c, f in cols] for r in rows))


# ------------------------------------------------------------------------------------ command line
def add_train_args(t: argparse.ArgumentParser, models: str, what: str = "model") -> None:
    """The flags of a study's ``train``: data, run folders, models, profile, time limit, order, device, --set."""
    t.add_argument("--data", required=True)
    t.add_argument("--runs", required=True, help=f"folder of the run folders, one per {what}")
    t.add_argument("--models", default=models, help="comma-separated model names" + (", or 'all'" if models == "all" else ""))
    t.add_argument("--profile", default="quick", choices=PROFILES)
    t.add_argument("--time-limit", type=float, default=None, metavar="SECONDS")
    t.add_argument("--sequential", action="store_true", help=f"one {what} after another")
    t.add_argument("--device", default=None)
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="config overrides for every run")


def add_eval_args(r: argparse.ArgumentParser, study: str, max_windows: int = 512) -> None:
    """The flags of a study's evaluation, one default for every study: where its results go, the samples
    K of the evaluator, the evenly spaced test windows (0: all), batch size, bf16 autocast, device."""
    r.add_argument("--results", default=None, help=f"default: results/{study}/<game>")
    r.add_argument("--samples", type=int, default=8,
                   help="K of the importance-weighted bound and of the open-loop prior samples (stochastic models)")
    r.add_argument("--max-windows", type=int, default=max_windows,
                   help="evenly spaced test windows, the same for every model" + (" (0: all)" if max_windows
                                                                                   else " (0, the default: all)"))
    r.add_argument("--batch-size", type=int, default=16)
    r.add_argument("--amp", action="store_true", help="bf16 autocast on CUDA")
    r.add_argument("--device", default=None)


def results_dir(args, study: str) -> Path:
    """``--results``, else ``results/<study>/<game of --data>``."""
    from ..data.store import read_manifest

    return Path(args.results) if args.results else RESULTS_DIR / study / read_manifest(args.data)["game"]


def results_relative(path: Path, results: Path) -> str:
    """``path`` as cited in a verdict or a study: relative to the folder holding ``results`` (e.g.
    ``results/i2a/MsPacman/summary.json``), else as given."""
    try:
        return str(Path(path).relative_to(Path(results).parent))
    except ValueError:
        return str(path)
