"""The agents' networks: the model-free path, and the Imagination-Augmented Agent (I2A) around a frozen
state-space model.

I2A (Weber et al. 2017, with the latent states of Buesing et al. 2018)::

    s_t = init(e(o_{t-2}), e(o_{t-1}), e(o_t))              the frozen SSM encodes the last 3 frames
    for each action a (K = |A| rollouts, batched over envs x actions):
        a_0 = a;  a_j ~ pi_hat(. | s_hat_j), j >= 1        first action forced, then the rollout policy
        s_hat_{j+1}, r_hat_{j+1} = model(s_hat_j, a_j)      depth D, latent only (no pixels)
        c_a = LSTM(f(s_hat_D, r_hat_D), ..., f(s_hat_1, r_hat_1))   read last step first
    pi(.|o_t), V(o_t) = heads(relu(W [c_1, ..., c_K, mf(o_t)]))

Rollout policies pi_hat (``rollout_policy``):

* ``uniform``: a_j uniform; no parameters.
* ``distill``: pi_hat is trained by the cross-entropy ``-sum_a sg(pi(a|o_t)) log pi_hat(a|s_t)`` (the
  KL from the agent's policy up to a constant), added to the RL loss; actions sampled from pi_hat,
  no gradient through them.
* ``learned`` (learning to query): the RL loss itself is backpropagated through the imagination into
  pi_hat. The discrete action is crossed with a straight-through Gumbel-softmax **[ours; the paper does
  not say]**: the forward pass feeds the sampled one-hot action, the backward pass the gradient of
  ``softmax((logits + g) / tau)``; the model accepts action probabilities (tiled one-hot channels), so
  the gradient reaches pi_hat through every later transition and reward of the rollout.

The copy-model baseline (``CopyModel``) is the identical agent whose model returns its input state.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import AGENTS, ROLLOUT_POLICIES
from ..errors import SsmlibError
from ..models.base import Rollout, State
from .model_api import LatentModel
IMAGINATION = ("features", "reward_logits", "actions", "root")
"""The keys of I2A's imagination (see :meth:`I2AAgent.imagine`)."""
AFTER_FIRST = "after_first."
"""Learning to query: the imagination also carries the model's state after the forced first step, one key per
``State`` field it uses (``after_first.s``, ...), so that the update can continue these rollouts from there."""


def first_step(imagination: dict[str, Tensor]) -> dict[str, Tensor]:
    """The forced first step of an imagination (``root``, depth-1 ``features``/``reward_logits``/``actions`` and
    the state after it): what :meth:`I2AAgent.imagine` needs to continue the rollouts (``first=``)."""
    out = {k: v for k, v in imagination.items() if k == "root" or k.startswith(AFTER_FIRST)}
    return {**out, **{k: imagination[k][:, :1] for k in ("features", "reward_logits", "actions")}}


def frames_from_obs(obs: Tensor) -> Tensor:
    """Observations ``(N, 3, H, W, 3)`` uint8 -> context frames ``(N, 3, 3, H, W)`` float in [0, 1]."""
    return obs.permute(0, 1, 4, 2, 3).float().div_(255)


def autocast(device: torch.device, amp: bool):
    """bf16 autocast on CUDA when ``amp``; no change elsewhere."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if amp and device.type == "cuda" else contextlib.nullcontext()


@dataclass
class AgentOutput:
    logits: Tensor
    """(N, A) policy logits."""
    value: Tensor
    """(N,) state value."""
    rollout_logits: Tensor | None = None
    """(N, A) the rollout policy at the real state (distillation target side), when it has parameters."""
    imagination: dict[str, Tensor] | None = None
    """I2A: what the rollouts of this pass gave (``features``, ``reward_logits``, ``actions``, ``root``; see
    :meth:`I2AAgent.imagine`), to reuse in the update and to show what the agent imagined."""


class ModelFreePath(nn.Module):
    """The model-free CNN (Mnih et al. 2015's, on 3 stacked RGB frames, optionally average-pooled first)."""

    def __init__(self, height: int, width: int, pool: int = 1, hidden: int = 512):
        super().__init__()
        self.pool = pool
        self.convs = nn.Sequential(
            nn.Conv2d(3 * 3, 32, 8, stride=4), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(), nn.Flatten())
        with torch.no_grad():
            n = self.convs(torch.zeros(1, 9, height // pool, width // pool)).shape[1]
        self.fc = nn.Sequential(nn.Linear(n, hidden), nn.ReLU())
        self.out_features = hidden

    def forward(self, frames: Tensor) -> Tensor:
        x = frames.flatten(1, 2)  # (N, 9, H, W)
        if self.pool > 1:
            x = F.avg_pool2d(x, self.pool)
        return self.fc(self.convs(x))


def _init_heads(policy: nn.Linear, value: nn.Linear) -> None:
    # small policy init: a near-uniform first policy (CleanRL's std=0.01 orthogonal init)
    nn.init.orthogonal_(policy.weight, 0.01)
    nn.init.zeros_(policy.bias)
    nn.init.orthogonal_(value.weight, 1.0)
    nn.init.zeros_(value.bias)


class ModelFreeAgent(nn.Module):
    """The model-free baseline: CNN -> policy and value heads."""

    kind = "model-free"
    reuses_imagination = False
    """No imagination to reuse (see :attr:`I2AAgent.reuses_imagination`)."""

    def __init__(self, num_actions: int, height: int, width: int, pool: int = 1, hidden: int = 512):
        super().__init__()
        self.mf = ModelFreePath(height, width, pool, hidden)
        self.policy = nn.Linear(hidden, num_actions)
        self.value = nn.Linear(hidden, 1)
        _init_heads(self.policy, self.value)

    def forward(self, obs: Tensor) -> AgentOutput:
        h = self.mf(frames_from_obs(obs))
        return AgentOutput(self.policy(h), self.value(h).squeeze(-1))

    def agent_state_dict(self) -> dict[str, Tensor]:
        """The agent's own weights (all of them: it has no environment model)."""
        return self.state_dict()


class CopyModel(nn.Module):
    """The copy-model baseline's "environment model": imagination returns its input state.

    It encodes the context with the real model (same features, same reward head), but every step
    leaves the state unchanged, so an agent built around it has I2A's parameters and inputs and no
    model of the future.
    """

    def __init__(self, model: LatentModel):
        super().__init__()
        self.model = model
        self.cfg = model.cfg
        self.h, self.w, self.feature_channels = model.h, model.w, model.feature_channels
        self.nbits = model.nbits
        self.name = f"copy({model.name})"

    def initial_state(self, frames: Tensor) -> State:
        return self.model.initial_state(frames)

    def features(self, state: State) -> Tensor:
        return self.model.features(state)

    def reward_probs(self, reward_logits: Tensor) -> Tensor:
        return self.model.reward_probs(reward_logits)

    def decode_reward(self, reward_logits: Tensor) -> Tensor:
        return self.model.decode_reward(reward_logits)

    def step(self, state: State, action: Tensor, *, sample: bool = True) -> State:
        return state

    def imagine(self, state: State, actions: Tensor, *, decode: bool = False, sample: bool = True) -> Rollout:
        T = actions.shape[1]
        f = self.features(state)
        r = self.model.reward_logits(state.s, state.a)
        return Rollout(features=f[:, None].expand(-1, T, *f.shape[1:]), reward_logits=r[:, None].expand(-1, T, -1),
                       final=state)


class RolloutPolicy(nn.Module):
    """pi_hat(a | s): a small CNN on the latent features of a state."""

    def __init__(self, channels: int, h: int, w: int, num_actions: int):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(channels, 32, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                                 nn.Linear(32 * ((h + 1) // 2) * ((w + 1) // 2), num_actions))

    def forward(self, features: Tensor) -> Tensor:
        return self.net(features)


class RolloutEncoder(nn.Module):
    """Encodes one imagined rollout: per step f(s_hat_j, r_hat_j) by a CNN, then an LSTM that reads the
    steps in reverse (last step first, as in I2A) and returns its final hidden state."""

    def __init__(self, channels: int, h: int, w: int, reward_dims: int, hidden: int = 256):
        super().__init__()
        self.cnn = nn.Sequential(nn.Conv2d(channels, 32, 3, stride=2, padding=1), nn.ReLU(),
                                 nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten())
        n = 32 * ((h + 3) // 4) * ((w + 3) // 4)
        self.step_fc = nn.Sequential(nn.Linear(n + reward_dims, hidden), nn.ReLU())
        self.lstm = nn.LSTM(hidden, hidden, batch_first=True)
        self.out_features = hidden

    def forward(self, features: Tensor, reward_probs: Tensor) -> Tensor:
        """``features (B, D, C, h, w)``, ``reward_probs (B, D, nbits)`` -> ``(B, hidden)``."""
        B, D = features.shape[:2]
        x = self.cnn(features.flatten(0, 1)).unflatten(0, (B, D))
        x = self.step_fc(torch.cat([x, reward_probs.to(x.dtype)], -1))
        _, (h, _) = self.lstm(x.flip(1))  # last imagined step first
        return h[-1]


def straight_through_gumbel(logits: Tensor, tau: float = 1.0) -> Tensor:
    """A one-hot sample ``(B, A)`` whose gradient is that of the Gumbel-softmax relaxation."""
    soft = F.gumbel_softmax(logits.float(), tau=tau, hard=False)
    hard = F.one_hot(soft.argmax(-1), soft.shape[-1]).to(soft.dtype)
    return hard + soft - soft.detach()


class I2AAgent(nn.Module):
    """The Imagination-Augmented Agent around a frozen environment model (see the module docstring)."""

    kind = "i2a"

    env_model: LatentModel

    def __init__(self, env_model: LatentModel, num_actions: int, height: int, width: int, *,
                 rollout_policy: str = "distill", depth: int = 3, pool: int = 1, hidden: int = 512,
                 lstm: int = 256, tau: float = 1.0, copy: bool = False):
        super().__init__()
        if rollout_policy not in ROLLOUT_POLICIES:
            raise SsmlibError(f"unknown rollout policy {rollout_policy!r}; choose one of {', '.join(ROLLOUT_POLICIES)}")
        if not isinstance(env_model, LatentModel):
            raise SsmlibError(f"I2A reads latent states: use a state-space model (dSSM-DET, dSSM-VAE, sSSM), "
                              f"not {getattr(env_model, 'name', type(env_model).__name__)}")
        if depth < 1:
            raise SsmlibError(f"rollout depth must be >= 1, got {depth}")
        if env_model.cfg.num_actions != num_actions:
            raise SsmlibError(f"the environment model has {env_model.cfg.num_actions} actions, the game {num_actions}")
        env_model.requires_grad_(False)  # frozen: trained on its own, never by the RL loss
        env_model.eval()
        self.kind = "copy" if copy else "i2a"
        self.env_model = CopyModel(env_model) if copy else env_model
        self.rollout_mode, self.depth, self.tau, self.num_actions = rollout_policy, depth, tau, num_actions
        C, h, w = env_model.feature_channels, env_model.h, env_model.w
        self.rollout_policy = RolloutPolicy(C, h, w, num_actions) if rollout_policy != "uniform" else None
        self.encoder = RolloutEncoder(C, h, w, env_model.nbits, lstm)
        self.mf = ModelFreePath(height, width, pool, hidden)
        self.core = nn.Sequential(nn.Linear(num_actions * lstm + hidden, 256), nn.ReLU())
        self.policy = nn.Linear(256, num_actions)
        self.value = nn.Linear(256, 1)
        _init_heads(self.policy, self.value)

    def train(self, mode: bool = True):
        super().train(mode)
        self.env_model.eval()  # stays in eval mode (no dropout/batch-norm changes, ever)
        return self

    def _chunk(self, a: Tensor) -> Tensor:
        """One step's action(s) for the model: ``(B,)`` ids or ``(B, A)`` one-hots, repeated over a jump."""
        k = self.env_model.cfg.jump
        if k == 1:
            return a[:, None]
        return a[:, None, None].expand(-1, 1, k) if a.dim() == 1 else a[:, None, None].expand(-1, 1, k, -1)

    def imagine(self, frames: Tensor, first: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        """One rollout per action from the real state of ``frames (N, 3, 3, H, W)``.

        Returns ``features (N*A, D, C, h, w)``, ``reward_logits (N*A, D, nbits)``, ``actions (N*A, D)``
        (the actions taken), ``root (N, C, h, w)`` (the features of the real state), and for learning to query
        the state after the first step (``AFTER_FIRST`` keys; not when continuing, whose output is not kept).
        ``first``: :func:`first_step` of an earlier imagination of the same frames, whose rollouts are
        continued from the state after their first step.
        That step's action is forced, so nothing before it depends on pi_hat: learning to query's update
        continues the acting pass's rollouts there instead of encoding the frames and taking it again.
        """
        N, A, m = frames.shape[0], self.num_actions, self.env_model
        learned = self.rollout_mode == "learned"
        grad = learned and torch.is_grad_enabled()
        if first is None:
            with torch.no_grad():  # the encoding of real frames never needs a gradient (frozen model)
                state = m.initial_state(frames)
            root = m.features(state)
            state = state.map(lambda t: t.repeat_interleave(A, 0))
            a = torch.arange(A, device=frames.device).repeat(N)  # first action forced: rollout i of env n takes i
            feats, rewards, taken = [], [], []
        else:
            root = first["root"]
            state = State(**{k[len(AFTER_FIRST):]: v for k, v in first.items() if k.startswith(AFTER_FIRST)})
            feats, rewards, taken = [first["features"][:, 0]], [first["reward_logits"][:, 0]], [first["actions"][:, 0]]
        kept = {}
        with torch.set_grad_enabled(grad):  # uniform/distill: imagination is a constant input
            for j in range(len(feats), self.depth):
                if j > 0:
                    a = self._rollout_action(feats[-1], grad)
                roll = m.imagine(state, self._chunk(a), decode=False, sample=True)
                state = roll.final
                if j == 0 and learned:  # kept for the update (no gradient reaches it: its action is forced)
                    kept = {AFTER_FIRST + f.name: v.detach() for f in dataclasses.fields(state)
                            if (v := getattr(state, f.name)) is not None}
                feats.append(roll.features[:, 0])
                rewards.append(roll.reward_logits[:, 0])
                taken.append(a.argmax(-1) if a.is_floating_point() else a)
        return {"features": torch.stack(feats, 1), "reward_logits": torch.stack(rewards, 1),
                "actions": torch.stack(taken, 1), "root": root, **kept}

    def _rollout_action(self, features: Tensor, grad: bool) -> Tensor:
        B = features.shape[0]
        if self.rollout_mode == "uniform":
            return torch.randint(self.num_actions, (B,), device=features.device)
        logits = self.rollout_policy(features.to(self.rollout_policy.net[0].weight.dtype))
        if grad:  # learning to query: a one-hot action that carries the gradient into pi_hat
            return straight_through_gumbel(logits, self.tau)
        return torch.distributions.Categorical(logits=logits.float()).sample()

    @property
    def reuses_imagination(self) -> bool:
        """Whether the update may reuse the acting pass's rollouts instead of imagining again: yes unless
        the rollout policy learns through them (``learned``). The model is frozen and pi_hat only changes
        at the update, so the cached rollouts are exactly what the policy acted on (the same samples).
        The first acting step after an update acts on the rollouts the update's bootstrap pass imagined from
        the same observation (so pi_hat's samples there are from before that update): one imagination fewer
        per update, in every variant (acting needs no gradient). The ``learned`` update continues the acted-on
        rollouts after their forced first step to get a graph, with fresh rollout-action samples from the
        second step on (and fresh z there for a stochastic model): its policy gradient is taken at rollouts that
        differ from the acted-on ones in those samples, the one variant where this happens."""
        return self.rollout_mode != "learned"

    def forward(self, obs: Tensor, imagination: dict[str, Tensor] | None = None,
                first: dict[str, Tensor] | None = None) -> AgentOutput:
        """Policy and value of ``obs``; ``imagination``: rollouts of these observations from an earlier
        pass (see :attr:`reuses_imagination`), used instead of imagining again; ``first``: the forced first
        step of such rollouts (:func:`first_step`), continued from there (learning to query's update)."""
        frames = frames_from_obs(obs)
        N, A = frames.shape[0], self.num_actions
        if imagination is not None and not self.reuses_imagination and torch.is_grad_enabled():
            # acting (no gradient) may use earlier rollouts; the update's policy gradient needs its own
            raise SsmlibError("learning to query needs the gradient of fresh rollouts; do not pass imagination "
                              "(pass first= to continue them after their forced first step)")
        im = self.imagine(frames, first) if imagination is None else imagination
        codes = self.encoder(im["features"], self.env_model.reward_probs(im["reward_logits"]))  # (N*A, lstm)
        x = torch.cat([codes.reshape(N, -1), self.mf(frames)], -1)
        h = self.core(x)
        rollout_logits = self.rollout_policy(im["root"]) if self.rollout_policy is not None else None
        cache = {k: v for k, v in im.items() if k in IMAGINATION or k.startswith(AFTER_FIRST)}
        return AgentOutput(self.policy(h), self.value(h).squeeze(-1), rollout_logits, cache)

    def agent_state_dict(self) -> dict[str, Tensor]:
        """The agent's own weights (the frozen model is stored by reference, not copied)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("env_model.")}
