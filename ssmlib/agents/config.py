"""An agent run's configuration: :class:`AgentConfig` (its defaults are the ``paper`` profile; ``quick``
is the ``agent.`` rows of ``ssmlib.config.QUICK``), the checks every run makes of it, and where its
frozen environment model is (``env_model="auto"``: the committed model of the game)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ..config import REPO_ROOT, apply_sets, parse_sets, profile_config
from ..errors import SsmlibError
from .networks import AGENTS, ROLLOUT_POLICIES


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


def agent_profile(name: str) -> AgentConfig:
    """``quick`` (CPU, 80x64 frames, 8 envs, a few hundred steps) or ``paper`` (GPU, 200x160, 64 envs: the
    defaults): ``AgentConfig()`` with the profile's ``agent.`` overrides."""
    return profile_config(name, "agent", AgentConfig)


AUTO_MODEL = "auto"
AUTO_MODEL_NAME = "dSSM-DET"  # the earlier fixed default (MsPacman's), committed for each game


def resolve_env_model(cfg: AgentConfig) -> AgentConfig:
    """``cfg`` with ``env_model="auto"`` replaced by the committed model of ``cfg.game`` (a path relative
    to the checkout, as configs store it), so the model follows the game."""
    if cfg.env_model != AUTO_MODEL:
        return cfg
    from ..data.ale import resolve_game

    game = resolve_game(cfg.game).name
    path = f"checkpoints/{game}/{AUTO_MODEL_NAME}.safetensors"
    if cfg.agent != "model-free" and not env_model_path(path).exists():
        raise SsmlibError(f"no committed environment model for {game} ({path}); pass --env-model PATH "
                          f"(train one with: python -m ssmlib train --model {AUTO_MODEL_NAME} --data DIR)")
    return dataclasses.replace(cfg, env_model=path)


def env_model_path(path) -> Path:
    """A model path as given, else relative to the checkout (configs store ``checkpoints/...``)."""
    p = Path(path)
    return p if p.exists() or p.is_absolute() or not (REPO_ROOT / p).exists() else REPO_ROOT / p


def check_config(cfg: AgentConfig) -> None:
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
