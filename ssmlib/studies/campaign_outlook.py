"""How many more GPU calls the two campaigns need as they stand, and when the I2A campaign's gated arms can start.

A projection from ``results/``, not a verdict; every input is measured and named in the output:

* **The model zoo.** Each open run gains per call its model's (and jump's) median frames per training second
  over the campaign's compiled leases times the median training seconds of those leases (``lease_frames``). No
  run is assumed to meet the improvement test before its frame cap: an upper bound, reported beside each run's
  latest fall of its excess
  per doubling of frames (``doubling_gain``: the stop rule's own statistic), which says how far the curves are
  from the rule's 3%. Calls are replayed with the campaign's own pick order (``zoo_campaign.pick_order``), its
  ``first_runs`` replaced by each order compared.
* **The I2A campaign.** Its required arms whose environment model is not frozen wait until every zoo run of that
  model has finished (``i2a_campaign.gate_runs``). An arm's run trains per call the model-free arm's agent steps
  per call (``model_free_pace``: its median rate, beside a zoo lease while the zoo trains and alone after it, times
  the median training seconds of its leases beside the zoo) divided by the arm's cost per agent
  step in the committed ``agent bench`` (``cost-bench-h200.json``, alone on the GPU), until its steps left are
  done. A run that is open holds its state in the repository, so at most ``floor(state budget / state size)``
  gated runs are open at once (and at most the lease's ``I2A_MAX_RUNS``); open runs continue before a new one
  starts (``i2a_lane`` says where this is simpler than ``i2a_campaign.pick_runs``).

``python -m ssmlib outlook`` writes ``results/model_zoo/<game>/campaign/outlook.json``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..config import CHECKPOINTS_DIR, RESULTS_DIR
from ..errors import SsmlibError
from ..io import atomic_write_json, parse_time, provenance
from .common import read_json, rewrite_block
from . import i2a_campaign as i2a
from . import zoo_campaign as zoo

ORDERS = {"fewest-frames": "fewest frames first over all runs (the order as first written)",
          "gates-first": "the zoo runs the I2A campaign's required arms wait for first, then fewest frames first"}
"""The pick orders compared; ``gates-first`` puts ``i2a_campaign.gate_runs``' runs in ``first_runs``."""

ZOO_RUNS_PER_CALL = 2
"""Zoo runs a call trains (``scripts/gpu_campaign.sh``'s MAX_RUNS)."""
I2A_RUNS_PER_CALL = 2
"""I2A runs a call's I2A lease trains at most (``I2A_MAX_RUNS``)."""
CALLS_PER_SESSION = 3
"""Calls a working session's ~30 device minutes hold (sessions 14 and 15 made 3; 13 made 2 after refused starts)."""


def _median_rate(amounts_seconds: list[tuple[float, float]]) -> float:
    """The median of ``amount / seconds`` over a campaign's leases (its pace per training second)."""
    return float(np.median([a / s for a, s in amounts_seconds]))


def lease_frames(game: str, results: Path = RESULTS_DIR) -> dict[str, dict]:
    """Per variant (``zoo_campaign.variant_label``) the training frames a call adds: the median rate over its runs'
    compiled leases (frames per training second, compilation included) times the median training seconds of
    every compiled lease of the campaign (``seconds``), with the rate and the count of leases. A rate, because a
    lease's length is the call's, not the model's: the jumpy runs' one lease each folded two calls together
    (648 and 730 s, 2026-12-02), and short calls (98 s given, 2026-12-05 02:46) are calls, not a slower model."""
    cfg = zoo.load_config(game, results)
    leases: dict[str, list[tuple[float, float]]] = {}
    for r in cfg.runs:
        label = zoo.variant_label(r["model"], r.get("jump", 1), r.get("reward_state", "posterior"))
        for le in zoo.read_lineage(game, r["name"], results)["leases"]:
            if le.get("compile") and le.get("train_wall_s"):
                leases.setdefault(label, []).append((le["frames_end"] - le["frames_start"], le["train_wall_s"]))
    if not leases:
        return {}
    per_call = float(np.median([s for v in leases.values() for _, s in v]))
    return {k: {"frames": _median_rate(v) * per_call, "frames_per_s": _median_rate(v), "seconds": per_call,
                "leases": len(v)} for k, v in leases.items()}


def replay_zoo(cfg, frames: dict[str, int], gain: dict[str, float], runs_per_call: int,
               first_runs: list[str], frame_cap: int | None = None) -> dict[str, int]:
    """Per open run (``frames``: run -> training frames now), the call (1 = the next) after which it reaches the
    cap (``frame_cap``, default the config's), each call training the first ``runs_per_call`` runs of
    ``zoo_campaign.pick_order`` (with ``first_runs``) and adding ``gain[run]`` frames to each."""
    import dataclasses

    order_cfg = dataclasses.replace(cfg, first_runs=list(first_runs))
    frames, done, call, cap = dict(frames), {}, 0, frame_cap or cfg.frame_cap
    if any(gain[n] <= 0 for n in frames):
        raise SsmlibError("every open run needs a positive gain per call")
    while frames:
        call += 1
        for name in zoo.pick_order(order_cfg, frames)[:runs_per_call]:
            frames[name] += gain[name]
            if frames[name] >= cap:
                done[name] = call
                del frames[name]
    return done


BESIDE_ZOO_S = 600
"""An I2A lease ran beside the zoo's when a zoo lease was recorded within this many seconds of it (the I2A lease
ends 20 s before the zoo's bound, and the zoo records its runs after scoring them)."""


def model_free_leases(game: str, results: Path = RESULTS_DIR) -> dict[str, list[dict]]:
    """Every full (time-limited, a lease's first round) lease of the I2A campaign's model-free arm, split by whether it
    ran beside a zoo lease (``BESIDE_ZOO_S``) or alone on the GPU: its agent ``steps`` and training ``seconds``."""
    cfg = i2a.load_config(game, results)
    zoo_cfg = zoo.load_config(game, results)
    zoo_times = [parse_time(le["time"]) for r in zoo_cfg.runs for le in zoo.read_lineage(game, r["name"], results)["leases"]
                 if le.get("time")]
    out: dict[str, list[dict]] = {"beside": [], "alone": []}
    for r in i2a.campaign_runs(cfg, extra=True):  # the extra seeds' leases measure the same pace
        if r.arm["variant"] != "model-free":
            continue
        for le in i2a.read_lineage(game, r.name, results)["leases"]:
            if le.get("status") == "time-limit" and le.get("train_wall_s") and le.get("lease_round", 1) == 1:
                # a later round of a lease trains only what the first left: its seconds are not a call's
                beside = any(abs(t - parse_time(le["time"])) <= BESIDE_ZOO_S for t in zoo_times)
                out["beside" if beside else "alone"].append({"steps": le["steps_end"] - le["steps_start"],
                                                             "seconds": le["train_wall_s"]})
    return out


def model_free_pace(leases: dict[str, list[dict]]) -> dict:
    """Agent steps a full call gives a model-free run, beside the zoo and alone: the median rate (steps per training
    second, over each split's leases) times the median training seconds of the leases beside the zoo, the calls
    the campaign makes (a call's length, not the rate, differs between calls: the three alone leases of 2026-12-05
    05:38 trained 59-62 s of a short call, and their 157k-163k steps, taken as a full call's, once made the alone
    pace half the pace beside the zoo, while their rate was about 1.5x it)."""
    if not leases["beside"]:
        raise SsmlibError("no full lease of the model-free arm beside the zoo's to measure a call's seconds from")
    seconds = float(np.median([le["seconds"] for le in leases["beside"]]))
    rate = {k: _median_rate([(le["steps"], le["seconds"]) for le in v]) if v else None for k, v in leases.items()}
    return {"seconds_per_call": seconds, "steps_per_s": rate,
            "steps_per_call": {k: None if r is None else r * seconds for k, r in rate.items()},
            "leases": {k: len(v) for k, v in leases.items()}}


def i2a_lane(runs: list[dict], max_open: int, runs_per_call: int, model_free_steps) -> int:
    """The call after which every run of ``runs`` is finished. Each run: ``name``, ``gate`` (the call after which its
    environment model can be frozen; 0: now), ``cost`` (wall time per agent step over model-free's), ``left``
    (agent steps still to train; 0 for a run at its budget whose frozen evaluation is still to come: one more
    call) and ``open`` (started already), in the I2A campaign's order for new runs. Each call continues the open
    runs (fewest steps left first), then starts new ones whose gate has opened while fewer than ``max_open`` are
    open, ``runs_per_call`` in all; a run trains ``model_free_steps(call) / cost`` steps in it.

    Simpler than ``i2a_campaign.pick_runs``, which trains the design's runs with the fewest steps first (extra seeds,
    as here, nearest their budget first) and lets a new run
    start beside open ones whenever the state budget holds both: the two agree while ``max_open <= runs_per_call``,
    which ``outlook`` keeps."""
    if max_open < 1 or runs_per_call < 1:
        raise SsmlibError("the I2A lane needs room for one open run and one run per call")
    left = {r["name"]: r["left"] for r in runs}
    started = [r["name"] for r in runs if r["open"]]
    call = 0
    while left:
        call += 1
        picked = sorted(started, key=lambda n: left[n])[:runs_per_call]
        for r in runs:
            if len(picked) == runs_per_call or len(started) >= max_open:
                break
            if r["name"] not in started and r["name"] in left and r["gate"] < call:
                started.append(r["name"])
                picked.append(r["name"])
        for r in runs:
            if r["name"] in picked:
                left[r["name"]] -= model_free_steps(call) / r["cost"]
                if left[r["name"]] <= 0:  # trained (a run at its budget is only evaluated, in one call)
                    del left[r["name"]]
                    started.remove(r["name"])
        if call > 100_000:
            raise SsmlibError("the I2A lane does not finish: a run's gate never opens")
    return call


def i2a_needs(game: str, results: Path = RESULTS_DIR, state_budget_mib: float = i2a.STATE_BUDGET_MIB,
              checkpoints: Path = CHECKPOINTS_DIR) -> dict:
    """The I2A campaign's required runs that query a model and are not finished: per arm its cost per agent step
    (the committed bench), its state size as committed (``state-quantization.json``'s coded size times
    ``i2a_campaign.stored_ratio``), and per run the steps left and whether it is open; the model-free arm's steps
    per full lease beside the zoo and alone; how many such runs the state budget holds open."""
    cfg = i2a.load_config(game, results)
    camp = i2a.campaign_dir(game, results)
    pace = model_free_pace(model_free_leases(game, results))  # refuses without a lease beside the zoo's
    bench = read_json(camp / "cost-bench-h200.json")
    if bench is None:
        raise SsmlibError(f"{camp / 'cost-bench-h200.json'} is missing (python -m ssmlib agent bench; see chapter 10)")
    cost = {row["variant"]: row["cost"] for row in i2a.imagination_cost(bench, cfg.cost_target, n_boot=50)}
    sizes = (read_json(camp / "state-quantization.json") or {}).get("arms", {})
    ratio = i2a.stored_ratio(game, results, checkpoints)  # committed compressed: what pick_runs counts a new run at

    def stored(arm: str) -> float | None:
        coded = sizes.get(arm, {}).get("mib_coded")
        return None if coded is None else coded * ratio

    arms = {a["name"]: {"env_model": a["env_model"], "frozen": a["env_model"] in cfg.env_models,
                        "cost": cost[a["variant"]], "state_mib": stored(a["name"]), "runs": []}
            for a in cfg.arms if a["required"] and a["env_model"]}
    for r in i2a.campaign_runs(cfg):
        if r.arm["name"] in arms:
            lin = i2a.read_lineage(game, r.name, results)
            if not lin["finished"]:
                arms[r.arm["name"]]["runs"].append({"name": r.name, "left": max(0, cfg.total_steps - lin["steps"]),
                                                    "open": bool(lin["leases"])})
    known = [a["state_mib"] for a in arms.values() if a["state_mib"]]
    if known and state_budget_mib < max(known):
        raise SsmlibError(f"a state budget of {state_budget_mib:g} MiB holds no gated I2A run ({max(known):.1f} MiB "
                          "each): no such run could ever start")
    return {"model_free_steps_per_lease": pace["steps_per_call"], "model_free_steps_per_s": pace["steps_per_s"],
            "model_free_seconds_per_call": pace["seconds_per_call"],
            "model_free_leases": pace["leases"], "total_steps": cfg.total_steps,
            "state_budget_mib": state_budget_mib, "stored_ratio": round(ratio, 4),
            "max_open": int(state_budget_mib // max(known)) if known else 1,
            "arms": arms}


def outlook(game: str, results: Path = RESULTS_DIR, zoo_runs_per_call: int = ZOO_RUNS_PER_CALL,
            i2a_runs_per_call: int = I2A_RUNS_PER_CALL, calls_per_session: int = CALLS_PER_SESSION,
            state_budget_mib: float = i2a.STATE_BUDGET_MIB, frame_cap: int | None = None,
            checkpoints: Path = CHECKPOINTS_DIR) -> dict:
    """Both campaigns replayed under each order of ``ORDERS``: per order the call after which the gated I2A arms
    can start, the zoo is at its cap, and the gated I2A runs are finished (and the last of those, in sessions).
    ``frame_cap`` and ``state_budget_mib`` replace the design's (what another cap or budget would change);
    ``checkpoints`` holds the I2A campaign's committed state (``i2a_campaign.stored_ratio``)."""
    cfg = zoo.load_config(game, results)
    cap = frame_cap or cfg.frame_cap
    per_lease = lease_frames(game, results)
    runs, frames, gain = [], {}, {}
    for r in cfg.runs:
        lin = zoo.read_lineage(game, r["name"], results)
        label = zoo.variant_label(r["model"], r.get("jump", 1), r.get("reward_state", "posterior"))
        g = {key: zoo.doubling_gain(lin["curve"], key) if lin["curve"] else "no curve point yet"
             for key in ("excess", "excess_joint")}
        runs.append({"run": r["name"], "variant": label, "frames": zoo.run_frames(lin), "finished": lin["finished"],
                     "frames_per_lease": per_lease.get(label, {}).get("frames"),
                     **{f"gain_{k}": None if isinstance(v, str) else round(v[2], 4) for k, v in g.items()}})
        if not lin["finished"]:
            if label not in per_lease:
                raise SsmlibError(f"no compiled lease of {label} yet to measure its frames per lease from")
            frames[r["name"]], gain[r["name"]] = runs[-1]["frames"], per_lease[label]["frames"]
    icfg = i2a.load_config(game, results)
    gates = i2a.gate_runs(icfg, cfg)
    needs = i2a_needs(game, results, state_budget_mib, checkpoints)
    per_run = {run["name"]: {**run, "cost": arm["cost"], "model": arm["env_model"], "frozen": arm["frozen"]}
               for arm in needs["arms"].values() for run in arm["runs"]}
    # the I2A campaign's order for runs not yet started: seed by seed, each seed arm by arm (i2a_campaign.pick_runs)
    lane = [per_run[r.name] for r in sorted(i2a.campaign_runs(icfg), key=lambda r: (r.seed, r.order))
            if r.name in per_run]
    beside, alone = (needs["model_free_steps_per_lease"][k] for k in ("beside", "alone"))
    gate_names = list(dict.fromkeys(n for names in gates.values() for n in names))
    orders = {}
    for order, first in (("fewest-frames", []), ("gates-first", gate_names)):
        done = replay_zoo(cfg, frames, gain, zoo_runs_per_call, first, cap)
        opens = {m: max((done.get(n, 0) for n in names), default=0) for m, names in gates.items()}
        zoo_end = max(done.values(), default=0)
        # beside the zoo's runs while the zoo trains, alone on the GPU after (where an alone lease was measured)
        i2a_end = i2a_lane([{**r, "gate": 0 if r["frozen"] else opens.get(r["model"], 0)} for r in lane],
                           min(needs["max_open"], i2a_runs_per_call), i2a_runs_per_call,
                           lambda call: beside if call <= zoo_end or alone is None else alone) if lane else 0
        orders[order] = {"words": ORDERS[order], "first_runs": first, "gates_open_call": opens,
                         "zoo_at_cap_call": zoo_end, "i2a_gated_done_call": i2a_end,
                         "both_done_call": max(zoo_end, i2a_end),
                         "both_done_sessions": math.ceil(max(zoo_end, i2a_end) / calls_per_session),
                         "run_at_cap_call": done}
    return {"game": game, "frame_cap": cap, "design_frame_cap": cfg.frame_cap, "stop_improvement": cfg.stop_improvement,
            "current_first_runs": list(cfg.first_runs), "zoo_runs_per_call": zoo_runs_per_call,
            "i2a_runs_per_call": i2a_runs_per_call, "calls_per_session": calls_per_session,
            "lease_frames": per_lease, "runs": runs, "gates": gates, "i2a": needs, "orders": orders,
            "assumptions": [
                "no zoo run meets the improvement test before the frame cap (an upper bound; see each run's gains)",
                "each zoo run gains per call its variant's median frames per training second over the compiled "
                "leases so far, times the median training seconds of every compiled lease",
                "the zoo's frames per lease were measured beside the I2A campaign's model-free runs; a GPU-heavier "
                "I2A run beside it may slow it (not measured yet)",
                "an I2A arm's steps per call: the model-free arm's median steps per training second (beside a zoo "
                "lease while the zoo trains, alone after it where an alone lease was measured) times the median "
                "training seconds of its leases beside the zoo, over the arm's cost in the committed agent bench "
                "(measured alone on the GPU)",
                "i2a-distill-sSSM's cost is the bench's i2a-distill, which queried dSSM-DET",
                "the model-free arm's open runs are not counted (they hold no gate and little state)",
                "extra seeds (the design's extra_seeds) are not projected: they train only while no design run can; "
                "one still open when a gate opens holds 2.8 MiB of the state budget, which may delay that arm's "
                "first run by at most one extra run's length"]}


def markdown(o: dict) -> str:
    """The outlook as a short table and the sentence it supports."""
    rows = ["| what | order | gated I2A arms can start after call | zoo at its cap after call | gated I2A runs done "
            "after call | both done |", "|---|---|---|---|---|---|"]
    levers = [("the design's cap and budget", o["orders"])] + [(a["lever"], a["orders"]) for a in o.get("alternatives", [])]
    for lever, orders in levers:
        for name, r in orders.items():
            opens = ", ".join(f"{m} {c}" for m, c in r["gates_open_call"].items())
            rows.append(f"| {lever} | {name} | {opens} | {r['zoo_at_cap_call']} | {r['i2a_gated_done_call']} | "
                        f"{r['both_done_call']} calls ({r['both_done_sessions']} sessions) |")
    joint = [r["gain_excess_joint"] for r in o["runs"] if r["gain_excess_joint"] is not None and not r["finished"]]
    mf, rate = o["i2a"]["model_free_steps_per_lease"], o["i2a"]["model_free_steps_per_s"]
    arms = "; ".join(f"{n} {a['cost']:.2f}x model-free's cost per step, {len(a['runs'])} runs to go"
                     for n, a in o["i2a"]["arms"].items())
    arms = (f"a model-free run trains {rate['beside']:,.0f} agent steps per second beside the zoo's"
            + (f" and {rate['alone']:,.0f} alone" if rate["alone"] else "")
            + f" (medians over its leases), {mf['beside']:,.0f}"
            + (f" and {mf['alone']:,.0f}" if mf["alone"] else "")
            + f" a call of {o['i2a']['model_free_seconds_per_call']:.0f} training seconds (the median beside the "
              f"zoo's); {arms}")
    return "\n".join(rows) + (
        f"\n\nCalls of {o['zoo_runs_per_call']} zoo runs and up to {o['i2a']['max_open']} open gated I2A run(s) "
        f"(state budget {o['i2a']['state_budget_mib']:g} MiB), {o['calls_per_session']} calls a session. "
        f"Every open run to the cap of {o['frame_cap']:,} frames: an upper bound (the open runs' joint excess, which "
        f"the rule reads beside the open-loop one, fell {min(joint):.0%}-{max(joint):.0%} over their last doubling "
        f"of frames; the rule ends a run below {o['stop_improvement']:.0%} on both). I2A: {arms}." if joint else "")


def alternatives(base: dict, results: Path = RESULTS_DIR, checkpoints: Path = CHECKPOINTS_DIR) -> list[dict]:
    """What the two levers outside the pick order would change, each alone, against the outlook ``base``: half the
    design's frame cap (a looser stop rule: the design's own amendments may only make it stricter), and, where the
    budget holds fewer than two, a state budget for two open I2A runs (the repository's 56 MiB must hold them)."""
    game = base["game"]
    two = 2 * max(a["state_mib"] or 0 for a in base["i2a"]["arms"].values()) + 0.5
    levers = [(f"frame cap {base['frame_cap'] // 2:,}", {"frame_cap": base["frame_cap"] // 2})]
    if base["i2a"]["max_open"] < 2:
        levers.append((f"state budget {two:.1f} MiB", {"state_budget_mib": two}))
    out = []
    for lever, kw in levers:
        o = outlook(game, results, checkpoints=checkpoints, **kw)
        out.append({"lever": lever, **kw, "orders": {k: {f: v[f] for f in ("gates_open_call", "zoo_at_cap_call",
                                                                          "i2a_gated_done_call", "both_done_call",
                                                                          "both_done_sessions")}
                                                     for k, v in o["orders"].items()}})
    return out


README_MARKERS = ("<!-- campaign-outlook: generated by `python -m ssmlib outlook`; do not edit -->",
                  "<!-- /campaign-outlook -->")
"""The README's copy of the outlook (MsPacman) lies between these lines."""


def write(game: str, results: Path = RESULTS_DIR, readme: Path | None = None, **kw) -> Path:
    """``outlook.json`` with provenance, and (MsPacman, the repository's results) the README's block rewritten."""
    from ..config import REPO_ROOT

    path = zoo.campaign_dir(game, results) / "outlook.json"
    doc = outlook(game, results, **kw)
    doc.update(alternatives=alternatives(doc, results, kw.get("checkpoints", CHECKPOINTS_DIR)), provenance=provenance())
    atomic_write_json(path, doc)
    if readme is None and game == "MsPacman" and Path(results) == Path(RESULTS_DIR):
        readme = REPO_ROOT / "README.md"
    if readme is not None:
        rewrite_block(readme, README_MARKERS, markdown(doc) + "\n")
    return path


def _cli(args) -> int:
    path = write(args.game, state_budget_mib=args.state_budget_mib)
    print(f"wrote {path}")
    print(markdown(read_json(path)))
    return 0


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("outlook", help="the GPU calls the model-zoo and I2A campaigns still need, under each "
                              "pick order of the zoo (a projection from results/)")
    p.add_argument("--game", default="MsPacman")
    p.add_argument("--state-budget-mib", type=float, default=i2a.STATE_BUDGET_MIB,
                   help="the I2A campaign's state budget: how many gated I2A runs may be open at once")
    p.set_defaults(func=_cli)
