"""The rollout explorer: real frames next to a model's imagined ones, for any test window and actions.

Two layers:

* :class:`RolloutExplorer`, plain Python, testable without a browser. Its state is the game, the model
  (a committed pretrained name, a checkpoint path, or a model object), the dataset, the test episode,
  the start frame, the action mode (``"recorded"``, ``"repeat"`` one action, or ``"per step"``), the
  per-step actions, the number of samples and the seed. :meth:`RolloutExplorer.rollout` runs **one**
  batched ``model.imagine(state, actions, decode=True, sample=True)`` over all samples and caches it
  under a key of exactly the inputs it depends on: setting anything else (the timeline position, a
  mode switch that leaves the actions unchanged) reuses it. :meth:`RolloutExplorer.frame` draws the
  picture of one step (real | imagined samples, and their absolute differences) once and caches it.
* :func:`explore`, the ipywidgets front end. The timeline is a ``Play`` button and a slider linked in
  the browser (``jslink``) to a ``Stack`` holding the picture of every step, so moving the slider
  shows a picture that is already there: no Python runs, and the timeline keeps working on the
  static page of the book, where the widget state is saved and no kernel exists. Controls that change
  the rollout (model, episode, start, actions, samples) need the kernel (JupyterLab).

Data: the test episodes of ``pretrained.demo_dataset(game)`` (real frames collected live from a seed
the pretrained models never saw, at the model's frame size), or of any dataset folder.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..config import CONTEXT
from ..errors import SsmlibError
from .frames import as_hwc_uint8

ACTION_MODES = ("recorded", "repeat", "per step")
MAX_SAMPLES = 4
GIF_DIR = "ssmlib-explorer"
"""Folder of exported GIFs by default, under the current directory."""
DEFAULT_START = 120
"""Default first context frame (ours): Ms. Pac-Man's first ~100 steps are an intro in which nothing
moves; a start after it shows something happening. Clamped to what the episode allows."""
DIFF_GAIN = 2
"""The difference images show ``DIFF_GAIN * |imagined - real|`` (clipped), so that small errors show."""

_BG, _FG, _DIM = (24, 24, 24), (235, 235, 235), (150, 150, 150)
_GAP, _LABEL_H = 4, 14
_MIN_CELL_W = 120
"""Frames narrower than this are drawn enlarged by a whole factor (nearest neighbour: 80x64 frames at
2x), so that the labels and the text lines (font size 11) fit above and beside them."""


# --------------------------------------------------------------------------------------------- caches
_MODELS: dict = {}
_DATA: dict = {}
_KEEP = object()


def _resolve_checkpoint(spec) -> Path:
    path = Path(spec).expanduser()
    if path.is_dir() and (path / "checkpoint.safetensors").exists():
        return path / "checkpoint.safetensors"  # a run folder of `python -m ssmlib train`
    return path


def load_explorer_model(game: str, spec, device="cpu"):
    """A model for the explorer: a committed pretrained name (``"sSSM"``) for ``game``, or a checkpoint
    path (a file or a run folder). Cached by file and modification time. Bad input: one SsmlibError line."""
    from ..checkpoint import load_model
    from ..config import MODEL_NAMES
    from ..pretrained import available, pretrained_path

    if isinstance(spec, str) and spec in MODEL_NAMES:
        path = pretrained_path(game, spec)
        if not path.exists():
            have = ", ".join(f"{g}/{m}" for g, m in available()) or "none"
            raise SsmlibError(f"no pretrained {spec} for {game} (available: {have}); give a checkpoint path instead")
    else:
        path = _resolve_checkpoint(spec)
        if not path.exists() and isinstance(spec, str) and "/" not in spec and not path.suffix:
            raise SsmlibError(f"unknown model {spec!r}: give one of {', '.join(MODEL_NAMES)} (pretrained) "
                              f"or the path of a checkpoint")
    key = (str(path.resolve()), path.stat().st_mtime_ns if path.exists() else None, str(device))
    if key not in _MODELS:
        _MODELS[key] = load_model(path, device=device)  # SsmlibError for missing, corrupt, not ours
    return _MODELS[key], path


def load_explorer_data(game: str, data=None, height: int = 200, width: int = 160):
    """The dataset whose test episodes the explorer shows: ``data`` (a folder or an open Dataset), or
    the demo dataset of ``game`` at ``height`` x ``width`` (collected once into runs/book/)."""
    from ..data.store import Dataset, open_dataset
    from ..pretrained import demo_dataset

    if isinstance(data, Dataset):
        return data
    key = (str(Path(data).resolve()),) if data is not None else (game, height, width)
    if key not in _DATA:
        _DATA[key] = open_dataset(data) if data is not None else demo_dataset(game, height=height, width=width)
    return _DATA[key]


# ----------------------------------------------------------------------------------------- the rollout
@dataclass
class ExplorerRollout:
    """One computed rollout: ``S`` samples of ``T`` steps after the 3 context frames."""

    key: tuple
    context: np.ndarray
    """(3, H, W, 3) uint8: the real context frames."""
    real: np.ndarray
    """(T, H, W, 3) uint8: the recorded frames that followed the context."""
    imagined: np.ndarray
    """(S, T, H, W, 3) uint8: the model's mean frames sigmoid(logits), one rollout per sample."""
    actions: np.ndarray
    """(T,) the actions imagined with (``actions[t]`` leads to step t+1)."""
    recorded_actions: np.ndarray
    """(T,) the actions that were really taken there."""
    real_rewards: np.ndarray
    """(T,) the recorded rewards."""
    predicted_rewards: np.ndarray
    """(S, T) the model's most likely reward of each step."""
    mse: np.ndarray
    """(S, T) mean squared error of each imagined frame against the recorded one (intensities in [0, 1])."""
    seconds: float
    """Wall time of the model's part (initial state + one batched imagine + sigmoid), on this machine."""

    @property
    def follows_recording(self) -> bool:
        return bool(np.array_equal(self.actions, self.recorded_actions))

    def samples_identical(self) -> bool:
        return all(np.array_equal(self.imagined[0], x) for x in self.imagined[1:])

    def sample_spread(self) -> np.ndarray:
        """(T, H, W): the standard deviation over samples of each imagined pixel (intensity in [0, 1],
        mean over colour channels): where the model's futures differ. Zero for one sample or a
        deterministic model."""
        x = self.imagined.astype(np.float32) / 255.0  # (S, T, H, W, 3)
        return x.std(0).mean(-1)


def spread_figure(rollouts: dict, steps: Sequence[int] = (1, 4, 7, 10), gain: float = 4.0):
    """Where sampled futures differ: one row per model (``rollouts[label]``, same window), one column per
    imagined step: the recorded frame in grey with ``gain * sample_spread`` in red on top; the row's
    title gives the mean spread per step. Returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rollouts), len(steps), figsize=(2.2 * len(steps), 2.6 * len(rollouts)),
                             squeeze=False)
    for row, (label, r) in zip(axes, rollouts.items()):
        spread = r.sample_spread()
        for ax, h in zip(row, steps):
            grey = r.real[h - 1].astype(np.float32).mean(-1) / 255.0
            img = np.stack([grey * 0.5] * 3, -1)
            img[..., 0] = np.clip(img[..., 0] + gain * spread[h - 1], 0, 1)
            ax.imshow(img)
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"{label}\nh={h}: spread {spread[h - 1].mean():.4f}", fontsize=8)
    fig.tight_layout()
    return fig


class RolloutExplorer:
    """Real and imagined frames of one test window; see the module docstring.

    ``model``: a pretrained name for ``game`` (default ``"sSSM"``), a checkpoint path, or an
    :class:`~ssmlib.models.EnvironmentModel`. ``data``: a dataset folder or Dataset (default: the demo
    dataset of ``game`` at the model's frame size). Change the state with :meth:`update`.
    """

    def __init__(self, game: str = "MsPacman", model="sSSM", *, data=None, episode: int = 0,
                 start: int | None = None, horizon: int = 10, samples: int = 1, seed: int = 0,
                 action_mode: str = "recorded", repeat_action: int = 0, step_actions: Sequence[int] | None = None,
                 device="cpu"):
        if horizon < 1:
            raise SsmlibError(f"horizon must be >= 1, got {horizon}")
        self.game, self.horizon, self.device = game, int(horizon), device
        self.computes = 0
        """How many times a rollout was computed (the tests check the cache with it)."""
        self._rollout: ExplorerRollout | None = None
        self._frames: dict[int, np.ndarray] = {}
        self._pngs: dict[int, bytes] = {}
        self._context_png: tuple | None = None
        self.episode, self.start, self.t = 0, 0, 0
        self.samples, self.seed = 1, 0
        self.action_mode, self.repeat_action, self.step_actions = "recorded", 0, None
        self._data_arg = data
        self.set_model(model, data=data)
        self.update(episode=episode, start=DEFAULT_START if start is None else start, samples=samples, seed=seed,
                    action_mode=action_mode, repeat_action=repeat_action, step_actions=step_actions)

    # ----- model and data ---------------------------------------------------------------------------
    def set_model(self, model, game: str | None = None, data=_KEEP) -> None:
        """Load another model (a pretrained name, a checkpoint path or a model object), optionally of
        another ``game``, or on other ``data`` (a folder; None: the demo dataset of the game; by default
        the data of the explorer stays). On error the explorer keeps its current model and data."""
        from ..config import MODEL_NAMES
        from ..models import EnvironmentModel

        game = game or self.game
        data = self._data_arg if data is _KEEP else data
        if isinstance(model, EnvironmentModel):
            m, label, ident = model, model.name, ("object", id(model))
        else:
            m, path = load_explorer_model(game, model, self.device)
            if isinstance(model, str) and model in MODEL_NAMES:
                label = model
            else:  # a checkpoint path: the model and the file (or run folder) it came from
                label = f"{m.name} ({path.parent.name if path.name == 'checkpoint.safetensors' else path.name})"
            ident = ("file", str(path.resolve()), path.stat().st_mtime_ns)
        if data is None:
            ds = load_explorer_data(game, None, m.cfg.height, m.cfg.width)
        else:
            ds = load_explorer_data(game, data)
        have = (m.cfg.height, m.cfg.width, m.cfg.num_actions)
        want = (ds.height, ds.width, ds.num_actions)
        if have != want:
            raise SsmlibError(f"{label} reads {have[0]}x{have[1]} frames with {have[2]} actions, but the data "
                              f"({ds.game}, {ds.root}) has {want[0]}x{want[1]} frames with {want[2]} actions")
        if getattr(m.cfg, "jump", 1) != 1:
            raise SsmlibError(f"{label} is a jumpy model (jump {m.cfg.jump}); the explorer steps one action at a time")
        episodes = [e for e in ds.split("test") if e.length >= CONTEXT + self.horizon]
        if not episodes:
            raise SsmlibError(f"{ds.root} has no test episode of {CONTEXT + self.horizon} frames or more")
        self.model, self.model_label, self._model_id = m.eval(), label, ident
        self.data, self.game, self._data_arg = ds, ds.game, data
        self.episodes = episodes
        if list(ds.action_meanings) != getattr(self, "action_meanings", None):  # another action set
            self.step_actions, self.repeat_action = None, 0  # per-step mode starts from the recorded actions
        self.action_meanings = list(ds.action_meanings)
        self.update(episode=min(self.episode, len(episodes) - 1), start=self.start)

    # ----- state ------------------------------------------------------------------------------------
    def max_start(self, episode: int | None = None) -> int:
        e = self.episodes[self.episode if episode is None else episode]
        return e.length - CONTEXT - self.horizon

    def update(self, **changes) -> bool:
        """Set any of ``episode, start, t, samples, seed, action_mode, repeat_action, step_actions``.

        ``start`` is clamped to the episode; switching to ``"per step"`` without per-step actions starts
        from the current actions. Returns whether the next :meth:`rollout` will be computed anew.
        """
        unknown = set(changes) - {"episode", "start", "t", "samples", "seed", "action_mode", "repeat_action",
                                  "step_actions"}
        if unknown:
            raise SsmlibError(f"unknown explorer setting(s): {', '.join(sorted(unknown))}")
        if "episode" in changes:
            e = int(changes["episode"])
            if not 0 <= e < len(self.episodes):
                raise SsmlibError(f"episode must be 0..{len(self.episodes) - 1} (test episodes), got {e}")
            self.episode = e
        if "start" in changes or "episode" in changes:
            self.start = max(0, min(int(changes.get("start", self.start)), self.max_start()))
        if "t" in changes:
            self.t = max(0, min(int(changes["t"]), self.horizon - 1))
        if "samples" in changes:
            s = int(changes["samples"])
            if not 1 <= s <= MAX_SAMPLES:
                raise SsmlibError(f"samples must be 1..{MAX_SAMPLES}, got {s}")
            self.samples = s
        if "seed" in changes:
            self.seed = int(changes["seed"])
        A = len(self.action_meanings)
        if "repeat_action" in changes:
            a = int(changes["repeat_action"])
            if not 0 <= a < A:
                raise SsmlibError(f"action must be 0..{A - 1} ({', '.join(self.action_meanings)}), got {a}")
            self.repeat_action = a
        if changes.get("step_actions") is not None:
            acts = [int(a) for a in changes["step_actions"]]
            if len(acts) != self.horizon or not all(0 <= a < A for a in acts):
                raise SsmlibError(f"step_actions must be {self.horizon} actions in 0..{A - 1}, got {acts}")
            self.step_actions = acts
        if "action_mode" in changes:
            mode = changes["action_mode"]
            if mode not in ACTION_MODES:
                raise SsmlibError(f"action_mode must be one of {', '.join(ACTION_MODES)}, got {mode!r}")
            if mode == "per step" and self.step_actions is None:
                self.step_actions = self.actions().tolist()
            self.action_mode = mode
        return self._key() != (self._rollout.key if self._rollout else None)

    def set_step_action(self, t: int, action: int) -> bool:
        """Per-step mode: the action of step ``t`` (switches to ``"per step"``)."""
        acts = list(self.step_actions if self.step_actions is not None else self.actions().tolist())
        acts[int(t)] = int(action)
        return self.update(step_actions=acts, action_mode="per step")

    def _rows(self) -> tuple[dict, int]:
        e = self.episodes[self.episode]
        return self.data.shards[e.shard], e.start + self.start

    def recorded_actions(self) -> np.ndarray:
        shard, row = self._rows()
        return np.asarray(shard["actions"][row + CONTEXT - 1: row + CONTEXT - 1 + self.horizon]).astype(np.int64)

    def actions(self) -> np.ndarray:
        """The T actions the rollout uses, by the current action mode."""
        if self.action_mode == "repeat":
            return np.full(self.horizon, self.repeat_action, np.int64)
        if self.action_mode == "per step" and self.step_actions is not None:
            return np.asarray(self.step_actions, np.int64)
        return self.recorded_actions()

    def _key(self) -> tuple:
        return (self._model_id, str(self.data.root), self.episode, self.start, self.horizon,
                tuple(self.actions().tolist()), self.samples, self.seed)

    # ----- the rollout --------------------------------------------------------------------------------
    @torch.no_grad()
    def rollout(self) -> ExplorerRollout:
        """The rollout of the current state; computed only if an input it depends on changed."""
        key = self._key()
        if self._rollout is not None and self._rollout.key == key:
            return self._rollout
        shard, row = self._rows()
        T, S = self.horizon, self.samples
        frames = np.array(shard["frames"][row: row + CONTEXT + T])  # (3+T, H, W, 3) uint8, a copy
        rewards = np.asarray(shard["rewards"][row + CONTEXT - 1: row + CONTEXT - 1 + T], np.float32)
        actions = self.actions()
        dev = next(self.model.parameters()).device
        context = torch.from_numpy(frames[:CONTEXT]).to(dev).permute(0, 3, 1, 2).float().div_(255)[None]
        acts = torch.from_numpy(actions).to(dev)[None].repeat(S, 1)
        t0 = time.perf_counter()
        with torch.random.fork_rng(devices=[]):  # the seed picks the samples; the caller's RNG is untouched
            torch.manual_seed(self.seed)
            state = self.model.initial_state(context).map(lambda x: x.repeat_interleave(S, 0))
            roll = self.model.imagine(state, acts, decode=True, sample=True)
            mean = torch.sigmoid(roll.frame_logits.float())  # (S, T, 3, H, W)
        seconds = time.perf_counter() - t0
        imagined = (mean.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 1, 3, 4, 2).cpu().numpy()
        real_f = torch.from_numpy(frames[CONTEXT:]).to(dev).permute(0, 3, 1, 2).float().div_(255)
        mse = (mean - real_f[None]).square().mean((-3, -2, -1)).cpu().numpy()
        self._rollout = ExplorerRollout(
            key=key, context=frames[:CONTEXT], real=frames[CONTEXT:], imagined=imagined, actions=actions,
            recorded_actions=self.recorded_actions(), real_rewards=rewards,
            predicted_rewards=self.model.decode_reward(roll.reward_logits.float()).cpu().numpy(),
            mse=mse, seconds=seconds)
        self._frames, self._pngs = {}, {}
        self.computes += 1
        return self._rollout

    # ----- pictures -----------------------------------------------------------------------------------
    def frame(self, t: int | None = None) -> np.ndarray:
        """The picture of step ``t`` (default: the timeline position), (H', W', 3) uint8, cached:
        top row the recorded frame and each imagined sample, bottom row the step's numbers and each
        sample's ``DIFF_GAIN * |imagined - real|``."""
        r = self.rollout()
        t = self.t if t is None else int(t)
        if t not in self._frames:
            self._frames[t] = _compose_step(r, t, self.action_meanings, self.model_label)
        return self._frames[t]

    def png(self, t: int | None = None) -> bytes:
        r = self.rollout()
        t = self.t if t is None else int(t)
        if t not in self._pngs:
            self._pngs[t] = _png(self.frame(t))
        return self._pngs[t]

    def context_png(self) -> bytes:
        """The 3 context frames side by side (cached by episode and start)."""
        key = (str(self.data.root), self.episode, self.start)
        if self._context_png is None or self._context_png[0] != key:
            shard, row = self._rows()
            ctx = np.asarray(shard["frames"][row: row + CONTEXT])
            labels = [f"context {row - self.episodes[self.episode].start + i}" for i in range(CONTEXT)]
            self._context_png = (key, _png(_grid([list(ctx)], [labels])))
        return self._context_png[1]

    def reward_table_html(self) -> str:
        """Predicted against recorded rewards, every step (an HTML table)."""
        r = self.rollout()
        names = self.action_meanings
        head = "".join(f"<th>t+{t + 1}</th>" for t in range(self.horizon))
        acts = "".join(f"<td>{names[a]}</td>" for a in r.actions)
        real = "".join(f"<td>{v:g}</td>" for v in r.real_rewards)
        pred = "".join(
            f"<tr><th>predicted{'' if len(r.predicted_rewards) == 1 else f' (sample {i + 1})'}</th>"
            + "".join(f"<td style='color:{'#080' if p == q else '#c00'}'>{p:g}</td>"
                      for p, q in zip(row, r.real_rewards)) + "</tr>"
            for i, row in enumerate(r.predicted_rewards))
        note = "" if r.follows_recording else (
            "<br><i>The actions differ from the recorded ones: the recorded frames and rewards show what "
            "happened with the recorded actions, not with these.</i>")
        return ("<table class='ssm-rewards' style='font-size:11px;border-collapse:collapse'>"
                f"<tr><th></th>{head}</tr><tr><th>action</th>{acts}</tr>"
                f"<tr><th>recorded reward</th>{real}</tr>{pred}</table>{note}")

    def describe(self) -> str:
        r = self.rollout()
        e = self.episodes[self.episode]
        mode = {"recorded": "recorded actions", "repeat": f"repeat {self.action_meanings[self.repeat_action]}",
                "per step": "actions set per step"}[self.action_mode]
        return (f"{self.model_label} on {self.game}: test episode {self.episode} (id {e.id}), context frames "
                f"{self.start}-{self.start + CONTEXT - 1}, {self.horizon} steps, {mode}, {self.samples} "
                f"sample{'s' * (self.samples > 1)} (seed {self.seed}); model time {r.seconds * 1000:.0f} ms")

    # ----- export -------------------------------------------------------------------------------------
    def default_gif_path(self) -> Path:
        """``./ssmlib-explorer/<game>-<model>-ep..-t..-<actions>-s..-seed...gif`` under the current
        directory (where the user works, never inside the installed package)."""
        mode = {"recorded": "rec", "repeat": f"rep{self.repeat_action}", "per step": "custom"}[self.action_mode]
        name = Path(str(self.model_label)).name.replace(" ", "_").replace("(", "").replace(")", "")
        return Path.cwd() / GIF_DIR / (f"{self.game}-{name}-ep{self.episode}-t{self.start}-{mode}"
                                       f"-s{self.samples}-seed{self.seed}.gif")

    def export_gif(self, path=None, fps: float = 3.0) -> Path:
        """Write the rollout (one GIF frame per step, the pictures of :meth:`frame`) atomically; returns
        the path (default: :meth:`default_gif_path`, under the current directory)."""
        from PIL import Image

        from ..io import atomic_write

        path = Path(path).expanduser() if path else self.default_gif_path()
        if path.suffix.lower() != ".gif":
            raise SsmlibError(f"a GIF path must end in .gif, got {path}")
        images = [Image.fromarray(self.frame(t)) for t in range(self.horizon)]
        images = [im.quantize(colors=255, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
                  for im in images]
        try:
            atomic_write(path, lambda f: images[0].save(f, format="GIF", save_all=True, append_images=images[1:],
                                                         duration=int(1000 / fps), loop=0))
        except OSError as e:
            raise SsmlibError(f"cannot write {path}: {e.strerror or e}") from None
        return path


# -------------------------------------------------------------------------------------------- drawing
def _font():
    from PIL import ImageFont

    return ImageFont.load_default(size=11)


def _fit(draw, text: str, font, width: int) -> str:
    """``text`` cut (ending in "..") to at most ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "..", font=font) > width:
        text = text[:-1]
    return text + ".."


def _grid(rows: list[list], labels: list[list[str]], texts: dict | None = None) -> np.ndarray:
    """Frames on a dark canvas with a label above each; ``texts[(i, j)]`` = lines written in an empty cell.
    Small frames are enlarged (``_MIN_CELL_W``); labels and lines are cut to their cell's width."""
    from PIL import Image, ImageDraw

    h, w = next(as_hwc_uint8(f).shape[:2] for row in rows for f in row if f is not None)
    scale = -(-_MIN_CELL_W // w)
    h, w = h * scale, w * scale
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    H = n_rows * (h + _LABEL_H + _GAP) + _GAP
    W_ = n_cols * (w + _GAP) + _GAP
    canvas = np.empty((H, W_, 3), np.uint8)
    canvas[:] = _BG
    for i, row in enumerate(rows):
        for j, f in enumerate(row):
            if f is not None:
                y, x = _GAP + i * (h + _LABEL_H + _GAP) + _LABEL_H, _GAP + j * (w + _GAP)
                f = as_hwc_uint8(f)
                canvas[y:y + h, x:x + w] = f.repeat(scale, 0).repeat(scale, 1) if scale > 1 else f
    img = Image.fromarray(canvas)
    draw, font = ImageDraw.Draw(img), _font()
    for i, row_labels in enumerate(labels):
        for j, text in enumerate(row_labels):
            if text:
                draw.text((_GAP + j * (w + _GAP) + 1, _GAP + i * (h + _LABEL_H + _GAP)), _fit(draw, text, font, w - 2),
                          fill=_FG, font=font)
    for (i, j), lines in (texts or {}).items():
        y0 = _GAP + i * (h + _LABEL_H + _GAP) + _LABEL_H + 2
        for k, (line, color) in enumerate(lines):
            draw.text((_GAP + j * (w + _GAP) + 2, y0 + 13 * k), _fit(draw, line, font, w - 4), fill=color, font=font)
    return np.asarray(img)


def _compose_step(r: ExplorerRollout, t: int, names: Sequence[str], model_label: str) -> np.ndarray:
    S, T = r.imagined.shape[:2]
    real = r.real[t]
    diffs = [np.clip(DIFF_GAIN * np.abs(x[t].astype(np.int16) - real), 0, 255).astype(np.uint8) for x in r.imagined]
    sample = (lambda i: f"sample {i + 1}") if S > 1 else (lambda i: "imagined")
    top = [f"recorded t+{t + 1}"] + [sample(i) for i in range(S)]
    bottom = [f"step {t + 1} of {T}"] + [f"|diff| x{DIFF_GAIN}" + (f", {i + 1}" if S > 1 else "") for i in range(S)]
    pred = " / ".join(f"{p:g}" for p in r.predicted_rewards[:, t])
    ok = all(p == r.real_rewards[t] for p in r.predicted_rewards[:, t])
    lines = [(str(model_label)[:24], _FG),
             (f"action {names[int(r.actions[t])]}", _FG if r.follows_recording else (255, 200, 80)),
             (f"reward recorded {r.real_rewards[t]:g}", _FG),
             (f"predicted {pred}", (120, 220, 120) if ok else (255, 120, 120)),
             ("MSE " + " / ".join(f"{m:.4f}" for m in r.mse[:, t]), _DIM)]
    if not r.follows_recording:
        lines.append(("(actions differ from", (255, 200, 80)))
        lines.append((" the recorded ones)", (255, 200, 80)))
    return _grid([[real, *r.imagined[:, t]], [None, *diffs]], [top, bottom], {(1, 0): lines})


def _png(frame: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------ the widget
_CSS = ("<style>.ssm-explorer img {image-rendering: pixelated; image-rendering: crisp-edges;}"
        ".ssm-explorer .ssm-rewards td, .ssm-explorer .ssm-rewards th {padding: 1px 6px; text-align: right;}"
        "</style>")


PATH_OPTION = "checkpoint path"
"""The model dropdown's entry for a checkpoint typed by hand."""


def _pretrained_models(game: str) -> list[str]:
    from ..pretrained import available

    return [m for g, m in available() if g == game]


class _ExplorerView:
    """The widgets of :func:`explore` around one :class:`RolloutExplorer`: built in ``_controls`` and
    ``_displays``, wired in ``_wire``, laid out in ``box``; every handler changes the explorer, then
    ``refresh`` redraws what changed and ``sync_controls`` sets the widgets back from the explorer."""

    def __init__(self, ex: RolloutExplorer, model, compact: bool, width: int):
        import ipywidgets as W

        self.W, self.ex, self.compact, self.width = W, ex, compact, width
        self.status = W.HTML()
        self.busy = False  # set while the widgets are set from code: their observers must not fire
        self.shown_rollout = None
        self._controls(model)
        self._displays()
        self._wire()
        self.refresh()

    # ----- widgets
    def _controls(self, model) -> None:
        from ..pretrained import available

        W, ex, narrow = self.W, self.ex, self.W.Layout(width="auto")
        games = sorted({g for g, _ in available()} | {ex.game})
        self.game_w = W.Dropdown(options=games, value=ex.game, description="game", layout=W.Layout(width="190px"))
        is_pretrained = isinstance(model, str) and model in _pretrained_models(ex.game)
        model_opts = _pretrained_models(ex.game) + ([] if self.compact and is_pretrained else [PATH_OPTION])
        self.model_w = W.Dropdown(options=model_opts, value=model if is_pretrained else PATH_OPTION,
                                  description="model", layout=W.Layout(width="210px"))
        self.path_w = W.Text(value="" if is_pretrained or not isinstance(model, (str, Path)) else str(model),
                             placeholder="runs/.../sSSM (a run folder) or a .safetensors file",
                             layout=W.Layout(width="360px"))
        self.load_w = W.Button(description="load checkpoint", layout=narrow)
        self.episode_w = W.IntSlider(ex.episode, 0, len(ex.episodes) - 1, description="episode",
                                     continuous_update=False)
        self.start_w = W.IntSlider(ex.start, 0, ex.max_start(), description="start frame", continuous_update=False,
                                   layout=W.Layout(width="420px"))
        self.mode_w = W.ToggleButtons(options=[("recorded", "recorded"), ("repeat one action", "repeat"),
                                               ("set per step", "per step")], value=ex.action_mode,
                                      tooltips=["the actions that were really taken", "one action at every step",
                                                "choose the action of each step"], style={"button_width": "140px"})
        action_opts = [(n, i) for i, n in enumerate(ex.action_meanings)]
        self.repeat_w = W.Dropdown(options=action_opts, value=ex.repeat_action, layout=W.Layout(width="130px"))
        self.step_ws = [W.Dropdown(options=action_opts, value=int(a), layout=W.Layout(width="100px"),
                                   description=f"t+{i + 1}", style={"description_width": "28px"})
                        for i, a in enumerate(ex.actions())]
        self.steps_box = W.GridBox(self.step_ws, layout=W.Layout(grid_template_columns="repeat(5, 140px)"))
        self.samples_w = W.IntSlider(ex.samples, 1, MAX_SAMPLES, description="samples", continuous_update=False)
        self.resample_w = W.Button(description="new samples", layout=narrow,
                                   tooltip="draw other samples (another seed); only changes stochastic models")

    def _displays(self) -> None:
        W, ex, T = self.W, self.ex, self.ex.horizon
        self.context_img = W.Image(format="png")
        self.step_imgs = [W.Image(format="png") for _ in range(T)]
        self.stack = W.Stack(self.step_imgs, selected_index=ex.t)
        self.timeline = W.SelectionSlider(options=[f"t+{i + 1}" for i in range(T)], index=ex.t,
                                          description="timeline", layout=W.Layout(width="420px"))
        self.play = W.Play(value=ex.t, min=0, max=T - 1, interval=600, description="play")
        W.jslink((self.play, "value"), (self.timeline, "index"))  # in the browser: works on the static page too
        W.jslink((self.timeline, "index"), (self.stack, "selected_index"))
        self.rewards_w = W.HTML()
        self.gif_path_w = W.Text(placeholder=f"default: ./{GIF_DIR}/<game>-<model>-...gif",
                                 layout=W.Layout(width="360px"))
        self.gif_w = W.Button(description="export GIF", icon="download", layout=W.Layout(width="auto"))

    # ----- drawing
    def show_error(self, e: Exception) -> None:
        self.status.value = f"<span style='color:#c00'>ssmlib: error: {e}</span>"

    def sync_controls(self) -> None:
        ex = self.ex
        self.busy = True
        try:
            opts = [(n, i) for i, n in enumerate(ex.action_meanings)]
            if list(self.repeat_w.options) != opts:  # another game: another action set
                for w_ in (self.repeat_w, *self.step_ws):
                    w_.options = opts
            self.repeat_w.value = ex.repeat_action
            self.episode_w.max = len(ex.episodes) - 1
            self.episode_w.value = ex.episode
            self.start_w.max = ex.max_start()
            self.start_w.value = ex.start
            self.mode_w.value = ex.action_mode
            self.repeat_w.layout.display = "" if ex.action_mode == "repeat" else "none"
            self.steps_box.layout.display = "" if ex.action_mode == "per step" else "none"
            for w_, a in zip(self.step_ws, ex.actions()):
                w_.value = int(a)
            self.resample_w.disabled = not ex.model.stochastic
        finally:
            self.busy = False

    def refresh(self) -> None:
        ex = self.ex
        try:
            t0 = time.perf_counter()
            r = ex.rollout()
            if self.shown_rollout is not r:
                # shown enlarged (pixelated, see _CSS), at most `width` pixels wide; the pictures grow
                # with the samples, and another model may have another frame size
                image_w = f"{min(self.width, int(1.5 * ex.frame(0).shape[1]))}px"
                for i, img in enumerate(self.step_imgs):
                    img.value = ex.png(i)
                    img.layout.width = image_w
                self.context_img.value = ex.context_png()
                context_w = int.from_bytes(ex.context_png()[16:20], "big")  # the PNG's width (IHDR)
                self.context_img.layout.width = f"{min(self.width, int(1.25 * context_w))}px"
                self.rewards_w.value = ex.reward_table_html()
                self.shown_rollout = r
            self.sync_controls()
            total = time.perf_counter() - t0
            self.status.value = (f"<span style='color:#555'>{ex.describe()}; with the pictures "
                                 f"{total * 1000:.0f} ms (rollouts computed: {ex.computes})</span>")
        except SsmlibError as e:
            self.show_error(e)

    def guarded(self, fn):
        """A widget handler: ``fn(change)``, then a redraw; an SsmlibError is shown, nothing is lost."""
        def handler(change=None):
            if self.busy:
                return
            try:
                fn(change)
            except SsmlibError as e:
                self.show_error(e)
                self.sync_controls()
                return
            self.refresh()
        return handler

    # ----- handlers
    def on_game(self, change) -> None:
        models = _pretrained_models(change["new"])
        keep = self.model_w.value if self.model_w.value in models else (models[0] if models else None)
        if keep is None:
            raise SsmlibError(f"no pretrained model for {change['new']}; load a checkpoint path")
        self.status.value = (f"loading {keep} for {change['new']} (the first time collects its demo data: a few "
                             f"seconds)...")
        self.ex.set_model(keep, game=change["new"], data=None)  # the demo dataset of that game
        self.busy = True
        self.model_w.options = models + [PATH_OPTION]
        self.model_w.value = keep
        self.busy = False

    def on_model(self, change) -> None:
        if change["new"] == PATH_OPTION:
            if self.path_w.value.strip():
                self.ex.set_model(self.path_w.value.strip())
            return
        self.ex.set_model(change["new"], game=self.game_w.value)

    def on_load(self, _) -> None:
        if not self.path_w.value.strip():
            raise SsmlibError("type the path of a checkpoint (a .safetensors file or a run folder) first")
        self.ex.set_model(self.path_w.value.strip())
        self.busy = True
        self.model_w.value = PATH_OPTION
        self.busy = False

    def on_export(self, _) -> None:
        try:
            self.status.value = f"wrote {self.ex.export_gif(self.gif_path_w.value.strip() or None)}"
        except SsmlibError as e:
            self.show_error(e)

    def _wire(self) -> None:
        ex, g = self.ex, self.guarded
        self.game_w.observe(g(self.on_game), names="value")
        self.model_w.observe(g(self.on_model), names="value")
        self.load_w.on_click(g(self.on_load))
        self.episode_w.observe(g(lambda c: ex.update(episode=c["new"])), names="value")
        self.start_w.observe(g(lambda c: ex.update(start=c["new"])), names="value")
        self.mode_w.observe(g(lambda c: ex.update(action_mode=c["new"])), names="value")
        self.repeat_w.observe(g(lambda c: ex.update(repeat_action=c["new"])), names="value")
        for i, w_ in enumerate(self.step_ws):
            w_.observe(g(lambda c, i=i: ex.set_step_action(i, c["new"])), names="value")
        self.samples_w.observe(g(lambda c: ex.update(samples=c["new"])), names="value")
        self.resample_w.on_click(g(lambda _: ex.update(seed=ex.seed + 1)))
        self.timeline.observe(lambda c: ex.update(t=c["new"]), names="index")  # the picture switches in the browser
        self.gif_w.on_click(self.on_export)

    # ----- layout
    def box(self):
        W = self.W
        title = W.HTML("<b>Rollout explorer</b>: the recorded frames of a test episode and the model's imagined "
                       f"ones, from the same {CONTEXT} context frames and the chosen actions")
        action_row = W.HBox([W.Label("actions", layout=W.Layout(width="90px")), self.mode_w, self.repeat_w])
        sample_row = W.HBox([self.samples_w, self.resample_w])
        timeline_row = W.HBox([self.play, self.timeline])
        context_box = W.VBox([W.HTML("<small>context (real, given to the model)</small>"), self.context_img])
        parts = [W.HTML(_CSS)]
        if self.compact:
            parts += [W.HBox([self.model_w, self.episode_w, self.start_w]), action_row, self.steps_box, sample_row,
                      context_box, timeline_row, self.stack, self.rewards_w, self.status]
        else:
            parts += [title, W.HBox([self.game_w, self.model_w, self.path_w, self.load_w]),
                      W.HBox([self.episode_w, self.start_w]), action_row, self.steps_box, sample_row, context_box,
                      timeline_row, self.stack, self.rewards_w, W.HBox([self.gif_w, self.gif_path_w]), self.status]
        box = W.VBox(parts)
        box.add_class("ssm-explorer")
        box.explorer = self.ex
        return box


def explore(game: str = "MsPacman", model="sSSM", *, data=None, episode: int = 0, start: int | None = None,
            horizon: int = 10, samples: int = 1, seed: int = 0, action_mode: str = "recorded",
            repeat_action: int = 0, compact: bool = False, width: int = 900):
    """The rollout explorer as an ipywidgets box (its :class:`RolloutExplorer` is ``box.explorer``).

    ``compact=True`` (for the model chapters) leaves out the game, the checkpoint path and the GIF
    export; the full explorer has them. The arguments are the explorer's initial state (see :class:`RolloutExplorer`).
    """
    ex = RolloutExplorer(game, model, data=data, episode=episode, start=start, horizon=horizon, samples=samples,
                         seed=seed, action_mode=action_mode, repeat_action=repeat_action)
    return _ExplorerView(ex, model, compact, width).box()
