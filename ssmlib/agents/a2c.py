"""Advantage actor-critic (A2C) for every agent: model-free, I2A (uniform / distill / learned rollout
policy) and the copy-model baseline. CleanRL style: one config dataclass (``ssmlib.config.AgentConfig``),
tensors pre-allocated as (steps, envs, ...), steps/s logged.

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

import dataclasses
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .. import checkpoint as ckpt
from ..config import AgentConfig, check_config, env_model_path, from_dict, resolve_env_model, to_dict
from ..errors import SsmlibError
from ..io import git_sha, provenance, sha256_file
from ..runs import METRICS, RUN_FILES as _FILES, STOPS, RunFolder, SaveClock, StopRule, refuse_changes
from .checkpoint import KIND, agent_weights, build_agent, load_agent, save_agent
from .envs import EpisodeTracker, check_env_order, make_agent_env, reset_env
from .networks import I2AAgent, ModelFreeAgent, autocast, first_step

EPISODES = "episodes.jsonl"
RUN_FILES = _FILES + (EPISODES,)
"""What a run writes in its folder (``--overwrite`` clears them first): ``ssmlib.runs``'s files and the episodes."""
RMSPROP_EPS = 1e-5
"""RMSprop's eps: the step is g / (sqrt(v) + eps) (``log_codes`` codes v for committed state with it)."""
RESUMABLE = ("total_steps", "log_every", "ckpt_every", "env_threads")
"""The config fields a resumed run may change (``ckpt_every``: seconds between checkpoints, see runs.SaveClock)."""
ARCHITECTURE = ("agent", "height", "width", "mf_pool", "hidden", "lstm", "rollout_policy")
"""The config fields ``init_from`` must share with the run it starts."""


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
# training: the loop (train_agent) over its steps, each a small helper below it


def train_agent(cfg: AgentConfig, out, *, resume: bool = False, overwrite: bool = False, device: str | None = None,
                env=None, env_model=None, time_limit: float | None = None, progress: bool = True,
                init_from: str | None = None) -> dict:
    """Train ``cfg``'s agent with A2C; write ``out/{checkpoint.safetensors, metrics.jsonl, episodes.jsonl,
    config.json, summary.json}``. ``env``: any vector env with 3-frame observations (default: the real
    game); ``resume`` continues from ``out``'s checkpoint (environments restart their episodes from a
    new seed; parameters, optimiser and counters continue exactly). The folder's rules (refuse, overwrite,
    what a resume may change, logs cut back on resume) are ``ssmlib.runs``'s; Ctrl-C or SIGTERM finishes the
    update, saves and returns status ``interrupted`` (a second one aborts); ``time_limit`` seconds from the
    loop's start end the run with status ``time-limit``; a checkpoint every ``cfg.ckpt_every`` seconds."""
    folder = RunFolder(out, resume=resume, overwrite=overwrite, files=RUN_FILES, logs=(METRICS, EPISODES))
    cfg, dev, meta, tensors = _open_run(cfg, folder, device, env_model)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    own_env = env is None
    env = _make_env(cfg) if own_env else env
    A, N, S = int(env.single_action_space.n), env.num_envs, cfg.num_steps
    if N != cfg.num_envs:
        raise SsmlibError(f"the environment has {N} sub-environments, the config says {cfg.num_envs}")
    agent = build_agent(cfg, A, dev, env_model)
    params = trainable(agent)
    optimizer = torch.optim.RMSprop(params, lr=cfg.lr, alpha=0.99, eps=RMSPROP_EPS)
    step, update, wall0, extra_init = _starting_point(agent, optimizer, cfg, A, env_model, meta, tensors, init_from)
    resumes = meta.get("resumes", 0) + 1 if meta is not None else 0
    extra = _run_facts(cfg, A)
    folder.start_logs(step if meta is not None else None)  # a resume drops lines written after its checkpoint
    metrics, episodes = folder.log(METRICS), folder.log(EPISODES)
    folder.write_config({"config": to_dict(cfg), "provenance": provenance(str(dev))})
    learner = _Learner(agent, optimizer, params, env, cfg, dev)
    next_obs = _first_obs(env, own_env, cfg.seed + 100_003 * resumes, dev)
    next_done = torch.zeros(N, dtype=torch.bool, device=dev)

    def save(wall: float) -> None:
        save_agent(folder.checkpoint, agent, optimizer, cfg, step, update,
                   {**extra, "wall_s": wall, "resumes": resumes, "git_sha": git_sha()})

    t_start = time.perf_counter()
    clock = SaveClock(every_seconds=cfg.ckpt_every)
    t_log, s_log = t_start, step
    status, last = "done", {}
    bar = _progress_bar(cfg, step, progress)
    agent.train()
    try:
        with StopRule(time_limit) as stop:  # Ctrl-C / SIGTERM: finish the update, save, return
            stop.start_clock()
            while step < cfg.total_steps:
                if code := stop.code():
                    status = STOPS[code]
                    break
                next_obs, next_done = learner.collect(next_obs, next_done, step, episodes)
                terms, gnorm = learner.learn(next_obs, next_done)
                step += S * N
                update += 1
                bar.update(S * N)
                if update % cfg.log_every == 0:
                    now = time.perf_counter()
                    last = {k: float(v.detach()) for k, v in terms.items()}
                    rec = _metrics_line(step, update, last, gnorm, learner.recent,
                                        (step - s_log) / max(now - t_log, 1e-9), wall0 + now - t_start)
                    metrics.write(rec)
                    bar.set_postfix(sps=f"{rec['steps_per_s']:.0f}", ret=rec["return_mean_100"])
                    t_log, s_log = now, step
                if clock.due(update):
                    save(wall0 + time.perf_counter() - t_start)
                    clock.saved()
    finally:
        bar.close()
    wall = wall0 + time.perf_counter() - t_start
    save(wall)
    if own_env:
        env.close()
    summary = _summary(status, step, update, wall, learner.recent, last, cfg, dev, extra_init)
    folder.write_summary(summary)
    return summary


def _open_run(cfg: AgentConfig, folder: RunFolder, device: str | None, env_model):
    """``(cfg, device, meta, tensors)`` of a run about to start in ``folder``: the folder checked (and, with
    overwrite, cleared) and created; when resuming, the checkpoint's ``meta`` and ``tensors`` and its
    config with the fields that may change (RESUMABLE) taken from ``cfg`` (else ``None, None``)."""
    from ..distributed import resolve_device

    if env_model is None:
        cfg = resolve_env_model(cfg)  # before the resume check: a resumed run compares the resolved path
    folder.check()
    dev = resolve_device(device)
    meta = tensors = None
    if folder.resuming:
        meta, tensors = ckpt.load_checkpoint(folder.checkpoint, kind=KIND)
        saved = from_dict(AgentConfig, meta["config"])
        refuse_changes(folder.path, [(saved, cfg, RESUMABLE)])
        cfg = dataclasses.replace(saved, **{k: getattr(cfg, k) for k in RESUMABLE})
    check_config(cfg)
    folder.create()
    return cfg, dev, meta, tensors


def _make_env(cfg: AgentConfig):
    """The real game's vector env of ``cfg``."""
    return make_agent_env(cfg.game, cfg.num_envs, cfg.height, cfg.width, seed=cfg.seed,
                          sticky_actions=cfg.sticky_actions, noop_max=cfg.noop_max, num_threads=cfg.env_threads)


def _first_obs(env, own_env: bool, seed: int, dev: torch.device) -> Tensor:
    """The first observation of every sub-environment, reset from ``seed`` (a resume: a new seed)."""
    return torch.as_tensor(reset_env(env, seed) if own_env else env.reset(seed=seed)[0], device=dev)


def _summary(status: str, step: int, update: int, wall: float, recent: list[float], last: dict, cfg: AgentConfig,
             dev: torch.device, extra_init: dict) -> dict:
    """``summary.json`` of a run that ended (done, time-limit or interrupted)."""
    return {"status": status, "step": step, "update": update, "wall_s": wall, "episodes_this_run": len(recent),
            "return_mean_100": float(np.mean(recent[-100:])) if recent else None, "last_terms": last,
            "config": to_dict(cfg), "provenance": provenance(str(dev)), **extra_init}


def _starting_point(agent, optimizer, cfg: AgentConfig, num_actions: int, env_model, meta: dict | None,
                    tensors: dict | None, init_from: str | None) -> tuple[int, int, float, dict]:
    """``(step, update, wall_s, summary extra)`` a run starts from, with the agent (and optimiser) set:
    a resumed run's weights, optimiser, RNG state and counters; or ``init_from``'s weights (same
    architecture) with a fresh optimiser; or nothing changed."""
    if meta is not None:
        agent.load_state_dict(agent_weights(tensors), strict=False)
        ckpt.load_optimizer(optimizer, meta, tensors)
        ckpt.set_rng_state(tensors)
        return meta["step"], meta["update"], meta.get("wall_s", 0.0), {}
    if init_from is None:
        return 0, 0, 0.0, {}
    _, _, init_meta, init_tensors = load_agent(init_from, device="cpu", env_model=env_model, num_actions=num_actions)
    saved = from_dict(AgentConfig, init_meta["config"])
    arch = [f for f in ARCHITECTURE
            if getattr(saved, f) != getattr(cfg, f) and not (f == "rollout_policy" and cfg.agent == "model-free")]
    if arch:
        raise SsmlibError(f"cannot start from {init_from}: its {', '.join(arch)} differ from this run's")
    agent.load_state_dict(agent_weights(init_tensors), strict=False)
    return 0, 0, 0.0, {"init_from": {"path": str(init_from), "step": int(init_meta["step"])}}


def _run_facts(cfg: AgentConfig, num_actions: int) -> dict:
    """What every checkpoint of the run records besides the config (the model's sha256 for I2A/copy)."""
    extra = {"num_actions": num_actions, "game": cfg.game}
    if cfg.agent != "model-free" and cfg.env_model and env_model_path(cfg.env_model).exists():
        extra["env_model_sha256"] = sha256_file(env_model_path(cfg.env_model))
    return extra


def _progress_bar(cfg: AgentConfig, step: int, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(total=cfg.total_steps, initial=min(step, cfg.total_steps), disable=not progress, unit="step",
                desc=f"{cfg.agent}{'' if cfg.agent == 'model-free' else '/' + cfg.rollout_policy}")


def _metrics_line(step: int, update: int, terms: dict, gnorm: Tensor, recent: list[float], steps_per_s: float,
                  wall_s: float) -> dict:
    last100 = recent[-100:]
    return {"step": step, "update": update, **terms, "grad_norm": float(gnorm), "steps_per_s": steps_per_s,
            "episodes": len(recent), "return_mean_100": float(np.mean(last100)) if last100 else None,
            "wall_s": wall_s}


class _Learner:
    """The two halves of an A2C update: ``collect`` (``num_steps`` steps of every env into tensors
    pre-allocated as (steps, envs, ...)) and ``learn`` (one gradient step on them)."""

    def __init__(self, agent: ModelFreeAgent | I2AAgent, optimizer, params, env, cfg: AgentConfig, dev: torch.device):
        obs_shape = env.single_observation_space.shape
        if env.single_observation_space.dtype != np.uint8:
            raise SsmlibError("agents learn from frames: use an environment with uint8 frame observations "
                              "(ImaginedVectorEnv(decode=True))")
        S, N = cfg.num_steps, env.num_envs
        self.agent, self.optimizer, self.params, self.env, self.cfg, self.dev = agent, optimizer, params, env, cfg, dev
        self.obs = torch.zeros((S, N, *obs_shape), dtype=torch.uint8, device=dev)
        self.actions = torch.zeros((S, N), dtype=torch.int64, device=dev)
        self.rewards = torch.zeros((S, N), device=dev)
        self.dones = torch.zeros((S, N), dtype=torch.bool, device=dev)
        self.values = torch.zeros((S, N), device=dev)
        # I2A (uniform/distill/copy): the acting pass's rollouts, kept (steps, ...) for the update, which then
        # learns from exactly the imagination the policy acted on and skips the model's cost a second time;
        # learning to query: their forced first step only, which its update continues with a gradient
        self.reuse = agent.reuses_imagination
        self.imagined: dict[str, Tensor] = {}
        # and the bootstrap pass's rollouts of the last observation (any I2A, learning to query too): the next
        # collect's first step acts on them instead of imagining the same observation again
        self.bootstrap_imagination: dict[str, Tensor] | None = None
        self.tracker = EpisodeTracker(N)
        self.recent: list[float] = []
        """The returns of the episodes ended in this call (unclipped)."""

    def collect(self, obs: Tensor, done: Tensor, step: int, episodes) -> tuple[Tensor, Tensor]:
        """Act ``num_steps`` steps from ``obs`` (``done``: it starts an episode), sampling the policy; the
        episodes that end are written to ``episodes``. Returns the observation and done flags after them."""
        S, N = self.actions.shape
        for t in range(S):
            self.obs[t], self.dones[t] = obs, done
            with torch.no_grad(), autocast(self.dev, self.cfg.amp):
                cached = self.bootstrap_imagination if t == 0 else None  # used once, at the first step
                self.bootstrap_imagination = None
                o = self.agent(obs) if cached is None else self.agent(obs, imagination=cached)
            if o.imagination is not None:  # learning to query keeps only the forced first step, to continue
                self._keep_imagination(t, o.imagination if self.reuse else first_step(o.imagination))
            a = torch.distributions.Categorical(logits=o.logits.float()).sample()
            self.actions[t], self.values[t] = a, o.value.float()
            nobs, r, term, trunc, info = self.env.step(a.cpu().numpy())
            check_env_order(info, N)
            ended = np.logical_or(term, trunc)
            for i, (ret, length) in zip(np.flatnonzero(ended), self.tracker.update(np.asarray(r, np.float64), ended)):
                episodes.write({"step": step + (t + 1) * N, "return": ret, "length": length, "env": int(i)})
                self.recent.append(ret)
            self.rewards[t] = torch.as_tensor(np.sign(r), dtype=torch.float32, device=self.dev)  # clipped for learning
            obs = torch.as_tensor(nobs, device=self.dev)
            done = torch.as_tensor(ended, device=self.dev)
        return obs, done

    def _keep_imagination(self, t: int, imagination: dict[str, Tensor]) -> None:
        for k, v in imagination.items():
            if k not in self.imagined:
                self.imagined[k] = torch.empty((self.actions.shape[0], *v.shape), dtype=v.dtype, device=self.dev)
            self.imagined[k][t] = v

    def learn(self, next_obs: Tensor, next_done: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        """One gradient step on the collected steps (GAE bootstrapped from ``next_obs``); the loss terms
        and the gradient norm before clipping."""
        cfg, agent = self.cfg, self.agent
        with torch.no_grad(), autocast(self.dev, cfg.amp):
            bootstrap = agent(next_obs)
        next_value = bootstrap.value.float()
        self.bootstrap_imagination = bootstrap.imagination  # of next_obs: the next collect's first observation
        adv, ret = gae(self.rewards, self.values, self.dones, next_value, next_done, cfg.gamma, cfg.gae_lambda)
        with autocast(self.dev, cfg.amp):
            cached = {k: v.flatten(0, 1) for k, v in self.imagined.items()}
            if self.reuse:
                o = agent(self.obs.flatten(0, 1), imagination=cached)
            else:  # model-free (nothing cached), or learning to query: its rollouts again from their first step
                o = agent(self.obs.flatten(0, 1), first=cached) if cached else agent(self.obs.flatten(0, 1))
        terms = a2c_losses(o, self.actions.flatten(), adv.flatten(), ret.flatten(), cfg)
        self.optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        gnorm = torch.nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
        self.optimizer.step()
        return terms, gnorm
