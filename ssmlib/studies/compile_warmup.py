"""What a bare machine's first compilation costs the model-zoo campaign's runs, and what the compile warm-up
(``python -m ssmlib campaign warm``, ``zoo_campaign.warm_commands``) buys back. Read from ``results/``:

* each lease's log (``<campaign>/logs/*.log[.gz]``) gives the seconds every run of the call was given (``each run
  trains N s``), how long the dataset took (``collected in N s``, which counts the wait for a warm-up), the runs
  it started, and, on a call that warmed up, how long the lease waited for the warm-up after its data was ready;
* each run's ``lineage.json`` gives the seconds it actually trained (``train_wall_s``): the lease recorded just
  before the log was packed (same call: at most :data:`MATCH_S` earlier).

A lineage lease that trained longer than the call gave is left out: it cannot be one call's training (two calls
folded into one lease, as ``scripts/lease_start.sh`` warns a warm machine may: sSSM-k2-s0 and -k4-s0 on 2026-12-02,
648 and 730 s against 401 and 328 s given; two dSSM-VAE-s2 leases of that day over by under a second). A run's
**overhead** is ``given - trained``: start-up, loading the dataset onto the GPU and, on a machine without
torch's compile cache, compiling. A call is ``warm-up`` when its log has the warm-up's summary, ``cold`` when it
collected its dataset (at least :data:`COLD_COLLECT_S` seconds: a bare machine) and ``warm`` otherwise (the
machine kept the previous call's dataset and caches). What a warm-up costs is its wait after the data: the runs'
window starts that much later, so the number that decides whether it pays is a run's **trained share of its
window**, ``trained / (given + wait)``.

``python scripts/compile_warmup_effect.py`` writes ``results/model_zoo/<game>/campaign/compile-warmup.json``.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np

from ..config import RESULTS_DIR
from ..io import atomic_write_json, provenance, read_packed
from . import zoo_campaign as zoo

MATCH_S = 600
"""A lineage lease belongs to the call whose log was packed at most this long after it (a lease records its runs
and packs within about a minute; calls of one session are at least 6 minutes apart)."""
COLD_COLLECT_S = 60
"""Seconds of data collection that mark a bare machine (a warm machine reuses its dataset in 5-15 s; a bare one
collected the 256k frames in 75-240 s, the logs of 2026-12-02 to 2026-12-05)."""

_STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2})-(\d{2})(\d{2})-")


def parse_log(text: str) -> dict | None:
    """What a zoo lease's log says about its runs' time: ``collected_s``, ``given_s``, ``runs`` (started, in order)
    and ``warm_up`` (None, or ``waited_s`` after the data, ``wall_s`` and the warm-up ``runs``). None for a log
    without the ``each run trains`` line (a lease that trained nothing)."""
    m = re.search(r"collected in (\d+) s; each run trains (\d+) s", text)
    if m is None:
        return None
    runs = re.findall(r"^started ([\w.-]+): train ", text, flags=re.M)
    warm = re.search(r"^compile warm-up: exit (\d+) .*waited (\d+) s after the data", text, flags=re.M)
    done = re.search(r"^compile warm-up of (.*) in (\d+) s: exit codes", text, flags=re.M)
    return {"collected_s": int(m[1]), "given_s": int(m[2]),
            "runs": [r for r in runs if not r.startswith("warm-")],
            "warm_up": None if warm is None else {
                "exit": int(warm[1]), "waited_s": int(warm[2]),
                "wall_s": None if done is None else int(done[2]),
                "runs": [] if done is None else done[1].split(", ")}}


def log_time(name: str) -> float | None:
    """The UTC time (epoch seconds) in a stored log's name ``<date>-<HHMM>-<tag>.log[.gz]``."""
    m = _STAMP.match(name)
    if m is None:
        return None
    t = dt.datetime.fromisoformat(f"{m[1]}T{m[2]}:{m[3]}:00+00:00")
    return t.timestamp() + 59  # the name keeps the minute only: the packing was within it


def call_kind(call: dict) -> str:
    """``warm-up``, ``cold`` or ``warm`` (the module's docstring says how)."""
    if call["warm_up"] is not None:
        return "warm-up"
    return "cold" if call["collected_s"] >= COLD_COLLECT_S else "warm"


def rows(game: str = "MsPacman", results: Path = RESULTS_DIR) -> list[dict]:
    """One row per run per call: the call's log and kind, the run, its model, ``given_s``, ``trained_s``,
    ``overhead_s``, ``wait_s`` (the warm-up's wait; 0 without one) and ``share`` of its window trained."""
    cfg = zoo.load_config(game, results)
    models = {r["name"]: zoo.variant_label(r["model"], r.get("jump", 1), r.get("reward_state", "posterior"))
              for r in cfg.runs}
    leases = {name: [(dt.datetime.fromisoformat(le["time"]).timestamp(), le)
                     for le in zoo.read_lineage(game, name, results)["leases"] if le.get("time")]
              for name in models}
    out = []
    logs = zoo.campaign_dir(game, results) / "logs"
    for path in sorted(logs.glob("*.log*")):
        packed = log_time(path.name)
        call = parse_log(read_packed(path).decode(errors="replace")) if packed else None
        if call is None:
            continue
        wait = call["warm_up"]["waited_s"] if call["warm_up"] else 0
        for run in call["runs"]:
            near = [le for t, le in leases.get(run, []) if 0 <= packed - t <= MATCH_S]
            if len(near) != 1 or not near[0].get("compile"):
                continue  # not recorded by this call, or an eager lease (no compilation to pay for)
            trained = float(near[0]["train_wall_s"])
            if trained > call["given_s"]:
                continue  # more than one call's training: a lineage lease that folded calls together (lease_start.sh)
            out.append({"log": path.name, "kind": call_kind(call), "run": run, "model": models[run],
                        "given_s": call["given_s"], "trained_s": round(trained, 1),
                        "overhead_s": round(call["given_s"] - trained, 1), "wait_s": wait,
                        "share": round(trained / (call["given_s"] + wait), 3)})
    return out


def summary(table: list[dict]) -> dict:
    """Per call kind and model: runs, the median and range of ``overhead_s`` and of ``share``."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in table:
        groups.setdefault((r["kind"], r["model"]), []).append(r)
    return {f"{kind} / {model}": {
        "runs": len(g),
        "overhead_s": {"median": float(np.median([r["overhead_s"] for r in g])),
                       "min": min(r["overhead_s"] for r in g), "max": max(r["overhead_s"] for r in g)},
        "share": {"median": float(np.median([r["share"] for r in g])),
                  "min": min(r["share"] for r in g), "max": max(r["share"] for r in g)}}
        for (kind, model), g in sorted(groups.items())}


def write(game: str = "MsPacman", results: Path = RESULTS_DIR, out: Path | None = None) -> Path:
    """``compile-warmup.json`` beside the campaign's table: the rows, their summary and provenance."""
    table = rows(game, results)
    path = out or zoo.campaign_dir(game, results) / "compile-warmup.json"
    atomic_write_json(path, {"game": game, "rows": table, "summary": summary(table),
                             "rules": {"match_s": MATCH_S, "cold_collect_s": COLD_COLLECT_S},
                             "provenance": provenance("cpu")})
    return path
