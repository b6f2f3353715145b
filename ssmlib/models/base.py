"""The one interface every environment model implements (training, evaluation, widgets, speed, I2A).

A model holds a :class:`State` (a small dataclass of tensors) and offers:

* ``initial_state(context)``: 3 real frames -> state;
* ``step(state, a)``: one prior transition (imagination), ``observe(state, a, o_t)``: one filtering
  (posterior) step that sees the real frame;
* ``decode(state)``: frame and reward logits; ``imagine(state, actions)``: a whole batched rollout;
* ``score(batch, K)`` and ``loss(batch)``: per-step log-likelihood terms and the training objective.

Batch format (from the data pipeline, already on the device), ``C = 3`` context frames, ``T`` targets:

* ``frames``  float ``(B, C+T, 3, H, W)`` in [0, 1];
* ``actions`` int64 ``(B, C+T-1)`` (jumpy: ``(B, C+T-1, k)``): ``actions[:, i]`` is taken at frame i
  and leads to frame i+1;
* ``rewards`` float ``(B, C+T-1)``: the reward of ``actions[:, i]`` (summed over a jumpy chunk).

Target frame ``C+j`` is predicted with action ``actions[:, C-1+j]`` and reward ``rewards[:, C-1+j]``.
Pixels are independent Bernoulli variables on intensities in [0, 1]:
``log p(o | ...) = -BCEWithLogits(logits, o)`` summed over pixels and channels (nats per frame).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import CONTEXT, REWARD_STATES, ModelConfig
from ..errors import SsmlibError
from .blocks import CategoricalRewardHead, RewardHead, encode_reward, decode_reward, gaussian_kl, scaled, tile_actions

REWARD_HEADS = ("categorical", "bits", "categorical-action")
"""``ModelConfig.reward_head`` values: ``categorical`` p(r_t | s_t) over the data's reward values;
``bits`` the paper caption's Bernoulli bits (old checkpoints); ``categorical-action`` p(r_t | s_t, a_{t-1})
**[ours]**, the categorical head that also reads the action that led to s_t (results/reward_head/)."""


@dataclass
class State:
    """What a model carries between steps; fields a model does not use stay ``None``."""

    s: Tensor | None = None
    """(B, Cs, h, w) deterministic state s_t (SSMs) or recurrent/transition map h_t (AR, RAR)."""
    z: Tensor | None = None
    """(B, Cz, h, w) the last latent z_t (dSSM-VAE, sSSM)."""
    frames: Tensor | None = None
    """AR/RAR only: (B, k, 3, H, W) the last k frames in [0, 1] (real or predicted)."""
    enc: Tensor | None = None
    """AR/RAR only: (B, k, E, h, w) encodings of ``frames`` (a cache: each frame is encoded once)."""
    a: Tensor | None = None
    """``reward_head="categorical-action"`` only: (B, k*A, h, w) the tiled action that led to this state,
    which the reward head reads beside ``s`` (None before the first step and for the other heads)."""

    def map(self, fn: Callable[[Tensor], Tensor]) -> "State":
        """A new State with ``fn`` applied to every tensor (e.g. ``lambda t: t.repeat_interleave(9, 0)``)."""
        return State(**{f.name: (None if (v := getattr(self, f.name)) is None else fn(v))
                        for f in dataclasses.fields(self)})

    def detach(self) -> "State":
        return self.map(Tensor.detach)


@dataclass
class Rollout:
    """The output of :meth:`EnvironmentModel.imagine` for ``T`` steps."""

    features: Tensor
    """(B, T, C, h, w) latent features per step: s_t, and z_t concatenated for latent models (I2A reads these)."""
    reward_logits: Tensor
    """(B, T, R) reward logits: one per reward value (categorical head), or the Bernoulli logits of the
    reward bits (legacy ``bits`` head); read them through the model's ``reward_*`` methods."""
    frame_logits: Tensor | None = None
    """(B, T, 3, H, W) Bernoulli logits of the frames, when ``decode=True``."""
    final: State | None = None
    """The state after the last step (to continue imagining)."""


def logmeanexp(x: Tensor, dim: int = 0) -> Tensor:
    """log(mean(exp(x))) along ``dim``, stably."""
    return torch.logsumexp(x, dim) - math.log(x.shape[dim])


class EnvironmentModel(nn.Module):
    """Base class: shared input checks, the reward head, ``score`` and ``loss`` on top of ``_terms``.

    Subclasses implement ``initial_state``, ``step``, ``observe``, ``decode``, ``imagine`` and
    ``_terms(frames, actions)``, the teacher-forced / filtering pass over a batch, returning
    ``frame_logits (N,T,3,H,W)``, ``reward_logits (N,T,nbits)`` and, for latent models, ``kl``,
    ``log_pz``, ``log_qz`` ``(N,T)``.
    """

    name: str
    stochastic: bool = False
    """True when imagination with ``sample=True`` draws random numbers."""
    latent: bool = False
    """True when the model has latent variables z (its ``score`` draws samples from the posterior)."""

    def __init__(self, cfg: ModelConfig, *, latent: bool = False, stochastic: bool = False):
        super().__init__()
        self.latent, self.stochastic = latent, stochastic
        if cfg.height % 8 or cfg.width % 8 or cfg.height <= 0 or cfg.width <= 0:
            raise SsmlibError(f"frame size {cfg.height}x{cfg.width} must be positive multiples of 8")
        if cfg.num_actions < 1 or cfg.jump < 1 or cfg.channel_scale <= 0 or cfg.reward_bits < 1:
            raise SsmlibError("num_actions, jump, reward_bits must be >= 1 and channel_scale > 0")
        if cfg.reward_head not in REWARD_HEADS:
            raise SsmlibError(f"reward_head {cfg.reward_head!r}: choose {', '.join(REWARD_HEADS)}")
        if cfg.reward_state not in REWARD_STATES:
            raise SsmlibError(f"reward_state {cfg.reward_state!r}: choose {', '.join(REWARD_STATES)}")
        self.cfg = cfg
        self.name = cfg.model
        self.h, self.w = cfg.height // 8, cfg.width // 8
        self.action_channels = cfg.num_actions * cfg.jump
        sc = cfg.channel_scale
        self.state_channels = scaled(cfg.state_channels, sc)
        self.z_channels = scaled(cfg.z_channels, sc) if self.latent else 0
        self.embed_channels = scaled(64, sc)
        self.action_reward = cfg.reward_head == "categorical-action"
        """True when the reward head reads the action that led to the state (``State.a``)."""
        if cfg.reward_head == "bits":
            self.reward_head = RewardHead(self.state_channels, self.h, self.w, cfg.reward_bits, sc)
        else:  # no values yet (a model built outside ``train``): sign classes until the data says more
            self.reward_head = CategoricalRewardHead(
                self.state_channels, self.h, self.w, cfg.reward_values or (-1.0, 0.0, 1.0), sc,
                action_channels=self.action_channels if self.action_reward else 0)
        self.reward_dims = self.reward_head.linear.out_features
        self.nbits = self.reward_dims  # the name agents used for the reward head's width
        self.register_buffer("reward_class_weights", torch.ones(self.reward_dims), persistent=False)
        # log w_c (0 for a class of weight 0: absent from the training data), what every reading subtracts
        self.register_buffer("reward_log_weights", torch.zeros(self.reward_dims), persistent=False)
        if cfg.reward_class_weights and self.categorical_reward:
            self.set_reward_class_weights(cfg.reward_class_weights)

    # ----- the reward: one reading of the reward logits for every head ---------------------------
    @property
    def categorical_reward(self) -> bool:
        return isinstance(self.reward_head, CategoricalRewardHead)

    def set_reward_class_weights(self, weights) -> None:
        """Loss weights of the categorical reward classes (``train`` sets them from the data; a checkpoint
        keeps them in ``ModelConfig.reward_class_weights``)."""
        w = torch.as_tensor(weights, dtype=torch.float32, device=self.reward_class_weights.device)
        if w.shape != self.reward_class_weights.shape:
            raise SsmlibError(f"{len(w)} reward class weights for {self.reward_dims} classes")
        self.reward_class_weights.copy_(w)
        self.reward_log_weights.copy_(torch.where(w > 0, w, torch.ones_like(w)).log())
        self.cfg.reward_class_weights = tuple(float(x) for x in weights)  # one source: a checkpoint saved from here keeps them

    def calibrated_reward_logits(self, reward_logits: Tensor) -> Tensor:
        """Float logits ``(..., R)`` whose softmax estimates p(r | s): the head was trained with the class-weighted
        cross-entropy, whose optimum is ``p_w(c) = w_c p(c) / sum_c' w_c' p(c')``, so ``l_c - log w_c`` undoes
        it (ours). A class of weight 0 (absent from the training data) keeps its logit. Bits: unchanged."""
        logits = reward_logits.float()
        return logits - self.reward_log_weights if self.categorical_reward else logits

    def reward_log_prob(self, reward_logits: Tensor, rewards: Tensor, calibrated: bool = True) -> Tensor:
        """log p(r) in nats ``(...)`` of rewards ``(...)`` under reward logits ``(..., R)``.

        Categorical: ``log softmax(l)[c(r)]`` with c(r) the nearest reward value, of the calibrated logits
        (``calibrated_reward_logits``; the training loss reads the raw ones: ``calibrated=False``); bits: the
        sum of the bits' Bernoulli log-likelihoods."""
        logits = self.calibrated_reward_logits(reward_logits) if calibrated else reward_logits.float()
        if self.categorical_reward:  # a one-hot product, not gather: inductor's gather backward gave NaN (H200)
            onehot = F.one_hot(self.reward_head.classes(rewards), self.reward_dims).to(logits.dtype)
            return (logits.log_softmax(-1) * onehot).sum(-1)
        bits = encode_reward(rewards, self.cfg.reward_bits)
        return -F.binary_cross_entropy_with_logits(logits, bits, reduction="none").sum(-1)

    def reward_probs(self, reward_logits: Tensor) -> Tensor:
        """What an agent reads of a predicted reward ``(..., R)``: calibrated class probabilities (bits: each bit's)."""
        logits = self.calibrated_reward_logits(reward_logits)
        return logits.softmax(-1) if self.categorical_reward else torch.sigmoid(logits)

    def reward_p_nonzero(self, reward_logits: Tensor) -> Tensor:
        """P(r != 0) ``(...)``: 1 - p(class 0), calibrated; bits: 1 - prod of P(magnitude bit = 0)."""
        logits = self.calibrated_reward_logits(reward_logits)
        if self.categorical_reward:
            return 1.0 - logits.softmax(-1)[..., self.reward_head.zero_class]
        return 1.0 - torch.sigmoid(-logits[..., 1:]).prod(-1)

    def reward_expected(self, reward_logits: Tensor) -> Tensor:
        """The predicted reward ``(...)``: the calibrated categorical's mean ``sum_c p_c v_c`` (the class weights'
        inflation of rare large rewards divided out); bits: the most likely."""
        logits = self.calibrated_reward_logits(reward_logits)
        if self.categorical_reward:
            return logits.softmax(-1) @ self.reward_head.values
        return decode_reward(logits)

    def _reward_correct(self, reward_logits: Tensor, rewards: Tensor) -> Tensor:
        logits = self.calibrated_reward_logits(reward_logits)
        if self.categorical_reward:
            return logits.argmax(-1) == self.reward_head.classes(rewards)
        return ((logits > 0) == (encode_reward(rewards, self.cfg.reward_bits) > 0.5)).all(-1)

    def reward_logits(self, s: Tensor, a: Tensor | None = None) -> Tensor:
        """Reward logits ``(B, R)`` of states ``s`` ``(B, C, h, w)``; ``a``: the tiled actions ``(B, k*A, h, w)``
        that led to them, which only an action-aware head (``categorical-action``) reads."""
        return self.reward_head(s, a) if self.action_reward else self.reward_head(s)

    @property
    def feature_channels(self) -> int:
        """Channels of ``Rollout.features``."""
        return self.state_channels + self.z_channels

    # ----- the interface (subclasses) ---------------------------------------------------------------
    def initial_state(self, context_frames: Tensor) -> State:
        """The state after the context frames ``(B, 3, 3, H, W)`` in [0, 1]."""
        raise NotImplementedError

    def step(self, state: State, action: Tensor, *, sample: bool = True) -> State:
        """One prior transition (imagination) with actions ``(B,)`` (jumpy: ``(B, k)``)."""
        raise NotImplementedError

    def observe(self, state: State, action: Tensor, frame: Tensor) -> tuple[State, dict]:
        """One filtering step with the real frame o_t ``(B, 3, H, W)``; dict: ``kl``, ``log_q``, ``log_p`` ``(B,)``."""
        raise NotImplementedError

    def decode(self, state: State) -> tuple[Tensor, Tensor]:
        """Frame logits ``(B, 3, H, W)`` and reward logits ``(B, nbits)`` of a state."""
        raise NotImplementedError

    def imagine(self, state: State, actions: Tensor, *, decode: bool = False, sample: bool = True) -> Rollout:
        """A rollout of ``T`` prior steps with actions ``(B, T)`` (jumpy: ``(B, T, k)``)."""
        raise NotImplementedError

    def _terms(self, frames: Tensor, actions: Tensor) -> dict[str, Tensor]:
        raise NotImplementedError

    # ----- shared helpers ---------------------------------------------------------------------------
    def tile(self, action: Tensor, dtype: torch.dtype | None = None) -> Tensor:
        """One step's actions ``(B,)`` / ``(B, k)`` -> tiled one-hot ``(B, k*A, h, w)``."""
        k, A = self.cfg.jump, self.cfg.num_actions
        want = (1 if k == 1 else 2) + action.is_floating_point()
        if action.dim() != want or (k > 1 and action.shape[1] != k) or (
                action.is_floating_point() and action.shape[-1] != A):
            shape = ("(B,)" if k == 1 else f"(B, {k})") if not action.is_floating_point() else (
                f"(B, {A})" if k == 1 else f"(B, {k}, {A})")
            raise SsmlibError(f"{self.name}: one step's actions must be {shape}, got {tuple(action.shape)}")
        return tile_actions(action, A, self.h, self.w, dtype)

    def _check_frames(self, frames: Tensor, what: str) -> None:
        H, W = self.cfg.height, self.cfg.width
        if frames.shape[-3:] != (3, H, W):
            raise SsmlibError(f"{what} must end in (3, {H}, {W}), got {tuple(frames.shape)}")

    def _check_context(self, context: Tensor) -> None:
        self._check_frames(context, "context frames")
        if context.dim() != 5 or context.shape[1] != CONTEXT:
            raise SsmlibError(f"context frames must be (B, {CONTEXT}, 3, H, W), got {tuple(context.shape)}")

    def _check_actions(self, actions: Tensor, T: int | None = None) -> None:
        k = self.cfg.jump
        nd = (2 if k == 1 else 3) + actions.is_floating_point()
        if actions.dim() != nd or (T is not None and actions.shape[1] != T) or (k > 1 and actions.shape[2] != k):
            want = "(B, T)" if k == 1 else f"(B, T, {k})"
            raise SsmlibError(f"{self.name}: actions must be {want}"
                              f"{'' if T is None else f' with T={T}'}, got {tuple(actions.shape)}")

    def _unpack(self, batch: dict) -> tuple[Tensor, Tensor, Tensor, int]:
        missing = [key for key in ("frames", "actions", "rewards") if key not in batch]
        if missing:
            raise SsmlibError(f"batch lacks {', '.join(missing)}")
        frames, actions, rewards = batch["frames"], batch["actions"], batch["rewards"]
        self._check_frames(frames, "batch['frames']")
        if frames.dim() != 5 or frames.shape[1] <= CONTEXT:
            raise SsmlibError(f"batch['frames'] must be (B, {CONTEXT}+T, 3, H, W) with T >= 1, got {tuple(frames.shape)}")
        T = frames.shape[1] - CONTEXT
        self._check_actions(actions, CONTEXT + T - 1)
        if tuple(rewards.shape) != tuple(actions.shape[:2]):
            raise SsmlibError(f"batch['rewards'] must be {tuple(actions.shape[:2])}, got {tuple(rewards.shape)}")
        return frames, actions, rewards, T

    def score(self, batch: dict, num_samples: int = 1) -> dict[str, Tensor]:
        """Teacher-forced (AR, RAR, dSSM-DET) or filtering (latent models) scoring of a batch.

        Returns per-step tensors ``(K, B, T)``: ``log_px`` (nats, summed over pixels and channels),
        ``log_pz`` and ``log_qz`` (log densities of the sampled z, summed over its dimensions; zeros
        without latents), ``kl`` (analytic), ``reward_logp``, ``reward_correct`` (bool: all bits
        right) and ``frame_mse`` (of the mean frame ``sigmoid(logits)``). The importance-weighted bound
        is ``logmeanexp_k sum_t (log_px + log_pz - log_qz)``; the ELBO is ``sum_t (log_px - kl)``.
        """
        frames, actions, rewards, T = self._unpack(batch)
        B, K = frames.shape[0], int(num_samples)
        if K < 1:
            raise SsmlibError(f"num_samples must be >= 1, got {num_samples}")
        if self.latent and K > 1:  # K posterior samples in one batched pass
            frames = frames.repeat(K, 1, 1, 1, 1)
            actions = actions.repeat(K, *([1] * (actions.dim() - 1)))
            rewards = rewards.repeat(K, 1)
        out = self._likelihoods(self._terms(frames, actions), frames, rewards, T)
        n = K if self.latent else 1
        return {key: v.reshape(n, B, T).expand(K, B, T) for key, v in out.items()}

    def frame_terms(self, frames: Tensor, actions: Tensor) -> dict[str, Tensor]:
        """The model's teacher-forced / filtering pass and each target frame's log-likelihood ``log_px``
        ``(N, T)``: the heavy, convolutional part of the loss, which ``train`` compiles on CUDA
        (``compile_frame_terms``); the reward and KL terms stay eager (inductor on an H200 gave NaN
        gradients when they were compiled with it)."""
        terms = self._terms(frames, actions)
        target = frames[:, CONTEXT:]
        # log p(o_t | s_t, z_t) = sum over pixels and channels of o log p + (1 - o) log(1 - p)
        terms["log_px"] = -F.binary_cross_entropy_with_logits(terms["frame_logits"].float(), target,
                                                              reduction="none").sum((-3, -2, -1))
        return terms

    def compile_frame_terms(self, enable: bool = True, **compile_options) -> None:
        """Let ``loss`` call a ``torch.compile``d ``frame_terms`` (or the plain one again); keyword
        arguments go to ``torch.compile`` (``backend``, ``mode``, ``options``: scripts/check_step.py's
        variants use them to find which part of compilation breaks the gradient)."""
        self.__dict__["_frame_terms_fn"] = torch.compile(self.frame_terms, **compile_options) if enable else None

    def _frame_terms(self, frames: Tensor, actions: Tensor) -> dict[str, Tensor]:
        fn = self.__dict__.get("_frame_terms_fn")
        return (fn or self.frame_terms)(frames, actions)

    def _likelihoods(self, terms: dict, frames: Tensor, rewards: Tensor, T: int, scoring: bool = True
                     ) -> dict[str, Tensor]:
        target = frames[:, CONTEXT:]
        logits = terms["frame_logits"].float()
        log_px = terms["log_px"] if "log_px" in terms else -F.binary_cross_entropy_with_logits(
            logits, target, reduction="none").sum((-3, -2, -1))
        # the mean frame's squared error and the reward's accuracy: for scoring (the loss needs neither)
        frame_mse = (torch.sigmoid(logits) - target).square().mean((-3, -2, -1)) if scoring else None
        r = rewards[:, CONTEXT - 1:]
        rl = terms["reward_logits"]
        reward_logp = self.reward_log_prob(rl, r, calibrated=scoring)  # the loss weighs the raw head's
        correct = self._reward_correct(rl, r) if scoring else None
        zeros = torch.zeros_like(log_px)
        return {
            "log_px": log_px,
            "log_pz": terms.get("log_pz", zeros),
            "log_qz": terms.get("log_qz", zeros),
            "kl": terms.get("kl", zeros),
            "reward_logp": reward_logp,
            "reward_correct": correct,
            "frame_mse": frame_mse,
        }

    def loss(self, batch: dict, kl_weight: float | Tensor = 1.0, reward_weight: float = 1.0,
             kl_balance: float = 0.5, free_nats: float = 0.0) -> dict[str, Tensor]:
        """Training terms in nats PER FRAME, averaged over batch and time (one posterior sample):

        ``loss = recon + kl_weight * kl_train + reward_weight * reward_train`` (backpropagate this; the
        reported terms are unweighted), ``recon = -E_q log p(o_t|s_t,z_t)``,
        ``kl = KL(q(z_t|s_{t-1},a_{t-1},o_t) || p(z_t|s_{t-1},a_{t-1}))`` (0 without latents),
        ``reward = -log p(r_t|s_t)``, ``elbo = -(recon + kl)``.

        ``kl_train`` (ours): per frame, ``a KL(sg(q)||p) + (1-a) KL(q||sg(p))`` with ``a = kl_balance``
        (the value is the KL; only the gradient is shared out), and no gradient on a frame whose KL is
        below ``free_nats``. ``reward_train``: the class-weighted cross-entropy (categorical head;
        ``set_reward_class_weights``), else the reward NLL.
        """
        frames, actions, rewards, T = self._unpack(batch)
        terms = self._frame_terms(frames, actions)
        t = self._likelihoods(terms, frames, rewards, T, scoring=False)
        recon, reward = -t["log_px"].mean(), -t["reward_logp"].mean()
        reward_train = reward
        if self.categorical_reward:
            onehot = F.one_hot(self.reward_head.classes(rewards[:, CONTEXT - 1:]), self.reward_dims)
            w = (onehot.float() * self.reward_class_weights).sum(-1)  # (N, T): each step's class weight
            reward_train = -(w * t["reward_logp"]).sum() / w.sum()
        # no reduction of a zeros tensor: Triton 3.6 (torch 2.11, H200) fails to compile a sum of a
        # constant splat ('PassManager::run failed'), seen with torch.compile of the det. models' loss
        kl = terms["kl"].mean() if "kl" in terms else recon.new_zeros(())
        kl_train = kl
        if "q_mean" in terms:
            qm, qs, pm, ps = terms["q_mean"], terms["q_std"], terms["p_mean"], terms["p_std"]
            # KL balancing: the prior moves towards the posterior more than the posterior towards the prior
            def kl_nt(mq, sq, mp, sp):  # (N, T, Cz, h, w) -> (N, T)
                return gaussian_kl(mq.flatten(0, 1), sq.flatten(0, 1), mp.flatten(0, 1), sp.flatten(0, 1)
                                   ).view(qm.shape[:2])

            bal = (kl_balance * kl_nt(qm.detach(), qs.detach(), pm, ps)
                   + (1 - kl_balance) * kl_nt(qm, qs, pm.detach(), ps.detach()))
            # free nats: a frame's KL below the threshold gets no gradient (its value still counts)
            kl_train = torch.where(terms["kl"] > free_nats, bal, bal.detach()).mean()
        return {
            "loss": recon + kl_weight * kl_train + reward_weight * reward_train,
            "recon": recon,
            "kl": kl,
            "reward": reward,
            "elbo": -(recon + kl),
        }

    def decode_reward(self, reward_logits: Tensor) -> Tensor:
        """The predicted reward of reward logits (any leading shape): ``reward_expected``."""
        return self.reward_expected(reward_logits)
