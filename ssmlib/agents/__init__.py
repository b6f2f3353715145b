"""Agents that play the game and query the environment models: a model-free actor-critic, the
Imagination-Augmented Agent (I2A) with uniform, distilled and learned rollout policies, the copy-model
baseline, and any trained model as a gymnasium environment (``ImaginedVectorEnv``).

``python -m ssmlib agent train|eval|export|report|bench`` runs them; their config, ``AgentConfig`` with its
profiles and checks, is in ``ssmlib.config`` with every other config. The modules, by job:

* ``model_api.py`` -- what agents need of an environment model (``EnvModel``, ``LatentModel`` protocols);
* ``networks.py`` -- the agents (model-free, I2A, the copy model);
* ``envs.py`` -- where they act: the real game and ``ImaginedVectorEnv`` (``imagined_env.py``: one env);
* ``checkpoint.py`` -- an agent from its config or its checkpoint; saving and exporting checkpoints;
* ``a2c.py`` -- the learner: GAE, the losses and the training loop;
* ``evaluation.py`` -- scores of frozen weights;
* ``policy.py`` -- a trained agent as a data-collection policy;
* ``quick.py`` -- the quick-profile pieces of the book (the I2A study's report and bench:
  ``ssmlib.studies.i2a``);
* ``cli.py`` -- the command line.
"""

from .a2c import a2c_losses, distill_loss, gae, train_agent
from .checkpoint import build_agent, load_agent
from .cli import add_cli
from .envs import EpisodeTracker, ImaginedVectorEnv, make_agent_env, reset_env
from .evaluation import evaluate_agent
from .model_api import EnvModel, LatentModel
from .networks import CopyModel, I2AAgent, ModelFreeAgent, frames_from_obs
from .policy import AgentPolicy

__all__ = ["AgentPolicy", "CopyModel", "EnvModel", "EpisodeTracker", "I2AAgent", "ImaginedVectorEnv", "LatentModel",
           "ModelFreeAgent", "a2c_losses", "build_agent", "distill_loss", "evaluate_agent", "frames_from_obs", "gae",
           "load_agent", "make_agent_env", "reset_env", "train_agent"]
