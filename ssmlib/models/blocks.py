"""The paper's building blocks, one small ``nn.Module`` each (Buesing et al. 2018, appendix figures).

Every block is fully convolutional and works on maps at 1/4 or 1/8 of the frame size. Channel counts
are the paper's, times ``channel_scale`` (rounded, at least 4): see :func:`scaled`. Where the paper's
captions are silent the choice is marked **[ours]**.

Shapes: frames are ``(B, 3, H, W)`` in [0, 1]; the state ``s`` and latent ``z`` are
``(B, C, H/8, W/8)``; actions are integer ids ``(B,)`` (or ``(B, k)`` for a jumpy model that takes
``k`` env steps per transition).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "scaled", "space_to_depth", "depth_to_space", "tile_actions", "ConvStack", "ResConv",
    "PoolAndInject", "Encoder", "InitialState", "Transition", "GaussianHead", "Decoder",
    "RewardHead", "CategoricalRewardHead", "encode_reward", "decode_reward", "gaussian_kl", "gaussian_log_prob",
]


def scaled(n: int, scale: float, multiple: int = 1) -> int:
    """The paper's channel count ``n`` times ``scale``, rounded, at least 4, rounded up to ``multiple``."""
    c = max(4, int(round(n * scale)))
    return multiple * math.ceil(c / multiple)


def space_to_depth(x: Tensor, r: int) -> Tensor:
    """space-to-depth(r): ``(B, C, H, W) -> (B, C*r*r, H/r, W/r)`` (``pixel_unshuffle``)."""
    return F.pixel_unshuffle(x, r)


def depth_to_space(x: Tensor, r: int) -> Tensor:
    """depth-to-space(r): ``(B, C*r*r, H, W) -> (B, C, H*r, W*r)`` (``pixel_shuffle``)."""
    return F.pixel_shuffle(x, r)


def tile_actions(actions: Tensor, num_actions: int, h: int, w: int, dtype: torch.dtype | None = None) -> Tensor:
    """Actions as one-hot maps tiled over the state grid, ``(B, k*A, h, w)``.

    ``actions`` is ``(B,)`` or ``(B, k)`` of integer ids (a jumpy model's chunk of k actions: channel
    ``j*A + a`` is on when the j-th action of the chunk is ``a``). A floating tensor is read as
    one-hot vectors or action probabilities with a trailing ``A`` dimension, ``(B, A)`` or
    ``(B, k, A)``; gradients then flow into it (a relaxation for learning to query) **[ours]**.
    Broadcasting only: ``expand`` makes a view, the concatenation downstream materialises it.
    """
    if actions.is_floating_point():
        onehot = actions
    else:
        onehot = F.one_hot(actions, num_actions)
    onehot = onehot.reshape(onehot.shape[0], -1)
    if dtype is not None:
        onehot = onehot.to(dtype)
    return onehot[:, :, None, None].expand(-1, -1, h, w)


def _conv(cin: int, cout: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=k // 2)


class ConvStack(nn.Module):
    """conv_stack(k1, c1, k2, c2, k3, c3), stride 1, same padding [paper, figure captions]:

    .. math:: h_1 = \\mathrm{relu}(\\mathrm{conv}_{k_1,c_1}(x)),\\quad
              h_2 = \\mathrm{relu}(h_1 + \\mathrm{conv}_{k_2,c_2}(h_1)),\\quad
              \\mathrm{out} = \\mathrm{conv}_{k_3,c_3}(h_2)

    The residual ``h1 + conv(h1)`` needs ``c1 == c2`` (true of every stack in the paper).
    """

    def __init__(self, cin: int, k1: int, c1: int, k2: int, c2: int, k3: int, c3: int):
        super().__init__()
        if c1 != c2:
            raise ValueError(f"conv_stack needs c1 == c2 for its residual, got {c1} and {c2}")
        self.conv1, self.conv2, self.conv3 = _conv(cin, c1, k1), _conv(c1, c2, k2), _conv(c2, c3, k3)
        self.out_channels = c3

    def forward(self, x: Tensor) -> Tensor:
        h1 = F.relu(self.conv1(x))
        h2 = F.relu(h1 + self.conv2(h1))
        return self.conv3(h2)


class ResConv(nn.Module):
    """res_conv [paper]: ``x -> conv3x3,32 -> relu -> conv5x5,32 -> relu -> conv3x3,64``, plus ``x``.

    When ``x`` does not have the output's channel count (the transition's first res_conv reads
    ``concat(s, a, z)``; the second reads the pool-and-inject output) the skip is a 1x1 convolution
    **[ours]**.
    """

    def __init__(self, cin: int, cout: int, scale: float):
        super().__init__()
        c = scaled(32, scale)
        self.conv1, self.conv2, self.conv3 = _conv(cin, c, 3), _conv(c, c, 5), _conv(c, cout, 3)
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)
        self.out_channels = cout

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.conv2(F.relu(self.conv1(x))))
        return self.skip(x) + self.conv3(h)


class PoolAndInject(nn.Module):
    """pool-and-inject [paper]: ``x -> conv3x3,32 -> global max-pool -> tile to HxW -> concat with x``.

    Gives every position of the state a summary of the whole screen in one layer.
    Output channels: ``cin + 32*scale``.
    """

    def __init__(self, cin: int, scale: float):
        super().__init__()
        self.conv = _conv(cin, scaled(32, scale), 3)
        self.out_channels = cin + self.conv.out_channels

    def forward(self, x: Tensor) -> Tensor:
        pooled = self.conv(x).amax(dim=(2, 3), keepdim=True)
        return torch.cat([x, pooled.expand(-1, -1, x.shape[2], x.shape[3])], dim=1)


class Encoder(nn.Module):
    """Frame encoder e(o) [paper]: ``space-to-depth(4) -> conv_stack(3,16,5,16,3,64) -> space-to-depth(2)
    -> conv_stack(3,32,5,32,3,64) -> relu``. A 200x160x3 frame gives a 25x20x64 map.
    """

    def __init__(self, out_channels: int, scale: float):
        super().__init__()
        c16, c32, c64 = scaled(16, scale), scaled(32, scale), scaled(64, scale)
        self.stack1 = ConvStack(3 * 16, 3, c16, 5, c16, 3, c64)
        self.stack2 = ConvStack(c64 * 4, 3, c32, 5, c32, 3, out_channels)
        self.out_channels = out_channels

    def forward(self, frames: Tensor) -> Tensor:
        x = self.stack1(space_to_depth(frames, 4))
        return F.relu(self.stack2(space_to_depth(x, 2)))


class InitialState(nn.Module):
    """Initial state [paper]: ``concat(e(o_{-2}), e(o_{-1}), e(o_0)) -> conv_stack(1,64,3,64,3,64)``.

    Input: the encodings of the context frames concatenated along channels, ``(B, n*E, h, w)``.
    """

    def __init__(self, cin: int, cout: int, scale: float):
        super().__init__()
        c64 = scaled(64, scale)
        self.stack = ConvStack(cin, 1, c64, 3, c64, 3, cout)
        self.out_channels = cout

    def forward(self, encodings: Tensor) -> Tensor:
        return self.stack(encodings)


class Transition(nn.Module):
    """Transition [paper]: ``concat(s_{t-1}, tiled one-hot a_{t-1}, z_t) -> res_conv -> relu
    -> pool-and-inject -> res_conv`` giving s_t:

    .. math:: s_t = g(s_{t-1}, z_t, a_{t-1})

    (``z`` only for the sSSM; the deterministic models call it with ``z=None``.)
    """

    def __init__(self, cin: int, cout: int, scale: float):
        super().__init__()
        self.res1 = ResConv(cin, cout, scale)
        self.pool = PoolAndInject(cout, scale)
        self.res2 = ResConv(self.pool.out_channels, cout, scale)
        self.out_channels = cout

    def forward(self, s: Tensor, a: Tensor, z: Tensor | None = None) -> Tensor:
        x = torch.cat([s, a.to(s.dtype)] if z is None else [s, a.to(s.dtype), z.to(s.dtype)], dim=1)
        return self.res2(self.pool(F.relu(self.res1(x))))


class GaussianHead(nn.Module):
    """A diagonal Gaussian over z_t: ``concat(inputs) -> conv_stack(1,32,3,32,3,64)`` whose output is split
    into a mean and a pre-std, ``std = softplus(pre) + min_std`` [paper/repro].

    Prior: inputs ``(s_{t-1}, a_{t-1})``, :math:`p(z_t \\mid s_{t-1}, a_{t-1})`.
    Filtering posterior: inputs ``(prior mean, prior std, s_{t-1}, e(o_t), a_{t-1})``,
    :math:`q(z_t \\mid s_{t-1}, a_{t-1}, o_t)`.

    The last conv has ``2 * z_channels`` outputs (the two heads); with the paper's 32 latent channels
    that is the caption's 64 **[ours: the head layout]**.
    """

    def __init__(self, cin: int, z_channels: int, scale: float, min_std: float):
        super().__init__()
        c32 = scaled(32, scale)
        self.stack = ConvStack(cin, 1, c32, 3, c32, 3, 2 * z_channels)
        self.min_std = min_std

    def forward(self, *inputs: Tensor) -> tuple[Tensor, Tensor]:
        dtype = inputs[0].dtype
        mean, pre = self.stack(torch.cat([x.to(dtype) for x in inputs], dim=1)).chunk(2, dim=1)
        return mean, F.softplus(pre) + self.min_std


class Decoder(nn.Module):
    """Frame decoder p(o_t | s_t, z_t) [paper]: ``concat(s, z) -> conv_stack(1,32,5,32,3,64) -> depth-to-space(2)
    -> conv_stack(3,64,3,64,1,48) -> depth-to-space(4)``: Bernoulli logits of every pixel and colour
    channel, ``(B, 3, H, W)``. The 48 = 3 * 4 * 4 channels are not scaled.

    The last conv starts at 1/10 of PyTorch's default scale so the first logits are near 0, i.e. a
    near-uniform Bernoulli **[ours]**.
    """

    def __init__(self, cin: int, scale: float):
        super().__init__()
        c32, c64 = scaled(32, scale), scaled(64, scale)
        cmid = scaled(64, scale, multiple=4)
        self.stack1 = ConvStack(cin, 1, c32, 5, c32, 3, cmid)
        self.stack2 = ConvStack(cmid // 4, 3, c64, 3, c64, 1, 48)
        with torch.no_grad():
            self.stack2.conv3.weight.mul_(0.1)
            self.stack2.conv3.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        x = depth_to_space(self.stack1(x), 2)
        return depth_to_space(self.stack2(x), 4)


class RewardHead(nn.Module):
    """Reward from s_t only [paper caption; sizes ours]: ``conv3x3,16 -> relu -> flatten -> linear``
    giving Bernoulli logits of ``1 + bits`` bits: a sign bit, then the bits of ``|floor(r)|``
    (least significant first), clipped to ``2**bits - 1`` **[ours: sign bit, clipping]**.
    """

    def __init__(self, cin: int, h: int, w: int, bits: int, scale: float):
        super().__init__()
        c = scaled(16, scale)
        self.conv = _conv(cin, c, 3)
        self.linear = nn.Linear(c * h * w, 1 + bits)
        self.bits = bits

    def forward(self, s: Tensor) -> Tensor:
        return self.linear(F.relu(self.conv(s)).flatten(1))

    def encode(self, r: Tensor) -> Tensor:
        """Bit targets of rewards, see :func:`encode_reward`."""
        return encode_reward(r, self.bits)

    @staticmethod
    def decode(logits: Tensor) -> Tensor:
        """Most likely reward of bit logits, see :func:`decode_reward`."""
        return decode_reward(logits)


class CategoricalRewardHead(nn.Module):
    """p(r_t | s_t) as a categorical over the game's reward values **[ours]**: ``conv3x3,16 -> relu ->
    flatten -> linear`` giving one logit per value in ``values`` (taken from the training data by
    ``train``: the most frequent rewards, jumpy models' chunk sums included, 0 always among them).
    A reward outside ``values`` counts as its nearest value. This replaces the paper caption's
    Bernoulli bits, whose "all bits 0" decoding learned to predict 0 everywhere (92% of MsPacman steps).

    With ``action_channels > 0`` (``reward_head="categorical-action"``, **[ours]**) the head also reads the
    tiled one-hot action ``a_{t-1}`` that led to s_t: ``concat(s_t, a_{t-1}) -> conv3x3,16 -> relu ->
    flatten -> linear``. A pellet's reward depends on where a_{t-1} moves Pac-Man, and in this form the
    action is an input of the head itself rather than something the frame-trained state must carry.
    ``action_channels = 0`` keeps the old structure (and the old checkpoints' weights).
    """

    def __init__(self, cin: int, h: int, w: int, values, scale: float, action_channels: int = 0):
        super().__init__()
        vals = sorted({float(v) for v in values} | {0.0})
        c = scaled(16, scale)
        self.action_channels = action_channels
        self.conv = _conv(cin + action_channels, c, 3)
        self.linear = nn.Linear(c * h * w, len(vals))
        # not in the state dict: the values live in the model config (checkpoint JSON)
        self.register_buffer("values", torch.tensor(vals, dtype=torch.float32), persistent=False)
        self.zero_class = vals.index(0.0)

    def forward(self, s: Tensor, a: Tensor | None = None) -> Tensor:
        """Logits ``(B, R)`` of states ``(B, C, h, w)``; ``a``: the tiled action ``(B, k*A, h, w)`` that
        led to each state (required by an action-aware head, ignored otherwise)."""
        if self.action_channels:
            if a is None:
                raise ValueError("this reward head reads the action that led to the state: pass a")
            s = torch.cat([s, a.to(s.dtype)], dim=1)
        return self.linear(F.relu(self.conv(s)).flatten(1))

    def classes(self, r: Tensor) -> Tensor:
        """Index of the nearest value of each reward ``(...)`` -> int64 ``(...)``."""
        return (r.float().unsqueeze(-1) - self.values).abs().argmin(-1)


def reward_class_counts(counts: dict[float, int], values) -> list[int]:
    """Steps per reward class: each reward of ``{value: count}`` counts as its nearest class value."""
    n = [0] * len(values)
    for v, c in counts.items():
        n[min(range(len(values)), key=lambda i: abs(values[i] - v))] += c
    return n


def reward_values_from_counts(counts: dict[float, int], max_classes: int = 8, values=None
                              ) -> tuple[list[float], list[float]]:
    """The reward classes of a dataset and their loss weights, from ``{reward value: count}``.

    Keeps 0 and the ``max_classes - 1`` most frequent other values (or the given ``values``, e.g. a
    resumed run's). Weights: inverse square-root frequency of each class (rewards outside the kept
    values count as their nearest value), normalised to a mean of 1 over the data, so rare rewards
    count without a 1/frequency blow-up **[ours]**; a class absent from the data gets weight 0.
    """
    if values is None:
        if max_classes < 2:
            raise ValueError("max_classes must be >= 2")
        others = sorted((v for v in counts if v != 0.0), key=lambda v: (-counts[v], v))[:max_classes - 1]
        values = [0.0, *others]
    values = sorted({float(v) for v in values} | {0.0})
    n = reward_class_counts(counts, values)
    total = sum(n)
    raw = [(total / c) ** 0.5 if c else 0.0 for c in n]
    mean = sum(w * c for w, c in zip(raw, n)) / max(total, 1)
    return values, [w / mean if mean else 1.0 for w in raw]


def encode_reward(r: Tensor, bits: int) -> Tensor:
    """Rewards ``(...)`` -> float bit targets ``(..., 1 + bits)``: ``[r < 0, b_0, ..., b_{bits-1}]`` with
    ``|floor(r)| = sum_i b_i 2^i``, clipped to ``2**bits - 1``."""
    f = torch.floor(r)
    mag = f.abs().clamp(max=2**bits - 1).long()
    powers = torch.arange(bits, device=r.device)
    mbits = (mag.unsqueeze(-1) >> powers) & 1
    return torch.cat([(f < 0).unsqueeze(-1), mbits.bool()], dim=-1).float()


def decode_reward(logits: Tensor) -> Tensor:
    """Bit logits ``(..., 1 + bits)`` -> the most likely reward ``(...)`` (each bit thresholded at 0.5)."""
    on = logits > 0
    powers = 2.0 ** torch.arange(logits.shape[-1] - 1, device=logits.device, dtype=torch.float32)
    mag = (on[..., 1:].float() * powers).sum(-1)
    return torch.where(on[..., 0], -mag, mag)


_LOG_2PI = math.log(2 * math.pi)


def gaussian_log_prob(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """log N(x; mean, std^2) summed over all but the batch dimension, in float32, ``(B,)``."""
    x, mean, std = x.float(), mean.float(), std.float()
    lp = -0.5 * ((x - mean) / std) ** 2 - std.log() - 0.5 * _LOG_2PI
    return lp.flatten(1).sum(1)


def gaussian_kl(mq: Tensor, sq: Tensor, mp: Tensor, sp: Tensor) -> Tensor:
    """Analytic KL(N(mq, sq^2) || N(mp, sp^2)) summed over all but the batch dimension, float32, ``(B,)``:

    .. math:: \\log\\frac{\\sigma_p}{\\sigma_q} + \\frac{\\sigma_q^2 + (\\mu_q-\\mu_p)^2}{2\\sigma_p^2} - \\frac12
    """
    mq, sq, mp, sp = mq.float(), sq.float(), mp.float(), sp.float()
    kl = (sp / sq).log() + (sq**2 + (mq - mp) ** 2) / (2 * sp**2) - 0.5
    return kl.flatten(1).sum(1)
