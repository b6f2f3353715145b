"""Play inside a learned environment model, next to the real game, on the same actions.

Two layers, as the rollout explorer (``ssmlib.viz.explorer``):

* :class:`PlaySession`, plain Python, testable without a browser. It owns one real ALE environment
  (gymnasium + ale-py, the same ALE v5 settings and the same frame preprocessing as the collected
  data: ``ssmlib.data.ale.preprocess``), one environment model and its state, and the histories of
  both sides. Every :meth:`PlaySession.press` of an action advances **both**: the model makes one
  transition (``model.step``, then ``model.decode``: the imagined frame and the predicted reward) and
  the emulator makes the same environment steps (k of them for a jumpy model of jump k, which takes
  the action repeated k times). :meth:`PlaySession.resync` re-seeds the model from the last 3 real
  frames (``initial_state``); :meth:`PlaySession.resample` draws the stochastic model's future since
  the last (re-)sync again, with the same actions and another seed; :meth:`PlaySession.set_model`
  switches the model mid-play (the new one starts from the last real frames).
* :func:`play_widget`, the ipywidgets front end: game, model and start frame, one button per action
  of the game's action set, the arrow keys (JupyterLab), re-sync and resample, the picture of the last
  press (real | imagined | difference) and the running real and predicted scores.

The start: a **demo episode** of the real game, played live (:func:`record_demo`): the emulator is
reset from a seed and driven by the collector's random policy (uniform actions held for a geometric
number of steps, ``ssmlib.data.collect.RandomPolicy``) with a seeded RNG, and the emulator's state is
cloned at every step, **with its random number generator** (``cloneState(include_rng=True)``). ALE v5
has sticky actions (with probability 0.25 the emulator repeats the previous action instead of the new
one), so the emulator is stochastic; restoring a state that includes the RNG makes the continuation
exactly reproducible: the real side of a session started at frame k and fed the recorded actions
reproduces the recorded frames bit for bit (``tests/test_play.py``). The demo episode is played by a
single gymnasium environment, not by the collector's vector environment, so it is not an episode of
``pretrained.demo_dataset`` (the same seed, 1000, which no pretrained model was trained on).
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..config import CONTEXT
from ..errors import SsmlibError

DEMO_SEED = 1000
"""Seed of the demo episode's emulator reset and policy (the demo dataset's seed: no pretrained model was
trained on it)."""
DEMO_STEPS = 400
"""Agent steps of the demo episode (fewer if the game ends): the start frame is chosen among them."""
DEFAULT_START = 120
"""Default start frame (ours): Ms. Pac-Man's first ~100 steps are an intro in which nothing moves."""
DIFF_GAIN = 2
"""The difference image shows ``DIFF_GAIN * |imagined - real|`` (clipped), as the explorer's."""
LATENCY_TARGET_MS = 100
"""The issue's target for one key press to the next imagined frame (dSSM-DET, sSSM, 200x160, 1 CPU thread)."""

KEY_ACTIONS: dict[str, tuple[str, ...]] = {
    "ArrowUp": ("UP",), "ArrowDown": ("DOWN",), "ArrowLeft": ("LEFT",), "ArrowRight": ("RIGHT",),
    "w": ("UP",), "s": ("DOWN",), "a": ("LEFT",), "d": ("RIGHT",),
    "q": ("UPLEFT",), "e": ("UPRIGHT",), "z": ("DOWNLEFT",), "c": ("DOWNRIGHT",),
    " ": ("FIRE", "NOOP"), "n": ("NOOP",),
}
"""Keyboard keys (``KeyboardEvent.key``) -> the action names they press, the first one the game has."""

PAD_LAYOUT = (("UPLEFT", "UP", "UPRIGHT"), ("LEFT", "NOOP", "RIGHT"), ("DOWNLEFT", "DOWN", "DOWNRIGHT"))
"""Where the direction buttons sit (Ms. Pac-Man's 9 actions are exactly these)."""
_ARROWS = {"UP": "\u2191", "DOWN": "\u2193", "LEFT": "\u2190", "RIGHT": "\u2192", "UPLEFT": "\u2196",
           "UPRIGHT": "\u2197", "DOWNLEFT": "\u2199", "DOWNRIGHT": "\u2198", "NOOP": "\u00b7"}


def key_action(key: str, action_meanings: Sequence[str]) -> int | None:
    """The action (index into ``action_meanings``) a keyboard key presses, or None for other keys."""
    for name in KEY_ACTIONS.get(key, ()):
        if name in action_meanings:
            return list(action_meanings).index(name)
    return None


def reward_value(model, reward_logits) -> np.ndarray:
    """The model's predicted reward value(s) of reward logits ``(B, R)`` -> ``(B,)`` floats (``reward_expected``)."""
    return np.asarray(model.reward_expected(reward_logits).detach().cpu(), np.float64).reshape(-1)


# ------------------------------------------------------------------------------------- the demo episode
@dataclass
class DemoEpisode:
    """A live episode of the real game with the emulator's state at every frame."""

    game: str
    seed: int
    sticky_actions: float
    mean_repeat: float
    action_meanings: list[str]
    screens: list[np.ndarray]
    """Raw RGB screens (210, 160, 3) uint8, frame 0 (after the reset) to the last."""
    actions: np.ndarray
    """(N,) ``actions[i]`` taken at frame i, leading to frame i+1."""
    rewards: np.ndarray
    """(N,) the reward of ``actions[i]``."""
    states: list
    """``ale_py.ALEState`` of every frame, cloned with the emulator's RNG (sticky actions)."""
    ended: bool
    """Whether the game ended at the last frame (else the episode was cut at ``DEMO_STEPS``)."""

    @property
    def length(self) -> int:
        return len(self.screens)


_DEMOS: dict = {}


def record_demo(game: str = "MsPacman", seed: int = DEMO_SEED, steps: int = DEMO_STEPS, *,
                sticky_actions: float = 0.25, mean_repeat: float = 4.0, cache: bool = True) -> DemoEpisode:
    """Play a demo episode live (cached per arguments unless ``cache=False``): reset from ``seed``, the collector's random policy
    (``RandomPolicy``, its RNG seeded from ``(seed, 1)``), every frame's emulator state cloned with its RNG."""
    from ..data.ale import make_env, resolve_game
    from ..data.collect import RandomPolicy

    g = resolve_game(game)
    key = (g.name, int(seed), int(steps), float(sticky_actions), float(mean_repeat))
    if cache and key in _DEMOS:
        return _DEMOS[key]
    if steps < CONTEXT:
        raise SsmlibError(f"a demo episode needs at least {CONTEXT} steps, got {steps}")
    env = make_env(g, sticky_actions=sticky_actions)
    try:
        obs, _ = env.reset(seed=int(seed))
        ale = env.unwrapped.ale
        names = list(env.unwrapped.get_action_meanings())
        policy, rng = RandomPolicy(len(names), mean_repeat), np.random.default_rng([int(seed), 1])
        screens, states, actions, rewards = [obs], [ale.cloneState(include_rng=True)], [], []
        ended = False
        for _ in range(steps):
            a = int(policy(obs[None], rng)[0])
            obs, r, term, trunc, _ = env.step(a)
            screens.append(obs), states.append(ale.cloneState(include_rng=True))
            actions.append(a), rewards.append(float(r))
            if term or trunc:
                ended = True
                break
    finally:
        env.close()
    demo = DemoEpisode(g.name, int(seed), float(sticky_actions), float(mean_repeat), names, screens,
                       np.asarray(actions, np.int64), np.asarray(rewards, np.float32), states, ended)
    if cache:
        _DEMOS[key] = demo
    return demo


# ------------------------------------------------------------------------------------------- a press
@dataclass
class PlayStep:
    """One press: the action, what the game and the model made of it."""

    action: int
    jump: int
    """Environment steps this press advanced (the model's jump k)."""
    real: np.ndarray
    """(H, W, 3) uint8: the real frame after the press, preprocessed at the model's frame size."""
    imagined: np.ndarray
    """(H, W, 3) uint8: the model's mean frame sigmoid(logits) after the press."""
    real_reward: float
    """The game's reward of the press (summed over its k environment steps)."""
    predicted_reward: float
    """The model's predicted reward of the press (see :func:`reward_value`)."""
    model_label: str
    model_ms: float
    """Milliseconds of the model's part: transition, decoder, reward head, frame to uint8."""
    real_ms: float
    """Milliseconds of the emulator's k steps and the preprocessing of the last screen."""
    segment: int
    """Which (re-)sync this press imagines from (0: the start, +1 at every resync and model switch)."""
    mse: float = 0.0
    """Mean squared error of the imagined frame against the real one (intensities in [0, 1])."""

    def __post_init__(self):
        self.update_mse()

    def update_mse(self) -> None:
        d = self.imagined.astype(np.float32) - self.real.astype(np.float32)
        self.mse = float(np.mean(d * d)) / 255 ** 2


@dataclass
class _Segment:
    """The model's part from one (re-)sync on: its initial state, seed, and the presses imagined from it."""

    state0: object
    seed: int
    first: int
    """Index into ``PlaySession.steps`` of its first press."""


class PlaySession:
    """The real game and a learned model, driven by the same actions; see the module docstring.

    ``model``: a pretrained name for ``game`` (``"dSSM-DET"``, ``"sSSM"``, ...), a checkpoint path, or an
    :class:`~ssmlib.models.EnvironmentModel`. ``start``: the demo episode's frame the play starts from
    (its last context frame; the model gets frames ``start - 2k, start - k, start``). ``seed``: the
    model's random numbers (sSSM, dSSM-VAE). ``demo``: a :class:`DemoEpisode` (default
    :func:`record_demo` of ``game``).
    """

    def __init__(self, game: str = "MsPacman", model="dSSM-DET", *, start: int = DEFAULT_START, seed: int = 0,
                 demo: DemoEpisode | None = None, demo_seed: int = DEMO_SEED, demo_steps: int = DEMO_STEPS,
                 sticky_actions: float = 0.25, device="cpu"):
        from ..data.ale import make_env

        self.demo = demo if demo is not None else record_demo(game, demo_seed, demo_steps,
                                                              sticky_actions=sticky_actions)
        self.game, self.device = self.demo.game, device
        self.action_meanings = list(self.demo.action_meanings)
        self.env = make_env(self.game, sticky_actions=self.demo.sticky_actions)
        self.env.reset(seed=self.demo.seed)
        self.ale = self.env.unwrapped.ale
        self.seed = int(seed)
        self.model = None
        self.set_model(model, restart=False)
        self.reset(start)

    # ----- model ------------------------------------------------------------------------------------
    def set_model(self, model, restart: bool = False) -> None:
        """Another model (a pretrained name, a checkpoint path or a model object). Mid-play it starts from
        the last real frames (as :meth:`resync`) and the histories stay; ``restart=True`` restarts from
        the start frame instead. On error the session keeps its model."""
        from ..config import MODEL_NAMES
        from ..models import EnvironmentModel
        from .explorer import load_explorer_model

        if isinstance(model, EnvironmentModel):
            m, label = model, model.name + (f" k={model.cfg.jump}" if model.cfg.jump > 1 else "")
        else:
            m, path = load_explorer_model(self.game, model, self.device)
            label = model if isinstance(model, str) and model in MODEL_NAMES else (
                f"{m.name} ({path.parent.name if path.name == 'checkpoint.safetensors' else path.name})")
        if m.cfg.num_actions != len(self.action_meanings):
            raise SsmlibError(f"{label} takes {m.cfg.num_actions} actions, {self.game} has "
                              f"{len(self.action_meanings)} ({', '.join(self.action_meanings)})")
        k = int(m.cfg.jump)
        if 2 * k >= self.demo.length:
            raise SsmlibError(f"{label} (jump {k}) needs {2 * k + 1} frames of context; the demo has {self.demo.length}")
        self.model, self.model_label, self.jump = m.eval(), label, k
        self.height, self.width = m.cfg.height, m.cfg.width
        if not hasattr(self, "steps"):
            return
        if restart:
            self.reset(self.start)
            return
        if len(self.real_screens) < 2 * k + 1:  # too early in the episode for this model's context
            self.reset(self.start)
        else:
            self.resync()

    # ----- state ------------------------------------------------------------------------------------
    def max_start(self) -> int:
        return self.demo.length - 1

    def min_start(self) -> int:
        return 2 * self.jump

    def reset(self, start: int | None = None) -> None:
        """Restart both sides at demo frame ``start`` (clamped): the emulator restored to the demo's
        state there, the model built from the context frames, empty histories."""
        start = self.start if start is None else int(start)
        self.start = max(self.min_start(), min(start, self.max_start()))
        self.ale.restoreState(self.demo.states[self.start])
        self.real_screens: list[np.ndarray] = list(self.demo.screens[: self.start + 1])
        self.real_over = self.demo.ended and self.start == self.max_start()
        self.steps: list[PlayStep] = []
        self.segments: list[_Segment] = []
        self._sync(self.seed)

    def _preprocess(self, screens) -> np.ndarray:
        from ..data.ale import preprocess

        return preprocess(np.asarray(screens), self.height, self.width)

    def context_frames(self) -> np.ndarray:
        """(3, H, W, 3) uint8: the last 3 real frames at the model's spacing (k apart for a jumpy model)."""
        k = self.jump
        return self._preprocess([self.real_screens[-1 - 2 * k], self.real_screens[-1 - k], self.real_screens[-1]])

    def _tensor(self, frames: np.ndarray):
        import torch

        dev = next(self.model.parameters()).device
        return torch.from_numpy(frames).to(dev).permute(0, 3, 1, 2).float().div_(255)[None]

    def _sync(self, seed: int) -> None:
        import torch

        with torch.no_grad():
            state0 = self.model.initial_state(self._tensor(self.context_frames()))
        self.segments.append(_Segment(state0, int(seed), len(self.steps)))
        self._state = state0
        self._rng = _seeded_rng_state(seed)

    def resync(self) -> None:
        """Re-seed the model from the last 3 real frames (a new segment; the histories stay)."""
        self._sync(self.segments[-1].seed if self.segments else self.seed)

    def _action(self, action) -> int:
        if isinstance(action, str):
            if action not in self.action_meanings:
                raise SsmlibError(f"{self.game} has no action {action!r} ({', '.join(self.action_meanings)})")
            return self.action_meanings.index(action)
        a = int(action)
        if not 0 <= a < len(self.action_meanings):
            raise SsmlibError(f"action must be 0..{len(self.action_meanings) - 1} "
                              f"({', '.join(self.action_meanings)}), got {a}")
        return a

    # ----- a press ----------------------------------------------------------------------------------
    def _model_step(self, a: int):
        """One transition with action ``a`` (repeated k times for a jumpy model), from ``self._state``
        with the RNG state ``self._rng``; returns the new state, RNG state, frame uint8, reward, logits."""
        import torch

        k, dev = self.jump, next(self.model.parameters()).device
        act = torch.full((1,) if k == 1 else (1, k), a, dtype=torch.int64, device=dev)
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self._rng)
            state = self.model.step(self._state, act, sample=True)
            rng = torch.get_rng_state()
            frame_logits, reward_logits = self.model.decode(state)
            mean = torch.sigmoid(frame_logits[0].float())
            img = (mean.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
            reward = float(reward_value(self.model, reward_logits)[0])
        return state, rng, img, reward, frame_logits

    def press(self, action) -> PlayStep:
        """Advance the model by one transition and the real game by the same k environment steps."""
        a = self._action(action)
        if self.real_over:
            raise SsmlibError(f"the real game is over (frame {len(self.real_screens) - 1}); restart or pick "
                              f"another start frame")
        t0 = time.perf_counter()
        self._state, self._rng, img, pred, self.last_frame_logits = self._model_step(a)
        t1 = time.perf_counter()
        reward = 0.0
        for _ in range(self.jump):
            obs, r, term, trunc, _ = self.env.step(a)
            self.real_screens.append(obs)
            reward += float(r)
            if term or trunc:
                self.real_over = True
                break
        real = self._preprocess(self.real_screens[-1])
        t2 = time.perf_counter()
        step = PlayStep(a, self.jump, real, img, reward, pred, self.model_label, (t1 - t0) * 1e3, (t2 - t1) * 1e3,
                        len(self.segments) - 1)
        self.steps.append(step)
        return step

    def play(self, actions: Sequence) -> list[PlayStep]:
        """Press every action of ``actions`` in turn (stops early if the real game ends)."""
        out = []
        for a in actions:
            if self.real_over:
                break
            out.append(self.press(a))
        return out

    def resample(self, seed: int | None = None) -> None:
        """Draw the model's future since the last (re-)sync again: the same actions, another seed (default:
        the segment's seed + 1). Only changes a stochastic model's frames."""
        seg = self.segments[-1]
        seg.seed = seg.seed + 1 if seed is None else int(seed)
        self._state, self._rng = seg.state0, _seeded_rng_state(seg.seed)
        for i in range(seg.first, len(self.steps)):
            old = self.steps[i]
            t0 = time.perf_counter()
            self._state, self._rng, img, pred, self.last_frame_logits = self._model_step(old.action)
            old.imagined, old.predicted_reward = img, pred
            old.model_ms = (time.perf_counter() - t0) * 1e3
            old.update_mse()

    # ----- what the page shows ----------------------------------------------------------------------
    @property
    def real_score(self) -> float:
        return float(sum(s.real_reward for s in self.steps))

    @property
    def predicted_score(self) -> float:
        return float(sum(s.predicted_reward for s in self.steps))

    def env_steps(self) -> int:
        return len(self.real_screens) - 1 - self.start

    def picture(self, i: int = -1) -> np.ndarray:
        """The picture of press ``i`` (default the last): real | imagined | difference, and its numbers.
        Before the first press: the last context frame."""
        from .explorer import _FG, _DIM, _grid

        if not self.steps:
            ctx = self.context_frames()[-1]
            return _grid([[ctx, None]], [[f"real, frame {self.start}", ""]],
                         {(0, 1): [(self.model_label[:22], _FG), ("press an action", _DIM)]})
        n = len(self.steps) + i if i < 0 else i
        s = self.steps[n]
        diff = np.clip(DIFF_GAIN * np.abs(s.imagined.astype(np.int16) - s.real), 0, 255).astype(np.uint8)
        upto = self.steps[: n + 1]
        real_score, pred_score = sum(x.real_reward for x in upto), sum(x.predicted_reward for x in upto)
        frame_no = self.start + sum(x.jump for x in upto)
        good = abs(s.predicted_reward - s.real_reward) < 0.5
        lines = [(s.model_label[:22], _FG),
                 (f"press {n + 1}: {self.action_meanings[s.action]}" + (f" x{s.jump}" if s.jump > 1 else ""), _FG),
                 (f"reward {s.real_reward:g}, pred. {s.predicted_reward:.3g}", (120, 220, 120) if good else (255, 120, 120)),
                 (f"real score +{real_score:g}", _FG),
                 (f"pred. score {pred_score:+.3g}", _FG),
                 (f"MSE {s.mse:.4f}", _DIM),
                 (f"model {s.model_ms:.0f} ms", _DIM)]
        if s.segment and self.segments[s.segment].first == n:
            lines.append(("(re-synced here)", (255, 200, 80)))
        return _grid([[s.real, s.imagined, diff, None]],
                     [[f"real, frame {frame_no}", "imagined", f"|diff| x{DIFF_GAIN}", ""]], {(0, 3): lines})

    def png(self, i: int = -1) -> bytes:
        """The picture of press ``i`` as a PNG (fast compression: it is made at every key press)."""
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(self.picture(i)).save(buf, format="PNG", compress_level=1)
        return buf.getvalue()

    def pictures(self) -> list[np.ndarray]:
        """The picture of every press, padded to one size (a model switch may change the frame size)."""
        pics = [self.picture(i) for i in range(len(self.steps))]
        if not pics:
            return []
        H, W_ = max(p.shape[0] for p in pics), max(p.shape[1] for p in pics)
        out = []
        for p in pics:
            q = np.zeros((H, W_, 3), np.uint8)
            q[:] = p[0, 0]
            q[: p.shape[0], : p.shape[1]] = p
            out.append(q)
        return out

    def export_gif(self, path, fps: float = 4.0) -> Path:
        """Write the pictures of every press as an animated GIF (atomically)."""
        from PIL import Image

        from ..io import atomic_write

        path = Path(path).expanduser()
        if path.suffix.lower() != ".gif":
            raise SsmlibError(f"a GIF path must end in .gif, got {path}")
        pics = self.pictures()
        if not pics:
            raise SsmlibError("nothing to export: press an action first")
        images = [Image.fromarray(p).quantize(colors=255, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
                  for p in pics]
        atomic_write(path, lambda f: images[0].save(f, format="GIF", save_all=True, append_images=images[1:],
                                                     duration=int(1000 / fps), loop=0))
        return path

    def status(self) -> str:
        s = self.steps[-1] if self.steps else None
        last = (f"; last press: model {s.model_ms:.0f} ms, game {s.real_ms:.1f} ms" if s else "")
        return (f"{self.model_label} on {self.game}, demo episode (seed {self.demo.seed}) from frame {self.start}: "
                f"{len(self.steps)} press{'es' * (len(self.steps) != 1)}, {self.env_steps()} env steps; score real {self.real_score:g}, "
                f"predicted {self.predicted_score:.4g}{last}" + (" | the real game is over" if self.real_over else ""))

    def set_game(self, game: str, model) -> None:
        """Another game (its own demo episode, emulator and model), from the same start frame (clamped)."""
        new = PlaySession(game, model, start=self.start, seed=self.seed, sticky_actions=self.demo.sticky_actions,
                          device=self.device)
        self.close()
        self.__dict__.update(new.__dict__)

    def close(self) -> None:
        self.env.close()


def _seeded_rng_state(seed: int):
    """The CPU RNG state that ``torch.manual_seed(seed)`` sets (without touching the caller's RNG)."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return torch.get_rng_state()


# ----------------------------------------------------------------------------------- a jumpy model
def quick_jumpy_model(jump: int = 4, steps: int = 150) -> Path:
    """A quick-profile (80x64) dSSM-DET of jump ``jump``, trained on the book's quick dataset for
    ``steps`` optimiser steps into ``runs/book/12_play/dSSM-DET-k<jump>`` (resumed, not repeated, on
    later calls). No jumpy checkpoint is committed; this one is small and short-trained."""
    from ..agents.quick import quick_dataset
    from ..checkpoint import read_meta
    from ..config import RUNS_DIR
    from ..train import CHECKPOINT, train

    ds = quick_dataset()
    out = RUNS_DIR / "book" / "12_play" / f"dSSM-DET-k{jump}"
    ckpt = out / CHECKPOINT
    stale = False
    if ckpt.exists():
        meta = read_meta(ckpt)
        stale = meta.get("data_fingerprint") != ds.fingerprint or meta.get("model_cfg", {}).get("jump") != jump
        if not stale and int(meta.get("step", 0)) >= steps:
            return ckpt
    # another dataset's or jump's checkpoint: start again rather than resume it
    train("dSSM-DET", ds.root, out, profile="quick", overrides={"jump": jump, "steps": steps, "eval_every": 0},
          resume=ckpt.exists() and not stale, overwrite=stale, progress=False)
    return ckpt


# ------------------------------------------------------------------------------------------ benchmark
PLAY_BENCH_MODELS = (("dSSM-DET", 1), ("sSSM", 1), ("RAR", 1), ("dSSM-DET", 4), ("sSSM", 4))


def bench_play(game: str = "MsPacman", models=PLAY_BENCH_MODELS, threads: int = 1, presses: int = 40,
               warmup: int = 5) -> dict:
    """Press-to-frame latency of a :class:`PlaySession` at 200x160 on this CPU with ``threads`` torch threads.

    Per model: ``model_ms`` (transition + decoder + reward head + frame to uint8: the key press to the
    next imagined frame) and ``press_ms`` (all of :meth:`PlaySession.press`, with the emulator's k steps,
    plus the picture and its PNG: what the widget computes per key, without the browser's round trip).
    A committed checkpoint is used when it exists at 200x160 with that jump; otherwise a freshly built
    paper-profile model (latency does not depend on the weights). The actions are the demo episode's.
    """
    import dataclasses

    import torch

    from ..config import CHECKPOINTS_DIR, get_profile
    from ..io import provenance
    from ..models import build_model
    from ..pretrained import pretrained_path

    import os

    old_threads = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    load_before = os.getloadavg()[0]
    demo = record_demo(game)
    rows = []
    try:
        for name, k in models:
            path, m = pretrained_path(demo.game, name), None
            if path.exists() and k == 1:
                from ..checkpoint import load_model

                m = load_model(path)
                weights = f"committed {path.relative_to(CHECKPOINTS_DIR.parent).as_posix()}"
                if (m.cfg.height, m.cfg.width) != (200, 160):
                    m = None
            if m is None:
                cfg = dataclasses.replace(get_profile("paper").model, model=name, jump=k,
                                          num_actions=len(demo.action_meanings))
                torch.manual_seed(0)
                m = build_model(cfg).eval()
                weights = "fresh paper-profile model (untrained: latency does not depend on the weights)"
            s = PlaySession(game, m, demo=demo, start=DEFAULT_START)
            model_ms, press_ms = [], []
            acts = demo.actions[DEFAULT_START:]
            for i in range(warmup + presses):
                if s.real_over:
                    s.reset()
                t0 = time.perf_counter()
                step = s.press(int(acts[i % len(acts)]))
                s.png()
                total = (time.perf_counter() - t0) * 1e3
                if i >= warmup:
                    model_ms.append(step.model_ms), press_ms.append(total)
            s.close()
            row = {"model": name, "jump": k, "frame": [m.cfg.height, m.cfg.width], "weights": weights,
                   "presses": presses, "model_ms_median": float(np.median(model_ms)),
                   "model_ms_p90": float(np.percentile(model_ms, 90)),
                   "model_ms_min": float(np.min(model_ms)),
                   "press_ms_median": float(np.median(press_ms)), "press_ms_p90": float(np.percentile(press_ms, 90)),
                   "model_ms_per_env_step": float(np.median(model_ms)) / k}
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        torch.set_num_threads(old_threads)
    return {"study": "bench_play", "game": demo.game, "threads": int(threads), "target_ms": LATENCY_TARGET_MS,
            "measures": {"model_ms": "key press to the next imagined frame: model.step + decode + sigmoid + uint8",
                         "press_ms": "the whole press of the widget without the browser: model, emulator k steps, "
                                     "preprocessing, picture and PNG"},
            "warmup_presses": warmup, "rows": rows,
            "provenance": provenance(device="cpu", torch_threads=int(threads), cpu_count=os.cpu_count(),
                                     load_average_1m=[load_before, os.getloadavg()[0]])}


def _cli_bench_play(args) -> None:
    from ..config import RESULTS_DIR
    from ..io import atomic_write_json

    models = tuple((n, int(k) if k else 1) for n, _, k in (m.partition(":") for m in args.models.split(",")))
    out = Path(args.out) if args.out else RESULTS_DIR / "speed" / f"play-cpu-{args.threads}thread.json"
    if out.exists() and not args.overwrite:
        raise SsmlibError(f"{out} exists; pass --overwrite to replace it")
    result = bench_play(args.game, models, args.threads, args.presses)
    for r in result["rows"]:
        print(f"{r['model']:>9} k={r['jump']}: key press to imagined frame {r['model_ms_median']:.1f} ms "
              f"(p90 {r['model_ms_p90']:.1f}), whole press {r['press_ms_median']:.1f} ms")
    atomic_write_json(out, result)
    print(f"wrote {out}")


def add_bench_cli(sub) -> None:
    """``python -m ssmlib bench play`` (registered by ``ssmlib.studies.speed``)."""
    p = sub.add_parser("play", help="key press to imagined frame of the play widget, at 200x160 on this CPU")
    p.add_argument("--game", default="MsPacman")
    p.add_argument("--models", default=",".join(f"{n}:{k}" for n, k in PLAY_BENCH_MODELS),
                   help="comma-separated model[:jump]")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--presses", type=int, default=40, help="timed presses per model")
    p.add_argument("--out", help="default results/speed/play-cpu-<threads>thread.json")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_cli_bench_play)
    try:  # the CLI's table of numeric ranges, where this checkout has it
        from .. import cliargs
    except ImportError:
        return
    from ..cliargs import COUNT

    cliargs.RANGES.setdefault("bench play", {"--threads": COUNT, "--presses": COUNT})


# ------------------------------------------------------------------------------------------ the widget
_CSS = "<style>.ssm-play img {image-rendering: pixelated; image-rendering: crisp-edges;}</style>"

KEYBOARD_JS = """(function () {
  if (window.__ssmPlayKeys) { return; }
  window.__ssmPlayKeys = true;
  var KEYS = %s;
  window.addEventListener('keydown', function (ev) {
    var t = ev.target;
    var box = t && t.closest ? t.closest('.ssm-play') : null;
    if (!box || ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    if (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT') { return; }
    var names = KEYS[ev.key];
    if (!names) { return; }
    for (var i = 0; i < names.length; i++) {
      var b = box.querySelector('button.ssm-act-' + names[i]);
      if (b) {
        ev.preventDefault(); ev.stopPropagation(); ev.stopImmediatePropagation();
        b.click(); b.focus();
        return;
      }
    }
  }, true);
})();""" % json.dumps({k: list(v) for k, v in KEY_ACTIONS.items()})
"""Arrow keys in JupyterLab: a keydown listener (window, capture phase, so before JupyterLab's own
shortcuts) that clicks the action button of the focused play widget. Installed once per page."""


def _action_buttons(W, names: Sequence[str], pad, others, handler) -> dict:
    """One button per action: the arrows in ``pad`` (a 3x3 grid) when the game has them all, the rest in
    ``others``; ``handler(name)`` is each button's click handler. Returns name -> button."""
    on_pad = [n for row in PAD_LAYOUT for n in row]
    buttons = []
    if set(on_pad) <= set(names):
        buttons = [(n, W.Button(description=_ARROWS[n], tooltip=n, layout=W.Layout(width="48px", height="36px")))
                   for n in on_pad]
        pad.children = [b for _, b in buttons]
        rest = [n for n in names if n not in on_pad]
    else:
        pad.children = []
        rest = list(names)
    extra_b = [(n, W.Button(description=n, layout=W.Layout(width="auto"))) for n in rest]
    others.children = [b for _, b in extra_b]
    for n, b in buttons + extra_b:
        b.add_class(f"ssm-act-{n}")
        b.on_click(handler(n))
    return dict(buttons + extra_b)


def _keyboard_output(W):
    """A hidden output whose script maps the arrow keys to the buttons (JupyterLab, with a kernel)."""
    keys = W.Output(layout=W.Layout(display="none"))  # its script runs hidden; the static page shows nothing
    keys.outputs = ({"output_type": "display_data", "metadata": {},
                     "data": {"application/javascript": KEYBOARD_JS,
                              "text/plain": "(the arrow keys work in JupyterLab, with a kernel)"}},)
    return keys


def play_widget(game: str = "MsPacman", model="dSSM-DET", *, start: int = DEFAULT_START, seed: int = 0,
                models: Sequence[str] | None = None, extra_models: dict | None = None, width: int = 900,
                session: PlaySession | None = None):
    """The play widget (its :class:`PlaySession` is ``box.session``).

    ``models``: the model choices (default: the committed pretrained models of ``game``);
    ``extra_models``: more choices, label -> checkpoint path or model object (e.g. a jumpy model).
    ``session``: drive an existing session instead of a new one.
    """
    import ipywidgets as W

    from ..pretrained import available

    s = session if session is not None else PlaySession(game, model, start=start, seed=seed)
    extra = dict(extra_models or {})

    def choices(g):
        names = list(models) if models is not None else [m for gg, m in available() if gg == g]
        return names + [k for k in extra if k not in names]

    games = sorted({g for g, _ in available()} | {s.game})
    game_w = W.Dropdown(options=games, value=s.game, description="game", layout=W.Layout(width="190px"))
    current = s.model_label if s.model_label in choices(s.game) else None
    model_w = W.Dropdown(options=choices(s.game) + ([] if current else [s.model_label]),
                         value=current or s.model_label, description="model", layout=W.Layout(width="260px"))
    start_w = W.IntSlider(s.start, s.min_start(), s.max_start(), description="start frame",
                          continuous_update=False, layout=W.Layout(width="420px"))
    wide = W.Layout(width="148px")
    restart_w = W.Button(description="restart", icon="refresh", layout=wide,
                         tooltip="both sides back to the start frame")
    resync_w = W.Button(description="re-sync", layout=wide, tooltip="re-seed the model from the last 3 real frames")
    resample_w = W.Button(description="resample future", layout=wide,
                          tooltip="the model's future since the last sync again, another seed (stochastic models)")
    picture = W.Image(format="png")
    status = W.HTML()
    pad = W.GridBox(layout=W.Layout(grid_template_columns="repeat(3, 48px)", grid_gap="2px"))
    others = W.HBox()

    def show_error(e):
        status.value = f"<span style='color:#c00'>ssmlib: error: {e}</span>"

    def refresh():
        picture.value = s.png()
        picture.layout.width = f"{min(width, int(1.5 * s.picture().shape[1]))}px"
        resample_w.disabled = not s.model.stochastic
        status.value = f"<span style='color:#555'>{s.status()}</span>"

    def guarded(fn):
        def handler(arg=None):
            try:
                fn(arg)
            except SsmlibError as e:
                show_error(e)
                return
            refresh()
        return handler

    def build_buttons():
        box.buttons = _action_buttons(W, s.action_meanings, pad, others, lambda n: guarded(lambda _: s.press(n)))

    def on_game(change):
        opts = choices(change["new"])
        keep = model_w.value if model_w.value in opts else (opts[0] if opts else None)
        if keep is None:
            raise SsmlibError(f"no pretrained model for {change['new']}")
        s.set_game(change["new"], extra.get(keep, keep))
        model_w.options, model_w.value = opts, keep
        start_w.min, start_w.max, start_w.value = s.min_start(), s.max_start(), s.start
        build_buttons()

    def on_model(change):
        s.set_model(extra.get(change["new"], change["new"]))
        start_w.min, start_w.max = s.min_start(), s.max_start()

    def on_start(change):
        s.reset(change["new"])

    game_w.observe(guarded(on_game), names="value")
    model_w.observe(guarded(on_model), names="value")
    start_w.observe(guarded(on_start), names="value")
    restart_w.on_click(guarded(lambda _: s.reset()))
    resync_w.on_click(guarded(lambda _: s.resync()))
    resample_w.on_click(guarded(lambda _: s.resample()))

    keys = _keyboard_output(W)
    title = W.HTML("<b>Play</b> inside the model and in the real game on the same actions: click a button, or "
                   "click into the widget and use the arrow keys (q e z c: diagonals, space: no-op)")
    controls = W.VBox([pad, others, resync_w, resample_w, restart_w], layout=W.Layout(min_width="160px"))
    box = W.VBox([W.HTML(_CSS), title, W.HBox([game_w, model_w]), start_w, W.HBox([controls, picture]), status, keys])
    box.add_class("ssm-play")
    box.session = s
    build_buttons()
    refresh()
    return box
