"""Configs for every command, as dataclasses whose fields carry one-line docstrings (CleanRL style).

One config system (issue #16): every dataclass's defaults ARE the ``paper`` profile (GPU, the paper's
sizes: 200x160 RGB frames, a 25x20x64 state); where the paper is silent the value is ours and the field's
docstring says so. Every other profile is a table of overrides keyed ``section.field`` (:data:`QUICK`:
CPU, tiny frames and models, seconds to minutes: CI and the live cells of the book), applied by
:func:`apply_sets`, the same function that applies ``--set key=value``. ``python -m ssmlib config
--profile quick`` marks the values the table sets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import SsmlibError

CONTEXT = 3
"""Real frames that build the initial state (the paper uses 3): every model, window and study reads it here."""

# The five environment models of the paper, in the book's reading order.
MODEL_NAMES = ("AR", "RAR", "dSSM-DET", "dSSM-VAE", "sSSM")
SAMPLING_MODELS = ("dSSM-VAE", "sSSM")
"""The models that imagine by sampling (``model.stochastic``): their open-loop likelihood is an estimate over prior
samples (``ssmlib.studies.open_loop_samples``); the others imagine one future and score it exactly."""


def run_name(model: str, k: int) -> str:
    """The name of ``model`` at jump ``k``: its run (and results) folder in the jumpy study, and its colour's key
    in ``ssmlib.book``."""
    return f"{model}-k{k}"


def jump_name(model: str, k: int) -> str:
    """``model`` itself at jump 1, else :func:`run_name`: how a model at jump ``k`` is named (and coloured) in the
    book's tables and figures."""
    return model if k == 1 else run_name(model, k)


@dataclass
class DataConfig:
    """How frames are collected from the ALE and stored."""

    game: str = "MsPacman"
    """ALE game by short name (MsPacman, Bowling, Centipede, Surround, ... any ALE ROM)."""
    height: int = 200
    """Frame height after preprocessing (paper: 200); a multiple of 8 (the state is 1/8 of the frame)."""
    width: int = 160
    """Frame width after preprocessing (paper: 160); a multiple of 8."""
    frameskip: int = 4
    """Emulator frames per agent step, as ALE v5."""
    sticky_actions: float = 0.25
    """Probability that the emulator repeats the previous action (ALE v5's default)."""
    num_envs: int = 64
    """Environments stepped together by the vector env (C++ threads in ale-py) (ours)."""
    steps_per_shard: int = 1000
    """Agent steps per environment in one shard; a shard is the unit of resume and checksum (ours)."""
    mean_action_repeat: float = 4.0
    """Random policy: mean number of consecutive steps one sampled action is held (geometric) (ours)."""
    test_fraction: float = 0.1
    """Fraction of episodes held out for evaluation, chosen by a hash of (seed, episode id) (ours)."""
    max_episode_steps: int = 27_000
    """Agent steps before an episode is truncated (108k emulator frames, as ALE v5)."""
    seed: int = 0
    """Base seed (ours); shard i is collected from seed (seed, i), so a resumed run equals an uninterrupted one."""


REWARD_STATES = ("posterior", "prior")
"""``ModelConfig.reward_state`` values: the state the reward head learns from in training (its docstring)."""


@dataclass
class ModelConfig:
    """Sizes of an environment model; channel counts follow the paper's captions, times ``width``."""

    model: str = "sSSM"
    """Which model: one of AR, RAR, dSSM-DET, dSSM-VAE, sSSM."""
    height: int = 200
    """Frame height the model reads and writes (from the data manifest; paper: 200)."""
    width: int = 160
    """Frame width the model reads and writes (from the data manifest; paper: 160)."""
    num_actions: int = 9
    """Size of the game's action set (from the data manifest)."""
    channel_scale: float = 1.0
    """Multiplier on every channel count of the paper's blocks (paper 1.0, quick 0.5)."""
    state_channels: int = 64
    """Channels of the state map s_t (paper: 64), before channel_scale."""
    z_channels: int = 32
    """Channels of the latent map z_t (paper: not stated; ours), before channel_scale."""
    min_std: float = 0.01
    """Floor added to softplus standard deviations of prior and posterior (ours)."""
    reward_head: str = "categorical"
    """Reward head: ``categorical`` over the game's reward values (ours, default), ``categorical-action``
    (the same, reading the state and the action that led to it; ours, an experiment: results/reward_head/)
    or ``bits`` (the paper caption's Bernoulli bits of floor(r): the committed checkpoints before the campaign)."""
    reward_state: str = "posterior"
    """Which state the reward head learns from in training (ours). ``posterior``: s_t as the ELBO has it,
    built with the posterior's z_t, which saw the real o_t. In the sSSM z_t feeds s_t, and o_t shows the
    score change, so the head can learn to read the reward off the frame: the campaign's jumpy sSSMs reached
    a teacher-forced reward NLL of 0.006-0.013 nats against 2.5-5.3 open-loop (results/model_zoo/MsPacman/
    campaign/). ``prior``: s_t = g(s_{t-1}, mean of p(z_t | s_{t-1}, a_{t-1}), a_{t-1}), the state an
    imagined step builds from s_{t-1}, so the reward is learned where it is used (its gradient then also
    reaches the prior's mean and the transition). Changes the sSSM only (the other models' s_t never sees o_t)."""
    reward_values: tuple = ()
    """Values of the categorical reward head; empty: taken from the training data by ``train``."""
    reward_classes: int = 8
    """At most this many reward values (0 and the most frequent others) when taken from the data (ours)."""
    reward_class_weights: tuple = ()
    """The loss weights the categorical head was trained with (set by ``train`` from the data). The
    class-weighted cross-entropy's optimum is p_w(c|s) = w_c p(c|s) / sum_c' w_c' p(c'|s), so every
    reading of the head divides them out again (calibrated probabilities: ours). Empty: read as trained."""
    reward_bits: int = 12
    """Bits of |floor(r)| predicted by the ``bits`` reward head (plus one sign bit) (ours)."""
    ar_frames: int = 3
    """Frames the AR model conditions on at every step (same as the SSM's 3-frame context) (ours)."""
    jump: int = 1
    """Environment steps per model transition (jumpy models, k > 1; the paper's k are unknown, ours are 1, 2, 4)."""


@dataclass
class TrainConfig:
    """The training loop shared by every model."""

    context: int = CONTEXT
    """Real frames that build the initial state (the paper uses 3)."""
    horizon: int = 10
    """Future frames predicted per training window (the paper trains 10 steps ahead)."""
    batch_size: int = 256
    """Windows per optimiser step, per GPU (ours: eager on an H200 batch 256 trains at 3.9x batch 32's
    frames/s; at 100 s of equal wall-clock it was NOT yet better than batch 32, still inside its
    warm-up: results/speed/engine/)."""
    steps: int = 20_000
    """Optimiser steps (ours)."""
    lr: float = 1.4e-3
    """AdamW learning rate (ours: the paper's optimiser is unknown): 5e-4 at batch 32, scaled by the
    square-root rule to batch 256, 5e-4 * sqrt(256 / 32) = 1.4e-3, after ``lr_warmup_steps``."""
    weight_decay: float = 1e-5
    """AdamW weight decay (ours)."""
    grad_clip: float = 1.0
    """Global gradient-norm clip (ours)."""
    kl_warmup_steps: int = 1000
    """Linear warm-up of the KL weight from 0 to 1 (ours; reported in the book)."""
    lr_warmup_steps: int = 1000
    """Linear warm-up of the learning rate over the first steps of every run (ours: without it, sSSM at
    batch 256 / lr 1.4e-3 gave a non-finite step at step 4 on an H200; a fresh AdamW's first updates are
    sign-sized, lr per parameter, whatever the gradient's scale). Runs started from weights warm up too."""
    reward_weight: float = 100.0
    """Weight of the class-weighted reward cross-entropy in the loss (ours: at 1 it is ~1e-5 of the loss
    and its gradient vanishes under clipping; 100 makes the state carry reward)."""
    kl_balance: float = 0.8
    """KL balancing (ours, after DreamerV2): the share of the KL gradient that trains the prior
    (``a KL(sg(q)||p) + (1-a) KL(q||sg(p))``); 0.5 is the plain KL. Its value is the KL either way."""
    kl_free_nats: float = 4.0
    """Free nats per frame (ours): no KL gradient on a frame whose KL is below this, so the posterior
    is not pushed into disuse early; the reported KL and ELBO are the true ones."""
    channels_last: bool = True
    """channels_last memory format for the model on CUDA (faster convolutions with bf16) (ours)."""
    check_every: int = 0
    """CUDA: steps between host reads of the non-finite flag (0: at every log line). A non-finite step
    is always skipped on the device (fused AdamW's found_inf), so no host sync is needed per step."""
    log_every: int = 50
    """Steps between metric lines in metrics.jsonl (ours)."""
    eval_every: int = 1000
    """Steps between test-set evaluations during training (ours)."""
    ckpt_every: int = 1000
    """Steps between checkpoints (ours)."""
    amp: bool = True
    """bf16 autocast on CUDA (ignored on CPU) (ours)."""
    compile: bool = False
    """torch.compile of the convolutional pass on CUDA (ignored on CPU). Off by default: on an H200 with
    torch 2.11 the compiled step's gradient was not finite while the eager one was (results/speed/engine/),
    and every run paid for the failed compilation before the guard fell back to eager."""
    seed: int = 0
    """Seed of parameters and window sampling (ours)."""


AGENTS = ("model-free", "i2a", "copy")
"""The agents of ``AgentConfig.agent`` (``ssmlib.agents.networks`` builds them)."""
ROLLOUT_POLICIES = ("uniform", "distill", "learned")
"""The rollout policies of ``AgentConfig.rollout_policy`` (I2A's imagination)."""


@dataclass
class AgentConfig:
    """An actor-critic run: which agent, its environment, and A2C's settings."""

    agent: str = "i2a"
    """Which agent: model-free, i2a, or copy (I2A whose model returns its input)."""
    rollout_policy: str = "distill"
    """I2A's rollout policy: uniform, distill, or learned (learning to query by backprop)."""
    env_model: str = "auto"
    """Checkpoint of the frozen environment model inside I2A / copy (ignored by model-free); ``auto``:
    the committed ``checkpoints/<game>/dSSM-DET.safetensors`` of ``game`` (refused if there is none)."""
    game: str = "MsPacman"
    """ALE game by short name."""
    height: int = 200
    """Frame height the agent sees (must equal the environment model's)."""
    width: int = 160
    """Frame width the agent sees."""
    num_envs: int = 64
    """Environments stepped together."""
    num_steps: int = 5
    """Steps per environment between updates (A2C's n)."""
    total_steps: int = 10_000_000
    """Agent steps (x4 emulator frames) over all environments."""
    lr: float = 7e-4
    """RMSprop learning rate (A2C's usual)."""
    gamma: float = 0.99
    """Discount."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    ent_coef: float = 0.01
    """Entropy bonus weight."""
    vf_coef: float = 0.5
    """Value loss weight."""
    distill_coef: float = 1.0
    """Weight of the distillation cross-entropy (distill rollout policy only) [ours]."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""
    rollout_depth: int = 3
    """Imagined steps per rollout (I2A; the paper's range is a few steps)."""
    gumbel_tau: float = 1.0
    """Temperature of the straight-through Gumbel-softmax (learned rollout policy)."""
    mf_pool: int = 2
    """Average-pool factor of the frames before the model-free CNN (ours: 2 at 200x160, 100x80 inputs)."""
    hidden: int = 256
    """Units of the model-free path (ours: half of Mnih et al.'s 512 keeps agent checkpoints small)."""
    lstm: int = 256
    """LSTM units of the rollout encoder."""
    sticky_actions: float = 0.25
    """ALE v5 sticky actions."""
    noop_max: int = 30
    """Random no-ops at the start of each episode."""
    amp: bool = True
    """bf16 autocast on CUDA."""
    env_threads: int = 0
    """Emulator threads (0: one per env up to the CPU count)."""
    seed: int = 0
    """Seed of parameters, environments and sampling."""
    log_every: int = 20
    """Updates between metric lines."""
    ckpt_every: float = 120.0
    """Seconds between checkpoints."""


SECTIONS = ("data", "model", "train", "agent")
"""The config sections, in the order a run uses them; ``section.field`` names one setting everywhere
(the override tables, ``--set``, ``python -m ssmlib config``). ``agent`` is :class:`AgentConfig`."""

QUICK: dict[str, object] = {
    # CPU-sized frames and models
    "data.height": 80, "data.width": 64, "data.num_envs": 4,
    "model.height": 80, "model.width": 64, "model.channel_scale": 0.5, "model.z_channels": 16,
    # a few hundred steps, logged, evaluated and checkpointed often enough to see something
    "train.horizon": 5, "train.batch_size": 8, "train.steps": 200, "train.lr": 1e-3,
    "train.kl_warmup_steps": 50, "train.lr_warmup_steps": 0,
    "train.log_every": 10, "train.eval_every": 100, "train.ckpt_every": 100,
    # a small agent without an environment model unless one is given
    "agent.env_model": "", "agent.height": 80, "agent.width": 64, "agent.num_envs": 8, "agent.total_steps": 400,
    "agent.rollout_depth": 2, "agent.mf_pool": 1, "agent.hidden": 128, "agent.lstm": 64, "agent.log_every": 5,
}
"""The ``quick`` profile (CPU, seconds to minutes: CI and the live cells of the book): what it changes
from the paper's defaults, ``section.field -> value``."""

PROFILE_SETS: dict[str, dict[str, object]] = {"quick": QUICK, "paper": {}}
"""Every profile as its overrides of the dataclasses' defaults (``paper``: none)."""

PROFILES = tuple(PROFILE_SETS)
"""The profile names, from the table (``quick`` first: what CI, the book and most commands default to)."""


def _check_keys(sets: Mapping[str, object], where: str) -> None:
    for key in sets:
        if "." not in key or key.split(".", 1)[0] not in SECTIONS:
            raise SsmlibError(f"{where} {key!r}: expected section.field, section one of {', '.join(SECTIONS)}")


for _name, _sets in PROFILE_SETS.items():
    _check_keys(_sets, f"profile {_name}:")


def profile_sets(name: str, section: str | None = None) -> dict[str, object]:
    """Profile ``name``'s overrides: all of them (``section.field -> value``), or one section's
    (``field -> value``)."""
    if name not in PROFILE_SETS:
        raise SsmlibError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    sets = PROFILE_SETS[name]
    if section is None:
        return dict(sets)
    return {k.split(".", 1)[1]: v for k, v in sets.items() if k.split(".", 1)[0] == section}


def apply_sets(cfg, sets: Mapping[str, object], *, source: str = "--set "):
    """A copy of config dataclass ``cfg`` with ``sets`` (``field -> value``) applied: the one code path of
    a profile's override table and of ``--set key=value``. A string value is coerced to the field's type
    (``coerce``); any other must have that type (an int is taken for a float). An unknown field or a value
    of another type is refused in one line that starts with ``source`` and the key."""
    fields = {f.name for f in dataclasses.fields(cfg)}
    changes = {}
    for key, value in sets.items():
        if key not in fields:
            import difflib

            close = difflib.get_close_matches(key, sorted(fields), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise SsmlibError(f"{source}{key}: no such {type(cfg).__name__} field{hint}")
        default = getattr(cfg, key)
        value = coerce(value, default, key)
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, type(default)) or isinstance(value, bool) != isinstance(default, bool):
            raise SsmlibError(f"{source}{key}={value!r}: expected a {type(default).__name__}")
        changes[key] = value
    return dataclasses.replace(cfg, **changes)


def profile_config(name: str, section: str, cls):
    """Section ``section`` of profile ``name``: ``cls()`` (the paper's values) with the profile's overrides."""
    return apply_sets(cls(), profile_sets(name, section), source=f"profile {name}: {section}.")


@dataclass
class Profile:
    """One named bundle of configs (built by :func:`get_profile`; a field left out is the paper's)."""

    name: str
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def get_profile(name: str) -> Profile:
    """Profile ``name`` (``quick``: CPU; ``paper``: GPU, the defaults), freshly built so callers may edit it."""
    return Profile(name=name, data=profile_config(name, "data", DataConfig),
                   model=profile_config(name, "model", ModelConfig), train=profile_config(name, "train", TrainConfig))


def agent_profile(name: str) -> AgentConfig:
    """``quick`` (CPU, 80x64 frames, 8 envs, a few hundred steps) or ``paper`` (GPU, 200x160, 64 envs: the
    defaults): ``AgentConfig()`` with the profile's ``agent.`` overrides."""
    return profile_config(name, "agent", AgentConfig)


def to_dict(cfg) -> dict:
    """A JSON-ready dict of a config dataclass."""
    return dataclasses.asdict(cfg)


def from_dict(cls, d: dict):
    """Build config ``cls`` from a dict, refusing unknown keys with one clear line."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise SsmlibError(f"unknown {cls.__name__} fields: {', '.join(unknown)}")
    return cls(**d)


# Where things live in a checkout: results/ is committed (GPU studies with provenance), runs/ is not
# (quick runs of the book, datasets, scratch checkpoints).
from pathlib import Path as _Path  # noqa: E402

REPO_ROOT = _Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "results"
RUNS_DIR = REPO_ROOT / "runs"
CHECKPOINTS_DIR = REPO_ROOT / "checkpoints"


def book_profile() -> str:
    """The profile notebooks run at: $SSMLIB_PROFILE (``quick`` in CI and ``make book``)."""
    import os

    name = os.environ.get("SSMLIB_PROFILE", "quick")
    get_profile(name)  # validate
    return name


def field_docs(cls) -> dict[str, str]:
    """Each field's docstring (the string literal under it in the class body, CleanRL style), read from
    the source: what ``python -m ssmlib config`` prints and ``--help`` points to."""
    import ast
    import inspect
    import textwrap

    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body
    docs = {}
    for a, b in zip(body, body[1:]):
        if (isinstance(a, ast.AnnAssign) and isinstance(a.target, ast.Name) and isinstance(b, ast.Expr)
                and isinstance(b.value, ast.Constant) and isinstance(b.value.value, str)):
            docs[a.target.id] = " ".join(b.value.value.split())
    return docs


def describe(cfg) -> list[tuple[str, object, str]]:
    """``(field, value, docstring)`` for every field of a config dataclass instance."""
    docs = field_docs(type(cfg))
    return [(f.name, getattr(cfg, f.name), docs.get(f.name, "")) for f in dataclasses.fields(cfg)]


def coerce(value, default, key: str):
    """A ``--set`` value (a string) as the type of the field's current value ``default``."""
    if not isinstance(value, str):
        return value
    try:
        if isinstance(default, bool):
            v = value.strip().lower()
            if v in ("1", "true", "yes", "on"):
                return True
            if v in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if isinstance(default, int):
            f = float(value)
            if not f.is_integer():
                raise ValueError
            return int(f)
        if isinstance(default, float):
            return float(value)
    except ValueError:
        raise SsmlibError(f"--set {key}={value}: expected a {type(default).__name__}") from None
    return value


SECTION_PREFIXES = tuple(f"{s}." for s in SECTIONS)
"""``--set`` keys may name their section (``train.lr``, as ``python -m ssmlib config`` lists them) or not (``lr``)."""


def parse_sets(items: list[str] | None) -> dict:
    """``["train.lr=1e-3", "horizon=5"]`` -> ``{"lr": "1e-3", "horizon": "5"}`` (values stay strings: ``coerce``)."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise SsmlibError(f"--set {item}: expected key=value")
        k, v = item.split("=", 1)
        k = k.strip().replace("-", "_")
        for prefix in SECTION_PREFIXES:
            k = k.removeprefix(prefix)
        out[k] = v.strip()
    return out


# --------------------------------------------------------------------------------------------------
# An agent run's config: ``--set`` items, the checks every run makes of it, and where its frozen
# environment model is (``env_model="auto"``: the committed model of the game).

AUTO_MODEL = "auto"
AUTO_MODEL_NAME = "dSSM-DET"  # the earlier fixed default (MsPacman's), committed for each game


def resolve_env_model(cfg: AgentConfig) -> AgentConfig:
    """``cfg`` with ``env_model="auto"`` replaced by the committed model of ``cfg.game`` (a path relative
    to the checkout, as configs store it), so the model follows the game."""
    if cfg.env_model != AUTO_MODEL:
        return cfg
    from .data.ale import resolve_game

    game = resolve_game(cfg.game).name
    path = f"checkpoints/{game}/{AUTO_MODEL_NAME}.safetensors"
    if cfg.agent != "model-free" and not env_model_path(path).exists():
        raise SsmlibError(f"no committed environment model for {game} ({path}); pass --env-model PATH "
                          f"(train one with: python -m ssmlib train --model {AUTO_MODEL_NAME} --data DIR)")
    return dataclasses.replace(cfg, env_model=path)


def env_model_path(path) -> _Path:
    """A model path as given, else relative to the checkout (configs store ``checkpoints/...``)."""
    p = _Path(path)
    return p if p.exists() or p.is_absolute() or not (REPO_ROOT / p).exists() else REPO_ROOT / p


def check_config(cfg: AgentConfig) -> None:
    """Refuse, in one line, an agent run that cannot start: an unknown agent or rollout policy, an I2A
    without an environment model, a count below 1."""
    if cfg.agent not in AGENTS:
        raise SsmlibError(f"unknown agent {cfg.agent!r}; choose one of {', '.join(AGENTS)}")
    if cfg.rollout_policy not in ROLLOUT_POLICIES:
        raise SsmlibError(f"unknown rollout policy {cfg.rollout_policy!r}; choose one of {', '.join(ROLLOUT_POLICIES)}")
    if cfg.agent != "model-free" and not cfg.env_model:
        raise SsmlibError(f"agent {cfg.agent} needs an environment model checkpoint (--env-model PATH)")
    for name in ("num_envs", "num_steps", "total_steps", "rollout_depth", "mf_pool"):
        if getattr(cfg, name) < 1:
            raise SsmlibError(f"{name} must be at least 1, got {getattr(cfg, name)}")


def with_sets(cfg: AgentConfig, items: list[str] | None) -> AgentConfig:
    """``cfg`` with ``--set key=value`` items applied (values coerced to the field's type) by
    ``config.apply_sets``, as a profile's overrides are."""
    return apply_sets(cfg, parse_sets(items))
