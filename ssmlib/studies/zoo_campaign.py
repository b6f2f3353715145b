"""The model-zoo campaign: every environment model trained until it stops improving, over many GPU leases.

A lease is one call on a lent GPU machine (about 30 minutes a session, the machine bare each time).
The campaign's state lives in the repository, so every lease continues where the last one stopped:

* ``results/model_zoo/<game>/campaign/config.json``: the study, written once by ``campaign init``
  BEFORE any run, with its stop rule; later leases refuse to run under another config;
* ``results/model_zoo/<game>/campaign/<run>/lineage.json``: per lease the git sha, device, steps,
  frames, environment steps and wall time, and the learning curve (test excess after each lease with
  its 95% episode-bootstrap interval), and whether the stop rule holds;
* ``checkpoints/campaign/<game>/<run>.safetensors``: the run's weights in bfloat16 (half of float32's
  bytes: the repository travels with every GPU call). No optimiser state is committed: a new lease
  starts a fresh AdamW from these weights (its moments rebuild within a few hundred steps; ours).
  Back-to-back calls on a machine that stayed warm resume exactly from the run folder instead.

``python -m ssmlib campaign lease --data DIR --seconds S`` trains the unfinished runs in the config's pick
order (``first_runs``, then the fewest frames first: ``pick_order``), ``--max-runs`` of them in parallel
processes on the one GPU, then scores each on the same fixed test windows with ``ssmlib.evaluate``, appends
to its lineage and applies the stop rule.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..config import CHECKPOINTS_DIR, MODEL_NAMES, RESULTS_DIR, REWARD_STATES, SAMPLING_MODELS, jump_name
from ..errors import SsmlibError
from ..io import (amend_study_config, atomic_write_json, atomic_write_text, provenance, read_study_config, round_floats,
                  stored_path, write_study_config)
from .common import (STOP_AFTER_HELP, add_why_argument, markdown_table, read_json, rewrite_block, run_commands,
                     torch_device, train_command, write_text)

STOP_RULE = ("A run is finished when its test excess over the exact floor (open loop, mean over horizons "
             "h = 1..10, nats/frame, on the campaign's fixed test windows) improved by less than "
             "{stop_improvement:.0%} over its last doubling of training frames (the curve point at or just "
             "below half the frames against the last), or at {frame_cap:,} training frames.")
"""The stop rule, written into the campaign's config before its first run."""

JOINT_WORDS = ("the joint excess (teacher-forced for AR and RAR, the posterior's importance-weighted bound for "
               "sSSM and dSSM-VAE; the open-loop number itself for dSSM-DET)")
"""What the curve's ``excess_joint`` is, model by model (the evaluator's ``joint``)."""


def rule_words(stop_improvement: float, frame_cap: int, confirmations: int = 1, joint: bool = False) -> str:
    """The stop rule in words, amendments included (``stop_confirmations``, ``stop_on_joint``)."""
    rule = STOP_RULE.format(stop_improvement=stop_improvement, frame_cap=frame_cap)
    if confirmations > 1:
        rule = (f"{rule[:-1]}; the improvement test must hold at the last {confirmations} curve points in a row, "
                f"each against its own half-frames reference.")
    if joint:
        rule += f" It must hold on {JOINT_WORDS} as well as on the open-loop excess."
    return rule

EVAL_FILE = "eval.json.gz"
"""A run's latest evaluation, gzip-compressed (a third of the bytes: the tree travels with every GPU call)."""


@dataclass
class CampaignRun:
    """One run of the campaign."""

    name: str
    """Run folder name, e.g. ``sSSM-s0`` or ``sSSM-k2-s0``."""
    model: str
    """One of the five models."""
    seed: int = 0
    """Seed of the parameters and the window sampler (each lease draws from (seed, lease))."""
    jump: int = 1
    """Environment steps per transition (jumpy models)."""
    reward_state: str = "posterior"
    """``ModelConfig.reward_state``: ``prior`` trains the sSSM's reward head on the prior's state (ours)."""


def default_runs(game: str) -> list[CampaignRun]:
    """MsPacman: 3 seeds of each SSM, AR and RAR once, jumpy sSSM k=2 and k=4; other games: one of each."""
    seeds = (0, 1, 2) if game == "MsPacman" else (0,)
    runs = [CampaignRun(f"{m}-s{s}", m, s) for m in ("sSSM", "dSSM-DET", "dSSM-VAE") for s in seeds]
    runs += [CampaignRun("AR-s0", "AR"), CampaignRun("RAR-s0", "RAR")]
    if game == "MsPacman":
        runs += [CampaignRun(f"sSSM-k{k}-s0", "sSSM", 0, k) for k in (2, 4)]
    return runs


@dataclass
class CampaignConfig:
    """The whole study, fixed before its first run (``campaign init``)."""

    game: str = "MsPacman"
    """ALE game."""
    data_steps: int = 256_000
    """Frames of the campaign's dataset, collected again from its seed in every lease (same fingerprint)."""
    data_seed: int = 7
    """Seed of the campaign's dataset (not the earlier studies' 0: new episodes)."""
    agent: str = "checkpoints/agents/MsPacman-model-free.safetensors"
    """The trained agent that plays ``agent_share`` of the collection's envs (ours: the paper is silent)."""
    agent_share: float = 0.5
    """Share of the envs the agent plays; the others play the random policy with sticky actions."""
    epsilon: float = 0.1
    """The agent's random-action probability while collecting."""
    profile: str = "paper"
    """Config profile of every run (the paper's sizes; batch and learning rate of the new engine)."""
    runs: list = field(default_factory=list)
    """The runs (``CampaignRun`` as dicts)."""
    stop_improvement: float = 0.03
    """Relative improvement of the open-loop excess over the last doubling of frames below which a run is done."""
    frame_cap: int = 100_000_000
    """Training frames (prediction targets) after which a run is done regardless."""
    stop_confirmations: int = 1
    """Consecutive curve points (the last ones) at which the improvement test must hold, each against its own
    half-frames reference: 1 as first written; 2 since the amendment of 2026-12-03 (``amend_stop_rule``)."""
    stop_on_joint: bool = False
    """Whether the improvement test must hold on the joint excess too (the curve's ``excess_joint``), not only on
    the open-loop excess: False as first written; True since the amendment of 2026-12-03 (``amend_stop_rule``)."""
    eval_windows: int = 1024
    """Evenly spaced test windows of every curve point (the same windows for every run and lease)."""
    eval_samples: int = 4
    """Prior/posterior samples of the evaluator at every curve point."""
    weights_dtype: str = "bfloat16"
    """Storage dtype of the committed weights (what is stored is what the next lease starts from)."""
    stop_rule: str = ""
    """The stop rule in words (filled in from STOP_RULE)."""
    first_runs: list = field(default_factory=list)
    """Runs a lease trains before every other open run (fewest frames first among them, then the rest), e.g.
    those another campaign waits for: empty as first written (fewest frames first over all runs); amended by
    ``campaign amend-order``. The order changes when a run trains, never how it is judged."""
    design_changes: list = field(default_factory=list)
    """Changes made after the campaign started (``add_run``), each dated with its reason."""


def campaign_dir(game: str, results: Path = RESULTS_DIR) -> Path:
    return Path(results) / "model_zoo" / game / "campaign"


def weights_path(game: str, run: str, checkpoints: Path = CHECKPOINTS_DIR) -> Path:
    return Path(checkpoints) / "campaign" / game / f"{run}.safetensors"


def study_name(run: str, frames: int) -> str:
    """A run's weights in the open-loop sample-count study (``ssmlib.studies.open_loop_samples``): ``<run>@<frames>M``,
    the frames of the curve point they scored."""
    return f"{run}@{frames / 1e6:.2f}M"


def sampling_weights(game: str, results: Path = RESULTS_DIR, checkpoints: Path = CHECKPOINTS_DIR
                     ) -> list[tuple[str, Path, int]]:
    """``(study name, weights, frames)`` of every run of a sampling model with committed weights, the frames being
    those of its lineage's last curve point (the point those weights scored): what the sample-count study scores."""
    out = []
    for run in load_config(game, results).runs:
        w = weights_path(game, run["name"], checkpoints)
        curve = read_lineage(game, run["name"], results)["curve"]
        if run["model"] in SAMPLING_MODELS and w.exists() and curve:
            frames = int(curve[-1]["frames"])
            out.append((study_name(run["name"], frames), w, frames))
    return out


def init(cfg: CampaignConfig, results: Path = RESULTS_DIR) -> Path:
    """Write the campaign's config (refused if one exists: the rule is fixed before the numbers)."""
    if not cfg.runs:
        cfg.runs = [dataclasses.asdict(r) for r in default_runs(cfg.game)]
    bad = [r["model"] for r in cfg.runs if r["model"] not in MODEL_NAMES]
    if bad:
        raise SsmlibError(f"unknown model(s) {', '.join(bad)} in the campaign's runs")
    cfg.stop_rule = rule_words(cfg.stop_improvement, cfg.frame_cap, cfg.stop_confirmations, cfg.stop_on_joint)
    return write_study_config(campaign_dir(cfg.game, results) / "config.json", dataclasses.asdict(cfg),
                              "a campaign's config and stop rule are fixed once it has started")


def add_run(game: str, run: CampaignRun, why: str, results: Path = RESULTS_DIR) -> Path:
    """Add a run to a started campaign, on the record (a dated line in ``design_changes``: what and why). The
    stop rule and every other run stay as written; the new run starts at 0 frames, so the next lease picks it."""
    cfg = load_config(game, results)
    if run.name in {r["name"] for r in cfg.runs}:
        raise SsmlibError(f"the campaign already has a run {run.name}: choose another name")
    if run.model not in MODEL_NAMES:
        raise SsmlibError(f"unknown model {run.model!r}; choose from {', '.join(MODEL_NAMES)}")
    if run.reward_state not in REWARD_STATES:
        raise SsmlibError(f"reward_state {run.reward_state!r}: choose {', '.join(REWARD_STATES)}")
    if run.reward_state != "posterior" and run.model != "sSSM":
        raise SsmlibError(f"reward_state {run.reward_state!r} changes the sSSM only ({run.model}'s s_t never sees the "
                          f"real frame): the run would repeat a posterior run under another name")
    if run.jump < 1:
        raise SsmlibError(f"jump must be >= 1 (got {run.jump})")
    return amend_study_config(campaign_dir(game, results) / "config.json", CampaignConfig,
                              f"added run {run.name} ({dataclasses.asdict(run)}): {why}",
                              {"runs": [*cfg.runs, dataclasses.asdict(run)]},
                              f"start the campaign first: python -m ssmlib campaign init --game {game}")


def load_config(game: str, results: Path = RESULTS_DIR) -> CampaignConfig:
    return CampaignConfig(**read_study_config(campaign_dir(game, results) / "config.json",
                                              f"no campaign for {game}; start one with: python -m ssmlib campaign "
                                              f"init --game {game}"))


def read_lineage(game: str, run: str, results: Path = RESULTS_DIR) -> dict:
    return read_json(campaign_dir(game, results) / run / "lineage.json",
                     {"run": run, "leases": [], "curve": [], "finished": False})


def stop_rule_holds(curve: list[dict], stop_improvement: float, frame_cap: int,
                    confirmations: int = 1, joint: bool = False) -> tuple[bool, str]:
    """The stop rule on a curve of ``{"frames", "excess"}`` points (frames increasing; ``"excess_joint"`` too
    when ``joint``).

    Finished when the last point has at least ``frame_cap`` frames, or when, against the point at or
    just below half the last point's frames, the excess fell by less than ``stop_improvement`` of its
    value there (with ``joint``: the open-loop excess and the joint excess both), and the same held at each of
    the ``confirmations - 1`` points before the last (each against its own half-frames reference). Fewer than
    two points, or no point at or below half the frames: not finished. The confirmations guard against an
    outlier last point, not an outlier reference: consecutive points may share their reference point.
    """
    if not curve:
        return False, "no curve point yet"
    if curve[-1]["frames"] >= frame_cap:
        return True, f"reached the cap of {frame_cap:,} frames"
    done, why = _point_test(curve, stop_improvement, joint)
    for back in range(1, confirmations):
        if not done:
            break
        earlier_done, earlier_why = _point_test(curve[:-back], stop_improvement, joint)
        if not earlier_done:
            # one point can be an outlier of the training path (two continuations of one state with the same
            # seed reached 658 and 1486 nats/frame: campaign/branches/2026-12-03-0839-h200/README.md)
            held = "the last point" if back == 1 else f"the last {back} points"
            return False, (f"holds at {held} but not yet at {confirmations} in a row: {why}; at the point "
                           f"before {'it' if back == 1 else 'them'}: {earlier_why}")
    if done and confirmations > 1:
        why += f" (and at the {'point' if confirmations == 2 else f'{confirmations - 1} points'} before: " \
               f"{confirmations} in a row)"
    return done, why


def _point_test(curve: list[dict], stop_improvement: float, joint: bool) -> tuple[bool, str]:
    """The improvement test at the last point of ``curve``: on the open-loop excess, and with ``joint`` on the
    joint excess too (both must hold; the reason names the one that does not)."""
    done, why = _improvement_test(curve, stop_improvement)
    if not joint:
        return done, why
    # a sampling model's open-loop number is a K-sample estimate whose gap to the likelihood grows with
    # training (results/open_loop_samples/): it can stall while the model still learns
    joint_done, joint_why = _improvement_test(curve, stop_improvement, "excess_joint")
    if done and joint_done:
        return True, f"open loop: {why}; joint: {joint_why}"
    if not done and not joint_done and why == joint_why:
        return False, why  # e.g. no point at half the frames yet
    return False, "; ".join(f"{name}: {w}" for name, d, w in (("open loop", done, why), ("joint", joint_done,
                                                                                             joint_why)) if not d)


def doubling_gain(curve: list[dict], key: str = "excess") -> tuple[dict, dict, float] | str:
    """``(ref, last, gain)``: the last point of ``curve``, the point at or just below half its frames, and the
    relative fall of ``key`` between them (what the stop rule compares); or why there is none (a sentence)."""
    last = curve[-1]
    earlier = [p for p in curve[:-1] if p["frames"] <= last["frames"] / 2]
    if not earlier:
        return "no point at half the frames yet"
    ref = earlier[-1]
    missing = [p["frames"] for p in (ref, last) if p.get(key) is None]
    if missing:
        return f"no {key} at {missing[0]:,} frames"
    return ref, last, (ref[key] - last[key]) / abs(ref[key]) if ref[key] else 0.0


def _improvement_test(curve: list[dict], stop_improvement: float, key: str = "excess") -> tuple[bool, str]:
    """The improvement part of the stop rule at the last point of ``curve`` (not empty), on its ``key``."""
    found = doubling_gain(curve, key)
    if isinstance(found, str):
        return False, found
    ref, last, gain = found
    # the rule compares two points; their intervals (when scored) say whether that comparison can tell a
    # plateau from the evaluation's noise: reported, not part of the rule
    cis = [p.get(f"{key}_ci") for p in (ref, last)]
    noise = ""
    if all(cis):
        overlap = cis[0][0] <= cis[1][1] and cis[1][0] <= cis[0][1]
        noise = (f"; 95% CIs [{cis[0][0]:.1f}, {cis[0][1]:.1f}] and [{cis[1][0]:.1f}, {cis[1][1]:.1f}]"
                 + (" overlap" if overlap else " do not overlap"))
    if gain < stop_improvement:
        return True, (f"excess {ref[key]:.1f} -> {last[key]:.1f} nats/frame from {ref['frames']:,} to "
                      f"{last['frames']:,} frames: {gain:.1%} < {stop_improvement:.0%}{noise}")
    return False, f"still improving: {gain:.1%} over the last doubling of frames{noise}"


def judge(cfg: CampaignConfig, curve: list[dict], confirmations: int | None = None,
          joint: bool | None = None) -> tuple[bool, str]:
    """The campaign's stop rule, as its config stands (amendments included), on one run's curve; ``confirmations``
    and ``joint`` replace the config's (an amendment being judged, or the rule as first written replayed)."""
    return stop_rule_holds(curve, cfg.stop_improvement, cfg.frame_cap, confirmations or cfg.stop_confirmations,
                           cfg.stop_on_joint if joint is None else joint)


def amend_stop_rule(game: str, confirmations: int | None, why: str, results: Path = RESULTS_DIR,
                    joint: bool = False) -> list[tuple[str, bool, bool]]:
    """Make the stop rule stricter on the record (a dated line in ``design_changes``) and judge every run's
    lineage again under it: its improvement test at ``confirmations`` consecutive curve points (more than now),
    and/or (``joint``) on the joint excess as well as the open-loop excess. Only a stricter rule is accepted: a
    run it re-opens continues in the next lease; a run it would close had a stale recorded verdict, and is named
    in the record too. Returns (run, before, now)."""
    cfg = load_config(game, results)
    if confirmations is None and not joint:
        raise SsmlibError("nothing to amend: pass --confirmations N (points in a row) or --joint")
    if confirmations is not None and confirmations <= cfg.stop_confirmations:
        raise SsmlibError(f"the stop rule already asks for {cfg.stop_confirmations} point(s) in a row: an amendment "
                          f"may only make it stricter (pass --confirmations {cfg.stop_confirmations + 1} or more)")
    if joint and cfg.stop_on_joint:
        raise SsmlibError("the stop rule already tests the joint excess: drop --joint"
                          + ("" if confirmations else f" (and pass --confirmations {cfg.stop_confirmations + 1} or "
                                                      "more to make it stricter)"))
    confirmations = confirmations or cfg.stop_confirmations
    joint = joint or cfg.stop_on_joint
    judged = {}  # run -> (its lineage, the verdict under the amended rule)
    for r in cfg.runs:
        lin = read_lineage(game, r["name"], results)
        if lin["curve"]:
            judged[r["name"]] = lin, judge(cfg, lin["curve"], confirmations, joint)
    changed = [(name, lin["finished"], now) for name, (lin, (now, _)) in judged.items()]
    reopened = [n for n, before, now in changed if before and not now]
    closed = [n for n, before, now in changed if now and not before]  # none unless a recorded verdict was stale
    what = [f"the improvement test must hold at {confirmations} consecutive curve points (was "
            f"{cfg.stop_confirmations})"] if confirmations != cfg.stop_confirmations else []
    what += [f"the improvement test must hold on {JOINT_WORDS} as well as on the open-loop excess"] \
        if joint != cfg.stop_on_joint else []
    amend_study_config(campaign_dir(game, results) / "config.json", CampaignConfig,
                       f"stop rule: {'; '.join(what)}: {why} Re-opened by it: {', '.join(reopened) or 'none'}."
                       + (f" Closed by it (their recorded verdicts were stale): {', '.join(closed)}." if closed else ""),
                       {"stop_confirmations": confirmations, "stop_on_joint": joint,
                        "stop_rule": rule_words(cfg.stop_improvement, cfg.frame_cap, confirmations, joint)},
                       f"start the campaign first: python -m ssmlib campaign init --game {game}")
    for name, (lin, verdict) in judged.items():  # each lineage judged again, after the record is written
        lin["finished"], lin["why"] = verdict
        atomic_write_json(campaign_dir(game, results) / name / "lineage.json", lin)
    return changed


def pick_order(cfg: CampaignConfig, frames: dict[str, int]) -> list[str]:
    """The open runs (``frames``: run -> training frames so far) in the order a lease trains them: the config's
    ``first_runs`` before the rest, then the fewest training frames (matched env steps for jumpy runs) first,
    ties in the config's order (the SSMs that claim 2 needs come first there)."""
    place = {r["name"]: (i, r.get("jump", 1)) for i, r in enumerate(cfg.runs)}
    return sorted(frames, key=lambda n: (n not in cfg.first_runs, frames[n] * place[n][1], place[n][0]))


def run_frames(lin: dict) -> int:
    """Training frames a run's lineage has recorded."""
    return lin["leases"][-1]["frames_end"] if lin["leases"] else 0


def pick_runs(cfg: CampaignConfig, max_runs: int, results: Path = RESULTS_DIR) -> list[CampaignRun]:
    """The ``max_runs`` unfinished runs a lease trains (:func:`pick_order`)."""
    runs = {r["name"]: CampaignRun(**r) for r in cfg.runs}
    lineages = {n: read_lineage(cfg.game, n, results) for n in runs}
    open_frames = {n: run_frames(lin) for n, lin in lineages.items() if not lin["finished"]}
    return [runs[n] for n in pick_order(cfg, open_frames)[:max_runs]]


def amend_pick_order(game: str, first: list[str], why: str, results: Path = RESULTS_DIR) -> Path:
    """Set ``first_runs`` on the record (a dated line in ``design_changes``): which open runs a lease trains
    before the others. It changes when runs train, never the stop rule or a verdict."""
    cfg = load_config(game, results)
    names = [r["name"] for r in cfg.runs]
    unknown = [n for n in first if n not in names]
    if unknown:
        raise SsmlibError(f"not runs of the {game} campaign: {', '.join(unknown)} (its runs: {', '.join(names)})")
    if list(first) == list(cfg.first_runs):
        raise SsmlibError(f"first_runs is already {', '.join(first) or 'empty'}: nothing to amend")
    before = ", ".join(cfg.first_runs) or "none (fewest frames first over all runs)"
    return amend_study_config(campaign_dir(game, results) / "config.json", CampaignConfig,
                              f"pick order: first_runs {', '.join(first) or 'none'} (was {before}): {why} "
                              "It changes which open runs a lease trains first, not the stop rule or any verdict.",
                              {"first_runs": list(first)},
                              f"start the campaign first: python -m ssmlib campaign init --game {game}")


def _train_command(cfg: CampaignConfig, run: CampaignRun, data: Path, folder: Path, seconds: float, lease: int,
                   checkpoints: Path, compile: bool = False) -> list[str]:
    # compile always explicit: a warm resume would otherwise keep the setting of the lease that started it
    sets = ([f"jump={run.jump}"] if run.jump > 1 else []) + [f"compile={'true' if compile else 'false'}"]
    sets += [f"reward_state={run.reward_state}"] if run.reward_state != "posterior" else []
    cmd = train_command(run.model, data, folder, cfg.profile, seconds, sets=sets + ["steps=100000000"])
    if (folder / "checkpoint.safetensors").exists():
        return cmd  # a warm machine: ``--resume`` continues exactly, optimiser included
    start = weights_path(cfg.game, run.name, checkpoints)
    cmd += ["--set", f"seed={run.seed * 1000 + lease}"]  # each lease draws other windows
    if start.exists():
        cmd += ["--init-from", str(start)]
    return cmd


def lease(game: str, data: Path, seconds: float, runs_dir: Path, max_runs: int = 2, device: str | None = None,
          results: Path = RESULTS_DIR, checkpoints: Path = CHECKPOINTS_DIR, parallel: bool = True,
          compile: bool = False, stop_after: float | None = None) -> dict:
    """One lease: train, export, score, append to the lineages, apply the stop rule; returns a summary.
    ``compile``: the runs train with torch.compile (the engine, not the model: recorded per lease).
    ``stop_after``: seconds after which runs still training are stopped as at their time limit and recorded."""
    from ..data.store import open_dataset

    cfg = load_config(game, results)
    ds = open_dataset(data)
    check_fingerprint(game, ds, results)  # every lease trains and scores on the same data
    picked = pick_runs(cfg, max_runs, results)
    if not picked:
        print("every run of the campaign has met its stop rule", flush=True)
        return {"trained": []}
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    leases = {r.name: read_lineage(game, r.name, results) for r in picked}
    number = 1 + max((len(v["leases"]) for v in leases.values()), default=0)
    cmds = {r.name: _train_command(cfg, r, data, runs_dir / r.name, seconds, number, checkpoints, compile)
            for r in picked}
    out = {}
    by_name = {r.name: r for r in picked}

    def record(name: str, code: int) -> None:  # as each run ends: a lease cut short keeps what finished
        folder = runs_dir / name
        if not (folder / "summary.json").exists():
            print(f"{name}: no summary (exit {code}), lineage unchanged", flush=True)
            return
        point = _record(cfg, by_name[name], folder, ds, leases[name], device, results, checkpoints)
        if point is not None:
            out[name] = point

    t0 = time.perf_counter()
    codes = run_commands(cmds, runs_dir, parallel, on_exit=record, stop_after=stop_after,
                         interrupt_after=TIME_UP_GRACE_S)
    print(f"trained {', '.join(cmds)} in {time.perf_counter() - t0:.0f} s: exit codes {codes}", flush=True)
    write_table(game, results)
    return {"trained": list(out), "runs": out, "picked": list(cmds)}


TIME_UP_GRACE_S = 30.0
"""Seconds a lease's run has after its TIME_UP before it is sent SIGTERM (``run_commands``' ``interrupt_after``):
runs ended 10-12 s after TIME_UP (results/speed/engine/time-up-diagnosis-h200/README.md), and the lease keeps
RECORD_SECONDS (75, scripts/gpu_campaign.sh) after TIME_UP to score and record two runs."""

WARM_STEPS = 3
"""Steps of a compile warm-up run (:func:`warm_commands`): the compiled-step check, the first step and the first test
pass are what a run compiles; the later steps reuse them."""
WARM_TIME_LIMIT = 120.0
"""A warm-up run's own time limit (from its first step, compilation aside): a bound should ``steps`` not end it."""


def warm_commands(game: str, data: Path, runs_dir: Path, max_runs: int = 2, results: Path = RESULTS_DIR,
                  checkpoints: Path = CHECKPOINTS_DIR, skip_models: Iterable[str] = ()) -> dict[str, list[str]]:
    """Compile warm-ups for the next lease on a bare machine, one per kind of run it will pick (model, jump, reward
    state): the very command the lease runs (:func:`_train_command`, compiled, started from the same committed
    weights), on another dataset of the same frame size (``data``, a small one collected in seconds) and in
    scratch folders under ``runs_dir``, for :data:`WARM_STEPS` steps. Run while the campaign's own dataset is
    collected, they leave the compiled graphs and kernels in torch's caches on the machine's disk, which the
    lease's runs then read instead of compiling; nothing of them is recorded. Why: on a bare machine the lease's
    runs compiled after the data was collected, which cost a run a median 48.5 s (dSSM-DET) to 100 s (sSSM) of the
    seconds it was given; with a warm-up 20-30 s (``compile_warmup``, measured 2026-12-05). Folders left in
    ``runs_dir`` would make these commands resume instead (:func:`warm` removes them first).
    ``skip_models``: models left out (their runs, picked all the same, compile for themselves): a warm-up that a
    lease does not wait for and that cannot end before the data buys nothing and takes the collection's cores
    (the sSSM's, ``scripts/gpu_campaign.sh``'s ``WARM_SKIP``)."""
    cfg, skip_models = load_config(game, results), tuple(skip_models)
    unknown = set(skip_models) - set(MODEL_NAMES)
    if unknown:
        raise SsmlibError(f"--skip-models: unknown model {sorted(unknown)[0]!r}; the models are {', '.join(MODEL_NAMES)}")
    cmds = {}
    for run in pick_runs(cfg, max_runs, results):
        name = f"warm-{run.model}-k{run.jump}-{run.reward_state}"
        if run.model in skip_models:
            continue
        if name not in cmds:  # the seeds of one kind compile the same graphs
            cmds[name] = _train_command(cfg, run, data, Path(runs_dir) / name, WARM_TIME_LIMIT, 0, checkpoints,
                                        compile=True) + ["--set", f"steps={WARM_STEPS}"]
    return cmds


def warm(game: str, data: Path, runs_dir: Path, max_runs: int = 2, results: Path = RESULTS_DIR,
         checkpoints: Path = CHECKPOINTS_DIR, skip_models: Iterable[str] = ()) -> dict[str, int]:
    """Run :func:`warm_commands` side by side (fresh scratch folders); returns their exit codes."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    for old in runs_dir.glob("warm-*"):  # only warm-ups' folders (``--runs`` may hold others), before the commands
        if old.is_dir():  # are made: an earlier warm-up's folder would make its command resume instead of compile
            shutil.rmtree(old)
    cmds = warm_commands(game, data, runs_dir, max_runs, results, checkpoints, skip_models)
    t0 = time.perf_counter()
    codes = run_commands(cmds, runs_dir)
    print(f"compile warm-up of {', '.join(cmds) or 'nothing'} in {time.perf_counter() - t0:.0f} s: exit codes {codes}",
          flush=True)
    return codes


def record_left(game: str, data: Path, runs_dir: Path, device: str | None = None, results: Path = RESULTS_DIR,
                checkpoints: Path = CHECKPOINTS_DIR) -> list[str]:
    """Record every run folder under ``runs_dir`` whose summary holds steps its lineage has not recorded: a lease
    killed at its bound before a run it had stopped was recorded (sSSM-rp-s0, 2026-12-03) leaves that run's
    interrupted summary and checkpoint behind, and on a machine about to be released nothing else would record
    them. Folders recorded already are left as they are (``recorded_at``), so running it twice changes nothing.
    Returns the runs recorded."""
    from ..data.store import open_dataset

    cfg = load_config(game, results)
    ds = None
    done = []
    for r in cfg.runs:
        run, folder = CampaignRun(**r), Path(runs_dir) / r["name"]
        if not (folder / "summary.json").exists() or not (folder / "checkpoint.safetensors").exists():
            continue
        lin = read_lineage(game, run.name, results)
        if read_json(folder / "summary.json")["step"] <= recorded_at(folder, len(lin["leases"]))["step"]:
            continue  # recorded already: not worth opening the dataset for
        if ds is None:
            ds = open_dataset(data)
            check_fingerprint(game, ds, results)
        if _record(cfg, run, folder, ds, lin, device, results, checkpoints) is not None:
            done.append(run.name)
    if done:
        write_table(game, results)
    print(f"recorded what the lease left: {', '.join(done) or 'nothing'}", flush=True)
    return done


RECORDED = "recorded.json"
"""In a run folder: per lineage lease this folder recorded, the step and cumulative wall time it had reached
(written before the lineage, so neither a kill between the two writes nor a lineage lost on the way back
from the machine makes a lease count frames twice or lose them)."""


def recorded_at(folder: Path, lease: int) -> dict:
    """``{"step", "wall_s"}`` this run folder had reached when it recorded lineage lease ``lease``; zeros when it
    did not (a new folder, e.g. a bare machine's, starts at step 0)."""
    done = read_json(Path(folder) / RECORDED, {}).get("by_lease", {})
    return done.get(str(lease), {"step": 0, "wall_s": 0.0})


def _mark_recorded(folder: Path, lease: int, step: int, wall_s: float) -> None:
    doc = read_json(Path(folder) / RECORDED, {"by_lease": {}})
    doc["by_lease"][str(lease)] = {"step": step, "wall_s": wall_s}
    atomic_write_json(Path(folder) / RECORDED, doc)


def _score(cfg: CampaignConfig, run: CampaignRun, weights: Path, ds, dev) -> tuple[dict, dict]:
    """The evaluation of the stored weights (what is scored is what is committed) and its curve fields."""
    from ..checkpoint import load_model
    from ..evaluate import evaluate

    model = load_model(weights, expect_model=run.model, device=dev, dataset=ds)
    t0 = time.perf_counter()
    ev = evaluate(model, ds, batch_size=32, num_samples=cfg.eval_samples, max_windows=cfg.eval_windows)
    tot = ev["total"]
    return ev, {"excess": tot["excess_open_loop_nats_per_frame"],
                "excess_ci": ev["ci"].get("excess_open_loop_nats_per_frame"),
                "excess_joint": tot["excess_joint_nats_per_frame"],
                "excess_joint_ci": ev["ci"].get("excess_joint_nats_per_frame"),
                "reward_auc_open_loop": tot.get("reward_auc_open_loop"),
                # the class weights divided out of the reward's readings (calibrate_rewards)
                "reward_calibrated": bool(model.cfg.reward_class_weights),
                "windows": ev["windows"], "eval_s": time.perf_counter() - t0}


def _write_eval(out: Path, lease: int, ev: dict, prov: dict) -> None:
    # the latest lease's evaluation only (earlier leases live on in the lineage's curve): the tree travels
    # with every GPU call, and 7 significant digits are more than a bootstrap over episodes can use
    atomic_write_json(out / EVAL_FILE, round_floats({"lease": lease, "results": ev, "provenance": prov}), indent=None)
    (out / "eval.json").unlink(missing_ok=True)  # written uncompressed before 2026-12-03


def _fmt3(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def calibrate_rewards(game: str, data: Path, device: str | None = None, results: Path = RESULTS_DIR,
                      checkpoints: Path = CHECKPOINTS_DIR) -> list[str]:
    """Weights exported before checkpoints kept the categorical reward head's class weights
    (``ModelConfig.reward_class_weights``): add them, computed from the campaign data's train split as
    ``train`` computed them (the lineage's fingerprint is checked), and re-score, so that the reward's
    readings are calibrated. The lineage's last curve point takes the new reward AUC (the frame terms do
    not change) and ``reward_calibrated``; the latest evaluation is replaced. Returns the runs changed."""
    from ..checkpoint import load_checkpoint, model_config, read_meta, write_file
    from ..data.store import open_dataset
    from ..train import reward_classes

    cfg = load_config(game, results)
    ds = dev = None  # opened for the first run that needs them (a no-op pass reads headers only)
    changed = []
    for r in cfg.runs:
        run, path = CampaignRun(**r), weights_path(game, r["name"], checkpoints)
        lin = read_lineage(game, run.name, results)
        if not path.exists() or not lin["curve"]:
            continue
        mcfg = model_config(read_meta(path))
        if mcfg.reward_head == "bits" or mcfg.reward_class_weights:
            continue
        if ds is None:
            ds, dev = open_dataset(data), torch_device(device)
            check_fingerprint(game, ds, results)
        meta, tensors = load_checkpoint(path)
        _, weights = reward_classes(ds, mcfg)  # mcfg.reward_values: the classes the run trained with
        meta["model_cfg"]["reward_class_weights"] = list(weights)
        write_file(path, tensors, meta)
        ev, point = _score(cfg, run, path, ds, dev)
        before = lin["curve"][-1].get("reward_auc_open_loop")
        lin["curve"][-1].update(reward_auc_open_loop=point["reward_auc_open_loop"],
                                reward_calibrated=point["reward_calibrated"], reward_auc_open_loop_uncalibrated=before)
        out = campaign_dir(game, results) / run.name
        _write_eval(out, len(lin["leases"]), ev, provenance(str(dev), data_fingerprint=ds.fingerprint))
        atomic_write_json(out / "lineage.json", lin)
        changed.append(run.name)
        print(f"{run.name}: reward readings calibrated (class weights {', '.join(f'{w:.2f}' for w in weights)}); "
              f"open-loop reward AUC {_fmt3(before)} -> {_fmt3(point['reward_auc_open_loop'])}, return error "
              f"{ev['total']['return_abs_err_open_loop']:.1f} (all-zero {ev['total']['return_abs_err_zero']:.1f})",
              flush=True)
    return changed


def _record(cfg: CampaignConfig, run: CampaignRun, folder: Path, ds, lin: dict, device, results: Path,
            checkpoints: Path) -> dict | None:
    """Export the run's weights, score them, and append the lease to its lineage."""
    from ..checkpoint import export

    summary = read_json(folder / "summary.json")
    config = read_json(folder / "config.json")
    tc = config["train_cfg"]
    per_step = tc["batch_size"] * tc["horizon"]  # training frames (prediction targets) per step
    prev_end = run_frames(lin)
    # the steps (and wall time: the summary's is cumulative over the folder's resumes) since this folder
    # recorded the lineage's last lease: a lease cut before scoring leaves its summary to the next (warm)
    # lease; a process that crashed leaves the old summary, which holds nothing new
    warm = bool(config.get("resumes"))
    since = recorded_at(folder, len(lin["leases"]))
    start_step = since["step"]
    if summary["step"] <= start_step:
        print(f"{run.name}: nothing trained since step {start_step:,} (already recorded), lineage unchanged", flush=True)
        return None
    frames_end = prev_end + (summary["step"] - start_step) * per_step
    compiled = bool(tc.get("compile"))
    dst = weights_path(cfg.game, run.name, checkpoints)
    dst.parent.mkdir(parents=True, exist_ok=True)
    export(folder / "checkpoint.safetensors", dst, overwrite=True, dtype=cfg.weights_dtype)
    dev = torch_device(device)
    ev, point = _score(cfg, run, dst, ds, dev)
    point = {"frames": frames_end, "env_steps": frames_end * run.jump, **point}
    prov = provenance(str(dev), data_fingerprint=ds.fingerprint)
    lin["leases"].append({
        "lease": len(lin["leases"]) + 1, "git_sha": prov.get("git_sha"), "device": prov.get("device"),
        "time": prov.get("time"), "resumed_warm": warm, "start_step": start_step, "end_step": summary["step"],
        "frames_start": prev_end, "frames_end": frames_end, "env_steps_end": frames_end * run.jump,
        "train_wall_s": summary["wall_s"] - since["wall_s"], "frames_per_s_steady": summary.get("frames_per_s_steady"),
        "status": summary["status"], "data_fingerprint": ds.fingerprint,
        **({"time_up_missed": summary["time_up_missed"]} if "time_up_missed" in summary else {}),
        "compile": compiled, "compile_fallback": config.get("compile_fallback") if compiled else None,
        "optimiser": "resumed exactly (warm machine)" if warm else (
            "fresh AdamW from the committed bf16 weights" if lin["leases"] else "new run"),
    })
    _mark_recorded(folder, len(lin["leases"]), summary["step"], summary["wall_s"])  # before the lineage
    lin["curve"].append(point)
    lin["finished"], lin["why"] = judge(cfg, lin["curve"])
    lin.update(run=run.name, model=run.model, seed=run.seed, jump=run.jump)
    out = campaign_dir(cfg.game, results) / run.name
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "lineage.json", lin)
    _write_eval(out, len(lin["leases"]), ev, prov)
    for old in out.glob("eval-lease*.json"):
        old.unlink()
    # compressed (about 4x): one log a run and lease, and the repository travels with every GPU call
    atomic_write_text(out / f"metrics-lease{len(lin['leases'])}.jsonl.gz", (folder / "metrics.jsonl").read_text())
    print(f"{run.name}: {frames_end:,} frames, open-loop excess {point['excess']:.1f} nats/frame; "
          f"{'finished' if lin['finished'] else 'continues'}: {lin['why']}", flush=True)
    return point


def steady_rate(metrics: list[dict], start_step: int, end_step: int) -> float | None:
    """``train``'s steady throughput (``train.steady_fps``) over one lease's steps of a metrics log."""
    from ..train import steady_fps

    return steady_fps([m["frames_per_s"] for m in metrics
                       if m.get("split") == "train" and start_step < m["step"] <= end_step and m.get("frames_per_s")])


def join_snapshots(snapshots: list[dict], metrics: list[list[dict]], cfg: CampaignConfig,
                   note: str) -> tuple[dict, list[list[dict]]]:
    """One run's lineage rebuilt from the lineages that back-to-back calls on one warm machine returned when
    each call's tree had lost the previous call's lineage: each snapshot then holds one lease from step 0
    (its frames right, the earlier calls folded in). Snapshot ``k`` becomes lease ``k`` (start = the previous
    snapshot's end; wall time and steady throughput over its own steps, from ``metrics[k]``, the run folder's
    log as that call left it), with its curve point. Returns the lineage and each lease's own metrics rows."""
    if not snapshots or len(metrics) != len(snapshots):
        raise SsmlibError("join_snapshots needs one metrics log per snapshot")
    leases, curve, own_metrics = [], [], []
    prev = {"end_step": 0, "frames_end": 0, "train_wall_s": 0.0}
    for k, (snap, rows) in enumerate(zip(snapshots, metrics), start=1):
        if len(snap["leases"]) != 1 or len(snap["curve"]) != 1:
            raise SsmlibError(f"snapshot {k} holds {len(snap['leases'])} leases: only folded single-lease lineages join")
        cum = snap["leases"][0]
        if cum["end_step"] <= prev["end_step"]:
            raise SsmlibError(f"snapshot {k} ends at step {cum['end_step']}, not after snapshot {k - 1}")
        lease = {**cum, "lease": k, "start_step": prev["end_step"], "frames_start": prev["frames_end"],
                 "train_wall_s": cum["train_wall_s"] - prev["train_wall_s"],
                 "frames_per_s_steady": steady_rate(rows, prev["end_step"], cum["end_step"])}
        if k > 1:
            lease.update(resumed_warm=True, optimiser="resumed exactly (warm machine)")
        leases.append(lease)
        curve.append(snap["curve"][0])
        own_metrics.append([m for m in rows if prev["end_step"] < m["step"] <= cum["end_step"]])
        prev = cum
    lin = {**snapshots[-1], "leases": leases, "curve": curve, "note": note}
    lin["finished"], lin["why"] = judge(cfg, curve)
    return lin, own_metrics


def branch_pairs(game: str, results: Path = RESULTS_DIR) -> list[dict]:
    """Leases that were run twice from one state and not continued (``campaign/branches/<call>/<run>/lineage.json``,
    kept by hand with a README): each branch's last curve point beside the kept lineage's point of the same
    lease. Same state, data and seed on both sides, so the difference is the training path's own noise, which
    the episode bootstrap of either point does not contain."""
    rows = []
    for lin_path in sorted((campaign_dir(game, results) / "branches").glob("*/*/lineage.json")):
        branch = read_json(lin_path)
        lease = len(branch["leases"])
        kept = read_lineage(game, lin_path.parent.name, results)
        if not lease or not branch["curve"] or len(kept["curve"]) < lease:
            continue
        b, k = branch["curve"][-1], kept["curve"][lease - 1]
        rows.append({"branch": lin_path.parent.parent.name, "run": lin_path.parent.name, "lease": lease,
                     "frames": (b["frames"], k["frames"]), "excess": (b["excess"], k["excess"]),
                     "excess_ci": (b.get("excess_ci"), k.get("excess_ci")),
                     "excess_joint": (b.get("excess_joint"), k.get("excess_joint"))})
    return rows


def branch_markdown(rows: list[dict]) -> str:
    def ci(c):
        return f" [{c[0]:.1f}, {c[1]:.1f}]" if c else ""

    def joint(x):
        return "-" if x is None else f"{x:.1f}"

    return markdown_table(
        ["run, lease", "branch: frames", "open-loop excess", "teacher-forced", "kept: frames", "open-loop excess",
         "teacher-forced", "open-loop difference"],
        [[f"{r['run']}, {r['lease']}", f"{r['frames'][0]:,}", f"{r['excess'][0]:.1f}{ci(r['excess_ci'][0])}",
          joint(r["excess_joint"][0]), f"{r['frames'][1]:,}", f"{r['excess'][1]:.1f}{ci(r['excess_ci'][1])}",
          joint(r["excess_joint"][1]), f"{r['excess'][0] - r['excess'][1]:+.1f}"] for r in rows])


def stop_rule_replay(game: str, confirmations: int = 1, results: Path = RESULTS_DIR,
                     joint: bool = False) -> list[dict]:
    """Every run's curve replayed point by point under the stop rule asking for ``confirmations`` points in a row,
    on the open-loop excess alone or (``joint``) on the joint excess too (1 and False: the rule as first written):
    the first point at which it would have finished the run, beside the run's last
    point and its verdict under the config as it stands. A run the replayed rule would have ended early and that
    then kept improving shows what that rule would have cost. Runs the replayed rule never finishes are left out."""
    cfg = load_config(game, results)
    rows = []
    for r in cfg.runs:
        lin = read_lineage(game, r["name"], results)
        curve = lin.get("curve", [])
        first = next((i for i in range(len(curve)) if judge(cfg, curve[:i + 1], confirmations, joint)[0]), None)
        if first is None:
            continue
        stop, last = curve[first], curve[-1]
        rows.append({"run": r["name"], "stopped_at": first + 1, "points": len(curve),
                     "frames": (stop["frames"], last["frames"]), "excess": (stop["excess"], last["excess"]),
                     "finished_now": judge(cfg, curve)[0]})
    return rows


def table(game: str, results: Path = RESULTS_DIR) -> list[dict]:
    """One row per run: frames, env steps, GPU minutes, the last excess with its CI, finished or not."""
    cfg = load_config(game, results)
    rows = []
    for r in cfg.runs:
        lin = read_lineage(game, r["name"], results)
        last = lin["curve"][-1] if lin["curve"] else {}
        why = lin.get("why", "not started")
        if lin["curve"]:  # the recorded verdict, told in today's words (e.g. with the compared points' CIs)
            again, why_now = judge(cfg, lin["curve"])
            why = why_now if again == lin["finished"] else why
        rows.append({"run": r["name"], "model": r["model"], "jump": r.get("jump", 1),
                     "reward_state": r.get("reward_state", "posterior"), "leases": len(lin["leases"]),
                     "frames": last.get("frames", 0), "env_steps": last.get("env_steps", 0),
                     "gpu_minutes": sum((x.get("train_wall_s") or 0) for x in lin["leases"]) / 60,
                     "excess_open_loop": last.get("excess"), "excess_ci": last.get("excess_ci"),
                     "excess_joint": last.get("excess_joint"), "excess_joint_ci": last.get("excess_joint_ci"),
                     "finished": lin["finished"], "why": why})
    return rows


def best_run(game: str, model: str, jump: int = 1, results: Path = RESULTS_DIR,
             reward_state: str = "posterior") -> dict:
    """The ``table`` row of ``model``'s evaluated run (at ``jump``, trained with ``reward_state``: a run added
    later with another one is another variant) with the lowest latest open-loop excess, with ``weights`` (its
    committed bf16 checkpoint); raises if none of its runs has been evaluated yet."""
    best = _lowest_excess([r for r in table(game, results) if r["model"] == model and r["jump"] == jump
                           and r["reward_state"] == reward_state])
    if best is None:
        raise SsmlibError(f"no evaluated {model} run (k = {jump}) in the {game} campaign yet")
    return {**best, "weights": weights_path(game, best["run"])}


def _lowest_excess(rows: list[dict]) -> dict | None:
    """Of ``table`` rows, the evaluated one with the lowest latest open-loop excess (None if none is)."""
    scored = [r for r in rows if r["excess_open_loop"] is not None]
    return min(scored, key=lambda r: r["excess_open_loop"]) if scored else None


def variant_label(model: str, jump: int = 1, reward_state: str = "posterior") -> str:
    """A run's model variant in words: ``sSSM``, ``sSSM k=2``, ``sSSM, reward from the prior``."""
    return model + (f" k={jump}" if jump > 1 else "") + (", reward from the prior" if reward_state == "prior" else "")


def curves(game: str, results: Path = RESULTS_DIR) -> dict[str, dict]:
    """Per started run, its learning curve from the lineage: training frames, environment steps, the
    open-loop test excess (nats/frame) with its 95% episode-bootstrap interval (``lo``, ``hi``), the joint
    excess with its own (``joint_lo``, ``joint_hi``; None where not scored), and the open-loop reward AUC of
    P(r != 0) over h = 1..10 (None where not scored) after each lease."""
    cfg = load_config(game, results)
    out = {}
    for r in cfg.runs:
        pts = read_lineage(game, r["name"], results)["curve"]
        if not pts:
            continue
        ci = [p.get("excess_ci") or [float("nan")] * 2 for p in pts]
        joint_ci = [p.get("excess_joint_ci") or [float("nan")] * 2 for p in pts]
        out[r["name"]] = {"model": r["model"], "seed": r.get("seed", 0), "jump": r.get("jump", 1),
                          "reward_state": r.get("reward_state", "posterior"),
                          "frames": [p["frames"] for p in pts], "env_steps": [p["env_steps"] for p in pts],
                          "excess": [p["excess"] for p in pts], "lo": [c[0] for c in ci], "hi": [c[1] for c in ci],
                          "excess_joint": [p.get("excess_joint") for p in pts],
                          "joint_lo": [c[0] for c in joint_ci], "joint_hi": [c[1] for c in joint_ci],
                          "reward_auc": [p.get("reward_auc_open_loop") for p in pts]}
    return out


BANDS = {"excess": ("lo", "hi"), "excess_joint": ("joint_lo", "joint_hi")}
"""The 95% interval of each excess in :func:`curves`, drawn as a band."""


def plot_curves(ax, game: str, results: Path = RESULTS_DIR, x: str = "env_steps", colour=None, y: str = "excess"):
    """Open-loop excess (``y="excess_joint"``: the joint excess; ``y="reward_auc"``: the open-loop reward AUC, chance
    dotted) against environment steps (or
    ``x="frames"``), one line per run (the excess with its interval as a band), one colour per model
    (``colour(model)``, ``colour('sSSM-k2')`` for jumpy runs; matplotlib's cycle when None); seeds share
    their model's colour."""
    from matplotlib.ticker import NullFormatter

    colours: dict[str, str] = {}
    for name, c in curves(game, results).items():
        label = variant_label(c["model"], c["jump"], c["reward_state"])
        key = jump_name(c["model"], c["jump"])
        col = colour(key) if colour else colours.setdefault(key, f"C{len(colours) % 10}")
        pts = [(a, b) for a, b in zip(c[x], c[y]) if b is not None]
        if not pts:
            continue
        style = "o--" if c["reward_state"] != "posterior" else "o-"  # a variant of the model: its colour, dashed
        ax.plot(*zip(*pts), style, color=col, label=label if name.endswith("-s0") else None)
        if y in BANDS:
            ax.fill_between(c[x], c[BANDS[y][0]], c[BANDS[y][1]], color=col, alpha=0.2)
    if y == "reward_auc":
        ax.axhline(0.5, color="grey", ls=":", lw=1)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # the runs span less than a decade: minor labels would collide
    ax.set_xlabel("environment steps" if x == "env_steps" else "training frames")
    ax.set_ylabel({"excess": "open-loop test excess (nats/frame)", "excess_joint": "joint test excess (nats/frame)",
                   "reward_auc": "open-loop reward AUC, P(r != 0)"}[y])
    ax.set_title(f"{game}: the model-zoo campaign, after each lease")
    ax.legend(fontsize=8)
    return ax


README_MARKERS = ("<!-- zoo-campaign-table: generated by `python -m ssmlib campaign table`; do not edit -->",
                  "<!-- /zoo-campaign-table -->")
"""The README's per-model summary of the campaign lies between these lines (``update_readme``)."""


def model_summary_markdown(game: str, results: Path = RESULTS_DIR) -> str:
    """Per model (and jump): what its best evaluated seed reached at what frames (open-loop excess with its CI; for
    a sampling model also with the sample-count study's largest K, where it scored those weights; joint excess
    with its CI), the GPU minutes of all its seeds, and how many seeds have started and finished."""
    from .open_loop_samples import excess_at, results_file  # (it imports nothing of this module)

    study_file = results_file(game, "campaign", results)
    study = read_json(study_file, {"config": {}, "checkpoints": {}})
    k_top = max(study["config"].get("ks") or [0])  # 0: no study yet, no column

    def with_ci(x, ci):
        return f"{x:.0f}" + (f" [{ci[0]:.0f}, {ci[1]:.0f}]" if ci else "") if x is not None else "-"

    def many_samples(best: dict, model: str) -> str:
        if model not in SAMPLING_MODELS:
            return "exact"
        name = study_name(best["run"], best["frames"])
        if name not in study["checkpoints"]:
            return "-"
        iv = excess_at(study, name, k_top, n_boot=1000)
        return with_ci(iv.point, (iv.lo, iv.hi))

    by_model: dict[tuple, list[dict]] = {}
    for r in table(game, results):
        by_model.setdefault((r["model"], r["jump"], r["reward_state"]), []).append(r)
    out = []
    for (model, jump, reward_state), rows in by_model.items():
        best = _lowest_excess(rows)  # best_run's choice, from rows already read
        mark = " *" if model in SAMPLING_MODELS else ""
        out.append([variant_label(model, jump, reward_state) + mark,
                    f"{sum(r['leases'] > 0 for r in rows)}/{len(rows)}", f"{sum(r['finished'] for r in rows)}",
                    best["run"] if best else "-", f"{best['frames']:,}" if best else "-",
                    with_ci(best["excess_open_loop"], best["excess_ci"]) if best else "-",
                    *([many_samples(best, model) if best else "-"] if k_top else []),
                    with_ci(best["excess_joint"], best["excess_joint_ci"]) if best else "-",
                    f"{sum(r['gpu_minutes'] for r in rows):.1f}"])
    more = (f"; the next column scores the same weights with {k_top} samples on "
            f"{study['config'].get('windows', 'some')} of the test windows "
            f"(`{stored_path(study_file).relative_to(Path(results).parent)}`, chapter 10; - where those weights were "
            "not scored yet: the study scores each lease's starting weights), still an upper bound") if k_top else ""
    note = (f"\n\\* samples its futures: its open-loop excess is scored with {load_config(game, results).eval_samples} "
            "prior samples per window (the campaign's `eval_samples`), an upper bound on the excess in expectation "
            f"that more samples lower{more}. The stop rule reads both excesses: the open-loop one and {JOINT_WORDS}.\n")
    return markdown_table(("model", "seeds started", "finished", "best seed", "its training frames",
                           "its open-loop excess [95% CI]", *([f"open loop, {k_top} samples"] if k_top else []),
                           "joint excess [95% CI]", "GPU min (all seeds)"), out) + note


def update_readme(game: str, readme: Path, results: Path = RESULTS_DIR) -> bool:
    """Rewrite the README's block between ``README_MARKERS`` with ``model_summary_markdown``; False (nothing
    written) when the README has no such block."""
    return rewrite_block(Path(readme), README_MARKERS, model_summary_markdown(game, results))


def table_markdown(rows: list[dict]) -> str:
    """The campaign's table as markdown: what each run reached, at what frames, in how many GPU minutes."""
    def cells(r):
        ci = r["excess_ci"]
        exc = "-" if r["excess_open_loop"] is None else (
            f"{r['excess_open_loop']:.1f}" + (f" [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else ""))
        return (r["run"], r["model"], r["jump"], r["leases"], f"{r['frames']:,}", f"{r['env_steps']:,}",
                f"{r['gpu_minutes']:.1f}", exc, f"{'finished' if r['finished'] else 'open'}: {r['why']}")

    return markdown_table(("run", "model", "k", "leases", "training frames", "env steps", "GPU min (training)",
                           "open-loop excess (nats/frame) [95% CI]", "stop rule"), map(cells, rows))


def reward_rows(game: str, results: Path = RESULTS_DIR, n_boot: int = 2000) -> list[dict]:
    """Per evaluated run: ``evaluate.reward_target`` on its latest evaluation (``RULES['reward.target']``)."""
    from ..evaluate import reward_target

    rows = []
    for run, ev in _evaluated_runs(game, results):
        last = read_lineage(game, run.name, results)["curve"][-1:] or [{}]
        rows.append({"run": run.name, "model": run.model, "jump": run.jump, "reward_state": run.reward_state,
                     "calibrated": bool(last[0].get("reward_calibrated")), **reward_target(ev, n_boot=n_boot)})
    return rows


def _evaluated_runs(game: str, results: Path = RESULTS_DIR):
    """``(CampaignRun, its latest evaluation)`` of every run of the campaign that has been evaluated."""
    for r in load_config(game, results).runs:
        ev = read_json(campaign_dir(game, results) / r["name"] / EVAL_FILE, None)
        if ev:
            yield CampaignRun(**r), ev


def latest_metrics(game: str, run: str, results: Path = RESULTS_DIR) -> Path:
    """The metrics log of ``run``'s latest lease (``metrics-lease<N>.jsonl``, compressed since 2026-12-04:
    ``metrics-lease<N>.jsonl.gz``; by N); raises if it has none."""
    files = {int(p.name.split(".")[0].removeprefix("metrics-lease")): p
             for pattern in ("metrics-lease*.jsonl", "metrics-lease*.jsonl.gz")
             for p in (campaign_dir(game, results) / run).glob(pattern)}
    if not files:
        raise SsmlibError(f"{run} has no metrics log in the {game} campaign yet")
    return files[max(files)]


def reward_paths(game: str, results: Path = RESULTS_DIR) -> list[dict]:
    """Per evaluated run, the reward head's NLL (nats per step) on the two paths of its latest evaluation:
    ``teacher`` (the filtering pass, whose posterior saw the real frames) and ``open_loop`` (imagination from
    3 context frames, as an agent queries it), beside ``base_rate`` (predicting the data's reward frequencies)
    and the open-loop AUC. A teacher NLL far below the base rate with an open-loop NLL above it is the sSSM's
    leak (``ModelConfig.reward_state``): the head learned to read the reward off the real frame. (For a run
    trained with ``reward_state="prior"`` the teacher path reads the one-step prior state, as it trained.)"""
    rows = []
    for run, ev in _evaluated_runs(game, results):
        tot, by_h = ev["results"]["total"], ev["results"].get("per_horizon", {})
        row = {"run": run.name, "model": run.model, "reward_state": run.reward_state,
               "teacher": tot.get("reward_nll_teacher"), "open_loop": tot.get("reward_nll_open_loop"),
               "base_rate": tot.get("reward_nll_base_rate"), "auc_open_loop": tot.get("reward_auc_open_loop"),
               "open_loop_h1": (by_h.get("reward_nll_open_loop") or [None])[0],
               "base_rate_h1": (by_h.get("reward_nll_base_rate") or [None])[0]}
        rows.append({**row, "leak": reward_leak(row), "leak_h1": reward_leak_h1(row)})
    return rows


def reward_leak(row: dict) -> bool | None:
    """Whether a :func:`reward_paths` row shows the leak (``RULES['reward.leak']``): teacher NLL below
    ``REWARD_LEAK_TEACHER`` x the base rate's and open-loop NLL above the base rate's. None when a path is
    missing (an evaluation from before the teacher path was scored)."""
    return _leak(row, "open_loop", "base_rate")


def reward_leak_h1(row: dict) -> bool | None:
    """Whether a :func:`reward_paths` row shows the leak by ``RULES['reward.leak.h1']`` (2026-12-05): teacher NLL
    below ``REWARD_LEAK_TEACHER`` x the base rate's and open-loop NLL at h = 1 above the base rate's at h = 1. None
    when a reading is missing."""
    return _leak(row, "open_loop_h1", "base_rate_h1")


def _leak(row: dict, imagined: str, imagined_base: str) -> bool | None:
    """Both leak readings: the teacher path near-perfect (below ``REWARD_LEAK_TEACHER`` x the base rate's NLL) while
    the open-loop NLL ``row[imagined]`` is above its base rate ``row[imagined_base]``; None when one is missing."""
    from ..rules import REWARD_LEAK_TEACHER

    teacher, base, nll, nll_base = (row.get(k) for k in ("teacher", "base_rate", imagined, imagined_base))
    if teacher is None or nll is None or not base or not nll_base:
        return None
    return teacher < REWARD_LEAK_TEACHER * base and nll > nll_base


def reward_markdown(rows: list[dict]) -> str:
    """The reward target per run as markdown (value [95% CI] and verdict per part)."""
    word = {"reproduced": "met", "not reproduced": "not met"}

    def part(x):
        return "- (no per-window scores: re-score)" if x is None else (
            f"{x['value']:.3f} [{x['ci'][0]:.3f}, {x['ci'][1]:.3f}] {word.get(x['verdict'], x['verdict'])}")

    from ..rules import RULES

    return (markdown_table(("run", "readings", "AUC P(r != 0), h = 1", "AUC, h = 5",
                            "return error / all-zero's, h = 10", "target"),
                           ((r["run"], "calibrated" if r["calibrated"] else "raw (class weights not divided out)",
                             part(r["auc_h1"]), part(r["auc_h5"]), part(r["return_ratio"]),
                             word.get(r["verdict"], r["verdict"])) for r in rows))
            + f"\nRule (written before these numbers): {RULES['reward.target']}\n")


def write_table(game: str, results: Path = RESULTS_DIR) -> Path:
    """``campaign/table.md``, rewritten from the lineages (after every lease and by ``campaign table``): the
    runs, then the reward head's target per run."""
    path = campaign_dir(game, results) / "table.md"
    write_text(path, table_markdown(table(game, results)) + "\n## Reward head (latest evaluation of each run)\n\n"
               + reward_markdown(reward_rows(game, results)))
    return path


# --------------------------------------------------------------------------------------------------
# command line


def _cli_init(args) -> int:
    cfg = CampaignConfig(game=args.game, data_steps=args.data_steps)
    path = init(cfg)
    print(f"wrote {path}")
    return 0


def collect_data(game: str, out: Path, results: Path = RESULTS_DIR, progress: bool = False, workers: int = 1) -> None:
    """Collect (or verify and complete) the campaign's dataset from its config: same seed, same fingerprint
    (``workers`` shards at once: the same bytes, ``ssmlib.data.collect.collect``)."""
    from ..data.cli import _cli_collect

    cfg = load_config(game, results)
    _cli_collect(argparse.Namespace(
        out=str(out), resume=Path(out, "manifest.json").exists(), overwrite=False, steps=cfg.data_steps,
        profile=None if Path(out, "manifest.json").exists() else cfg.profile, game=game, height=None, width=None,
        envs=None, steps_per_shard=None, seed=cfg.data_seed, policy_agent=cfg.agent, epsilon=cfg.epsilon,
        agent_share=cfg.agent_share, no_progress=not progress, workers=workers))
    check_fingerprint(game, out, results)


def check_fingerprint(game: str, data, results: Path = RESULTS_DIR) -> str:
    """The fingerprint of ``data`` (a dataset folder or an open dataset), refused if a lease of this campaign
    trained on another one (e.g. the collecting agent's weights changed): every lease must see the same
    data and test windows."""
    from ..data.store import open_dataset

    fp = (data if hasattr(data, "fingerprint") else open_dataset(data, verify=False)).fingerprint
    cfg = load_config(game, results)
    for r in cfg.runs:
        seen = {x.get("data_fingerprint") for x in read_lineage(game, r["name"], results)["leases"]} - {None}
        if seen and seen != {fp}:
            raise SsmlibError(f"{getattr(data, 'root', data)} has fingerprint {fp[:12]}, but {r['name']} trained on {sorted(seen)[0][:12]}: "
                              f"the campaign's dataset changed (is {cfg.agent} the agent it was collected with?)")
    return fp


def _cli_data(args) -> int:
    collect_data(args.game, Path(args.out), workers=args.workers)
    return 0


def _cli_lease(args) -> int:
    res = lease(args.game, Path(args.data), args.seconds, Path(args.runs), args.max_runs, args.device,
                compile=args.compile, stop_after=args.stop_after)
    return 0 if res["trained"] or not res.get("picked") else 1  # runs picked and none recorded: a failure


def _cli_warm(args) -> int:
    skip = [m for m in (args.skip_models or "").split(",") if m]
    codes = warm(args.game, Path(args.data), Path(args.runs), args.max_runs, skip_models=skip)
    return 0 if all(c == 0 for c in codes.values()) else 1


def _cli_record(args) -> None:
    record_left(args.game, Path(args.data), Path(args.runs), args.device)


def _cli_add_run(args) -> int:
    run = CampaignRun(args.name, args.model, args.seed, args.jump, args.reward_state)
    print(f"wrote {add_run(args.game, run, args.why)}: {run.name} added")
    return 0


def _cli_amend_stop(args) -> int:
    for name, before, now in amend_stop_rule(args.game, args.confirmations, args.why, joint=args.joint):
        if before != now:
            print(f"{name}: {'finished' if before else 'open'} -> {'finished' if now else 'open'}")
    return report(args.game)


def _cli_amend_order(args) -> int:
    print(f"wrote {amend_pick_order(args.game, args.first, args.why)}")
    return 0


def _cli_calibrate(args) -> int:
    calibrate_rewards(args.game, Path(args.data), args.device)
    return 0


def _cli_table(args) -> int:
    return report(args.game)


def report(game: str) -> int:
    """``campaign table``: rewrite ``table.md`` (and README.md's summary for MsPacman), print every run."""
    from ..config import REPO_ROOT

    print(f"wrote {write_table(game)}")
    if game == "MsPacman" and update_readme(game, REPO_ROOT / "README.md"):
        print("updated the campaign's table in README.md")
    for r in table(game):
        ci = r["excess_ci"]
        band = f" [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else ""
        exc = "-" if r["excess_open_loop"] is None else f"{r['excess_open_loop']:.1f}{band}"
        print(f"{r['run']:<14} {r['frames']:>12,} frames  {r['gpu_minutes']:6.1f} GPU min  excess {exc}  "
              f"{'done' if r['finished'] else 'open'}: {r['why']}")
    return 0


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("campaign", help="the model-zoo campaign over many GPU leases (init, lease, table)")
    sub = p.add_subparsers(dest="campaign_cmd", required=True)
    i = sub.add_parser("init", help="write the campaign's config and stop rule (once, before any run)")
    i.add_argument("--game", default="MsPacman")
    i.add_argument("--data-steps", type=int, default=CampaignConfig.data_steps)
    i.set_defaults(func=_cli_init)
    d = sub.add_parser("data", help="collect the campaign's dataset from its config (same fingerprint every lease)")
    d.add_argument("--game", default="MsPacman")
    d.add_argument("--out", required=True)
    d.add_argument("--workers", type=int, default=1,
                   help="shards collected at once, each in its own process (the same bytes; default 1)")
    d.set_defaults(func=_cli_data)
    le = sub.add_parser("lease", help="train the unfinished runs for --seconds, score them, update the lineages")
    le.add_argument("--game", default="MsPacman")
    le.add_argument("--data", required=True, help="the campaign's dataset (collected from its config)")
    le.add_argument("--seconds", type=float, default=240.0, help="training seconds per run in this lease (default 240)")
    le.add_argument("--runs", default="runs/campaign", help="where the run folders live on this machine")
    le.add_argument("--max-runs", type=int, default=2,
                    help="runs trained at once, in the pick order (default 2: two sSSM runs on one H200 made "
                         "9.2k frames/s each against 19.7k alone, so a third adds little)")
    le.add_argument("--compile", action="store_true", help="train with torch.compile (recorded per lease)")
    le.add_argument("--stop-after", type=float, default=None, help=STOP_AFTER_HELP)
    le.add_argument("--device", default=None)
    le.set_defaults(func=_cli_lease)
    w = sub.add_parser("warm", help="compile what the next lease's runs compile, on a small dataset of the same frame "
                       "size, while the campaign's data is collected on a bare machine (torch's caches on its disk)")
    w.add_argument("--game", default="MsPacman")
    w.add_argument("--data", required=True, help="any dataset of the campaign's frame size (e.g. 16,000 frames: "
                   "`python -m ssmlib collect --profile paper --envs 16 --steps 16000`)")
    w.add_argument("--runs", default="runs/warm-compile", help="the folder for the warm-up's run folders (those of an earlier warm-up in it are replaced)")
    w.add_argument("--max-runs", type=int, default=2, help="as the lease's --max-runs: the runs it will pick")
    w.add_argument("--skip-models", default="", metavar="M1,M2",
                   help="models not to warm up (their runs compile for themselves), e.g. sSSM")
    w.set_defaults(func=_cli_warm)
    rl = sub.add_parser("record", help="record the run folders a lease stopped or lost but did not record (a lease "
                        "killed at its bound), without training")
    rl.add_argument("--game", default="MsPacman")
    rl.add_argument("--data", required=True, help="the campaign's dataset (collected from its config)")
    rl.add_argument("--runs", default="runs/campaign", help="where the run folders live on this machine")
    rl.add_argument("--device", default=None)
    rl.set_defaults(func=_cli_record)
    a = sub.add_parser("add-run", help="add a run to the started campaign, on the record (a dated design change)")
    a.add_argument("--game", default="MsPacman")
    a.add_argument("--name", required=True, help="its run name, e.g. sSSM-rp-s0")
    a.add_argument("--model", required=True, help=f"one of {', '.join(MODEL_NAMES)}")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--jump", type=int, default=1)
    a.add_argument("--reward-state", default="posterior", choices=REWARD_STATES, help="ModelConfig.reward_state")
    add_why_argument(a)
    a.set_defaults(func=_cli_add_run)
    st = sub.add_parser("amend-stop", help="make the stop rule stricter on the record (its test at N consecutive "
                        "curve points, and/or on the joint excess too) and judge every run again")
    st.add_argument("--game", default="MsPacman")
    st.add_argument("--confirmations", type=int, default=None,
                    help="consecutive curve points the test must hold at (more than now)")
    st.add_argument("--joint", action="store_true",
                    help="the test must hold on the joint excess (teacher-forced / posterior bound) as well")
    add_why_argument(st)
    st.set_defaults(func=_cli_amend_stop)
    o = sub.add_parser("amend-order", help="name the runs a lease trains before the others, on the record")
    o.add_argument("--game", default="MsPacman")
    o.add_argument("--first", nargs="*", default=[], metavar="RUN",
                   help="the runs first (fewest frames first among them); none: fewest frames first over all runs")
    add_why_argument(o)
    o.set_defaults(func=_cli_amend_order)
    c = sub.add_parser("calibrate", help="add the reward head's class weights to campaign weights exported "
                       "without them, and re-score those runs (calibrated reward readings)")
    c.add_argument("--game", default="MsPacman")
    c.add_argument("--data", required=True, help="the campaign's dataset (collected from its config)")
    c.add_argument("--device", default=None)
    c.set_defaults(func=_cli_calibrate)
    t = sub.add_parser("table", help="where every run stands")
    t.add_argument("--game", default="MsPacman")
    t.set_defaults(func=_cli_table)
