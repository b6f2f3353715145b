"""Where an agent acts: the real game, or a learned environment model used as a game.

Both give the same observations, ``(N, 3, H, W, 3)`` uint8: the last 3 RGB frames, exactly what an
environment model reads as its context, so an agent runs unchanged in either.

* :func:`make_agent_env` -- ale-py's native ``AtariVectorEnv`` with its own Atari options (resize,
  3-frame stack, no-op starts, sticky actions, frame skip 4; autoreset in the same step). Its resize of
  the 210x160 screen equals ``ssmlib.data.preprocess`` (tested), so the frames an agent sees are the
  frames the models were trained on. Max-pooling of the last two emulator frames is off for the same
  reason (the datasets are not max-pooled).
* :class:`ImaginedVectorEnv` -- any trained model as a ``gymnasium`` vector env: reset from 3 real
  context frames of a dataset's test split, step with actions, predicted rewards, observations decoded
  on request. Train or evaluate an agent purely in imagination.
"""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from ..data.ale import Game, _quiet_ale, check_frame_size, resolve_game
from ..errors import SsmlibError
from .model_api import EnvModel, LatentModel

STACK = 3
"""Frames per observation: the environment models' context length."""


def make_agent_env(game: str | Game, num_envs: int, height: int, width: int, *, seed: int = 0,
                   sticky_actions: float = 0.25, frameskip: int = 4, noop_max: int = 30,
                   max_episode_steps: int = 27_000, num_threads: int = 0):
    """The real game for agents: ``num_envs`` emulators in C++ threads, observations ``(N, 3, H, W, 3)``.

    Rewards are the game's own (clip them in the learner, not here: the book reports real scores).
    One episode is one whole game (all lives). Seeds ``seed + i`` for env ``i``.
    """
    import os

    from ale_py.vector_env import AtariVectorEnv

    check_frame_size(height, width)
    g = game if isinstance(game, Game) else resolve_game(game)
    _quiet_ale()
    env = AtariVectorEnv(
        g.rom, num_envs, num_threads=num_threads or min(num_envs, os.cpu_count() or 1),
        img_height=height, img_width=width, grayscale=False, stack_num=STACK, maxpool=False,
        frameskip=frameskip, repeat_action_probability=sticky_actions, noop_max=noop_max,
        max_num_frames_per_episode=max_episode_steps * frameskip, reward_clipping=False,
        use_fire_reset=False, episodic_life=False, autoreset_mode=AutoresetMode.SAME_STEP,
    )
    env.ssmlib_seed = seed
    return env


def reset_env(env, seed: int) -> np.ndarray:
    """First observations of every sub-environment, seeded ``seed + i``."""
    obs, _ = env.reset(seed=np.arange(env.num_envs, dtype=np.int64) + seed)
    return obs


def check_env_order(info: dict, n: int) -> None:
    """Row i of every array must be env i: the episode bookkeeping and GAE follow rows across steps.
    (ale-py's vector env reports the env of each row in ``info["env_id"]``; an env pool that returned
    rows in completion order would silently splice episodes of different envs.)"""
    ids = info.get("env_id") if isinstance(info, dict) else None
    if ids is not None and not np.array_equal(np.asarray(ids), np.arange(n)):
        raise SsmlibError(f"the vector env returned its rows out of env order ({np.asarray(ids)[:8]}...)")


class EpisodeTracker:
    """Sums the real (unclipped) rewards of each sub-environment and reports every finished episode."""

    def __init__(self, num_envs: int):
        self.returns = np.zeros(num_envs, np.float64)
        self.lengths = np.zeros(num_envs, np.int64)

    def update(self, rewards: np.ndarray, dones: np.ndarray) -> list[tuple[float, int]]:
        """Add one step; return ``(return, length)`` of the episodes that ended at this step."""
        self.returns += rewards
        self.lengths += 1
        ended = [(float(self.returns[i]), int(self.lengths[i])) for i in np.flatnonzero(dones)]
        self.returns[dones] = 0.0
        self.lengths[dones] = 0
        return ended


def _seed_of(seed, stream: int) -> int:
    """A 63-bit torch seed for one of an env's random streams, from an int seed or a list of them."""
    entropy = [int(x) for x in np.asarray(seed).ravel()]
    return int(np.random.SeedSequence([*entropy, stream]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def check_actions(actions, num_envs: int, n: int) -> np.ndarray:
    """``actions`` as ``(num_envs,)`` int64 in ``0..n-1``, or one clear SsmlibError: a wrong shape, a
    float or bool dtype (never rounded, reshaped or cut) or a value outside the action set."""
    a = np.asarray(actions)
    if a.shape != (num_envs,):
        raise SsmlibError(f"expected one action per env, an array of shape ({num_envs},), got shape {a.shape}")
    if a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.integer):
        raise SsmlibError(f"actions must be integers (an action index), got dtype {a.dtype}")
    if ((a < 0) | (a >= n)).any():
        raise SsmlibError(f"actions must lie in 0..{n - 1}, got {a.tolist()}")
    return a.astype(np.int64)


class ImaginedVectorEnv(VectorEnv):
    """A trained environment model as a gymnasium 1.x vector env, autoreset in the same step.

    ``reset`` draws ``num_envs`` windows from ``split`` of ``dataset`` and builds each model state from
    their 3 real frames (the observation is those frames). ``step(actions)`` makes one prior transition
    (``sample`` draws z from the prior for stochastic models; a jumpy model repeats the action over its
    k environment steps), returns the model's predicted reward (float64) and, with ``decode=True``, the
    predicted mean frame pushed onto the 3-frame stack. With ``decode=False`` observations are the
    latent features ``(N, C, h, w)`` float32 instead (no pixels computed: what I2A-style agents need).
    An episode is truncated after ``max_steps`` imagined transitions; nothing terminates.

    As gymnasium's same-step autoreset: the observation returned at a truncation already starts the
    next episode; the episode's last observation is ``info["final_obs"][i]`` (mask ``info["_final_obs"]``)
    and its info ``info["final_info"]``. Actions must be integers of shape ``(num_envs,)`` (anything
    else is refused, never reshaped or rounded). Randomness -- which windows start an episode, the
    prior's samples -- comes from the env's own torch generators, seeded by ``seed`` or ``reset(seed=)``;
    the caller's global torch RNG is neither read nor changed, so two envs with one seed agree however
    their steps interleave.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, model: EnvModel, dataset, num_envs: int = 8, max_steps: int = 50, split: str = "test",
                 decode: bool = True, sample: bool = True, seed: int = 0):
        from ..data.windows import WindowSampler

        if num_envs < 1 or max_steps < 1:
            raise SsmlibError(f"num_envs and max_steps must be >= 1, got {num_envs}, {max_steps}")
        if not decode and not isinstance(model, LatentModel):
            raise SsmlibError(f"decode=False observes latent features: use a state-space model (dSSM-DET, "
                              f"dSSM-VAE, sSSM), not {getattr(model, 'name', type(model).__name__)}")
        self.model = model
        self.device = next(model.parameters()).device
        cfg = model.cfg
        if (dataset.height, dataset.width, dataset.num_actions) != (cfg.height, cfg.width, cfg.num_actions):
            raise SsmlibError(f"the model is for {cfg.height}x{cfg.width} frames with {cfg.num_actions} actions, "
                              f"the data has {dataset.height}x{dataset.width} with {dataset.num_actions}")
        self.contexts = WindowSampler(dataset, split=split, context=STACK, horizon=1, jump=1,
                                      device=self.device, seed=_seed_of(seed, 0), storage="host")
        self.rng = torch.Generator(device=self.device).manual_seed(_seed_of(seed, 1))  # the prior's samples
        self.num_envs, self.max_steps, self.decode, self.sample = num_envs, max_steps, decode, sample
        H, W, A = cfg.height, cfg.width, cfg.num_actions
        if decode:
            self.single_observation_space = spaces.Box(0, 255, (STACK, H, W, 3), np.uint8)
        else:
            shape = (model.feature_channels, model.h, model.w)
            self.single_observation_space = spaces.Box(-np.inf, np.inf, shape, np.float32)
        self.single_action_space = spaces.Discrete(A)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.metadata = dict(type(self).metadata)
        self.state = None
        self.stack = None  # (N, 3, H, W, 3) uint8 on the model's device
        self.t = np.zeros(num_envs, np.int64)

    @contextlib.contextmanager
    def _own_rng(self):
        """Run the model on this env's generator; the caller's global torch RNG is restored after."""
        cuda = self.device.type == "cuda"
        with torch.random.fork_rng(devices=[self.device] if cuda else [], device_type="cuda"):
            if cuda:
                torch.cuda.set_rng_state(self.rng.get_state(), self.device)
            else:
                torch.set_rng_state(self.rng.get_state())
            yield
            self.rng.set_state(torch.cuda.get_rng_state(self.device) if cuda else torch.get_rng_state())

    @torch.no_grad()
    def _contexts(self, n: int):
        batch = self.contexts.sample(n)
        frames = batch["frames"][:, :STACK]  # (n, 3, 3, H, W) in [0, 1]
        with self._own_rng():
            state = self.model.initial_state(frames)
        stack = (frames * 255).round().to(torch.uint8).permute(0, 1, 3, 4, 2)
        return state, stack

    def _obs(self) -> np.ndarray:
        # always a fresh array: callers keep what they are given (gymnasium's check_returned_data_not_reused)
        if self.decode:
            return self.stack.cpu().numpy().copy()
        return self.model.features(self.state).float().cpu().numpy().copy()

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None):
        if seed is not None:
            super().reset(seed=int(np.asarray(seed).ravel()[0]) if np.ndim(seed) else seed)
            self.contexts.generator.manual_seed(_seed_of(seed, 0))
            self.rng.manual_seed(_seed_of(seed, 1))
        self.state, self.stack = self._contexts(self.num_envs)
        self.t[:] = 0
        return self._obs(), {}

    @torch.no_grad()
    def step(self, actions):
        if self.state is None:
            raise SsmlibError("call reset() before step()")
        a = torch.as_tensor(check_actions(actions, self.num_envs, int(self.single_action_space.n)),
                            device=self.device)
        k = self.model.cfg.jump
        with self._own_rng():
            roll = self.model.imagine(self.state, (a[:, None, None].expand(-1, 1, k) if k > 1 else a[:, None]),
                                      decode=self.decode, sample=self.sample)
        self.state = roll.final
        reward = self.model.decode_reward(roll.reward_logits[:, 0].float()).cpu().numpy().astype(np.float64)
        if self.decode:
            frame = (torch.sigmoid(roll.frame_logits[:, 0].float()) * 255).round().to(torch.uint8)
            self.stack = torch.cat([self.stack[:, 1:], frame.permute(0, 2, 3, 1)[:, None]], 1)
        self.t += 1
        truncated = self.t >= self.max_steps
        terminated = np.zeros(self.num_envs, np.bool_)
        info: dict = {}
        if truncated.any():  # same-step autoreset: the returned observation starts the new episode
            final = self._obs()
            info["final_obs"] = np.full(self.num_envs, None, dtype=object)
            for i in np.flatnonzero(truncated):
                info["final_obs"][i] = final[i]
            info["_final_obs"] = truncated.copy()
            info["final_info"], info["_final_info"] = {}, truncated.copy()
            idx = torch.as_tensor(np.flatnonzero(truncated), device=self.device)
            state, stack = self._contexts(len(idx))
            self.state = self.state.map(lambda x: x.clone())
            for f in dataclasses.fields(self.state):
                new, cur = getattr(state, f.name), getattr(self.state, f.name)
                if cur is not None and new is not None:
                    cur[idx] = new.to(cur.dtype)
                elif cur is not None:  # the fresh state has no z yet: zeros, as before a first step
                    cur[idx] = 0
            self.stack[idx] = stack
            self.t[truncated] = 0
        return self._obs(), reward, terminated, truncated, info

    def close_extras(self, **kwargs):
        self.state = self.stack = None


def model_and_data(model, data):
    """A model and a dataset from objects, or from a checkpoint path and a dataset folder."""
    from pathlib import Path

    if isinstance(model, (str, Path)):
        from ..checkpoint import load_model

        model = load_model(model)
    if isinstance(data, (str, Path)):
        from ..data.store import open_dataset

        data = open_dataset(data)
    return model, data


def _make_vec(num_envs: int = 8, *, model, data, **kwargs) -> ImaginedVectorEnv:
    """``gymnasium.make_vec("ssmlib/Imagined-v0", num_envs, vectorization_mode="vector_entry_point",
    model=..., data=...)``: ``model`` and ``data`` may be a checkpoint path and a dataset folder."""
    model, data = model_and_data(model, data)
    return ImaginedVectorEnv(model, data, num_envs=num_envs, **kwargs)


def register() -> None:
    """Register ``ssmlib/Imagined-v0`` with gymnasium (done on ``import ssmlib.agents``)."""
    import gymnasium

    if "ssmlib/Imagined-v0" not in gymnasium.registry:
        gymnasium.register("ssmlib/Imagined-v0", entry_point="ssmlib.agents.imagined_env:ImaginedEnv",
                           vector_entry_point="ssmlib.agents.envs:_make_vec")


register()
