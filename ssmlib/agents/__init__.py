"""Agents that play the game and query the environment models: a model-free actor-critic, the
Imagination-Augmented Agent (I2A) with uniform, distilled and learned rollout policies, the copy-model
baseline, and any trained model as a gymnasium environment (``ImaginedVectorEnv``).

``python -m ssmlib agent train|eval`` runs them; see ``a2c.py`` for the learner, ``networks.py`` for
the agents and ``envs.py`` for where they act.
"""

from .a2c import (AgentConfig, a2c_losses, agent_profile, build_agent, distill_loss, evaluate_agent, gae,
                  load_agent, train_agent)
from .envs import AgentPolicy, EpisodeTracker, ImaginedVectorEnv, make_agent_env, reset_env
from .networks import AGENTS, ROLLOUT_POLICIES, CopyModel, I2AAgent, ModelFreeAgent, frames_from_obs

__all__ = ["AGENTS", "AgentPolicy", "ROLLOUT_POLICIES", "AgentConfig", "CopyModel", "EpisodeTracker", "I2AAgent",
           "ImaginedVectorEnv", "ModelFreeAgent", "a2c_losses", "agent_profile", "build_agent", "distill_loss",
           "evaluate_agent", "frames_from_obs", "gae", "load_agent", "make_agent_env", "reset_env", "train_agent"]


def add_cli(subparsers) -> None:
    from .a2c import add_cli as _add

    _add(subparsers)
