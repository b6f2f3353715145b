"""State-space models: dSSM-DET, dSSM-VAE and sSSM, one class that differs only in where z goes.

=========  ===========================================  ==================================  ===============
model      transition                                   latent                              observation
=========  ===========================================  ==================================  ===============
dSSM-DET   :math:`s_t = g(s_{t-1}, a_{t-1})`              none                                p(o_t | s_t)
dSSM-VAE   :math:`s_t = g(s_{t-1}, a_{t-1})`              z_t ~ p(z_t | s_{t-1}, a_{t-1})     p(o_t | s_t, z_t)
sSSM       :math:`s_t = g(s_{t-1}, z_t, a_{t-1})`         z_t ~ p(z_t | s_{t-1}, a_{t-1})     p(o_t | s_t, z_t)
=========  ===========================================  ==================================  ===============

All three start from :math:`s_0 = \\mathrm{init}(e(o_{-2}), e(o_{-1}), e(o_0))` on 3 real frames and predict
the reward from s_t only. Training maximises (latent models) the filtering ELBO

.. math:: \\sum_t \\mathbb{E}_{q}[\\log p(o_t \\mid s_t, z_t) + \\log p(r_t \\mid s_t)]
          - \\mathrm{KL}(q(z_t \\mid s_{t-1}, a_{t-1}, o_t) \\,\\|\\, p(z_t \\mid s_{t-1}, a_{t-1}))

whose posterior sees the REAL frame o_t through the encoder, never the model's own prediction and never
future frames; dSSM-DET is trained by maximum likelihood. Imagination samples z from the prior (its mean
with ``sample=False``); dSSM-DET imagination is deterministic.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..config import ModelConfig
from ..errors import SsmlibError
from .base import CONTEXT, EnvironmentModel, Rollout, State
from .blocks import Decoder, Encoder, GaussianHead, InitialState, Transition, gaussian_kl, gaussian_log_prob

# model name -> (has a latent z, z feeds the transition)
KINDS = {"dSSM-DET": (False, False), "dSSM-VAE": (True, False), "sSSM": (True, True)}


class StateSpaceModel(EnvironmentModel):
    """dSSM-DET, dSSM-VAE or sSSM, chosen by ``cfg.model``."""

    def __init__(self, cfg: ModelConfig):
        if cfg.model not in KINDS:
            raise SsmlibError(f"StateSpaceModel builds {', '.join(KINDS)}, not {cfg.model!r}")
        latent, z_in_transition = KINDS[cfg.model]
        super().__init__(cfg, latent=latent, stochastic=latent)
        self.z_in_transition = z_in_transition
        sc, Cs, Cz, E, A = cfg.channel_scale, self.state_channels, self.z_channels, self.embed_channels, self.action_channels
        self.encoder = Encoder(E, sc)
        self.init = InitialState(CONTEXT * E, Cs, sc)
        self.transition = Transition(Cs + A + (Cz if z_in_transition else 0), Cs, sc)
        if latent:
            self.prior = GaussianHead(Cs + A, Cz, sc, cfg.min_std)
            self.posterior = GaussianHead(2 * Cz + Cs + E + A, Cz, sc, cfg.min_std)
        self.decoder = Decoder(Cs + Cz, sc)

    # ----- pieces -----------------------------------------------------------------------------------
    def _encode(self, frames: Tensor) -> Tensor:
        """e(o) of frames ``(B, n, 3, H, W)`` -> ``(B, n, E, h, w)`` in one batched call."""
        return self.encoder(frames.flatten(0, 1)).unflatten(0, frames.shape[:2])

    def _prior_z(self, s: Tensor, a: Tensor, sample: bool) -> Tensor:
        """z_t ~ p(z_t | s_{t-1}, a_{t-1}) (its mean when ``sample=False``)."""
        mean, std = self.prior(s, a)
        return mean.float() + std.float() * torch.randn_like(std, dtype=torch.float32) if sample else mean

    def _filter_z(self, s: Tensor, a: Tensor, e: Tensor, sample: bool = True) -> tuple[Tensor, dict]:
        """z_t ~ q(z_t | s_{t-1}, a_{t-1}, o_t) with e = e(o_t) of the REAL frame; KL and log densities.

        The posterior reads ``concat(prior mean, prior std, s_{t-1}, e(o_t), a_{t-1})``.
        """
        pm, ps = self.prior(s, a)
        qm, qs = self.posterior(pm, ps, s, e, a)
        z = qm.float() + qs.float() * torch.randn_like(qs, dtype=torch.float32) if sample else qm.float()
        info = {
            "kl": gaussian_kl(qm, qs, pm, ps),
            "log_q": gaussian_log_prob(z, qm, qs),
            "log_p": gaussian_log_prob(z, pm, ps),
            "q_mean": qm, "q_std": qs, "p_mean": pm, "p_std": ps,
        }
        return z, info

    def _next_s(self, s: Tensor, a: Tensor, z: Tensor | None) -> Tensor:
        return self.transition(s, a, z if self.z_in_transition else None)

    def _features(self, s: Tensor, z: Tensor | None) -> Tensor:
        if not self.latent:
            return s
        if z is None:  # a state that has not made a step yet (the initial state)
            z = s.new_zeros(s.shape[0], self.z_channels, self.h, self.w)
        return torch.cat([s, z.to(s.dtype)], dim=1)

    def features(self, state: State) -> Tensor:
        """The latent features of a state, as ``Rollout.features`` holds them: s_t (and z_t; zeros before
        the first step). What an agent reads (I2A's rollout encoder and rollout policy)."""
        return self._features(state.s, state.z)

    # ----- interface --------------------------------------------------------------------------------
    def initial_state(self, context_frames: Tensor) -> State:
        """:math:`s_0 = \\mathrm{init}(\\mathrm{concat}(e(o_{-2}), e(o_{-1}), e(o_0)))`; no z yet."""
        self._check_context(context_frames)
        return State(s=self.init(self._encode(context_frames).flatten(1, 2)))

    def step(self, state: State, action: Tensor, *, sample: bool = True) -> State:
        """Prior step: z_t ~ p(z_t | s_{t-1}, a_{t-1}) (latent models), then s_t = g(s_{t-1}, [z_t,] a_{t-1})."""
        a = self.tile(action, state.s.dtype)
        z = self._prior_z(state.s, a, sample) if self.latent else None
        return State(s=self._next_s(state.s, a, z), z=z, a=a if self.action_reward else None)

    def observe(self, state: State, action: Tensor, frame: Tensor) -> tuple[State, dict]:
        """Filtering step with the real frame: z_t ~ q(z_t | s_{t-1}, a_{t-1}, o_t), s_t = g(...).

        dSSM-DET has no posterior: it ignores the frame (kl = log_q = log_p = 0).
        Returns the new state and ``kl``, ``log_q``, ``log_p`` ``(B,)`` (and, latent models, the
        Gaussians' ``q_mean, q_std, p_mean, p_std``).
        """
        self._check_frames(frame, "frame")
        a = self.tile(action, state.s.dtype)
        if not self.latent:
            zeros = state.s.new_zeros(state.s.shape[0], dtype=torch.float32)
            return (State(s=self._next_s(state.s, a, None), a=a if self.action_reward else None),
                    {"kl": zeros, "log_q": zeros, "log_p": zeros})
        z, info = self._filter_z(state.s, a, self.encoder(frame))
        return State(s=self._next_s(state.s, a, z), z=z, a=a if self.action_reward else None), info

    def decode(self, state: State) -> tuple[Tensor, Tensor]:
        """p(o_t | s_t, z_t) logits ``(B, 3, H, W)`` and p(r_t | s_t) logits ``(B, nbits)`` (an action-aware
        head: p(r_t | s_t, a_{t-1}), with the action kept in ``state.a``)."""
        return self.decoder(self._features(state.s, state.z)), self.reward_logits(state.s, state.a)

    def imagine(self, state: State, actions: Tensor, *, decode: bool = False, sample: bool = True) -> Rollout:
        """T prior steps; only the transition (and prior) run inside the loop; reward head and decoder
        run once on all ``B*T`` states afterwards."""
        self._check_actions(actions)
        B, T = actions.shape[:2]
        s, z = state.s, state.z
        ss, zs, As = [], [], []
        a = state.a
        for t in range(T):
            a = self.tile(actions[:, t], s.dtype)
            if self.latent:
                z = self._prior_z(s, a, sample)
                zs.append(z)
            s = self._next_s(s, a, z)
            ss.append(s), As.append(a)
        S = torch.stack(ss, 1)
        F_ = torch.cat([S, torch.stack(zs, 1).to(S.dtype)], 2) if self.latent else S
        flat = F_.flatten(0, 1)
        reward = self.reward_logits(S.flatten(0, 1), torch.stack(As, 1).flatten(0, 1) if self.action_reward else None
                                    ).unflatten(0, (B, T))
        frames = self.decoder(flat).unflatten(0, (B, T)) if decode else None
        return Rollout(features=F_, reward_logits=reward, frame_logits=frames,
                       final=State(s=s, z=z, a=a if self.action_reward else None))

    def _terms(self, frames: Tensor, actions: Tensor) -> dict[str, Tensor]:
        """Filtering pass: s_0 from the context, then for each target t: z_t ~ q(. | s_{t-1}, a_{t-1}, o_t),
        s_t = g(s_{t-1}, [z_t,] a_{t-1}); decoder and reward head batched over all steps."""
        N, T = frames.shape[0], frames.shape[1] - CONTEXT
        # one encoder call: the context, and (latent models) every real target frame for the posterior
        e = self._encode(frames if self.latent else frames[:, :CONTEXT])
        s = self.init(e[:, :CONTEXT].flatten(1, 2))
        # reward_state="prior" (sSSM): the head reads s_t built with the prior's mean z instead, the state an
        # imagined step builds: the posterior's z saw o_t, whose score digits give the reward away
        prior_reward = self.z_in_transition and self.cfg.reward_state == "prior"
        ss, rs, zs, As, kl, lq, lp, dists = [], [], [], [], [], [], [], []
        for t in range(T):
            a = self.tile(actions[:, CONTEXT - 1 + t], s.dtype)
            As.append(a)
            z = None
            if self.latent:
                z, info = self._filter_z(s, a, e[:, CONTEXT + t])
                zs.append(z)
                kl.append(info["kl"]), lq.append(info["log_q"]), lp.append(info["log_p"])
                dists.append((info["q_mean"], info["q_std"], info["p_mean"], info["p_std"]))
                if prior_reward:  # s'_t = g(s_{t-1}, E_p[z_t], a_{t-1})
                    rs.append(self._next_s(s, a, info["p_mean"]))
            s = self._next_s(s, a, z)
            ss.append(s)
        S = torch.stack(ss, 1)
        R = torch.stack(rs, 1) if prior_reward else S
        F_ = torch.cat([S, torch.stack(zs, 1).to(S.dtype)], 2) if self.latent else S
        out = {
            "frame_logits": self.decoder(F_.flatten(0, 1)).unflatten(0, (N, T)),
            # step t's reward: read from s_t, the state that applied actions[:, C-1+t] (and that action)
            "reward_logits": self.reward_logits(R.flatten(0, 1), torch.stack(As, 1).flatten(0, 1)
                                                if self.action_reward else None).unflatten(0, (N, T)),
        }
        if self.latent:
            out.update(kl=torch.stack(kl, 1), log_qz=torch.stack(lq, 1), log_pz=torch.stack(lp, 1))
            # the Gaussians of every step (N, T, Cz, h, w), for the training loss's KL balancing
            out.update(zip(("q_mean", "q_std", "p_mean", "p_std"), (torch.stack(d, 1) for d in zip(*dists))))
        return out
