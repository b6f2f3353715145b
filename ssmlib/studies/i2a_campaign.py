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
* the **rules** of claims 4 and 5 (``ssmlib.claims.RULES``) and a **power statement**: the pooled
  between-seed standard deviation of the I2A pilot study's frozen scores, and the difference that
  ``seeds`` seeds per arm detect (two-sided 5%, power 80%; ``ssmlib.stats.detectable_difference``);
* the **cost target**: every I2A arm at most ``cost_target`` times model-free's wall time per agent step,
  measured alone in one run (``agent bench``).

``python -m ssmlib i2a-campaign power`` prints the power statement for other seed counts.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..config import RESULTS_DIR
from ..errors import SsmlibError
from ..io import read_study_config, write_study_config
from ..stats import detectable_difference, pooled_sd, seeds_needed


@dataclass(frozen=True)
class Arm:
    """One arm of the campaign: runs ``<name>-s<seed>``."""

    name: str
    """Run-folder prefix."""
    variant: str
    """The I2A study's variant (``ssmlib.agents.study.VARIANTS``): agent and rollout policy."""
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

ENV_MODEL_RULE = ("Per environment model, the model-zoo campaign's seed with the lowest open-loop test excess "
                  "(results/model_zoo/<game>/campaign/<run>/lineage.json, last curve point) among its runs "
                  "that have met the stop rule; chosen once, at the campaign's first lease, and frozen: its "
                  "path and sha256 are written into this config then.")
MEASURES = ("area under the learning curve (mean training return over agent steps, by the trapezoid rule, "
            "divided by the budget)", "last-100 training return at the budget",
            "frozen final weights: one whole game in each of eval_games envs")
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
    measures: tuple = MEASURES
    """What is reported per arm."""
    rules: dict = field(default_factory=dict)
    """The rules of claims 4 and 5 (``ssmlib.claims.RULES``) as they stood when the design was written."""
    power_statement: dict = field(default_factory=dict)
    """From the pilot study: the between-seed spread and what ``seeds`` seeds per arm can detect."""


def campaign_dir(game: str, results: Path = RESULTS_DIR) -> Path:
    return Path(results) / "i2a" / game / "campaign"


def pilot_seed_scores(game: str = "MsPacman", results: Path = RESULTS_DIR) -> dict[str, list[float]]:
    """Per pilot variant, each seed's mean frozen score (``ssmlib.claims.agent_tables``)."""
    from ..claims import agent_tables

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


def design(game: str = "MsPacman", results: Path = RESULTS_DIR, **overrides) -> I2ACampaignConfig:
    """The config ``init`` writes: arms, shared hyper-parameters, rules and the pilot's power statement."""
    from ..agents.config import agent_profile
    from ..claims import RULES

    cfg = I2ACampaignConfig(game=game, **overrides)
    if cfg.seeds < 2 or cfg.total_steps < 1 or cfg.eval_games < 1:
        raise SsmlibError("seeds >= 2, total_steps >= 1 and eval_games >= 1 are required")
    cfg.arms = json.loads(json.dumps([dataclasses.asdict(a) for a in ARMS]))  # as stored: lists, not tuples
    hp = dataclasses.asdict(agent_profile(cfg.profile))
    for varies in ("agent", "rollout_policy", "env_model", "seed", "total_steps"):
        hp.pop(varies, None)
    cfg.hyper_parameters = {**hp, "game": game}
    cfg.rules = {"4": RULES["4"], "5": RULES["5"]}
    statement = power_statement(pilot_seed_scores(game, results), cfg.seeds, cfg.alpha, cfg.power)
    cfg.power_statement = {**statement, "from": PILOT_NOTE.replace("<game>", game)}
    return cfg


def run_names(cfg: I2ACampaignConfig, required_only: bool = False) -> list[str]:
    """Every run of the campaign, arm by arm (required arms first), seed by seed."""
    return [f"{a['name']}-s{s}" for a in cfg.arms if a["required"] or not required_only for s in range(cfg.seeds)]


def init(cfg: I2ACampaignConfig, results: Path = RESULTS_DIR) -> Path:
    """Write the design (refused if one exists: the rules and seeds are fixed before the numbers)."""
    return write_study_config(campaign_dir(cfg.game, results) / "config.json", dataclasses.asdict(cfg),
                              "the I2A campaign's design is fixed once written")


def load_config(game: str = "MsPacman", results: Path = RESULTS_DIR) -> I2ACampaignConfig:
    d = read_study_config(campaign_dir(game, results) / "config.json",
                          f"no I2A campaign for {game}; write its design with: python -m ssmlib i2a-campaign init "
                          f"--game {game}")
    d["measures"] = tuple(d.get("measures", MEASURES))
    return I2ACampaignConfig(**d)


def format_power(statement: dict) -> str:
    s = statement
    need = ", ".join(f"{d} points: {n} seeds" for d, n in s["seeds_needed"].items())
    return (f"between-seed SD {s['sd_between_seeds']:.0f} points (pooled, {s['df']} df); with {s['seeds_per_arm']} "
            f"seeds per arm a difference of {s['detectable_difference']:.0f} points is detected "
            f"(two-sided {s['alpha']:.0%}, power {s['power']:.0%}); per arm for {need}")


def _cli_init(args) -> None:
    cfg = design(args.game, seeds=args.seeds, total_steps=args.total_steps)
    print(f"wrote {init(cfg)}")
    print(format_power(cfg.power_statement))


def _cli_power(args) -> None:
    print(format_power(power_statement(pilot_seed_scores(args.game), args.seeds)))


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("i2a-campaign", help="the I2A campaign's design (claims 4 and 5)")
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

