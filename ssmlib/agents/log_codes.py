"""RMSprop's square averages stored as b-bit codes of log2(v): how an I2A campaign run's committed state fits
the repository (``studies.i2a_campaign``, ``state_average_bits``).

RMSprop divides each gradient by sqrt(v) + eps. What matters after a restart is that factor, so v is coded on a
log scale, each tensor on its own range [lo, hi] = [min log2 max(v, floor), max log2 v], with ``2^bits`` evenly
spaced levels:

    code = round((log2 max(v, floor) - lo) / (hi - lo) * (2^bits - 1))
    v_hat = 2^(lo + code * (hi - lo) / (2^bits - 1))

The floor is (eps / 100)^2: below it sqrt(v) moves the step's denominator by under 1%. Measured on the campaign's
committed model-free states (``scripts/state_quantization.py``), 8 bits leave the restarted step size within
[0.974, 1.028] of the uncoded one for every parameter.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .a2c import RMSPROP_EPS

FLOOR = (RMSPROP_EPS / 100) ** 2
"""Smallest value coded; anything below decodes to it (its sqrt is 1% of eps)."""
RANGE_PREFIX = "log2_range."
"""A coded tensor ``k`` is stored as uint8 codes under ``k`` and its float32 [lo, hi] under ``RANGE_PREFIX + k``."""


def encode(v: Tensor, bits: int) -> tuple[Tensor, Tensor]:
    """``(codes, [lo, hi])`` of the non-negative tensor ``v``: uint8 codes of its shape, float32 range."""
    if not 1 <= bits <= 8:
        raise ValueError(f"bits must be 1..8 (uint8 codes), not {bits}")
    log_v = torch.log2(v.float().clamp_min(FLOOR))
    lo, hi = log_v.min(), log_v.max()
    levels = 2**bits - 1
    codes = torch.round((log_v - lo) / (hi - lo).clamp_min(1e-12) * levels)  # level of each log2(v)
    return codes.to(torch.uint8), torch.stack([lo, hi]).float()


def decode(codes: Tensor, log2_range: Tensor, bits: int) -> Tensor:
    """float32 v_hat = 2^(lo + code (hi - lo) / (2^bits - 1))."""
    lo, hi = log2_range.float()
    return torch.exp2(lo + codes.float() * (hi - lo) / (2**bits - 1))


def step_factors(v: Tensor, bits: int) -> Tensor:
    """(sqrt(v) + eps) / (sqrt(v_hat) + eps) per element: how much a restart from coded ``v`` scales each step."""
    v_hat = decode(*encode(v, bits), bits)
    return ((v.float().sqrt() + RMSPROP_EPS) / (v_hat.sqrt() + RMSPROP_EPS)).flatten()


def is_average(key: str) -> bool:
    """An optimiser state tensor that is RMSprop's square average."""
    return key.startswith("optim.") and key.endswith(".square_avg")


def encode_averages(tensors: dict[str, Tensor], bits: int) -> dict[str, Tensor]:
    """``tensors`` with every square average replaced by its codes and range (``RANGE_PREFIX``)."""
    out = {}
    for k, v in tensors.items():
        if is_average(k) and v.dim() > 0:
            out[k], out[RANGE_PREFIX + k] = encode(v, bits)
        else:
            out[k] = v
    return out


def decode_averages(tensors: dict[str, Tensor], bits: int) -> dict[str, Tensor]:
    """The inverse of ``encode_averages``: float32 averages, ranges removed."""
    out = {}
    for k, v in tensors.items():
        if k.startswith(RANGE_PREFIX):
            continue
        out[k] = decode(v, tensors[RANGE_PREFIX + k], bits) if RANGE_PREFIX + k in tensors else v
    return out
