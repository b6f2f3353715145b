"""Scores of an agent's weights, frozen: whole games played with actions sampled from the policy
(``python -m ssmlib agent eval``)."""

from __future__ import annotations

import time

import numpy as np
import torch

from .envs import EpisodeTracker, check_env_order, reset_env
from .networks import AgentOutput, autocast


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
        with autocast(dev, amp):
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


class UniformPolicy(torch.nn.Module):
    """The random player: every action equally likely at every step (zero logits), whatever it sees. Played by
    ``evaluate_agent`` like a trained agent, it gives the floor a trained agent's frozen score must clear."""

    def __init__(self, num_actions: int):
        super().__init__()
        self.num_actions = num_actions

    def forward(self, obs: torch.Tensor) -> AgentOutput:
        n = obs.shape[0]
        return AgentOutput(torch.zeros(n, self.num_actions, device=obs.device), torch.zeros(n, device=obs.device))

