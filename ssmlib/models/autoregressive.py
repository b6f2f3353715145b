"""Pixel-space models AR and RAR, built from the SAME encoder, initial-state, transition and decoder blocks
as the state-space models (so the speed comparison measures the cost of going through pixels, not
different networks). Only the name RAR is the paper's; both equations are ours.

* AR: no recurrent state. At every step, with the last k = ``cfg.ar_frames`` frames (default 3),

  .. math:: x_t = \\mathrm{init}(e(o_{t-k}), \\dots, e(o_{t-1})),\\quad h_t = g(x_t, a_{t-1}),\\quad
            p(o_t \\mid o_{t-k..t-1}, a_{t-1}) = \\mathrm{dec}(h_t)

* RAR: a recurrent map that re-reads the previous frame at every step,

  .. math:: h_t = g(\\mathrm{mix}(h_{t-1}, e(o_{t-1})), a_{t-1}),\\quad p(o_t \\mid h_t) = \\mathrm{dec}(h_t)

  with mix = concat + 1x1 conv **[ours]** and h_0 = init(e of the 3 context frames).

Rewards come from h_t. Training is teacher-forced on real frames: the exact log-likelihood by the chain
rule, with every step batched (AR) or only the cheap recurrence in the loop (RAR).

Imagination re-encodes the model's own prediction at every step. By default it feeds the mean frame
``sigmoid(logits)`` (deterministic; ``stochastic=False``). With ``sample_pixels=True`` and ``sample=True``
it feeds Bernoulli samples of every pixel instead, which look like salt-and-pepper noise because pixels
are independent given h_t **[ours]**.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..errors import SsmlibError
from .base import CONTEXT, EnvironmentModel, Rollout, State
from .blocks import Decoder, Encoder, InitialState, Transition


class AutoregressiveModel(EnvironmentModel):
    """AR (``recurrent=False``) or RAR (``recurrent=True``); ``build_model`` picks from ``cfg.model``."""

    def __init__(self, cfg: ModelConfig, *, recurrent: bool | None = None, sample_pixels: bool = False):
        if recurrent is None:
            if cfg.model not in ("AR", "RAR"):
                raise SsmlibError(f"AutoregressiveModel builds AR or RAR, not {cfg.model!r}")
            recurrent = cfg.model == "RAR"
        super().__init__(cfg, latent=False, stochastic=sample_pixels)
        self.recurrent, self.sample_pixels = recurrent, sample_pixels
        if not recurrent and not 1 <= cfg.ar_frames <= CONTEXT:
            raise SsmlibError(f"ar_frames must be between 1 and {CONTEXT} (the context), got {cfg.ar_frames}")
        self.k = 1 if recurrent else cfg.ar_frames  # frames kept in the state
        sc, Cs, E, A = cfg.channel_scale, self.state_channels, self.embed_channels, self.action_channels
        self.encoder = Encoder(E, sc)
        self.init = InitialState((CONTEXT if recurrent else self.k) * E, Cs, sc)
        if recurrent:
            self.mix = nn.Conv2d(Cs + E, Cs, 1)
        self.transition = Transition(Cs + A, Cs, sc)
        self.decoder = Decoder(Cs, sc)

    def _encode(self, frames: Tensor) -> Tensor:
        return self.encoder(frames.flatten(0, 1)).unflatten(0, frames.shape[:2])

    def _advance(self, x: Tensor, enc_prev: Tensor, a: Tensor) -> Tensor:
        """AR: h_t = g(init(e(o_{t-k}), .., e(o_{t-1})), a_{t-1}); RAR: h_t = g(mix(h_{t-1}, e(o_{t-1})), a_{t-1}).

        ``x`` is h_{t-1} (RAR, ignored by AR); ``enc_prev`` the encodings ``(B, k, E, h, w)`` of the last k frames.
        """
        if self.recurrent:
            x = self.mix(torch.cat([x, enc_prev[:, -1].to(x.dtype)], dim=1))
        else:
            x = self.init(enc_prev.flatten(1, 2))
        return self.transition(x, a)

    def _enc(self, state: State) -> Tensor:
        return state.enc if state.enc is not None else self._encode(state.frames)

    def _push(self, enc: Tensor, state: State, h: Tensor, frame: Tensor, encode: bool = True,
              a: Tensor | None = None) -> State:
        """The state holding h_t and the new frame (and its encoding, unless ``encode=False``)."""
        frame = frame.to(state.frames.dtype)
        frames = torch.cat([state.frames[:, 1:], frame[:, None]], dim=1)
        new_enc = None
        if encode:
            e = self.encoder(frame)[:, None]
            new_enc = torch.cat([enc[:, 1:], e.to(enc.dtype)], dim=1)
        return State(s=h, frames=frames, enc=new_enc, a=a if self.action_reward else None)

    def _feed(self, logits: Tensor, sample: bool) -> Tensor:
        """The frame fed back: the mean sigmoid(logits), or Bernoulli pixels (``sample_pixels`` and ``sample``)."""
        p = torch.sigmoid(logits.float())
        return torch.bernoulli(p) if (sample and self.sample_pixels) else p

    # ----- interface --------------------------------------------------------------------------------
    def initial_state(self, context_frames: Tensor) -> State:
        """AR: the last k context frames (and their encodings), no map yet (``s=None``, so ``decode``
        needs a step first). RAR: h_0 = init(e of the 3 context frames) and the last frame."""
        self._check_context(context_frames)
        enc = self._encode(context_frames)
        h = self.init(enc.flatten(1, 2)) if self.recurrent else None
        return State(s=h, frames=context_frames[:, -self.k:], enc=enc[:, -self.k:])

    def _predict(self, state: State, action: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        enc = self._enc(state)
        a = self.tile(action, enc.dtype)
        h = self._advance(state.s, enc, a)
        return enc, h, self.decoder(h), a

    def step(self, state: State, action: Tensor, *, sample: bool = True) -> State:
        """Predict o_t from the state and a_{t-1}, then feed the prediction back (see module docstring)."""
        enc, h, logits, a = self._predict(state, action)
        return self._push(enc, state, h, self._feed(logits, sample), a=a)

    def observe(self, state: State, action: Tensor, frame: Tensor) -> tuple[State, dict]:
        """Teacher-forced step: h_t from the state and a_{t-1}, then the REAL frame o_t enters the state.
        No latents: kl, log_q, log_p are zeros ``(B,)``."""
        self._check_frames(frame, "frame")
        enc = self._enc(state)
        a = self.tile(action, enc.dtype)
        h = self._advance(state.s, enc, a)
        zeros = h.new_zeros(h.shape[0], dtype=torch.float32)
        return self._push(enc, state, h, frame, a=a), {"kl": zeros, "log_q": zeros, "log_p": zeros}

    def decode(self, state: State) -> tuple[Tensor, Tensor]:
        """Logits of o_t and r_t from h_t."""
        if state.s is None:
            raise SsmlibError("an AR state has nothing to decode before its first step")
        return self.decoder(state.s), self.reward_logits(state.s, state.a)

    def imagine(self, state: State, actions: Tensor, *, decode: bool = False, sample: bool = True) -> Rollout:
        """T steps, each decoding its frame and re-encoding it (the pixel-space cost this model pays);
        the last step skips the encoding nobody reads. Reward head batched after the loop."""
        self._check_actions(actions)
        B, T = actions.shape[:2]
        hs, logits_all, As = [], [], []
        for t in range(T):
            enc, h, logits, a = self._predict(state, actions[:, t])
            state = self._push(enc, state, h, self._feed(logits, sample), encode=t < T - 1, a=a)
            hs.append(h), logits_all.append(logits), As.append(a)
        H = torch.stack(hs, 1)
        reward = self.reward_logits(H.flatten(0, 1), torch.stack(As, 1).flatten(0, 1) if self.action_reward else None
                                    ).unflatten(0, (B, T))
        return Rollout(features=H, reward_logits=reward,
                       frame_logits=torch.stack(logits_all, 1) if decode else None, final=state)

    def _terms(self, frames: Tensor, actions: Tensor) -> dict[str, Tensor]:
        """Teacher forcing on real frames; each frame is encoded once, in one batched call."""
        N, T = frames.shape[0], frames.shape[1] - CONTEXT
        e = self._encode(frames[:, :-1])  # frames 0 .. C+T-2 are the inputs
        if self.recurrent:
            h = self.init(e[:, :CONTEXT].flatten(1, 2))
            hs, As = [], []
            for t in range(T):
                a = self.tile(actions[:, CONTEXT - 1 + t], h.dtype)
                h = self._advance(h, e[:, CONTEXT - 1 + t: CONTEXT + t], a)
                hs.append(h), As.append(a)
            H = torch.stack(hs, 1).flatten(0, 1)
            a = torch.stack(As, 1).flatten(0, 1)
        else:  # every step at once: window j holds frames C+j-k .. C+j-1
            k = self.k
            win = torch.stack([e[:, CONTEXT - k + i: CONTEXT - k + i + T] for i in range(k)], dim=2)
            a = self.tile(actions[:, CONTEXT - 1:].flatten(0, 1), e.dtype)
            H = self._advance(None, win.flatten(0, 1), a)
        return {
            "frame_logits": self.decoder(H).unflatten(0, (N, T)),
            # step t's reward: read from h_t, the map that applied actions[:, C-1+t] (and that action)
            "reward_logits": self.reward_logits(H, a if self.action_reward else None).unflatten(0, (N, T)),
        }
