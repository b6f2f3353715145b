"""Advantage actor-critic (A2C) for every agent: model-free, I2A (uniform / distill / learned rollout
policy) and the copy-model baseline. One file, CleanRL style: a config dataclass, tensors
pre-allocated as (steps, envs, ...), steps/s logged.

Per update, ``num_steps`` steps of ``num_envs`` environments, then one gradient step on

    L = - mean_t[ A_t log pi(a_t|o_t) ]                       policy gradient, A_t by GAE(lambda)
        + vf_coef * mean_t[ (R_t - V(o_t))^2 ] / 2             value regression, R_t = A_t + V(o_t)
        - ent_coef * mean_t[ H(pi(.|o_t)) ]                    entropy bonus
        + distill_coef * mean_t[ - sum_a sg(pi(a|o_t)) log pi_hat(a|s_t) ]   (distill rollout policy only)

with ``A_t = sum_l (gamma lambda)^l delta_{t+l}``, ``delta_t = r_t + gamma V(o_{t+1}) (1 - d_{t+1}) - V(o_t)``,
rewards clipped to their sign for learning (scores are reported unclipped). The distillation term is
``KL(pi || pi_hat) + H(pi)``; with pi held fixed (``sg``) minimising it minimises the KL, so pi_hat moves
towards the agent's policy, never away from it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import checkpoint as ckpt
from ..config import PROFILES, REPO_ROOT, from_dict, to_dict
from ..errors import SsmlibError
from ..io import atomic_write_json, git_sha, provenance, sha256_file
from .envs import EpisodeTracker, make_agent_env, reset_env
from .networks import AGENTS, ROLLOUT_POLICIES, I2AAgent, ModelFreeAgent

KIND = "ssmlib-agent"
CHECKPOINT = "checkpoint.safetensors"


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
    mf_pool: int = 1
    """Average-pool factor of the frames before the model-free CNN (2 at 200x160: 100x80 inputs)."""
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
    """``quick`` (CPU, 80x64 frames, 8 envs, a few hundred steps) or ``paper`` (GPU, 200x160, 64 envs)."""
    if name == "quick":
        return AgentConfig(height=80, width=64, num_envs=8, total_steps=400, rollout_depth=2, mf_pool=1,
                           hidden=128, lstm=64, log_every=5, env_model="")
    if name == "paper":
        return AgentConfig(mf_pool=2)
    raise SsmlibError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")


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


def build_agent(cfg: AgentConfig, num_actions: int, device="cpu", env_model=None):
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


def trainable(agent) -> list[torch.nn.Parameter]:
    return [p for p in agent.parameters() if p.requires_grad]


# --------------------------------------------------------------------------------------------------
# the pieces of the update (tested on their own)


def gae(rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor, next_value: torch.Tensor,
        next_done: torch.Tensor, gamma: float, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and returns ``(S, N)``. ``dones[t]`` marks that obs t STARTS a new episode (the step
    before it ended one), so no value flows back across an episode end."""
    S = rewards.shape[0]
    adv = torch.zeros_like(rewards)
    last = torch.zeros_like(next_value)
    for t in reversed(range(S)):
        nonterminal = 1.0 - (next_done if t == S - 1 else dones[t + 1]).float()
        nv = next_value if t == S - 1 else values[t + 1]
        delta = rewards[t] + gamma * nv * nonterminal - values[t]
        last = delta + gamma * lam * nonterminal * last
        adv[t] = last
    return adv, adv + values


def a2c_losses(out, actions: torch.Tensor, advantages: torch.Tensor, returns: torch.Tensor,
               cfg: AgentConfig) -> dict[str, torch.Tensor]:
    """The loss terms of the module docstring (means over the batch)."""
    logits = out.logits.float()
    logp_all = F.log_softmax(logits, -1)
    logp = logp_all.gather(-1, actions[:, None]).squeeze(-1)
    probs = logp_all.exp()
    pg = -(advantages.detach() * logp).mean()
    v = 0.5 * (returns.detach() - out.value.float()).square().mean()
    entropy = -(probs * logp_all).sum(-1).mean()
    terms = {"policy_loss": pg, "value_loss": v, "entropy": entropy}
    loss = pg + cfg.vf_coef * v - cfg.ent_coef * entropy
    if out.rollout_logits is not None and cfg.rollout_policy == "distill":
        terms["distill_loss"] = distill_loss(logits, out.rollout_logits)
        loss = loss + cfg.distill_coef * terms["distill_loss"]
    if out.rollout_logits is not None:
        with torch.no_grad():  # KL(pi || pi_hat): how far the rollout policy is from the agent's
            terms["kl_pi_rollout"] = (probs * (logp_all - F.log_softmax(out.rollout_logits.float(), -1))).sum(-1).mean()
    terms["loss"] = loss
    return terms


def distill_loss(policy_logits: torch.Tensor, rollout_logits: torch.Tensor) -> torch.Tensor:
    """``-sum_a sg(pi(a)) log pi_hat(a)``: cross-entropy from the stop-gradient agent policy to pi_hat."""
    target = F.softmax(policy_logits.detach().float(), -1)
    return -(target * F.log_softmax(rollout_logits.float(), -1)).sum(-1).mean()


# --------------------------------------------------------------------------------------------------
# checkpoints (safetensors + JSON; never a pickle)


def save_agent(path: Path, agent, optimizer, cfg: AgentConfig, step: int, update: int, extra: dict) -> dict:
    tensors = {f"agent.{k}": v.detach().to("cpu", copy=True).contiguous()
               for k, v in (agent.agent_state_dict() if hasattr(agent, "agent_state_dict") else agent.state_dict()).items()}
    optim_meta = ckpt.pack_state(optimizer.state_dict(), "optim", tensors) if optimizer is not None else None
    tensors.update(ckpt.rng_state())
    meta = {"kind": KIND, "format_version": 1, "agent": cfg.agent, "config": to_dict(cfg), "step": int(step),
            "update": int(update), "optimizer": optim_meta, "torch": torch.__version__, **extra}
    return ckpt.write_file(path, tensors, meta)


def load_agent(path, device="cpu", env_model=None, num_actions: int | None = None):
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
    own = {k[len("agent."):]: v for k, v in tensors.items() if k.startswith("agent.")}
    missing, unexpected = agent.load_state_dict(own, strict=False)
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


# --------------------------------------------------------------------------------------------------
# training


def check_env_order(info: dict, n: int) -> None:
    """Row i of every array must be env i: the episode bookkeeping and GAE follow rows across steps.
    (ale-py's vector env reports the env of each row in ``info["env_id"]``; an env pool that returned
    rows in completion order would silently splice episodes of different envs.)"""
    ids = info.get("env_id") if isinstance(info, dict) else None
    if ids is not None and not np.array_equal(np.asarray(ids), np.arange(n)):
        raise SsmlibError(f"the vector env returned its rows out of env order ({np.asarray(ids)[:8]}...)")


def _autocast(device: torch.device, amp: bool):
    return torch.autocast("cuda", dtype=torch.bfloat16) if amp and device.type == "cuda" else contextlib.nullcontext()


def train_agent(cfg: AgentConfig, out, *, resume: bool = False, overwrite: bool = False, device: str | None = None,
                env=None, env_model=None, time_limit: float | None = None, progress: bool = True,
                init_from: str | None = None) -> dict:
    """Train ``cfg``'s agent with A2C; write ``out/{checkpoint.safetensors, metrics.jsonl, episodes.jsonl,
    config.json, summary.json}``. ``env``: any vector env with 3-frame observations (default: the real
    game); ``resume`` continues from ``out``'s checkpoint (environments restart their episodes from a
    new seed; parameters, optimiser and counters continue exactly)."""
    from ..train import MetricsLog, resolve_device

    out = Path(out)
    ckpt_path = out / CHECKPOINT
    resuming = resume and ckpt_path.exists()
    if env_model is None:
        cfg = resolve_env_model(cfg)  # before the resume check: a resumed run compares the resolved path
    if out.exists() and any(out.iterdir()) and not (resume or overwrite):
        raise SsmlibError(f"output folder {out} exists and is not empty (use --resume to continue or --overwrite)")
    dev = resolve_device(device)
    meta = tensors = None
    if resuming:
        meta, tensors = ckpt.load_checkpoint(ckpt_path, kind=KIND)
        saved = from_dict(AgentConfig, meta["config"])
        keep = {"total_steps", "log_every", "ckpt_every", "env_threads"}
        changed = [f.name for f in dataclasses.fields(AgentConfig)
                   if f.name not in keep and getattr(saved, f.name) != getattr(cfg, f.name)]
        if changed:
            raise SsmlibError(f"cannot change {', '.join(changed)} when resuming {out}")
        cfg = dataclasses.replace(saved, **{k: getattr(cfg, k) for k in keep})
    check_config(cfg)
    if overwrite and not resume and out.exists():
        for f in (CHECKPOINT, "metrics.jsonl", "episodes.jsonl", "summary.json", "config.json"):
            (out / f).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    own_env = env is None
    if own_env:
        env = make_agent_env(cfg.game, cfg.num_envs, cfg.height, cfg.width, seed=cfg.seed,
                             sticky_actions=cfg.sticky_actions, noop_max=cfg.noop_max, num_threads=cfg.env_threads)
    A = int(env.single_action_space.n)
    N, S = env.num_envs, cfg.num_steps
    if N != cfg.num_envs:
        raise SsmlibError(f"the environment has {N} sub-environments, the config says {cfg.num_envs}")
    agent = build_agent(cfg, A, dev, env_model)
    params = trainable(agent)
    optimizer = torch.optim.RMSprop(params, lr=cfg.lr, alpha=0.99, eps=1e-5)
    step = update = 0
    wall0 = 0.0
    extra_init: dict = {}
    if resuming:
        own = {k[len("agent."):]: v for k, v in tensors.items() if k.startswith("agent.")}
        agent.load_state_dict(own, strict=False)
        ckpt.load_optimizer(optimizer, meta, tensors)
        ckpt.set_rng_state(tensors)
        step, update, wall0 = meta["step"], meta["update"], meta.get("wall_s", 0.0)
    elif init_from is not None:  # a new run from another agent's weights (same architecture), fresh optimiser
        _, _, init_meta, init_tensors = load_agent(init_from, device="cpu", env_model=env_model, num_actions=A)
        saved = from_dict(AgentConfig, init_meta["config"])
        arch = [f for f in ("agent", "height", "width", "mf_pool", "hidden", "lstm", "rollout_policy")
                if getattr(saved, f) != getattr(cfg, f) and not (f == "rollout_policy" and cfg.agent == "model-free")]
        if arch:
            raise SsmlibError(f"cannot start from {init_from}: its {', '.join(arch)} differ from this run's")
        agent.load_state_dict({k[len("agent."):]: v for k, v in init_tensors.items() if k.startswith("agent.")},
                              strict=False)
        extra_init = {"init_from": {"path": str(init_from), "step": int(init_meta["step"])}}
    env_seed = cfg.seed + 100_003 * (meta.get("resumes", 0) + 1 if resuming else 0)
    resumes = meta.get("resumes", 0) + 1 if resuming else 0
    extra = {"num_actions": A, "game": cfg.game}
    if cfg.agent != "model-free" and cfg.env_model and env_model_path(cfg.env_model).exists():
        extra["env_model_sha256"] = sha256_file(env_model_path(cfg.env_model))
    metrics, episodes = MetricsLog(out / "metrics.jsonl"), MetricsLog(out / "episodes.jsonl")
    if resuming:  # drop lines written after the checkpoint by an interrupted run
        metrics.truncate_after(step)
        episodes.truncate_after(step)
    atomic_write_json(out / "config.json", {"config": to_dict(cfg), "provenance": provenance(str(dev))})

    # storage, pre-allocated (steps, envs, ...)
    obs_shape = env.single_observation_space.shape
    if env.single_observation_space.dtype != np.uint8:
        raise SsmlibError("agents learn from frames: use an environment with uint8 frame observations "
                          "(ImaginedVectorEnv(decode=True))")
    obs = torch.zeros((S, N, *obs_shape), dtype=torch.uint8, device=dev)
    actions = torch.zeros((S, N), dtype=torch.int64, device=dev)
    rewards = torch.zeros((S, N), device=dev)
    dones = torch.zeros((S, N), dtype=torch.bool, device=dev)
    values = torch.zeros((S, N), device=dev)
    next_obs = torch.as_tensor(reset_env(env, env_seed) if own_env else env.reset(seed=env_seed)[0], device=dev)
    next_done = torch.zeros(N, dtype=torch.bool, device=dev)
    # I2A (uniform/distill/copy): the acting pass's rollouts, kept (steps, ...) for the update, which then
    # learns from exactly the imagination the policy acted on and skips the model's cost a second time
    reuse = bool(getattr(agent, "reuses_imagination", False))
    imagined: dict[str, torch.Tensor] = {}
    tracker = EpisodeTracker(N)
    recent: list[float] = []

    def save(wall: float) -> None:
        save_agent(ckpt_path, agent, optimizer, cfg, step, update,
                   {**extra, "wall_s": wall, "resumes": resumes, "git_sha": git_sha()})

    t_start = time.perf_counter()
    last_ckpt = t_start
    t_log, s_log = t_start, step
    status = "done"
    from tqdm.auto import tqdm

    bar = tqdm(total=cfg.total_steps, initial=min(step, cfg.total_steps), disable=not progress, unit="step",
               desc=f"{cfg.agent}{'' if cfg.agent == 'model-free' else '/' + cfg.rollout_policy}")
    agent.train()
    last: dict = {}
    try:
        while step < cfg.total_steps:
            if time_limit is not None and time.perf_counter() - t_start > time_limit:
                status = "time-limit"
                break
            for t in range(S):
                obs[t], dones[t] = next_obs, next_done
                with torch.no_grad(), _autocast(dev, cfg.amp):
                    o = agent(next_obs)
                if reuse:
                    for k, v in o.imagination.items():
                        if k not in imagined:
                            imagined[k] = torch.empty((S, *v.shape), dtype=v.dtype, device=dev)
                        imagined[k][t] = v
                a = torch.distributions.Categorical(logits=o.logits.float()).sample()
                actions[t], values[t] = a, o.value.float()
                nobs, r, term, trunc, info = env.step(a.cpu().numpy())
                check_env_order(info, N)
                done = np.logical_or(term, trunc)
                for i, (ret, length) in zip(np.flatnonzero(done), tracker.update(np.asarray(r, np.float64), done)):
                    episodes.write({"step": step + (t + 1) * N, "return": ret, "length": length, "env": int(i)})
                    recent.append(ret)
                rewards[t] = torch.as_tensor(np.sign(r), dtype=torch.float32, device=dev)  # clipped for learning
                next_obs = torch.as_tensor(nobs, device=dev)
                next_done = torch.as_tensor(done, device=dev)
            with torch.no_grad(), _autocast(dev, cfg.amp):
                next_value = agent(next_obs).value.float()
            adv, ret = gae(rewards, values, dones, next_value, next_done, cfg.gamma, cfg.gae_lambda)
            with _autocast(dev, cfg.amp):
                if reuse:
                    o = agent(obs.flatten(0, 1), imagination={k: v.flatten(0, 1) for k, v in imagined.items()})
                else:
                    o = agent(obs.flatten(0, 1))
            terms = a2c_losses(o, actions.flatten(), adv.flatten(), ret.flatten(), cfg)
            optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            gnorm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            optimizer.step()
            step += S * N
            update += 1
            bar.update(S * N)
            if update % cfg.log_every == 0:
                now = time.perf_counter()
                last = {k: float(v.detach()) for k, v in terms.items()}
                last100 = recent[-100:]
                rec = {"step": step, "update": update, **last, "grad_norm": float(gnorm),
                       "steps_per_s": (step - s_log) / max(now - t_log, 1e-9),
                       "episodes": len(recent), "return_mean_100": float(np.mean(last100)) if last100 else None,
                       "wall_s": wall0 + now - t_start}
                metrics.write(rec)
                bar.set_postfix(sps=f"{rec['steps_per_s']:.0f}", ret=rec["return_mean_100"])
                t_log, s_log = now, step
            if time.perf_counter() - last_ckpt > cfg.ckpt_every:
                save(wall0 + time.perf_counter() - t_start)
                last_ckpt = time.perf_counter()
    except KeyboardInterrupt:
        status = "interrupted"
    finally:
        bar.close()
    wall = wall0 + time.perf_counter() - t_start
    save(wall)
    if own_env:
        env.close()
    summary = {"status": status, "step": step, "update": update, "wall_s": wall, "episodes_this_run": len(recent),
               "return_mean_100": float(np.mean(recent[-100:])) if recent else None, "last_terms": last,
               "config": to_dict(cfg), "provenance": provenance(str(dev)), **extra_init}
    atomic_write_json(out / "summary.json", summary)
    return summary


# --------------------------------------------------------------------------------------------------
# evaluation


@torch.no_grad()
def evaluate_agent(agent, env, episodes: int, seed: int = 1_000_000, device=None, max_steps: int = 27_000,
                   amp: bool = True) -> dict:
    """Returns of ``episodes`` whole episodes, actions sampled from the policy (no extra exploration)."""
    dev = torch.device(device) if device else next(p for p in agent.parameters()).device
    agent.eval()
    N = env.num_envs
    # the first k games of EVERY env: the first games to end overall would favour short (low-scoring) games
    per_env = -(-episodes // N)
    o = torch.as_tensor(reset_env(env, seed) if hasattr(env, "ssmlib_seed") else env.reset(seed=seed)[0], device=dev)
    tracker, steps = EpisodeTracker(N), 0
    done_eps: list[list[tuple[float, int]]] = [[] for _ in range(N)]
    t0 = time.perf_counter()
    while min(len(d) for d in done_eps) < per_env and steps < max_steps:
        with _autocast(dev, amp):
            logits = agent(o).logits.float()
        a = torch.distributions.Categorical(logits=logits).sample()
        nobs, r, term, trunc, info = env.step(a.cpu().numpy())
        check_env_order(info, N)
        done = np.logical_or(term, trunc)
        for i, ep in zip(np.flatnonzero(done), tracker.update(np.asarray(r, np.float64), done)):
            done_eps[i].append(ep)
        o = torch.as_tensor(nobs, device=dev)
        steps += 1
    kept = [ep for d in done_eps for ep in d[:per_env]][:episodes]
    rets = [r for r, _ in kept]
    return {"episodes": len(rets), "returns": rets, "lengths": [n for _, n in kept], "per_env": per_env,
            "return_mean": float(np.mean(rets)) if rets else None,
            "return_std": float(np.std(rets)) if rets else None,
            "agent_steps": steps * N, "wall_s": time.perf_counter() - t0}


# --------------------------------------------------------------------------------------------------
# command line


def _config_from_args(args) -> AgentConfig:
    cfg = agent_profile(args.profile)
    changes = {"agent": args.agent, "rollout_policy": args.rollout_policy, "game": args.game, "seed": args.seed}
    if args.env_model:
        changes["env_model"] = args.env_model
    if args.total_steps:
        changes["total_steps"] = args.total_steps
    cfg = dataclasses.replace(cfg, **{k: v for k, v in changes.items() if v is not None})
    return with_sets(cfg, args.set)


def with_sets(cfg: AgentConfig, items: list[str] | None) -> AgentConfig:
    """``cfg`` with ``--set key=value`` items applied (values coerced to the field's type, as ``train``'s)."""
    from ..train import _coerce, _parse_sets

    names = {f.name for f in dataclasses.fields(AgentConfig)}
    for key, value in _parse_sets(items).items():
        if key not in names:
            raise SsmlibError(f"--set {key}: no such AgentConfig field")
        cfg = dataclasses.replace(cfg, **{key: _coerce(value, getattr(cfg, key), key)})
    return cfg


def _cli_train(args) -> int:
    cfg = _config_from_args(args)
    s = train_agent(cfg, args.out, resume=args.resume, overwrite=args.overwrite, device=args.device,
                    time_limit=args.time_limit, progress=not args.no_progress, init_from=args.init_from)
    print(json.dumps({k: s[k] for k in ("status", "step", "wall_s", "return_mean_100")}))
    return 0


def _cli_eval(args) -> int:
    from ..train import resolve_device

    dev = resolve_device(args.device)
    agent, cfg, meta, _ = load_agent(args.checkpoint, device=dev)
    env = make_agent_env(cfg.game, args.num_envs, cfg.height, cfg.width, sticky_actions=cfg.sticky_actions,
                         noop_max=cfg.noop_max, num_threads=args.env_threads)
    res = evaluate_agent(agent, env, args.episodes, seed=args.seed, amp=cfg.amp)
    env.close()
    res.update({"checkpoint": str(args.checkpoint), "agent": cfg.agent, "rollout_policy": cfg.rollout_policy,
                "trained_steps": meta["step"], "provenance": provenance(str(dev))})
    if args.out:
        if Path(args.out).exists() and not args.overwrite:
            raise SsmlibError(f"{args.out} exists (use --overwrite)")
        atomic_write_json(args.out, res)
    print(f"{cfg.agent}: mean return {res['return_mean']} over {res['episodes']} episodes")
    return 0


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("agent", help="train or evaluate an actor-critic agent (model-free, I2A, copy)")
    sub = p.add_subparsers(dest="agent_command", required=True)
    t = sub.add_parser("train", help="A2C training, checkpoints and --resume")
    t.add_argument("--agent", choices=AGENTS, default=None)
    t.add_argument("--rollout-policy", choices=ROLLOUT_POLICIES, default=None)
    t.add_argument("--env-model", default=None, help="checkpoint of the frozen environment model (I2A, copy)")
    t.add_argument("--game", default=None)
    t.add_argument("--profile", choices=PROFILES, default="quick")
    t.add_argument("--total-steps", type=int, default=None, help="agent steps over all environments")
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--out", required=True)
    t.add_argument("--resume", action="store_true")
    t.add_argument("--init-from", default=None, metavar="CHECKPOINT",
                   help="start from another agent's weights (same architecture), fresh optimiser")
    t.add_argument("--overwrite", action="store_true")
    t.add_argument("--device", default=None)
    t.add_argument("--time-limit", type=float, default=None, help="seconds, then a clean stop with a checkpoint")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="any AgentConfig field")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=_cli_train)
    e = sub.add_parser("eval", help="episode returns of a trained agent (policy sampling only)")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--episodes", type=int, default=10)
    e.add_argument("--num-envs", type=int, default=8)
    e.add_argument("--seed", type=int, default=1_000_000)
    e.add_argument("--env-threads", type=int, default=0, help="emulator threads (0: one per env up to the CPUs)")
    e.add_argument("--device", default=None)
    e.add_argument("--out", default=None, help="write the returns as JSON here")
    e.add_argument("--overwrite", action="store_true")
    e.set_defaults(func=_cli_eval)
    x = sub.add_parser("export", help="weights-only copy of an agent checkpoint (small, for committing)")
    x.add_argument("--checkpoint", required=True)
    x.add_argument("--out", required=True)
    x.add_argument("--overwrite", action="store_true")
    x.set_defaults(func=lambda a: (export_agent(a.checkpoint, a.out, a.overwrite), 0)[1])
    from .study import add_cli as _study_cli

    _study_cli(sub)
