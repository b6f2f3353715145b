"""What a bare machine's first compilation costs the model-zoo campaign's runs, and what the compile warm-up
(``python -m ssmlib campaign warm``, ``zoo_campaign.warm_commands``) buys back. Read from ``results/``:

* each lease's log (``<campaign>/logs/*.log[.gz]``) gives the seconds every run of the call was given (``each run
  trains N s``), how long the dataset took (``collected in N s``, which counts the wait for a warm-up), the runs
  it started, and, on a call that warmed up, how long the lease waited for the warm-up after its data was ready;
* each run's ``lineage.json`` gives the seconds it actually trained (``train_wall_s``): its latest lease recorded
  before the log was packed and after the log before it (the previous call's), at most :data:`MATCH_S` earlier.

Only calls whose lease stopped its runs at their seconds count (their log says ``told their time is up``; every
log since 2026-12-02 18:16): a run's own clock starts after its first step (so after compiling), and before that
day nothing else bounded it, so the seconds given there left the compilation out (trained = given, to the second).
A lineage lease that trained more than :data:`OVER_S` longer than the call gave is left out (listed, with why,
under ``left_out``): two calls folded into one lease, as ``scripts/lease_start.sh`` warns a warm machine may
(sSSM-k2-s0 and -k4-s0 on 2026-12-02, 648 and 730 s against 401 and 328 s given), or a run that trained on past
its TIME_UP until the lease's outer bound ended it (status "interrupted": sSSM-rp-s0 on 2026-12-05 04:57).

A run's **overhead** is ``given - trained``: start-up, loading the dataset onto the GPU and, on a machine without
torch's compile cache, compiling. A call is ``warm-up`` when its log says the warm-up ended before the runs started
(exit 0), ``warm-up cut`` when the lease killed it first (``WARM_WAIT``, since 2026-12-05; what it had compiled
is used), ``cold`` on a bare machine (its log says so since 2026-12-05; before, it collected its dataset for at
least :data:`COLD_COLLECT_S` seconds) and ``warm`` otherwise (the machine kept the previous call's dataset and caches). A run whose model the warm-up left
out (``compile warm-up leaves out: sSSM``, ``WARM_SKIP`` since 2026-12-05) counts as ``cold`` or ``warm`` all the same. What a warm-up costs is its wait after the data: the runs'
window starts that much later, so the number that decides whether it pays is a run's **trained share of its
window**, ``trained / (given + wait)``, or the **seconds lost**, ``given + wait - trained`` (windows differ in
length between calls: a share compares calls of one length, seconds lost compares across them).

``python scripts/compile_warmup_effect.py`` writes ``results/model_zoo/<game>/campaign/compile-warmup.json``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from ..config import RESULTS_DIR
from ..io import atomic_write_json, parse_time, provenance, read_packed
from . import zoo_campaign as zoo

MATCH_S = 600
"""A lineage lease belongs to the call whose log was packed at most this long after it, and after the log before
(a lease records its runs and packs 26-109 s later, the logs of 2026-12-02 to 2026-12-05; calls of one session
are 4-10 minutes apart, so the previous log bounds the window)."""
OVER_S = 5
"""Seconds a run may train past what it was given (the seconds given are whole; a run stops at its next step)."""
COLD_COLLECT_S = 60
"""Seconds of data collection that mark a bare machine (a warm machine reuses its dataset in 5-15 s; a bare one
collected the 256k frames in 75-240 s, the logs of 2026-12-02 to 2026-12-05)."""

_STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2})-(\d{2})(\d{2})-")


def parse_log(text: str) -> dict | None:
    """What a zoo lease's log says about its runs' time: ``collected_s``, ``given_s``, ``runs`` (started, in order),
    ``bounded`` (the lease stopped its runs at their seconds: ``told their time is up``) and ``warm_up`` (None, or
    its ``exit``, ``waited_s`` after the data, ``wall_s`` and ``runs``). None for a log without the ``each run
    trains`` line (a lease that trained nothing)."""
    m = re.search(r"collected in (\d+) s; each run trains (\d+) s", text)
    if m is None:
        return None
    runs = re.findall(r"^started ([\w.-]+): train ", text, flags=re.M)
    warm = re.search(r"^compile warm-up: exit (\d+) .*waited (\d+) s after the data", text, flags=re.M)
    done = re.search(r"^compile warm-up of (.*) in (\d+) s: exit codes", text, flags=re.M)
    skipped = re.search(r"^compile warm-up leaves out: (.*)$", text, flags=re.M)
    bare = re.search(r"^bare machine \(no compile cache\): (yes|no)$", text, flags=re.M)
    return {"collected_s": int(m[1]), "given_s": int(m[2]), "bare": None if bare is None else bare[1] == "yes",
            "runs": [r for r in runs if not r.startswith("warm-")],
            "bounded": re.search(r"^stop: .* told their time is up", text, flags=re.M) is not None,
            "warm_up": None if warm is None else {
                "exit": int(warm[1]), "waited_s": int(warm[2]),
                "wall_s": None if done is None else int(done[2]),
                "runs": [] if done is None else done[1].split(", "),
                "left_out": [] if skipped is None else [x for x in skipped[1].strip().split(",") if x]}}


def log_time(name: str) -> float | None:
    """The UTC time (epoch seconds) in a stored log's name ``<date>-<HHMM>-<tag>.log[.gz]``."""
    m = _STAMP.match(name)
    if m is None:
        return None
    return parse_time(f"{m[1]}T{m[2]}:{m[3]}:00+0000") + 59  # the name keeps the minute only: the packing was within it


def call_kind(call: dict, model: str | None = None) -> str:
    """``warm-up``, ``warm-up cut``, ``cold`` or ``warm`` for a run of ``model`` (the module's docstring says how)."""
    if call["warm_up"] is not None and model not in call["warm_up"].get("left_out", []):
        return "warm-up" if call["warm_up"]["exit"] == 0 else "warm-up cut"
    if call.get("bare") is not None:  # said by the log since 2026-12-05 (a collection with workers may be short)
        return "cold" if call["bare"] else "warm"
    return "cold" if call["collected_s"] >= COLD_COLLECT_S else "warm"


def scan(game: str = "MsPacman", results: Path = RESULTS_DIR) -> tuple[list[dict], list[dict]]:
    """``(rows, left_out)``. A row per run per call: the call's log and kind, the run, its model, ``given_s``,
    ``trained_s``, ``overhead_s``, ``wait_s`` (the warm-up's wait; 0 without one), ``lost_s`` (overhead plus wait:
    the seconds of its window it did not train), ``share`` of its window trained and ``first_step_s``. Left out:
    the matched leases that trained more than :data:`OVER_S` past their seconds, each with its log, kind, run,
    ``given_s``, ``trained_s``, ``first_step_s`` and why (ended by a SIGTERM, or calls folded into one lease)."""
    cfg = zoo.load_config(game, results)
    models = {r["name"]: zoo.variant_label(r["model"], r.get("jump", 1), r.get("reward_state", "posterior"))
              for r in cfg.runs}
    model_of = {r["name"]: r["model"] for r in cfg.runs}
    leases = {name: [(parse_time(le["time"]), le)
                     for le in zoo.read_lineage(game, name, results)["leases"] if le.get("time")]
              for name in models}
    out, left_out = [], []
    logs = zoo.campaign_dir(game, results) / "logs"
    previous = None  # the packing time of the log before: the previous call's leases were recorded before it
    for path in sorted(logs.glob("*.log*"), key=lambda p: log_time(p.name) or 0.0):
        packed = log_time(path.name)
        if packed is None:
            continue
        since, previous = max(packed - MATCH_S, previous or 0.0), packed
        call = parse_log(read_packed(path).decode(errors="replace"))
        if call is None or not call["bounded"]:
            continue  # a call whose runs' clock alone bounded them: its seconds given left the compilation out
        wait = call["warm_up"]["waited_s"] if call["warm_up"] else 0
        for run in call["runs"]:
            kind = call_kind(call, model_of.get(run))
            near = [(t, le) for t, le in leases.get(run, []) if since < t <= packed]
            lease = max(near, key=lambda x: x[0])[1] if near else None  # the call's own: the latest in its window
            if lease is None or not lease.get("compile"):
                continue  # not recorded by this call, or an eager lease (no compilation to pay for)
            trained = float(lease["train_wall_s"])
            if trained > call["given_s"] + OVER_S:
                why = ("trained on past its TIME_UP, which it never received (time_up_missed), until a SIGTERM"
                       if lease.get("time_up_missed") else
                       "ended by a SIGTERM after its seconds (status interrupted: the lease's grace after TIME_UP "
                       "or its outer bound)" if lease.get("status") == "interrupted" else
                       "more than one call's training: a lineage lease that folded calls together (lease_start.sh)")
                left_out.append({"log": path.name, "kind": kind, "run": run, "given_s": call["given_s"],
                                 "trained_s": round(trained, 1),
                                 "first_step_s": first_step_s(game, run, lease, results), "why": why})
                continue
            out.append({"log": path.name, "kind": kind, "run": run, "model": models[run],
                        "given_s": call["given_s"], "trained_s": round(trained, 1),
                        "overhead_s": round(call["given_s"] - trained, 1), "wait_s": wait,
                        "lost_s": round(call["given_s"] + wait - trained, 1),
                        "share": round(trained / (call["given_s"] + wait), 3),
                        "first_step_s": first_step_s(game, run, lease, results)})
    return out, left_out


def first_step_s(game: str, run: str, lease: dict, results: Path = RESULTS_DIR) -> float | None:
    """A bare machine's lease (not resumed warm): the run's clock at its first test record, which train writes right
    after the process's first step under compile (``train._first_test``), so it is compiling the step and the
    test pass, and the first step itself, measured inside the run (the clock starts once the data and the model
    are loaded; no call's seconds needed). None for a warm lease (its metrics
    file holds the earlier call's first record), a lease without its metrics file, or one whose first test came
    after a training record (before that record existed, 2026-12-03: the test at ``eval_every``)."""
    if lease.get("resumed_warm") or "lease" not in lease:
        return None
    path = zoo.campaign_dir(game, results) / run / f"metrics-lease{lease['lease']}.jsonl"
    try:
        text = read_packed(path).decode()
    except FileNotFoundError:
        return None
    for row in (json.loads(line) for line in text.splitlines() if line.strip()):
        if row.get("split") == "test" and "wall_s" in row:
            return round(float(row["wall_s"]), 1)
        if row.get("split") == "train":
            return None  # a first test after training had started: before the first-step test (2026-12-03)
    return None


def summary(table: list[dict]) -> dict:
    """Per call kind and model: runs, the median and range of ``overhead_s``, ``lost_s``, ``share`` and
    ``first_step_s`` (None where no row of the group has one)."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in table:
        groups.setdefault((r["kind"], r["model"]), []).append(r)
    def spread(g: list[dict], key: str) -> dict | None:
        values = [r[key] for r in g if r.get(key) is not None]
        return {"median": float(np.median(values)), "min": min(values), "max": max(values)} if values else None

    return {f"{kind} / {model}": {"runs": len(g), **{k: spread(g, k) for k in
                                                     ("overhead_s", "lost_s", "share", "first_step_s")}}
            for (kind, model), g in sorted(groups.items())}


def write(game: str = "MsPacman", results: Path = RESULTS_DIR, out: Path | None = None) -> Path:
    """``compile-warmup.json`` beside the campaign's table: the rows, their summary and provenance."""
    table, left_out = scan(game, results)
    path = out or zoo.campaign_dir(game, results) / "compile-warmup.json"
    atomic_write_json(path, {"game": game, "rows": table, "summary": summary(table), "left_out": left_out,
                             "rules": {"match_s": MATCH_S, "over_s": OVER_S, "cold_collect_s": COLD_COLLECT_S},
                             "provenance": provenance("cpu")})
    return path
