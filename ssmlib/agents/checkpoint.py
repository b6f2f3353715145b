"""An agent from its configuration or from its checkpoint, and agent checkpoints (safetensors + JSON;
never a pickle): the agent's own weights, the optimiser's state and the RNG state, with the config
and the sha256 of the frozen environment model the agent was trained with."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from .. import checkpoint as ckpt
from ..config import REPO_ROOT, from_dict, to_dict
from ..errors import SsmlibError
from ..io import sha256_file
from .config import AgentConfig, check_config, env_model_path, resolve_env_model
from .model_api import LatentModel
from .networks import I2AAgent, ModelFreeAgent

KIND = "ssmlib-agent"
CHECKPOINT = "checkpoint.safetensors"


def build_agent(cfg: AgentConfig, num_actions: int, device="cpu", env_model: LatentModel | None = None):
    """The agent of ``cfg`` (I2A/copy load and freeze ``cfg.env_model`` unless ``env_model`` is given)."""
    if env_model is None:
        cfg = resolve_env_model(cfg)
    check_config(cfg)
    if cfg.agent == "model-free":
        return ModelFreeAgent(num_actions, cfg.height, cfg.width, cfg.mf_pool, cfg.hidden).to(device)
    if env_model is None:
        env_model = ckpt.load_model(env_model_path(cfg.env_model), device=device)
    mc = env_model.cfg
    if (mc.height, mc.width) != (cfg.height, cfg.width):
        raise SsmlibError(f"the environment model is for {mc.height}x{mc.width} frames, the agent's are "
                          f"{cfg.height}x{cfg.width} (pass --set height={mc.height} --set width={mc.width})")
    return I2AAgent(env_model, num_actions, cfg.height, cfg.width, rollout_policy=cfg.rollout_policy,
                    depth=cfg.rollout_depth, pool=cfg.mf_pool, hidden=cfg.hidden, lstm=cfg.lstm,
                    tau=cfg.gumbel_tau, copy=cfg.agent == "copy").to(device)


def agent_weights(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The agent's own weights of a checkpoint's tensors (its ``agent.*`` entries, without the prefix)."""
    return {k[len("agent."):]: v for k, v in tensors.items() if k.startswith("agent.")}


def save_agent(path: Path, agent: ModelFreeAgent | I2AAgent, optimizer, cfg: AgentConfig, step: int, update: int,
               extra: dict) -> dict:
    tensors = {f"agent.{k}": v.detach().to("cpu", copy=True).contiguous() for k, v in agent.agent_state_dict().items()}
    optim_meta = ckpt.pack_state(optimizer.state_dict(), "optim", tensors) if optimizer is not None else None
    tensors.update(ckpt.rng_state())
    meta = {"kind": KIND, "format_version": 1, "agent": cfg.agent, "config": to_dict(cfg), "step": int(step),
            "update": int(update), "optimizer": optim_meta, "torch": torch.__version__, **extra}
    return ckpt.write_file(path, tensors, meta)


def load_agent(path, device="cpu", env_model: LatentModel | None = None, num_actions: int | None = None):
    """``(agent, cfg, meta, tensors)`` of an agent checkpoint; the I2A's model is loaded from its path
    and checked against the sha256 recorded at training time."""
    meta, tensors = ckpt.load_checkpoint(path, kind=KIND)
    cfg = from_dict(AgentConfig, meta["config"])
    if cfg.env_model and not Path(cfg.env_model).exists() and (REPO_ROOT / cfg.env_model).exists():
        cfg = dataclasses.replace(cfg, env_model=str(REPO_ROOT / cfg.env_model))  # a path relative to the repo
    if env_model is None and cfg.agent != "model-free":
        want = meta.get("env_model_sha256")
        if want and Path(cfg.env_model).exists() and sha256_file(cfg.env_model) != want:
            raise SsmlibError(f"agent {path} was trained with another {cfg.env_model} (sha256 differs)")
    agent = build_agent(cfg, num_actions or meta["num_actions"], device, env_model)
    missing, unexpected = agent.load_state_dict(agent_weights(tensors), strict=False)
    missing = [k for k in missing if not k.startswith("env_model.")]
    if missing or unexpected:
        raise SsmlibError(f"agent checkpoint {path} does not fit this ssmlib's {cfg.agent} "
                          f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return agent, cfg, meta, tensors


def export_agent(src, dst, overwrite: bool = False) -> dict:
    """A weights-only copy of an agent checkpoint (no optimiser state): small, for committing."""
    dst = Path(dst)
    if dst.exists() and not overwrite:
        raise SsmlibError(f"{dst} exists (use --overwrite)")
    meta, tensors = ckpt.load_checkpoint(src, kind=KIND)
    keep = {k: v for k, v in tensors.items() if k.startswith("agent.")}
    meta = {k: v for k, v in meta.items() if k != "tensors_sha256"}
    meta.update(optimizer=None, exported_from=str(src))
    return ckpt.write_file(dst, keep, meta)
