"""The I2A campaign: enough seeds per arm to decide claims 4 and 5, designed before its first run.

``python -m ssmlib i2a-campaign init`` writes ``results/i2a/<game>/campaign/config.json`` once, with:

* the **arms** (``ARMS``): model-free; copy-model (distill); I2A-distill querying the model-zoo campaign's
  dSSM-DET; I2A-distill querying its sSSM (claim 5); I2A-learned and I2A-uniform as the budget allows;
* **identical hyper-parameters** across arms: the paper agent profile, only the agent, its rollout policy,
  its frozen environment model and the seed differ; ``seeds`` seeds per arm at ``total_steps`` agent
  steps each;
* the **environment models**: per model, the model-zoo campaign's seed with the lowest open-loop test
  excess once that run has met its stop rule; fixed (path and sha256) at the campaign's first lease;
* the **measures**, all reported: area under the learning curve, last-100 training return, and the
  frozen final weights over ``eval_games`` games, each with episode-and-seed bootstrap intervals;
* the **rules** of claims 4 and 5 (``ssmlib.rules.RULES``) and a **power statement**: the pooled
  between-seed standard deviation of the I2A pilot study's frozen scores, and the difference that
  ``seeds`` seeds per arm detect (two-sided 5%, power 80%; ``ssmlib.stats.detectable_difference``);
* the **cost target**: every I2A arm at most ``cost_target`` times model-free's wall time per agent step,
  measured alone in one run (``agent bench``).

``python -m ssmlib i2a-campaign power`` prints the power statement for other seed counts.

The runner, over many GPU calls of about 9 minutes on a bare machine (``scripts/gpu_i2a_campaign.sh``):

* ``python -m ssmlib i2a-campaign lease --seconds S --max-runs M`` picks the unfinished runs (``pick_runs``:
  required arms first, then fewest agent steps, then seed, then the arm's order, so every arm's seeds
  advance round-robin and the arms stay balanced) and trains ``M`` of them at once, one process each
  (``i2a-campaign run``) on the one GPU, each for ``S`` seconds of training (``train_agent``'s time limit);
* an arm that queries an environment model is refused, with one line saying why, until the design's rule
  (``ENV_MODEL_RULE``, ``choose_env_model``) selects that model; the lease that first can select it writes
  its run, path and sha256 into ``config.json`` (``env_models``), and every later lease checks the sha256;
* every run continues from committed state by ``RESTART_RULE``: ``checkpoints/i2a_campaign/<game>/<run>.safetensors.xz``
  while the run is open, deleted once it is finished. An open run's safetensors file holds 3 bytes per agent
  parameter (bfloat16 weights, 8-bit log codes of RMSprop's averages; 4 bytes before the design change of
  2026-12-03): 2.8 MiB for model-free (975,786 parameters at the paper profile), 7.1-7.3 MiB for an I2A or copy
  agent (2.48-2.55 M); it is committed compressed with xz (lossless; since 2026-12-04), about 0.55 of those
  bytes on the model-free states measured. A lease starts a new run only while the stored state of the open
  runs stays within ``--state-budget-mib`` (the tree travels with every GPU call), a new run counted at its
  raw size times the largest stored/raw ratio of the states committed (``stored_ratio``);
* per run, ``results/i2a/<game>/campaign/<run>/``: ``lineage.json`` (per lease: git sha, device, agent steps,
  training wall time, how it restarted), ``episodes.jsonl.gz`` (every training episode, appended lease by
  lease; gzip-compressed, a sixth of the bytes) and, once the run reaches ``total_steps``, ``eval.json``
  (its final weights frozen, one whole game in each of ``eval_games`` envs); ``table.md`` after every lease
  (``i2a-campaign table``).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import CHECKPOINTS_DIR, RESULTS_DIR, REWARD_STATES
from ..errors import SsmlibError
from ..io import (amend_study_config, atomic_write_json, provenance, read_study_config, round_floats, sha256_file,
                  write_study_config)
from ..stats import detectable_difference, pooled_sd, seeds_needed
from .common import STOP_AFTER_HELP, add_why_argument, read_json, read_jsonl, write_text


@dataclass(frozen=True)
class Arm:
    """One arm of the campaign: runs ``<name>-s<seed>``."""

    name: str
    """Run-folder prefix."""
    variant: str
    """The I2A study's variant (``ssmlib.studies.i2a.VARIANTS``): agent and rollout policy."""
    env_model: str | None
    """The zoo campaign's model the agent queries (frozen); None where the agent queries none."""
    claims: tuple[int, ...]
    """The claims whose verdicts read this arm."""
    required: bool = True
    """False: run as the budget allows, after every required arm has its seeds."""


ARMS = (
    Arm("model-free", "model-free", None, (4,)),
    Arm("copy-distill", "copy-distill", "dSSM-DET", (4,)),
    Arm("i2a-distill-dSSM-DET", "i2a-distill", "dSSM-DET", (4, 5)),
    Arm("i2a-distill-sSSM", "i2a-distill", "sSSM", (5,)),
    Arm("i2a-learned-dSSM-DET", "i2a-learned", "dSSM-DET", (4,), required=False),
    Arm("i2a-uniform-dSSM-DET", "i2a-uniform", "dSSM-DET", (4,), required=False),
)
"""Every arm, in the order the leases fill them (required arms first)."""

KEEP_WEIGHTS = ("model-free", "i2a-distill-dSSM-DET")
"""The arms whose best finished run keeps its weights in a new design: the book commits one agent of each."""
ENV_MODEL_RULE = ("Per environment model, once every one of the model-zoo campaign's seeds of it (one frame per "
                  "step) has met the stop rule: the seed with the lowest open-loop test excess "
                  "(results/model_zoo/<game>/campaign/<run>/lineage.json, last curve point); chosen once, at the "
                  "first lease that can, and frozen: its path and sha256 are written into this config then. "
                  "Among the runs trained with the reward state env_model_reward_states names for the model "
                  "(posterior where it names none).")
MEASURES = ("area under the learning curve (mean training return over agent steps, by the trapezoid rule, "
            "divided by the budget)", "last-100 training return at the budget",
            "frozen final weights: one whole game in each of eval_games envs")
RESTART_RULE = ("A lease continues each open run from what the last lease committed: on a bare machine from "
                "checkpoints/i2a_campaign/<game>/<run>.safetensors.xz (a safetensors file compressed with xz, "
                "lossless), i.e. the agent's weights in state_dtype "
                "(bfloat16: each value rounded to 8 significant bits, at most 2^-9 of it), RMSprop's square "
                "averages as state_average_bits-bit codes of log2 on each tensor's range (ssmlib.agents.log_codes; "
                "8 bits: every restarted step size within [0.974, 1.028] of the uncoded one on the model-free "
                "states measured; 0: stored in state_dtype like the weights), and exactly its step and update "
                "counters and RNG state; on a machine still warm from the "
                "previous call, from the run folder's float32 checkpoint at the same step instead (unrounded). "
                "Either way the environments start new episodes from a new seed (seed + 100003 x resumes, as "
                "every resumed A2C run), so the episodes in progress at the cut are lost: their steps count, "
                "their returns are not recorded. A run is finished when it has total_steps agent steps and its "
                "final weights have been played frozen over eval_games games; its committed state is then deleted.")
PILOT_NOTE = ("the I2A pilot study (results/i2a/<game>/: 2 seeds per variant at 2M agent steps, queried the "
              "zoo's dSSM-DET trained on random-policy data): per seed the mean frozen score over its games")


@dataclass
class I2ACampaignConfig:
    """The I2A campaign's design, written once before the first run."""

    game: str = "MsPacman"
    """The Atari game."""
    profile: str = "paper"
    """The agent profile whose hyper-parameters every arm shares."""
    seeds: int = 6
    """Seeds per arm (each a separate run)."""
    total_steps: int = 2_000_000
    """Agent steps per run (over all environments), the same for every arm."""
    eval_games: int = 64
    """Games played by each run's frozen final weights."""
    cost_target: float = 2.5
    """Every I2A arm's wall time per agent step at most this many times model-free's (agent bench, alone)."""
    alpha: float = 0.05
    """Two-sided level of the power statement."""
    power: float = 0.8
    """Power of the power statement."""
    arms: list = field(default_factory=list)
    """The arms (``ARMS`` as dictionaries)."""
    hyper_parameters: dict = field(default_factory=dict)
    """The shared agent profile (agent, rollout policy, environment model and seed vary per run)."""
    env_model_rule: str = ENV_MODEL_RULE
    """How each environment model is chosen."""
    env_models: dict = field(default_factory=dict)
    """Filled at the first lease: per model the chosen run, path, sha256, frames and excess."""
    env_model_reward_states: dict = field(default_factory=dict)
    """Per environment model, the reward state (``config.REWARD_STATES``) of the zoo runs the rule chooses
    among; a model not named: "posterior", the ELBO's reward term."""
    measures: tuple = MEASURES
    """What is reported per arm."""
    rules: dict = field(default_factory=dict)
    """The rules of claims 4 and 5 (``ssmlib.rules.RULES``) as they stood when the design was written."""
    power_statement: dict = field(default_factory=dict)
    """From the pilot study: the between-seed spread and what ``seeds`` seeds per arm can detect."""
    state_dtype: str = "bfloat16"
    """Storage dtype of an open run's committed weights (counters and RNG exact)."""
    state_average_bits: int = 8
    """RMSprop's square averages in committed state as codes of this many bits (``agents.log_codes``); 0: in
    ``state_dtype`` like the weights (the design as first written)."""
    extra_seeds: dict = field(default_factory=dict)
    """Per arm, seeds beyond ``seeds`` (numbered on from ``seeds``): a lease trains them only after every run of
    the design's seeds it can train, and the claims' verdicts never read them (the design's seeds decide);
    reported beside them (the table, the sanity check, the measured spread)."""
    keep_weights: list = field(default_factory=list)
    """Arms whose best finished run (the highest frozen mean, design and extra seeds alike) keeps its final
    weights (weights only, in ``state_dtype``: ``best_weights_path``), where the book's committed agents come
    from; every other finished run's weights go with its state."""
    design_changes: list = field(default_factory=list)
    """Changes to this design, each dated with its reason and what had run by then."""
    restart_rule: str = RESTART_RULE
    """How a lease continues a run from committed state."""


def campaign_dir(game: str, results: Path = RESULTS_DIR) -> Path:
    return Path(results) / "i2a" / game / "campaign"


def pilot_seed_scores(game: str = "MsPacman", results: Path = RESULTS_DIR) -> dict[str, list[float]]:
    """Per pilot variant, each seed's mean frozen score (``ssmlib.studies.i2a.agent_tables``)."""
    from .i2a import agent_tables

    _, meta, _ = agent_tables(game, results)
    return {v: [m["return_mean"] for m in runs] for v, runs in meta.items()}


def power_statement(scores: dict[str, list[float]], seeds: int, alpha: float = 0.05, power: float = 0.8,
                    differences=(100.0, 200.0)) -> dict:
    """The pooled between-seed standard deviation of per-seed scores (all arms pooled: the arms differ in
    their means, not assumed in their spread), the difference ``seeds`` seeds per arm detect, and the
    seeds each of ``differences`` would need."""
    sd, df = pooled_sd(scores)
    return {"sd_between_seeds": sd, "df": df, "seeds_per_arm": seeds, "alpha": alpha, "power": power,
            "detectable_difference": detectable_difference(sd, seeds, alpha, power),
            "seeds_needed": {f"{d:g}": seeds_needed(sd, d, alpha, power) for d in differences},
            "unit": "game score (mean of a seed's frozen games)"}


VARIES = ("agent", "rollout_policy", "env_model", "seed", "total_steps")
"""The agent settings that vary per run; every other one is the design's shared ``hyper_parameters``."""


def shared_hyper_parameters(profile: str, game: str) -> dict:
    """The agent profile's settings shared by every arm (``VARIES`` left out), with the game."""
    from ..config import agent_profile

    hp = dataclasses.asdict(agent_profile(profile))
    return {**{k: v for k, v in hp.items() if k not in VARIES}, "game": game}


def design(game: str = "MsPacman", results: Path = RESULTS_DIR, **overrides) -> I2ACampaignConfig:
    """The config ``init`` writes: arms, shared hyper-parameters, rules and the pilot's power statement."""
    from ..rules import RULES

    cfg = I2ACampaignConfig(game=game, **overrides)
    if cfg.seeds < 2 or cfg.total_steps < 1 or cfg.eval_games < 1:
        raise SsmlibError("seeds >= 2, total_steps >= 1 and eval_games >= 1 are required")
    cfg.arms = json.loads(json.dumps([dataclasses.asdict(a) for a in ARMS]))  # as stored: lists, not tuples
    cfg.hyper_parameters = shared_hyper_parameters(cfg.profile, game)
    cfg.rules = {k: RULES[k] for k in ("4", "5", "4.campaign", "5.campaign")}
    statement = power_statement(pilot_seed_scores(game, results), cfg.seeds, cfg.alpha, cfg.power)
    cfg.power_statement = {**statement, "from": PILOT_NOTE.replace("<game>", game)}
    cfg.keep_weights = list(KEEP_WEIGHTS)
    return cfg


def run_names(cfg: I2ACampaignConfig, required_only: bool = False) -> list[str]:
    """Every run of the campaign, arm by arm (required arms first), seed by seed."""
    return [f"{a['name']}-s{s}" for a in cfg.arms if a["required"] or not required_only for s in range(cfg.seeds)]


def init(cfg: I2ACampaignConfig, results: Path = RESULTS_DIR) -> Path:
    """Write the design (refused if one exists: the rules and seeds are fixed before the numbers)."""
    return write_study_config(campaign_dir(cfg.game, results) / "config.json", dataclasses.asdict(cfg),
                              "the I2A campaign's design is fixed once written")


def amend_design(game: str, change: str, updates: dict, results: Path = RESULTS_DIR) -> Path:
    """Change the written design, on the record: ``updates`` (existing fields only) applied and ``change`` (what
    and why, and what had run by then) appended to ``design_changes`` with today's date. For changes that
    judge no number already seen, e.g. a rule added before any run it judges has been evaluated."""
    if {"env_model_reward_states", "extra_seeds", "keep_weights"} & set(updates):  # checked before anything is written
        arms = updates.get("arms") or load_config(game, results).arms
        _check_reward_states(updates.get("env_model_reward_states", {}), arms)
        _check_arm_names(updates, arms)
    return amend_study_config(campaign_dir(game, results) / "config.json", I2ACampaignConfig, change, updates,
                              "write the design first: python -m ssmlib i2a-campaign init")


def _check_arm_names(d: dict, arms: list, where: str = "") -> None:
    """Refuse, in one line, ``extra_seeds`` or ``keep_weights`` naming an arm the design does not have (a typo
    would silently train or keep nothing), or an extra seed count that is not a whole number >= 0."""
    names = [a["name"] for a in arms]
    extra, keep = d.get("extra_seeds", {}), d.get("keep_weights", [])
    bad = [a for a in [*extra, *keep] if a not in names]
    bad += [f"{a}={n!r}" for a, n in extra.items() if not isinstance(n, int) or isinstance(n, bool) or n < 0]
    if bad:
        raise SsmlibError(f"{where}extra_seeds / keep_weights: {', '.join(map(str, bad))}: name arms of the design "
                          f"({', '.join(names)}), with a whole number >= 0 of extra seeds each")


def amend_extra_seeds(game: str, extra: dict[str, int] | None, keep: list[str] | None, why: str,
                      results: Path = RESULTS_DIR) -> Path:
    """Set ``extra_seeds`` and ``keep_weights`` on the record (``i2a-campaign amend-extra``; None leaves a field as
    it is): which arms train seeds beyond the design's (after every design run a lease can train; never read by
    a verdict), and which arms keep their best finished run's weights. An extra seed that has started stays."""
    cfg = load_config(game, results)
    extra = dict(cfg.extra_seeds if extra is None else extra)
    keep = list(cfg.keep_weights if keep is None else keep)
    if extra == cfg.extra_seeds and keep == cfg.keep_weights:
        raise SsmlibError("extra_seeds and keep_weights already say this: nothing to amend")
    _check_arm_names({"extra_seeds": extra, "keep_weights": keep}, cfg.arms)
    started = [r.name for r in campaign_runs(cfg, extra=True)
               if r.extra and r.seed >= cfg.seeds + extra.get(r.arm["name"], 0) and read_lineage(game, r.name, results)["leases"]]
    if started:
        raise SsmlibError(f"{', '.join(started)} started already: keep at least their extra seeds (their state and "
                          f"results would be orphaned)")
    finished = [r.name for r in campaign_runs(cfg, extra=True) if read_lineage(game, r.name, results)["finished"]]
    return amend_design(game, f"extra seeds {dict(extra) or 'none'} (were {cfg.extra_seeds or 'none'}), "
                        f"weights kept for {', '.join(keep) or 'no arm'} (were {', '.join(cfg.keep_weights) or 'none'})"
                        f": {why} Finished by then: {', '.join(finished) or 'no run'}. The claims' verdicts read the "
                        f"design's {cfg.seeds} seeds per arm only.",
                        {"extra_seeds": dict(extra), "keep_weights": list(keep)}, results)


def load_config(game: str = "MsPacman", results: Path = RESULTS_DIR) -> I2ACampaignConfig:
    d = read_study_config(campaign_dir(game, results) / "config.json",
                          f"no I2A campaign for {game}; write its design with: python -m ssmlib i2a-campaign init "
                          f"--game {game}")
    d["measures"] = tuple(d.get("measures", MEASURES))
    d.setdefault("state_average_bits", 0)  # a design written before the field existed: averages in state_dtype
    where = f"{campaign_dir(game, results) / 'config.json'}: "
    _check_reward_states(d.get("env_model_reward_states", {}), d.get("arms", []), where)
    _check_arm_names(d, d.get("arms", []), where)
    return I2ACampaignConfig(**d)


def _check_reward_states(states: dict, arms: list, where: str = "") -> None:
    """Refuse, in one line, an ``env_model_reward_states`` entry whose model no arm queries (a typo would
    silently leave that model on the posterior's runs) or whose value is not a reward state."""
    models = {a["env_model"] for a in arms if a["env_model"]}
    bad = {m: r for m, r in states.items() if m not in models or r not in REWARD_STATES}
    if bad:
        raise SsmlibError(f"{where}env_model_reward_states {bad}: a key is an environment model of the arms "
                          f"({', '.join(sorted(models))}), a value one of {', '.join(REWARD_STATES)}; amend the "
                          f"design (i2a_campaign.amend_design)")


def finished_evals(cfg: I2ACampaignConfig, results: Path = RESULTS_DIR) -> list[tuple[Run, dict]]:
    """Every finished run (design and extra seeds) with its frozen evaluation (``eval.json``), in run order."""
    out = []
    for r in campaign_runs(cfg, extra=True):
        ev = read_json(campaign_dir(cfg.game, results) / r.name / "eval.json")
        if ev is not None and read_lineage(cfg.game, r.name, results)["finished"]:
            out.append((r, ev))
    return out


def measured_power(game: str = "MsPacman", results: Path = RESULTS_DIR) -> dict | None:
    """The power statement from the campaign's own finished runs (design and extra seeds): per arm with at least
    two, each finished seed's frozen mean; pooled as ``power_statement`` pools the pilot's. None before any arm
    has two. A report beside the design's statement, which stays as written."""
    cfg = load_config(game, results)
    scores: dict[str, list[float]] = {}
    for r, ev in finished_evals(cfg, results):
        scores.setdefault(r.arm["name"], []).append(float(np.mean(ev["returns"])))
    scores = {a: v for a, v in scores.items() if len(v) >= 2}
    if not scores:
        return None
    return {**power_statement(scores, cfg.seeds, cfg.alpha, cfg.power),
            "from": "the campaign's finished runs: " + ", ".join(f"{a} ({len(v)} seeds)" for a, v in scores.items()),
            "seed_means": scores}


def format_power(statement: dict) -> str:
    s = statement
    need = ", ".join(f"{d} points: {n} seeds" for d, n in s["seeds_needed"].items())
    return (f"between-seed SD {s['sd_between_seeds']:.0f} points (pooled, {s['df']} df); with {s['seeds_per_arm']} "
            f"seeds per arm a difference of {s['detectable_difference']:.0f} points is detected "
            f"(two-sided {s['alpha']:.0%}, power {s['power']:.0%}); per arm for {need}")


# --------------------------------------------------------------------------------------------------
# the runner: leases over many GPU calls


EPISODES_FILE = "episodes.jsonl.gz"
"""A run's training episodes (``{"env", "length", "return", "step"}`` per line), gzip-compressed."""
STATE_BUDGET_MIB = 9.0
"""Default of ``lease --state-budget-mib``: the committed (xz-compressed) state of all open runs at most this. The
repository travels with every GPU call and is kept under 56 MiB. Two open I2A or copy runs take 2 x 7.24-7.30 MiB
(coded) x the largest stored/raw ratio so far (``stored_ratio``): 0.549 on 2026-12-04 (8.0 MiB, so 8.5 held two;
8.0 until that day, uncompressed: one), 0.587 since the first leases of model-free-s8 to -s10 on 2026-12-05 (8.57
MiB, which 8.5 no longer holds; the outlook then put the gated runs' end 36 calls later). 9.0 holds two at a ratio
up to 0.61. The tree it must fit in (``tree_bytes`` in results/i2a/<game>/campaign/state-compression.json): 51.7 MiB
on 2026-12-05 with five open model-free states (8.0 MiB of it), which finish before the gated arms can start
(``campaign_outlook``)."""
MAX_ACTIONS = 18
"""Actions a model-free run's state size is estimated with (ALE's full set: an upper bound for every game)."""
EVAL_SEED = 1_000_000
"""Seed of every frozen evaluation (``agent eval``'s default): every run plays the same starts."""


@dataclass(frozen=True)
class Run:
    """One run of the campaign: an arm's seed."""

    name: str
    """``<arm>-s<seed>``: its folders' name."""
    arm: dict
    """The arm as the config stores it."""
    seed: int
    """The agent's seed."""
    order: int
    """The arm's place in the config."""
    extra: bool = False
    """One of the arm's ``extra_seeds``: trained after the design's runs, read by no verdict."""


def campaign_runs(cfg: I2ACampaignConfig, extra: bool = False) -> list[Run]:
    """Every run of the design's seeds, arm by arm (the config's order), seed by seed (``run_names``' order);
    with ``extra``, each arm's ``extra_seeds`` after them."""
    runs = [Run(f"{a['name']}-s{s}", a, s, i) for i, a in enumerate(cfg.arms) for s in range(cfg.seeds)]
    if extra:
        runs += [Run(f"{a['name']}-s{s}", a, s, i, extra=True) for i, a in enumerate(cfg.arms)
                 for s in range(cfg.seeds, cfg.seeds + cfg.extra_seeds.get(a["name"], 0))]
    return runs


def find_run(cfg: I2ACampaignConfig, name: str) -> Run:
    for r in campaign_runs(cfg, extra=True):
        if r.name == name:
            return r
    names = ", ".join(r.name for r in campaign_runs(cfg, extra=True))
    raise SsmlibError(f"no run {name!r} in the I2A campaign of {cfg.game} (runs: {names})")


STATE_SUFFIX = ".safetensors.xz"
"""An open run's committed state: a safetensors file compressed with xz (lossless; bfloat16 weights shrink to
about 0.7 of their bytes, 8-bit log codes to about 0.3)."""
XZ_PRESET = 6
"""The xz preset the committed state is compressed with (``scripts/state_compression.py`` measures with it)."""


def state_dir(game: str, checkpoints: Path = CHECKPOINTS_DIR) -> Path:
    """The campaign's committed files: open runs' state and the kept weights of ``keep_weights``."""
    return Path(checkpoints) / "i2a_campaign" / game


def state_path(game: str, run: str, checkpoints: Path = CHECKPOINTS_DIR) -> Path:
    """An open run's committed state (``RESTART_RULE``), as leases write it."""
    return state_dir(game, checkpoints) / f"{run}{STATE_SUFFIX}"


def _compressed(path: Path) -> bool:
    return Path(path).name.endswith(STATE_SUFFIX)


def state_sidecar(path: Path) -> Path:
    """``<run>.safetensors.xz`` -> ``<run>.json``: the state's metadata, with ``raw_bytes``, ``stored_bytes`` and
    ``stored_as`` added, readable without decompressing."""
    from ..checkpoint import sidecar_path

    return sidecar_path(Path(str(path).removesuffix(".xz")))


def read_lineage(game: str, run: str, results: Path = RESULTS_DIR) -> dict:
    return read_json(campaign_dir(game, results) / run / "lineage.json",
                     {"run": run, "leases": [], "steps": 0, "finished": False, "why": "not started"})


def agent_config(cfg: I2ACampaignConfig, run: Run):
    """The run's ``AgentConfig``: the design's shared hyper-parameters, its arm's agent, rollout policy and
    frozen environment model (``cfg.env_models``), its seed, ``total_steps``."""
    from ..config import AgentConfig
    from .i2a import variant_args

    agent, mode = variant_args(run.arm["variant"])
    model = run.arm["env_model"]
    path = cfg.env_models[model]["path"] if model else ""
    return AgentConfig(**cfg.hyper_parameters, agent=agent, rollout_policy=mode, env_model=path, seed=run.seed,
                       total_steps=cfg.total_steps)


def state_mib(cfg: I2ACampaignConfig, run: Run) -> float:
    """MiB of the run's state before compression (the safetensors file inside its committed ``.xz``): its agent's
    parameters (built on the CPU with its environment model's actions, else ``MAX_ACTIONS``), weights in
    ``state_dtype`` and RMSprop averages in ``state_average_bits`` (else ``state_dtype``)."""
    import torch

    from .. import checkpoint as ckpt
    from ..agents.checkpoint import build_agent
    from ..config import env_model_path

    acfg = agent_config(cfg, run)
    actions = ckpt.model_config(ckpt.read_meta(env_model_path(acfg.env_model))).num_actions if acfg.env_model \
        else MAX_ACTIONS
    agent = build_agent(acfg, actions, "cpu")
    n = sum(v.numel() for v in agent.agent_state_dict().values())
    weight_bytes = torch.empty(0, dtype=getattr(torch, cfg.state_dtype)).element_size()
    average_bytes = 1 if cfg.state_average_bits else weight_bytes  # codes are uint8 whatever their bits
    return n * (weight_bytes + average_bytes) / 2**20


# ------------------------------------------------------------------------------- environment models


def env_model_runs(zoo_cfg, model: str, reward_state: str = "posterior") -> list[str]:
    """The model-zoo campaign's runs ``ENV_MODEL_RULE`` chooses ``model`` among (its seeds, one frame per step,
    trained with ``reward_state``), as the zoo's design writes them."""
    return [r["name"] for r in zoo_cfg.runs if r["model"] == model and r.get("jump", 1) == 1
            and r.get("reward_state", "posterior") == reward_state]


def gate_runs(cfg: I2ACampaignConfig, zoo_cfg) -> dict[str, list[str]]:
    """Per environment model of the required arms not yet frozen, the zoo runs that must all meet their stop
    rule before those arms can start."""
    models = dict.fromkeys(a["env_model"] for a in cfg.arms if a["env_model"] and a["required"])
    return {m: env_model_runs(zoo_cfg, m, cfg.env_model_reward_states.get(m, "posterior"))
            for m in models if m not in cfg.env_models}


def choose_env_model(game: str, model: str, results: Path = RESULTS_DIR, checkpoints: Path = CHECKPOINTS_DIR,
                     reward_state: str = "posterior") -> tuple[dict | None, str]:
    """``ENV_MODEL_RULE`` on the model-zoo campaign as it stands: ``(choice, why)``, the choice None (and
    ``why`` the reason) until every one of ``model``'s runs (its seeds, one frame per step, trained with
    ``reward_state``) has met its stop rule and the chosen one's weights carry their reward class weights
    (calibrated readings)."""
    from ..checkpoint import read_meta
    from . import zoo_campaign as zoo

    try:
        zcfg = zoo.load_config(game, results)
    except SsmlibError:
        return None, f"there is no model-zoo campaign for {game} (results/model_zoo/{game}/campaign)"
    names = env_model_runs(zcfg, model, reward_state)
    lineages = [zoo.read_lineage(game, n, results) for n in names]
    done = [lin for lin in lineages if lin.get("finished") and lin.get("curve")]
    if not names or len(done) < len(names):  # the best of all seeds, so none may still be training
        waiting = [n for n, lin in zip(names, lineages) if not (lin.get("finished") and lin.get("curve"))]
        return None, (f"the model-zoo campaign's {model} runs {', '.join(waiting) or '(none configured)'} have not "
                      f"met their stop rule yet (results/model_zoo/{game}/campaign/table.md)")
    best = min(done, key=lambda lin: lin["curve"][-1]["excess"])
    path = zoo.weights_path(game, best["run"], checkpoints)
    if not path.exists():
        return None, f"the model-zoo campaign's chosen {model} run {best['run']} has no weights at {path}"
    mcfg = read_meta(path)["model_cfg"]
    if mcfg.get("reward_head", "bits") != "bits" and not mcfg.get("reward_class_weights"):
        # freezing it now would freeze raw reward readings, and calibrating it later would change its sha256
        return None, (f"the model-zoo campaign's chosen {model} run {best['run']} has no reward class weights yet "
                      f"(python -m ssmlib campaign calibrate --game {game} --data DIR, run by scripts/gpu_campaign.sh)")
    last = best["curve"][-1]
    return {"run": best["run"], "path": _repo_relative(path), "sha256": sha256_file(path), "frames": last["frames"],
            "excess": last["excess"], "finished_runs": [lin["run"] for lin in done], "runs": names}, "chosen"


def _repo_relative(path: Path) -> str:
    """``path`` relative to the checkout when inside it (as agent configs store model paths), else as is."""
    from ..config import REPO_ROOT

    path = Path(path).resolve()
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def env_models(cfg: I2ACampaignConfig, results: Path = RESULTS_DIR, checkpoints: Path = CHECKPOINTS_DIR,
               freeze: bool = False) -> dict[str, str]:
    """Per environment model of the arms, why it cannot be queried (absent: it can). A model the design
    already froze is checked against its sha256; one not yet chosen is chosen by ``ENV_MODEL_RULE`` and,
    with ``freeze``, written into ``config.json`` (once: later leases keep it)."""
    from ..config import env_model_path

    blocked, chosen = {}, {}
    for model in dict.fromkeys(a["env_model"] for a in cfg.arms if a["env_model"]):
        frozen = cfg.env_models.get(model)
        if frozen is None:
            frozen, why = choose_env_model(cfg.game, model, results, checkpoints,
                                           cfg.env_model_reward_states.get(model, "posterior"))
            if frozen is None:
                blocked[model] = why
                continue
            chosen[model] = frozen
        path = env_model_path(frozen["path"])
        if not path.exists() or sha256_file(path) != frozen["sha256"]:
            blocked[model] = f"its frozen file {frozen['path']} is missing or no longer has sha256 {frozen['sha256'][:12]}"
    if freeze and chosen:
        path = campaign_dir(cfg.game, results) / "config.json"
        doc = json.loads(path.read_text())
        doc["env_models"] = {**doc.get("env_models", {}), **{m: {**c, "chosen_at": provenance()["time"]}
                                                              for m, c in chosen.items()}}
        atomic_write_json(path, doc)
        cfg.env_models.update(doc["env_models"])
        print(f"environment models chosen and frozen in {path}: "
              + ", ".join(f"{m} = {c['run']}" for m, c in chosen.items()), flush=True)
    return blocked


# -------------------------------------------------------------------------------------------- picking


def pick_runs(cfg: I2ACampaignConfig, max_runs: int, blocked: dict[str, str], results: Path = RESULTS_DIR,
              checkpoints: Path = CHECKPOINTS_DIR, state_budget_mib: float = STATE_BUDGET_MIB,
              size=None) -> tuple[list[Run], list[str]]:
    """``(runs, notes)``: up to ``max_runs`` unfinished runs, in the order the design's seeds before extra seeds,
    required arms first, then a run at its budget still to be evaluated, then fewest agent steps, then seed, then
    the arm's place in the config (so each arm's seeds advance round-robin and the arms stay balanced). Extra seeds
    go the other way, most agent steps first: they only add seeds to an arm, so the one nearest its budget finishes
    (and frees its committed state) before a new one starts, as ``campaign_outlook.i2a_lane`` assumes.
    Skipped, each with one line in ``notes``:
    an arm whose environment model is ``blocked``; a new run whose state (``size(run)`` MiB, default
    ``state_mib`` times ``stored_ratio``) would take the open runs' committed state (its bytes on disk) over
    ``state_budget_mib``; a new extra seed while a design run waits so (open extra seeds go on: the design run
    waits at most until they finish)."""
    if size is None:
        ratio = stored_ratio(cfg.game, results, checkpoints)
        size = lambda r: state_mib(cfg, r) * ratio  # noqa: E731
    todo, open_mib = [], 0.0
    for r in campaign_runs(cfg, extra=True):
        lin = read_lineage(cfg.game, r.name, results)
        if lin["finished"]:
            continue
        state = state_path(cfg.game, r.name, checkpoints)
        open_mib += state.stat().st_size / 2**20 if state.exists() else 0.0
        steps = lin["steps"]
        progress = -steps if r.extra else steps  # extras: nearest its budget first; design runs: balanced
        todo.append(((r.extra, not r.arm["required"], steps < cfg.total_steps, progress, r.seed, r.order), r, steps))
    picked, notes, design_waits = [], [], False
    for model, why in blocked.items():
        arms = [a["name"] for a in cfg.arms if a["env_model"] == model]
        notes.append(f"refused {', '.join(arms)}: environment model {model} not available: {why}")
    for _, r, steps in sorted(todo, key=lambda t: t[0]):
        if len(picked) == max_runs:
            break
        if r.arm["env_model"] in blocked:
            continue
        if steps == 0:
            if r.extra and design_waits:  # open extra seeds may go on; a new one would keep the design run waiting
                notes.append(f"not started {r.name}: a run of the design's seeds waits for state budget")
                continue
            need = size(r)
            if need > state_budget_mib:  # it could never start: say what would let it
                notes.append(f"not started {r.name}: its state alone ({need:.1f} MiB) exceeds the state budget of "
                             f"{state_budget_mib:g} MiB; raise --state-budget-mib (STATE_BUDGET_MIB= for the lease "
                             f"scripts) while the repository stays under 56 MiB, or store the state smaller "
                             f"(scripts/state_quantization.py measures by how much)")
                continue
            if open_mib + need > state_budget_mib:
                notes.append(f"not started {r.name}: its state ({need:.1f} MiB) would take the open runs' "
                             f"({open_mib:.1f} MiB) over the state budget of {state_budget_mib:g} MiB")
                design_waits = design_waits or not r.extra
                continue
            open_mib += need
        picked.append(r)
    return picked, notes


# ----------------------------------------------------------------------------------- committed state


def export_state(src: Path, dst: Path, dtype: str, average_bits: int = 0) -> dict:
    """The run folder's checkpoint as committed state: weights in ``dtype``, RMSprop averages as ``average_bits``
    codes (``agents.log_codes``; 0: in ``dtype``); counters, RNG state and scalar optimiser entries (its step
    counts) unchanged. ``dst`` ending in ``.xz`` (``state_path``) is written compressed, its metadata (with
    ``raw_bytes`` and ``stored_bytes``) in the ``.json`` beside it; each file atomically."""
    import tempfile

    import torch

    from .. import checkpoint as ckpt
    from ..agents import log_codes
    from ..agents.checkpoint import KIND

    meta, tensors = ckpt.load_checkpoint(src, kind=KIND)
    dt = getattr(torch, dtype)
    if average_bits:
        tensors = log_codes.encode_averages(tensors, average_bits)
    out = {k: v.to(dt) if _stored_rounded(k, v) else v for k, v in tensors.items()}
    meta = {k: v for k, v in meta.items() if k != "tensors_sha256"}
    meta = {**meta, "state_dtype": dtype, "state_average_bits": average_bits}
    dst = Path(dst)
    if not _compressed(dst):
        return ckpt.write_file(dst, out, meta)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "state.safetensors"
        return _store_xz(raw, dst, ckpt.write_file(raw, out, meta))


def _store_xz(raw: Path, dst: Path, meta: dict) -> dict:
    """``raw`` (a safetensors file with metadata ``meta``) compressed as ``dst``; its metadata, with the bytes raw and
    stored, as ``state_sidecar`` (the file inside keeps ``meta`` as it is). The state first, then its sidecar."""
    import lzma

    from ..io import atomic_write_bytes

    blob = raw.read_bytes()
    packed = lzma.compress(blob, preset=XZ_PRESET)
    meta = {**meta, "raw_bytes": len(blob), "stored_bytes": len(packed), "stored_as": "xz"}
    atomic_write_bytes(dst, packed)
    atomic_write_json(state_sidecar(dst), meta)
    return meta


class _Unpacked:
    """``with _Unpacked(path) as raw``: committed state as a plain safetensors file (``raw``, a temporary copy
    where ``path`` is compressed); a damaged file is refused in one line naming ``path``."""

    def __init__(self, path: Path):
        self.path, self.tmp = Path(path), None

    def __enter__(self) -> Path:
        import lzma
        import tempfile

        if not _compressed(self.path):
            return self.path
        if not self.path.exists():
            raise SsmlibError(f"committed state {self.path} not found")
        try:
            blob = lzma.decompress(self.path.read_bytes())
        except lzma.LZMAError as e:
            raise SsmlibError(f"committed state {self.path} is truncated or corrupt (xz: {e})") from None
        self.tmp = tempfile.TemporaryDirectory()
        raw = Path(self.tmp.name) / "state.safetensors"
        try:
            raw.write_bytes(blob)
        except BaseException:
            self.tmp.cleanup()
            raise
        return raw

    def __exit__(self, kind, err, tb) -> None:
        if self.tmp is None:
            return
        copy = str(Path(self.tmp.name) / "state.safetensors")
        self.tmp.cleanup()
        self.tmp = None
        if isinstance(err, SsmlibError):  # name the committed file, not the temporary copy
            raise SsmlibError(str(err).replace(copy, str(self.path))) from None


def read_state_meta(path: Path) -> dict:
    """The metadata of committed state ``path`` (compressed or not), checked as a checkpoint's header is."""
    from ..agents.checkpoint import KIND
    from ..checkpoint import read_meta

    with _Unpacked(path) as raw:
        return read_meta(raw, kind=KIND)


def load_state(path: Path) -> tuple[dict, dict]:
    """``(meta, tensors)`` of committed state ``path`` (compressed or not), verified as ``load_checkpoint`` does."""
    from ..agents.checkpoint import KIND
    from ..checkpoint import load_checkpoint

    with _Unpacked(path) as raw:
        return load_checkpoint(raw, kind=KIND)


def stored_ratio(game: str, results: Path = RESULTS_DIR, checkpoints: Path = CHECKPOINTS_DIR) -> float:
    """The largest stored/raw byte ratio of the campaign's compressed state: the committed states' (their ``.json``)
    and every lease's that committed one (its lineage entry's ``state_stored_bytes`` / ``state_raw_bytes``); 1.0
    where there is none. What a new run's state is counted at before it has any (``pick_runs``)."""
    ratios = []
    for side in state_dir(game, checkpoints).glob("*.json"):
        meta = read_json(side) or {}
        if meta.get("stored_as") == "xz" and meta.get("raw_bytes"):
            ratios.append(meta["stored_bytes"] / meta["raw_bytes"])
    for path in campaign_dir(game, results).glob("*/lineage.json"):
        ratios += [e["state_stored_bytes"] / e["state_raw_bytes"] for e in (read_json(path) or {}).get("leases", [])
                   if e.get("state_raw_bytes")]
    return max(ratios, default=1.0)


def _stored_rounded(key: str, v) -> bool:  # log codes are uint8 and their ranges (log_codes.RANGE_PREFIX) exact
    return v.is_floating_point() and v.dim() > 0 and key.split(".")[0] in ("agent", "optim")


def restore_state(src: Path, dst: Path) -> dict:
    """Committed state (compressed or not) as a float32 run-folder checkpoint that ``train_agent(resume=True)``
    continues."""
    import torch

    from .. import checkpoint as ckpt
    from ..agents import log_codes

    meta, tensors = load_state(src)
    if meta.get("state_average_bits"):  # state written before the field existed has none: averages in dtype
        tensors = log_codes.decode_averages(tensors, meta["state_average_bits"])
    out = {k: v.float() if _stored_rounded(k, v) else v for k, v in tensors.items()}
    stored = {"dtype": meta.get("state_dtype"), "average_bits": meta.get("state_average_bits", 0)}
    meta = {k: v for k, v in meta.items() if k not in ("tensors_sha256", "state_dtype", "state_average_bits")}
    dst.parent.mkdir(parents=True, exist_ok=True)
    return ckpt.write_file(dst, out, {**meta, "restored_from": str(src), "restored_from_state": stored,
                                      "restored_dtype": str(torch.float32)})


def best_weights_path(game: str, arm: str, checkpoints: Path = CHECKPOINTS_DIR) -> Path:
    """Where an arm of ``keep_weights`` keeps its best finished run's final weights."""
    return state_dir(game, checkpoints) / f"best-{arm}.safetensors"


def keep_if_best(cfg: I2ACampaignConfig, run: Run, src: Path, ev: dict, checkpoints: Path = CHECKPOINTS_DIR,
                 stored_ev: dict | None = None) -> bool:
    """Keep the finished run's final weights (``src``, weights only, in ``state_dtype``) as its arm's best when its
    frozen mean is above the kept run's (a tie keeps the earlier; the kept run itself, evaluated again after a lease
    died before its lineage, is replaced); the metadata's ``campaign_best`` says which run, its frozen mean over
    how many games, and that the games were played with the float32 weights; ``stored_ev``, games from the same
    starts played with the copy as stored (``train_run`` exports and plays it), is recorded as ``stored_frozen_mean`` (None: not
    scored). The best is chosen by the float32 score, which every seed of the design has."""
    from ..agents.checkpoint import KIND, export_agent
    from ..checkpoint import read_meta

    dst = best_weights_path(cfg.game, run.arm["name"], checkpoints)
    kept = read_meta(dst, kind=KIND).get("campaign_best") if dst.exists() else None
    if kept is None and dst.exists():
        raise SsmlibError(f"{dst} has no campaign_best in its metadata: it is not a kept run's weights")
    # the same run again (a lease that died after keeping it, before its lineage) is replaced by what it recorded
    if kept is not None and kept["run"] != run.name and kept["frozen_mean"] >= ev["return_mean"]:
        return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    export_agent(src, dst, overwrite=True, dtype=cfg.state_dtype, extra_meta={"campaign_best": {
        "run": run.name, "arm": run.arm["name"], "seed": run.seed, "extra_seed": run.extra,
        "steps": ev["trained_steps"], "frozen_mean": ev["return_mean"], "frozen_games": ev["episodes"],
        "frozen_with": "the float32 weights of the run folder, before this export",
        "stored_frozen_mean": None if stored_ev is None else stored_ev["return_mean"],
        "stored_frozen_with": None if stored_ev is None else f"a {cfg.state_dtype} export of the same weights "
                                                            f"({stored_ev.get('checkpoint')}), on the same starts"}})
    print(f"{run.name}: kept as the best {run.arm['name']} run (frozen mean {ev['return_mean']:.0f}): {dst}", flush=True)
    return True


def drop_state(game: str, run: str, checkpoints: Path = CHECKPOINTS_DIR) -> None:
    path = state_path(game, run, checkpoints)
    path.unlink(missing_ok=True)
    state_sidecar(path).unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------- one run


def train_run(game: str, name: str, seconds: float, runs_dir: Path, device: str | None = None,
              results: Path = RESULTS_DIR, checkpoints: Path = CHECKPOINTS_DIR) -> dict:
    """One run's part of a lease, in its own process (``i2a-campaign run``): continue it by ``RESTART_RULE``
    for ``seconds`` of training; at its budget, play its final weights frozen (``<run>.eval.json``). Writes
    ``<run>.lease.json`` (where it started) beside the run folder for the lease to record."""
    from ..agents.a2c import train_agent
    from ..agents.checkpoint import CHECKPOINT, export_agent

    cfg = load_config(game, results)
    run = find_run(cfg, name)
    if run.arm["env_model"] and run.arm["env_model"] not in cfg.env_models:
        raise SsmlibError(f"{name}: its environment model {run.arm['env_model']} is not chosen yet")
    runs_dir = Path(runs_dir)
    folder = runs_dir / name
    for stale in (folder / "summary.json", runs_dir / f"{name}.eval.json", runs_dir / f"{name}.eval-stored.json"):
        stale.unlink(missing_ok=True)  # what the lease records must be this call's
    start = _starting_state(folder, read_lineage(game, name, results), state_path(game, name, checkpoints))
    atomic_write_json(runs_dir / f"{name}.lease.json", start)
    new = start["from"] == "new run"
    summary = train_agent(agent_config(cfg, run), folder, resume=not new, overwrite=new, device=device,
                          time_limit=seconds, progress=False)
    if summary["step"] >= cfg.total_steps:
        import signal

        from ..runs import TIME_UP

        # a lease's "time is up" (run_commands' stop_after) stops training, not the frozen games that finish
        # a run: the lease's outer bound still ends them, as before
        signal.signal(TIME_UP, signal.SIG_IGN)
        frozen_eval(folder / CHECKPOINT, cfg.eval_games, runs_dir / f"{name}.eval.json", device)
        if run.arm["name"] in cfg.keep_weights:  # the copy that would be kept, scored as stored, from the same starts
            export_agent(folder / CHECKPOINT, stored_copy_path(runs_dir, name), overwrite=True, dtype=cfg.state_dtype)
            frozen_eval(stored_copy_path(runs_dir, name), cfg.eval_games, runs_dir / f"{name}.eval-stored.json", device)
    return summary


def stored_copy_path(runs_dir: Path, name: str) -> Path:
    """Where a finishing run of a ``keep_weights`` arm has its final weights as they would be kept (scored there)."""
    return Path(runs_dir) / f"{name}.stored.safetensors"


def _starting_state(folder: Path, lineage: dict, committed: Path) -> dict:
    """Where the run continues (``RESTART_RULE``): its step, training wall time so far and from what."""
    from ..agents.checkpoint import CHECKPOINT, KIND
    from ..checkpoint import read_meta

    steps, own = lineage["steps"], folder / CHECKPOINT
    if steps == 0:
        return {"from": "new run", "start_step": 0, "start_wall_s": 0.0}
    if own.exists() and read_meta(own, kind=KIND)["step"] == steps:
        how = "the run folder's float32 checkpoint (a warm machine)"
    elif committed.exists():
        stored = restore_state(committed, own)["restored_from_state"]  # decompressed and verified once
        how = f"the committed {stored['dtype']} state" + (
            f" with {stored['average_bits']}-bit log-coded averages" if stored["average_bits"] else "")
    else:
        raise SsmlibError(f"{folder.name} has {steps:,} agent steps in its lineage but no committed state at "
                          f"{committed}: it cannot be continued")
    meta = read_meta(own, kind=KIND)
    if meta["step"] != steps:
        raise SsmlibError(f"{folder.name}: its state is at step {meta['step']:,}, its lineage at {steps:,}")
    return {"from": how, "start_step": steps, "start_wall_s": meta.get("wall_s", 0.0)}


def frozen_eval(checkpoint: Path, games: int, out: Path, device: str | None = None) -> dict:
    """An agent checkpoint's weights, frozen: one whole game in each of ``games`` envs (``agent eval``)."""
    from ..agents.checkpoint import evaluate_checkpoint

    evaluate_checkpoint(checkpoint, games, games, EVAL_SEED, 0, device, str(out), overwrite=True)
    return read_json(out)  # plain JSON types (numpy scalars converted), as the lineage stores them


# ---------------------------------------------------------------------------------------- a lease


REFILL_S = 60.0
"""A lease's runs that all ended with at least this many of its training seconds left (runs that reached their
budget, or ended early otherwise: none is picked twice in a lease) make room for the next picked runs, trained for
what is left: on 2026-12-05 05:01 model-free-s6 and -s7 finished 205 s into a 480 s window and the lane then stood
idle. Below it, a new run's start-up would take most of what is left: the three runs of the I2A-only call of
2026-12-05 05:38 ended 87-90 s after they started, having trained 59-62 s (its log and their lineages)."""


def lease(game: str, seconds: float, runs_dir: Path, max_runs: int = 2, device: str | None = None,
          results: Path = RESULTS_DIR, checkpoints: Path = CHECKPOINTS_DIR,
          state_budget_mib: float = STATE_BUDGET_MIB, stop_after: float | None = None,
          refill_s: float | None = REFILL_S) -> dict:
    """One lease: choose (and freeze) the environment models the rule can select, pick the runs, train them in
    parallel processes, record each as it ends, rewrite ``table.md``; returns ``{"picked", "trained", "runs",
    "notes"}`` (``runs``: each recorded run's new lineage entry). ``stop_after``: seconds after which runs still
    training are stopped as at their time limit (they save) and recorded. Rounds: when every run of a round has
    ended and at least ``refill_s`` of ``seconds`` (and of ``stop_after``) are left, the runs picked next (none
    picked earlier in this lease) train for what is left; None: one round."""
    cfg = load_config(game, results)
    blocked = env_models(cfg, results, checkpoints, freeze=True)
    runs_dir = Path(runs_dir)
    res: dict = {"picked": [], "trained": [], "runs": {}, "notes": []}
    t0 = time.monotonic()
    left, bound, rounds = seconds, stop_after, 1
    while True:
        for r in campaign_runs(cfg, extra=True):  # a finished run's state (an earlier lease's or round's)
            if read_lineage(game, r.name, results)["finished"]:
                drop_state(game, r.name, checkpoints)
        picked, notes = pick_runs(cfg, max_runs + len(res["picked"]), blocked, results, checkpoints,
                                  state_budget_mib)
        picked = [r for r in picked if r.name not in res["picked"]][:max_runs]  # a run at most once a lease
        for line in notes:
            if line not in res["notes"]:  # each round's new lines (e.g. a run the state budget holds back)
                res["notes"].append(line)
                print(line, flush=True)
        if not picked:
            if not res["picked"]:
                print("no run to train in this lease", flush=True)
            break
        if res["picked"]:
            print(f"{left:.0f} s of the lease's {seconds:.0f} left after every run ended: next "
                  f"{', '.join(r.name for r in picked)}", flush=True)
        _train_round(cfg, picked, left, runs_dir, device, results, checkpoints, bound, res, rounds)
        rounds += 1
        elapsed = time.monotonic() - t0
        left, bound = seconds - elapsed, None if stop_after is None else stop_after - elapsed
        if refill_s is None or min(left, bound if bound is not None else left) < refill_s:
            break
    write_table(game, results, checkpoints)
    return res


def _train_round(cfg: I2ACampaignConfig, picked: list, seconds: float, runs_dir: Path, device, results: Path,
                 checkpoints: Path, stop_after: float | None, res: dict, lease_round: int = 1) -> None:
    """One round of a lease: the picked runs in parallel processes for ``seconds`` each, each recorded as it
    ends (a lease cut short keeps what finished); adds to ``res``'s picked, trained and runs."""
    from .common import run_commands

    runs_dir.mkdir(parents=True, exist_ok=True)
    cmds = {r.name: run_command(cfg.game, r.name, seconds, runs_dir, device, results, checkpoints) for r in picked}
    res["picked"] += list(cmds)

    def record(name: str, code: int) -> None:
        row = _record(cfg, find_run(cfg, name), runs_dir, code, device, results, checkpoints, lease_round)
        if row is not None:
            res["trained"].append(name)
            res["runs"][name] = row

    t0 = time.perf_counter()
    codes = run_commands(cmds, runs_dir, on_exit=record, stop_after=stop_after)
    print(f"trained {', '.join(cmds)} in {time.perf_counter() - t0:.0f} s: exit codes {codes}", flush=True)


def run_command(game: str, name: str, seconds: float, runs_dir: Path, device: str | None, results: Path,
                checkpoints: Path) -> list[str]:
    """The ``python -m ssmlib i2a-campaign run`` command line of one run's part of a lease."""
    cmd = [sys.executable, "-m", "ssmlib", "i2a-campaign", "run", "--game", game, "--run", name, "--seconds",
           str(seconds), "--runs", str(runs_dir), "--results", str(results), "--checkpoints", str(checkpoints)]
    return cmd + (["--device", device] if device else [])


def _record(cfg: I2ACampaignConfig, run: Run, runs_dir: Path, code: int, device, results: Path,
            checkpoints: Path, lease_round: int = 1) -> dict | None:
    """Append the lease to the run's lineage and its new episodes to ``episodes.jsonl``; then keep its state
    (open) or store its frozen evaluation and delete its state (finished). ``lease_round``: the lease's round
    that trained it (stored when above 1: a later round trains only what the first left)."""
    folder, out = runs_dir / run.name, campaign_dir(cfg.game, results) / run.name
    summary, start = read_json(folder / "summary.json"), read_json(runs_dir / f"{run.name}.lease.json")
    if summary is None or start is None:
        print(f"{run.name}: no summary (exit {code}), lineage unchanged", flush=True)
        return None
    lin = read_lineage(cfg.game, run.name, results)
    begin, end = start["start_step"], summary["step"]
    new = [e for e in read_jsonl(folder / "episodes.jsonl") if begin < e["step"] <= end]
    _append_jsonl(out / EPISODES_FILE, new)
    sps = [m["steps_per_s"] for m in read_jsonl(folder / "metrics.jsonl") if begin < m["step"] <= end][1:]
    prov = provenance(device)
    lin["leases"].append({
        "lease": len(lin["leases"]) + 1, "git_sha": prov["git_sha"], "device": prov["device"], "time": prov["time"],
        "started_from": start["from"], "steps_start": begin, "steps_end": end,
        "train_wall_s": summary["wall_s"] - start["start_wall_s"], "status": summary["status"], "exit_code": code,
        "episodes": len(new), "steps_per_s_median": float(np.median(sps)) if sps else None,
        **({"lease_round": lease_round} if lease_round > 1 else {})})
    ev = read_json(runs_dir / f"{run.name}.eval.json")
    finished = end >= cfg.total_steps and ev is not None and ev.get("trained_steps") == end
    if finished:
        atomic_write_json(out / "eval.json", round_floats(ev))
        stored = read_json(runs_dir / f"{run.name}.eval-stored.json")
        if stored is not None and stored.get("trained_steps") == end:
            atomic_write_json(out / "eval-stored.json", round_floats(stored))
        if run.arm["name"] in cfg.keep_weights:
            try:  # a kept file that cannot be read must not cost the run its lineage
                keep_if_best(cfg, run, folder / "checkpoint.safetensors", ev, checkpoints,
                             stored if stored is not None and stored.get("trained_steps") == end else None)
            except (SsmlibError, OSError, KeyError, ValueError) as e:
                print(f"{run.name}: its weights were not kept: {e}", flush=True)
        drop_state(cfg.game, run.name, checkpoints)
        why = f"{end:,} agent steps (the budget); final weights frozen: mean {ev['return_mean']:.0f} over {ev['episodes']} games"
    else:
        meta = export_state(folder / "checkpoint.safetensors", state_path(cfg.game, run.name, checkpoints),
                            cfg.state_dtype, cfg.state_average_bits)
        lin["leases"][-1].update(state_raw_bytes=meta["raw_bytes"], state_stored_bytes=meta["stored_bytes"])
        why = (f"{end:,} of {cfg.total_steps:,} agent steps ({end / cfg.total_steps:.0%})" if end < cfg.total_steps
               else f"{end:,} agent steps (the budget); the frozen evaluation is still to run")
    lin.update(run=run.name, arm=run.arm["name"], seed=run.seed, steps=end, finished=finished, why=why,
               restart_rule=cfg.restart_rule)
    atomic_write_json(out / "lineage.json", lin)
    print(f"{run.name}: {'finished' if finished else 'open'}: {why}", flush=True)
    return lin["leases"][-1]


def _append_jsonl(path: Path, records: list[dict]) -> None:
    """Append ``records`` to a JSON-lines file (compact lines; gzip-compressed when its name ends in ``.gz``),
    the whole file replaced atomically."""
    write_text(path, "".join(json.dumps(r, separators=(",", ":"), sort_keys=True) + "\n"
                             for r in [*read_jsonl(path), *records]))


# ------------------------------------------------------------------------------------------ the table


def table(game: str, results: Path = RESULTS_DIR, checkpoints: Path = CHECKPOINTS_DIR) -> list[dict]:
    """One row per run: arm, seed, agent steps, leases, training minutes, last-100 training return, frozen
    evaluation, and its status against the fixed budget (or why its arm cannot start)."""
    from .i2a import score_at

    cfg = load_config(game, results)
    blocked = env_models(cfg, results, checkpoints)
    rows = []
    for r in campaign_runs(cfg, extra=True):
        lin = read_lineage(game, r.name, results)
        last100, n = score_at(read_jsonl(campaign_dir(game, results) / r.name / EPISODES_FILE), lin["steps"])
        ev = read_json(campaign_dir(game, results) / r.name / "eval.json", {})
        status = ("finished" if lin["finished"] else "open" if lin["leases"] else
                  "waiting" if r.arm["env_model"] in blocked else "not started")
        why = f"environment model {r.arm['env_model']}: {blocked[r.arm['env_model']]}" if status == "waiting" else lin["why"]
        rows.append({"run": r.name, "arm": r.arm["name"], "seed": r.seed, "required": r.arm["required"], "extra": r.extra,
                     "steps": lin["steps"], "budget": cfg.total_steps, "leases": len(lin["leases"]),
                     "train_minutes": sum(x["train_wall_s"] for x in lin["leases"]) / 60,
                     "last100": last100, "episodes": n, "eval_mean": ev.get("return_mean"), "status": status,
                     "why": why})
    return rows


def table_markdown(rows: list[dict]) -> str:
    """The campaign's table as markdown."""
    from .common import markdown_table

    def num(x, fmt="{:.0f}"):
        return "-" if x is None else fmt.format(x)

    return markdown_table(
        ["run", "arm", "seed", "agent steps", "of budget", "leases", "training min", "last-100 return",
         "frozen eval (mean)", "status"],
        ([r["run"], r["arm"] + ("" if r["required"] else " (optional)") + (" (extra seed)" if r.get("extra") else ""),
          r["seed"], f"{r['steps']:,}",
          f"{r['steps'] / r['budget']:.0%}", r["leases"], f"{r['train_minutes']:.1f}", num(r["last100"]),
          num(r["eval_mean"]), r["status"] if r["why"] in ("", r["status"]) else f"{r['status']}: {r['why']}"]
         for r in rows))


def write_table(game: str, results: Path = RESULTS_DIR, checkpoints: Path = CHECKPOINTS_DIR) -> Path:
    """``campaign/table.md``, rewritten from the lineages (after every lease and by ``i2a-campaign table``)."""
    path = campaign_dir(game, results) / "table.md"
    write_text(path, table_markdown(table(game, results, checkpoints)))
    return path


FRAMES_PER_AGENT_STEP = 4
"""Emulator frames per agent step: the agents' environments repeat each action 4 frames (``frameskip`` of
``ssmlib.agents.envs.make_agent_env``), the unit published learning curves count in."""


def model_free_sanity(game: str = "MsPacman", results: Path = RESULTS_DIR, n_boot: int = 2000) -> dict:
    """Our model-free runs against published model-free scores (``ssmlib.paper.MODEL_FREE_REFERENCES``): per run its
    frames and last-100 training return; per reference whether our score is consistent with it. Consistent means:
    not above a reference reached with at least as many frames (a learning curve that is still rising may sit
    anywhere below it; one above it would point at a bug, e.g. in how returns are counted). And a floor, which a
    broken agent fails: each finished run's frozen games against the random player's from the same starts
    (``random_floor``), the difference of their means with an episode-bootstrap 95% interval; above the floor
    means the interval's lower bound is above 0 (``floor``: None before the random player's games are stored)."""
    from ..paper import MODEL_FREE_REFERENCES
    from .i2a import score_at

    refs = MODEL_FREE_REFERENCES.get(game, {})
    cfg = load_config(game, results)
    runs = []
    for r in campaign_runs(cfg, extra=True):  # a report, not a verdict: the extra seeds too
        if r.arm["name"] != "model-free":
            continue
        lin = read_lineage(game, r.name, results)
        last100, _ = score_at(read_jsonl(campaign_dir(game, results) / r.name / EPISODES_FILE), lin["steps"])
        if lin["steps"] and last100 is not None:
            runs.append({"run": r.name, "frames": lin["steps"] * FRAMES_PER_AGENT_STEP, "last100": last100})
    checks = [{"reference": name, **ref, "run": x["run"], "consistent": not (x["frames"] <= ref["frames"]
                                                                          and x["last100"] > ref["score"])}
              for name, ref in refs.items() for x in runs]
    floor = _random_floor_checks(cfg, results, n_boot)
    return {"runs": runs, "references": refs, "checks": checks, "floor": floor,
            "consistent": all(c["consistent"] for c in checks) if checks else None,
            "above_floor": None if floor is None or not floor["runs"] else all(f["above"] for f in floor["runs"])}


def _random_floor_checks(cfg: I2ACampaignConfig, results: Path, n_boot: int) -> dict | None:
    from ..stats import bootstrap
    from .i2a import games_table

    rnd = read_json(campaign_dir(cfg.game, results) / RANDOM_FLOOR_FILE)
    if rnd is None:
        return None
    out, random_games = [], games_table(rnd["returns"])
    for r, ev in finished_evals(cfg, results):
        if r.arm["name"] != "model-free":
            continue
        # game i of the run and of the random player start alike (the claims' pairing of two arms)
        iv = bootstrap({"run": games_table(ev["returns"]), "random": random_games},
                       lambda m: m["run"]["return"] - m["random"]["return"], n_boot=n_boot, seed=0)
        out.append({"run": r.name, "frozen_mean": float(np.mean(ev["returns"])), "difference": iv.point,
                    "ci": [iv.lo, iv.hi], "above": iv.lo > 0})
    return {"random_mean": float(np.mean(rnd["returns"])), "random_games": len(rnd["returns"]), "runs": out}


RANDOM_FLOOR_FILE = "random-eval.json"
"""The random player's frozen games (``random_floor``), in the campaign's folder: the floor of the sanity check."""


def random_floor(game: str = "MsPacman", results: Path = RESULTS_DIR, device: str = "cpu", env_threads: int = 0
                 ) -> dict:
    """Play the random player (``agents.evaluation.UniformPolicy``) exactly as a finished run's weights are played
    (one whole game in each of ``eval_games`` envs from the same starts, ``EVAL_SEED``, the design's frame size,
    sticky actions and no-op starts) and write ``campaign/random-eval.json`` with provenance."""
    from ..agents.envs import make_agent_env
    from ..agents.evaluation import UniformPolicy, evaluate_agent

    cfg = load_config(game, results)
    hp = cfg.hyper_parameters
    env = make_agent_env(game, cfg.eval_games, hp["height"], hp["width"], sticky_actions=hp["sticky_actions"],
                         noop_max=hp["noop_max"], num_threads=env_threads)
    try:
        res = evaluate_agent(UniformPolicy(int(env.single_action_space.n)), env, cfg.eval_games, seed=EVAL_SEED,
                             device=device, amp=False)
    finally:
        env.close()
    res.update(policy="uniform random over the game's actions", provenance=provenance(device))
    atomic_write_json(campaign_dir(game, results) / RANDOM_FLOOR_FILE, round_floats(res))
    return res


COST_BENCH_FILE = "cost-bench-{device}.json"
"""``agent bench``'s output for the cost target, stored in the campaign's folder (one per device kind)."""


def imagination_cost(bench: dict, target: float, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> list[dict]:
    """Per variant of one ``agent bench`` run, its wall time per agent step over model-free's: the ratio of their
    median steps/s over the logged intervals after the first, with a percentile bootstrap interval over those
    intervals (each variant's resampled on its own; consecutive intervals of one run, so the interval covers the
    run's step-to-step variation, not another machine's). Verdict for the I2A variants (``i2a-*``): ``met`` when the
    whole interval is at most ``target``, ``missed`` when none of it is, else ``inconclusive``; other variants
    (the copy agent) are reported without one. ``stopped_early``: the variant's loop did not reach its time limit
    (a signal stopped it, e.g. the bench's own outer bound), so fewer intervals than asked back its number."""
    from ..stats import Interval, decide

    variants = bench["variants"]
    if "model-free" not in variants:
        raise SsmlibError("the bench has no model-free run to compare with: run agent bench with model-free among "
                          "its --variants")
    rng = np.random.default_rng(seed)

    def medians(v: str) -> np.ndarray:
        x = np.asarray(variants[v].get("steps_per_s_intervals") or [], np.float64)
        if len(x) < 2:
            raise SsmlibError(f"bench variant {v} logged {len(x)} intervals after the first; the cost's interval "
                              "needs 2 or more: run agent bench with more --seconds")
        return np.median(x[rng.integers(0, len(x), (n_boot, len(x)))], axis=1)

    mf = medians("model-free")
    q = (1 - level) / 2
    rows = []
    for v, rec in variants.items():
        if v == "model-free":
            continue
        ratio = mf / medians(v)  # (1 / steps/s of v) / (1 / steps/s of model-free)
        point = variants["model-free"]["steps_per_s"] / rec["steps_per_s"]
        lo, hi = np.quantile(ratio, [q, 1 - q])
        iv = Interval(float(point), float(lo), float(hi), level, n_boot)
        verdict = {"reproduced": "met", "not reproduced": "missed"}.get(decide(iv, target, "below"), "inconclusive") \
            if v.startswith("i2a-") else None
        # files from before the bench kept its status: a loop shorter than asked shows in its wall time
        stopped_early = rec.get("status", "time-limit") != "time-limit" or rec.get("wall_s", 1e9) < bench["seconds_each"]
        rows.append({"variant": v, "steps_per_s": rec["steps_per_s"], "cost": point, "lo": iv.lo, "hi": iv.hi,
                     "target": target, "verdict": verdict, "intervals": len(rec["steps_per_s_intervals"]),
                     "stopped_early": stopped_early})
    return rows


def plot_training_curves(ax, game: str = "MsPacman", arms=("model-free",), results: Path = RESULTS_DIR,
                         colour=None, references: bool = True):
    """Running mean of the last 100 training returns against emulator frames, one line per run of ``arms``
    (seeds share their arm's colour), with the published model-free references as labelled points."""
    from .i2a import curve

    cfg = load_config(game, results)
    for i, arm in enumerate(arms):
        col = colour(arm) if colour else f"C{i}"
        for r in campaign_runs(cfg, extra=True):
            if r.arm["name"] != arm:
                continue
            steps, means = curve(read_jsonl(campaign_dir(game, results) / r.name / EPISODES_FILE))
            if steps:
                ax.plot(np.asarray(steps) * FRAMES_PER_AGENT_STEP, means, color=col, lw=1,
                        label=arm if r.seed == 0 else None)
    if references:
        from ..paper import MODEL_FREE_REFERENCES

        for name, ref in MODEL_FREE_REFERENCES.get(game, {}).items():
            ax.plot(ref["frames"], ref["score"], "k*", ms=9)
            ax.annotate(f"{name} (published)", (ref["frames"], ref["score"]), textcoords="offset points",
                        xytext=(-10, 6), ha="right", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("emulator frames")
    ax.set_ylabel("mean return of the last 100 games")
    ax.set_title(f"{game}: the I2A campaign's training curves")
    ax.legend(fontsize=8)
    return ax


def _cli_lease(args) -> int:
    res = lease(args.game, args.seconds, Path(args.runs), args.max_runs, args.device,
                state_budget_mib=args.state_budget_mib, stop_after=args.stop_after,
                refill_s=args.refill_s if args.refill_s > 0 else None)
    return 1 if res["picked"] and not res["trained"] else 0  # runs started but none recorded: say so


def _cli_table(args) -> int:
    print(f"wrote {write_table(args.game)}")
    for r in table(args.game):
        ret = "-" if r["last100"] is None else f"{r['last100']:.0f}"
        print(f"{r['run']:<24} {r['steps']:>10,} steps  {r['leases']} leases  last-100 {ret:>5}  {r['status']}: {r['why']}")
    return 0


def _cli_run(args) -> int:
    s = train_run(args.game, args.run, args.seconds, Path(args.runs), args.device, Path(args.results),
                  Path(args.checkpoints))
    print(json.dumps({k: s[k] for k in ("status", "step", "wall_s", "return_mean_100")}))
    return 0


def _add_runner_cli(sub) -> None:
    le = sub.add_parser("lease", help="train the unfinished runs for --seconds each, record them, rewrite the table")
    le.add_argument("--game", default="MsPacman")
    le.add_argument("--seconds", type=float, default=240.0, help="training seconds per run in this lease")
    le.add_argument("--runs", default="runs/i2a_campaign", help="where the run folders live on this machine")
    le.add_argument("--max-runs", type=int, default=2, help="runs trained at once (one process each)")
    le.add_argument("--state-budget-mib", type=float, default=STATE_BUDGET_MIB,
                    help="the committed (compressed) state of the open runs at most this, in MiB on disk; a run "
                         "without state counts at its raw size times the largest stored/raw ratio measured (stored_ratio); "
                         "a new run waits otherwise")
    le.add_argument("--stop-after", type=float, default=None, help=STOP_AFTER_HELP)
    le.add_argument("--refill-s", type=float, default=REFILL_S,
                    help="when every run has ended with at least this many of --seconds (and --stop-after) left, "
                         "train the runs picked next for what is left (0: one round)")
    le.add_argument("--device", default=None)
    le.set_defaults(func=_cli_lease)
    t = sub.add_parser("table", help="where every run stands (writes campaign/table.md)")
    t.add_argument("--game", default="MsPacman")
    t.set_defaults(func=_cli_table)
    r = sub.add_parser("run", help="one run's part of a lease (started by lease, one process per run)")
    r.add_argument("--game", default="MsPacman")
    r.add_argument("--run", required=True)
    r.add_argument("--seconds", type=float, required=True)
    r.add_argument("--runs", required=True)
    r.add_argument("--results", default=str(RESULTS_DIR))
    r.add_argument("--checkpoints", default=str(CHECKPOINTS_DIR))
    r.add_argument("--device", default=None)
    r.set_defaults(func=_cli_run)


def _cli_init(args) -> None:
    cfg = design(args.game, seeds=args.seeds, total_steps=args.total_steps)
    print(f"wrote {init(cfg)}")
    print(format_power(cfg.power_statement))


def _cli_power(args) -> None:
    print(format_power(power_statement(pilot_seed_scores(args.game), args.seeds)))


def _cli_random_floor(args) -> None:
    res = random_floor(args.game, device=args.device, env_threads=args.env_threads)
    print(f"random player: mean {res['return_mean']:.0f} over {res['episodes']} games in {res['wall_s']:.0f} s: "
          f"wrote {campaign_dir(args.game) / RANDOM_FLOOR_FILE}")


def _cli_amend_extra(args) -> None:
    extra = None if args.extra is None else {}
    for item in args.extra or []:
        arm, _, n = item.partition("=")
        if not n.isdigit():
            raise SsmlibError(f"--extra {item}: write ARM=N, e.g. model-free=6")
        extra[arm] = int(n)
    print(f"wrote {amend_extra_seeds(args.game, extra, args.keep, args.why)}")


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("i2a-campaign", help="the I2A campaign (claims 4 and 5): init, power, lease, table")
    sub = p.add_subparsers(dest="i2a_campaign_cmd", required=True)
    i = sub.add_parser("init", help="write results/i2a/<game>/campaign/config.json once")
    i.add_argument("--game", default="MsPacman")
    i.add_argument("--seeds", type=int, default=I2ACampaignConfig.seeds)
    i.add_argument("--total-steps", type=int, default=I2ACampaignConfig.total_steps)
    i.set_defaults(func=_cli_init)
    w = sub.add_parser("power", help="what a number of seeds per arm can detect, from the pilot study")
    w.add_argument("--game", default="MsPacman")
    w.add_argument("--seeds", type=int, default=I2ACampaignConfig.seeds)
    w.set_defaults(func=_cli_power)
    x = sub.add_parser("amend-extra", help="seeds beyond the design's (read by no verdict) and the arms that keep "
                       "their best run's weights, on the record")
    x.add_argument("--game", default="MsPacman")
    x.add_argument("--extra", nargs="*", default=None, metavar="ARM=N",
                   help="N extra seeds of ARM (the whole list; --extra alone: none); left out: unchanged")
    x.add_argument("--keep", nargs="*", default=None, metavar="ARM",
                   help="arms whose best finished run keeps its weights (the whole list; --keep alone: none); left out: unchanged")
    add_why_argument(x)
    x.set_defaults(func=_cli_amend_extra)
    f = sub.add_parser("random-floor", help="the random player's frozen games, as a finished run's are played: the "
                       "sanity check's floor (campaign/random-eval.json)")
    f.add_argument("--game", default="MsPacman")
    f.add_argument("--device", default="cpu")
    f.add_argument("--env-threads", type=int, default=0, help="emulator threads (0: one per core)")
    f.set_defaults(func=_cli_random_floor)
    _add_runner_cli(sub)

