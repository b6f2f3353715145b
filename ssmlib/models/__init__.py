"""The five environment models of Buesing et al. 2018 behind one interface (:class:`EnvironmentModel`).

``build_model(cfg)`` builds ``cfg.model`` (one of :data:`MODEL_NAMES`); a jumpy model is any of them
with ``cfg.jump = k > 1`` (k actions per transition, as k*A tiled one-hot channels).
"""

from __future__ import annotations

import difflib

from ..config import MODEL_NAMES, ModelConfig
from ..errors import SsmlibError
from .autoregressive import AutoregressiveModel
from .base import CONTEXT, EnvironmentModel, Rollout, State, logmeanexp
from .blocks import decode_reward, encode_reward, tile_actions
from .state_space import StateSpaceModel

__all__ = [
    "MODEL_NAMES", "CONTEXT", "EnvironmentModel", "State", "Rollout", "StateSpaceModel",
    "AutoregressiveModel", "build_model", "count_parameters", "encode_reward", "decode_reward",
    "tile_actions", "logmeanexp",
]


def build_model(cfg: ModelConfig) -> EnvironmentModel:
    """The environment model named by ``cfg.model``; an unknown name raises SsmlibError with the choices."""
    if cfg.model in ("AR", "RAR"):
        return AutoregressiveModel(cfg)
    if cfg.model in ("dSSM-DET", "dSSM-VAE", "sSSM"):
        return StateSpaceModel(cfg)
    close = difflib.get_close_matches(str(cfg.model), MODEL_NAMES, n=2, cutoff=0.4)
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    raise SsmlibError(f"unknown model {cfg.model!r}{hint}; choose one of {', '.join(MODEL_NAMES)}")


def count_parameters(model) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
