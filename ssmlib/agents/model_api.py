"""What the agents need from an environment model, named: two ``typing.Protocol`` classes.

* :class:`EnvModel` -- what :class:`~ssmlib.agents.envs.ImaginedVectorEnv` steps as a game: any trained
  environment model (``ssmlib.models``), state-space or autoregressive.
* :class:`LatentModel` -- what an I2A agent reads: the latent features of a state, the width of the
  reward head and the reward probabilities the rollout encoder is given. The state-space models
  (dSSM-DET, dSSM-VAE, sSSM) and the copy-model baseline (``CopyModel``) have it; the autoregressive
  models, which have no latent state, do not.

Both are ``runtime_checkable``: ``isinstance(model, LatentModel)`` is the check that an I2A's model has
every member listed here (methods, properties and plain attributes; torch submodules such as a model's
``decoder`` are not part of the check).
"""

from __future__ import annotations

from typing import Iterator, Protocol, runtime_checkable

from torch import Tensor, nn

from ..config import ModelConfig
from ..models.base import Rollout, State


@runtime_checkable
class EnvModel(Protocol):
    """An environment model as a game: 3 real frames -> state, then imagined steps with rewards."""

    cfg: ModelConfig
    """``height``, ``width``, ``num_actions`` and ``jump`` (actions per imagined step) are read."""

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]:
        """(torch) Where the model lives: the device of its first parameter."""
        ...

    def initial_state(self, context_frames: Tensor) -> State:
        """The state after the context frames ``(B, 3, 3, H, W)`` in [0, 1]."""
        ...

    def imagine(self, state: State, actions: Tensor, *, decode: bool = False, sample: bool = True) -> Rollout:
        """A rollout of ``T`` prior steps with actions ``(B, T)`` (jumpy: ``(B, T, k)``; one-hots allowed)."""
        ...

    def decode_reward(self, reward_logits: Tensor) -> Tensor:
        """The most likely reward of reward logits ``(..., R)``."""
        ...


@runtime_checkable
class LatentModel(EnvModel, Protocol):
    """An environment model with latent states an agent can read (I2A's and ``ImaginedVectorEnv(decode=False)``'s)."""

    h: int
    """Height of the latent feature maps."""
    w: int
    """Width of the latent feature maps."""
    nbits: int
    """Width of the reward logits (the reward head's outputs)."""

    @property
    def feature_channels(self) -> int:
        """Channels of ``features(state)`` and of ``Rollout.features``."""
        ...

    def features(self, state: State) -> Tensor:
        """The latent features ``(B, C, h, w)`` of a state."""
        ...

    def reward_probs(self, reward_logits: Tensor) -> Tensor:
        """What an agent reads of a predicted reward ``(..., R)``: probabilities of the same width."""
        ...
