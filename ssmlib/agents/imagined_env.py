"""A trained environment model as one gymnasium environment: ``gymnasium.make("ssmlib/Imagined-v0",
model=..., data=...)`` (registered on ``import ssmlib.agents``).

It is :class:`~ssmlib.agents.envs.ImaginedVectorEnv` with one sub-environment, stepped the gymnasium
way: an episode starts from 3 real frames of the data's test split, each step is one imagined
transition, and after ``max_steps`` steps it is truncated; then ``reset()`` starts the next one (no
autoreset). It passes ``gymnasium.utils.env_checker.check_env`` (tests/test_imagined_env.py).
"""

from __future__ import annotations

import numpy as np
from gymnasium import Env

from ..errors import SsmlibError
from .envs import ImaginedVectorEnv, model_and_data


class ImaginedEnv(Env):
    """One imagined game: observations ``(3, H, W, 3)`` uint8 (the last 3 frames; with ``decode=False``
    the model's latent features, float32), actions ``Discrete(num_actions)``, rewards float.

    ``model``: an environment model or a checkpoint path; ``data``: a dataset or its folder (contexts
    come from its ``split``). ``render_mode="rgb_array"`` renders the newest frame (``decode=True``).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(self, model, data, max_steps: int = 50, split: str = "test", decode: bool = True,
                 sample: bool = True, seed: int = 0, render_mode: str | None = None):
        model, data = model_and_data(model, data)
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise SsmlibError(f"render_mode {render_mode!r}: choose one of {self.metadata['render_modes']} or None")
        if render_mode is not None and not decode:
            raise SsmlibError("render_mode='rgb_array' needs decode=True (frames, not latent features)")
        self.vec = ImaginedVectorEnv(model, data, num_envs=1, max_steps=max_steps, split=split, decode=decode,
                                     sample=sample, seed=seed)
        self.observation_space = self.vec.single_observation_space
        self.action_space = self.vec.single_action_space
        self.render_mode = render_mode
        self._last = None  # the last observation, for render()
        self._ended = True  # reset() before the first step, and after an episode ends

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        obs, _ = self.vec.reset(seed=seed)
        self._last, self._ended = obs[0], False
        return obs[0].copy(), {}

    def step(self, action):
        if self._ended:
            raise SsmlibError("the episode has ended (or not begun): call reset()")
        a = np.asarray(action)
        if a.ndim != 0:
            raise SsmlibError(f"expected one action (an integer), got an array of shape {a.shape}")
        obs, reward, terminated, truncated, info = self.vec.step(a.reshape(1))
        done = bool(terminated[0] or truncated[0])
        if done:  # the vector env already began a new episode: give this one's last observation
            obs = info["final_obs"]
            self._ended = True
        self._last = obs[0]
        return obs[0].copy(), float(reward[0]), bool(terminated[0]), bool(truncated[0]), {}

    def render(self):
        if self.render_mode == "rgb_array":
            return None if self._last is None else np.array(self._last[-1])
        return None

    def close(self):
        self.vec.close()
        super().close()
