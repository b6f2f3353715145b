"""Agents for people: the I2A architecture drawn, an agent playing the real game, and what an I2A
imagines at every step, decoded into frames (one rollout per first action, depth ``D``), beside the
real screen.

* :func:`draw_i2a` -- the architecture as a matplotlib diagram.
* :func:`play_agent` -- play ``steps`` steps of one real game with a trained agent and record, per
  step, the screen, the policy, the value, the action, the reward and (I2A, copy) the imagination
  the agent used for that very decision, decoded with the frozen model's decoder. Returns an
  :class:`AgentClip`.
* :func:`compose_step` -- the picture of one step: real screen | actions x depth grid of imagined frames.
* :func:`imagination_figure` -- that picture as a matplotlib figure (for a static page).
* :func:`imagination_player` -- an ipywidgets player over a clip (a ``Play`` button and a slider linked
  in the browser to a ``Stack`` of precomputed pictures: no Python runs while it plays, so it works on
  the static page too); its output also carries a matplotlib ``jshtml`` player as the ``text/html``
  fallback for renderers without the widget manager (:func:`clip_jshtml`).

The imagination shown is the agent's own: :func:`play_agent` records the rollouts the forward pass that
chose the action returned with its output (``AgentOutput.imagination``: features, reward logits and
rollout actions). The rollouts are random (uniform or sampled from the rollout policy), so a second
``imagine`` call would show other rollouts than the ones the agent read.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .frames import as_hwc_uint8, offline_jshtml

_BG, _FG, _DIM, _HI = (24, 24, 24), (235, 235, 235), (150, 150, 150), (255, 210, 60)
_GAP, _LABEL_H = 4, 14
_SHORT = {"NOOP": "N", "FIRE": "F", "UP": "U", "RIGHT": "R", "LEFT": "L", "DOWN": "D", "UPRIGHT": "UR",
          "UPLEFT": "UL", "DOWNRIGHT": "DR", "DOWNLEFT": "DL"}


def short_name(name: str) -> str:
    """``'DOWNLEFT'`` -> ``'DL'`` (the labels inside the imagined grid)."""
    return _SHORT.get(name, name[:3])


# ------------------------------------------------------------------------------------ the diagram
def draw_i2a(ax=None, num_actions: int = 9, depth: int = 3, lanes: int = 3):
    """The Imagination-Augmented Agent around a frozen state-space model, drawn with matplotlib.

    ``lanes`` of the ``num_actions`` rollouts are drawn (the first ones and the last); returns the axes.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    if ax is None:
        _, ax = plt.subplots(figsize=(13, 6.2))
    ax.set_xlim(0, 26)
    ax.set_ylim(0, 12.4)
    ax.axis("off")
    fill = {"model": "#dbe9f6", "policy": "#fde2c8", "agent": "#d9f0d3", "data": "#eeeeee", "out": "#f4d6e6"}
    orange = "#b35900"

    def box(x, y, w, h, text, kind, fs=8.5):
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.15", fc=fill[kind],
                                    ec="0.3", lw=1))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fs)

    def arrow(p0, p1, color="0.25", ls="-", rad=0.0):
        ax.add_patch(FancyArrowPatch(p0, p1, arrowstyle="-|>", mutation_scale=10, color=color, lw=1, ls=ls,
                                     connectionstyle=f"arc3,rad={rad}", shrinkA=1, shrinkB=1))

    # the real frames, the frozen model's encoding, the model-free path
    box(0.2, 5.3, 2.5, 1.6, "$o_{t-2}, o_{t-1}, o_t$\n3 real frames", "data")
    box(3.3, 8.1, 3.3, 1.9, "frozen SSM encodes\n$s_t = \\mathrm{init}(e(o_{t-2}),$\n$e(o_{t-1}), e(o_t))$",
        "model", fs=8)
    arrow((2.7, 6.5), (3.3, 8.7))
    box(3.3, 2.0, 3.3, 1.6, "model-free CNN\n$h_{mf} = \\mathrm{mf}(o_{t-2:t})$", "agent", fs=8)
    arrow((2.7, 5.6), (3.3, 3.0))

    # one lane per first action: s_t -a0-> s1 -a1-> s2 ... -> LSTM -> c_a
    shown = list(range(min(lanes, num_actions) - 1)) + [num_actions - 1]
    ys = [11.0 - 1.55 * i for i in range(len(shown) - 1)] + [11.0 - 1.55 * (len(shown) - 1) - 1.1]
    bw, aw, bh = 1.25, 1.35, 0.7
    x_s = 7.6
    for a, y in zip(shown, ys):
        arrow((6.6, 9.05), (x_s, y + bh / 2), color="0.5")
        box(x_s, y, 0.9, bh, "$s_t$", "model")
        x = x_s + 0.9
        for j in range(depth):
            label = f"$a_0{{=}}{a}$" if j == 0 else "$\\hat a_{%d}\\sim\\hat\\pi$" % j
            arrow((x, y + bh / 2), (x + aw, y + bh / 2), color=orange if j else "0.25")
            ax.text(x + aw / 2, y + bh / 2 + 0.08, label, fontsize=7.5, ha="center", va="bottom",
                    color=orange if j else "0.25")
            box(x + aw, y, bw, bh, "$\\hat s_{%d}, \\hat r_{%d}$" % (j + 1, j + 1), "model", fs=8)
            x += aw + bw
        arrow((x, y + bh / 2), (x + 0.5, y + bh / 2))
        box(x + 0.5, y - 0.1, 2.3, bh + 0.2, "LSTM reads\n$\\hat s_{%d} \\to \\hat s_1$ (last first)" % depth, "agent",
            fs=7)
        x_end = x + 2.8
        arrow((x_end, y + bh / 2), (20.4, 6.2), color="0.5")
        ax.text(x_end + 0.1, y + bh / 2 + 0.1, f"$c_{{{a}}}$", fontsize=8.5, va="bottom")
    ax.text(x_s + 4.5, ys[-1] + 1.05, "$\\vdots$   one rollout per action: $K = %d$ rollouts of depth $D = %d$"
            % (num_actions, depth), fontsize=8.5, ha="center", va="center")
    # the rollout policy picks the later actions
    box(9.6, 0.3, 5.6, 1.3, "rollout policy $\\hat\\pi(a \\mid \\hat s)$\nuniform  |  distilled  |  learned",
        "policy", fs=8)
    arrow((12.4, 1.6), (12.4, ys[-1] - 0.05), color=orange, ls="--")
    ax.text(12.55, 2.0, "$\\hat a_j$, $j \\geq 1$", fontsize=8, color=orange)
    # aggregation and the heads
    arrow((6.6, 2.8), (20.4, 5.6), color="0.5")
    box(20.4, 5.1, 2.6, 1.6, "concat\n$[c_0, \\dots, c_{%d}, h_{mf}]$\n$\\to$ FC, ReLU" % (num_actions - 1),
        "agent", fs=8)
    box(23.6, 6.6, 2.2, 0.9, "$\\pi(a \\mid o_t)$", "out", fs=9)
    box(23.6, 4.3, 2.2, 0.9, "$V(o_t)$", "out", fs=9)
    arrow((23.0, 6.2), (23.6, 7.0))
    arrow((23.0, 5.6), (23.6, 4.8))
    # how the rollout policy is trained
    arrow((24.7, 6.6), (15.2, 1.0), color=orange, ls=":", rad=-0.35)
    ax.text(15.5, 1.9, "distilled: $-\\sum_a \\mathrm{sg}[\\pi(a \\mid o_t)] \\log \\hat\\pi(a \\mid s_t)$\n"
            "learned: the RL loss's gradient\nthrough straight-through Gumbel actions", fontsize=7.5,
            color=orange)
    ax.text(0.2, 11.9, "I2A: imagination in the latent space of a frozen environment model", fontsize=11,
            weight="bold")
    ax.text(0.2, 0.3, "blue: frozen model (no gradient)\ngreen: trained by A2C\norange: rollout policy",
            fontsize=7.5, color="0.3")
    return ax


# ---------------------------------------------------------------------------------- playing a game
@dataclass
class AgentClip:
    """A stretch of one real game played by an agent, step by step (``T`` steps)."""

    frames: np.ndarray
    """(T, H, W, 3) uint8: the newest real frame of the observation the agent acted on."""
    actions: np.ndarray
    """(T,) the action taken."""
    rewards: np.ndarray
    """(T,) the game's reward for that action (unclipped)."""
    probs: np.ndarray
    """(T, A) the policy pi(. | o_t)."""
    values: np.ndarray
    """(T,) the value V(o_t)."""
    scores: np.ndarray
    """(T,) the game's score so far, this step's reward included (a new episode starts from 0)."""
    dones: np.ndarray
    """(T,) True where the step ended the episode."""
    action_names: list[str]
    start: int
    """Agent steps of the same game played before the clip (the warm-up)."""
    agent_kind: str = "model-free"
    imagined: np.ndarray | None = None
    """(T, A, D, h, w, 3) uint8: the decoded imagined frames, rollout i starting with action i."""
    rollout_actions: np.ndarray | None = None
    """(T, A, D) the actions of each rollout (the first one forced)."""
    imagined_rewards: np.ndarray | None = None
    """(T, A, D) the most likely reward of each imagined step."""
    rollout_probs: np.ndarray | None = None
    """(T, A) the rollout policy at the real state (distilled or learned I2A), else None."""

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def depth(self) -> int:
        return 0 if self.imagined is None else self.imagined.shape[2]


def _decoder_model(agent):
    from ..agents.networks import CopyModel

    m = agent.env_model
    # the copy model wraps the real one, whose decoder draws its states
    return m.model if isinstance(m, CopyModel) else m


@torch.no_grad()
def play_agent(agent, env, steps: int, *, warmup: int = 0, seed: int = 0, action_names: Sequence[str] | None = None,
               decode: bool = True) -> AgentClip:
    """Play one real game (``env``: ``make_agent_env(..., num_envs=1)``) with ``agent``.

    The agent acts for ``warmup`` steps unrecorded (e.g. through Ms. Pac-Man's intro), then ``steps``
    recorded ones. Actions (and the rollouts' sampled actions) come from torch's global generator,
    seeded with ``seed`` here; the environments are seeded with ``seed`` too. For an I2A (or copy)
    agent, each step also keeps the rollouts the agent read for that decision, and (``decode=True``)
    their mean frames decoded by the frozen model's decoder. The agent plays in eval mode and is
    given back in the mode it came in.
    """
    if env.num_envs != 1:
        raise ValueError(f"play_agent records one game: make the env with num_envs=1, not {env.num_envs}")
    dev = next(p for p in agent.parameters()).device
    was_training = agent.training
    agent.eval()
    try:
        return _play(agent, env, steps, warmup, seed, action_names, decode, dev)
    finally:
        agent.train(was_training)


def _play(agent, env, steps, warmup, seed, action_names, decode, dev) -> AgentClip:
    from ..agents.envs import reset_env

    torch.manual_seed(seed)
    A = int(env.single_action_space.n)
    names = list(action_names) if action_names is not None else [str(i) for i in range(A)]
    obs = torch.as_tensor(reset_env(env, seed), device=dev)
    rec: dict[str, list] = {k: [] for k in ("frames", "actions", "rewards", "probs", "values", "scores", "dones",
                                             "imagined", "rollout_actions", "imagined_rewards", "rollout_probs")}
    score = 0.0
    for t in range(warmup + steps):
        record = t >= warmup
        out = agent(obs)
        captured = out.imagination or {}  # I2A, copy: the very rollouts this forward pass read
        logits = out.logits.float()
        a = torch.distributions.Categorical(logits=logits).sample()
        nobs, r, term, trunc, _ = env.step(a.cpu().numpy())
        done = bool(np.logical_or(term, trunc)[0])
        score += float(r[0])
        if record:
            rec["frames"].append(obs[0, -1].cpu().numpy())
            rec["actions"].append(int(a[0]))
            rec["rewards"].append(float(r[0]))
            rec["probs"].append(torch.softmax(logits[0], -1).cpu().numpy())
            rec["values"].append(float(out.value.float()[0]))
            rec["scores"].append(score)
            rec["dones"].append(done)
            if captured:
                m = _decoder_model(agent)
                feats = captured["features"]  # (A, D, C, h, w): env 0's rollouts
                rec["rollout_actions"].append(captured["actions"].cpu().numpy())
                rec["imagined_rewards"].append(m.decode_reward(captured["reward_logits"].float()).cpu().numpy())
                if decode:
                    x = torch.sigmoid(m.decoder(feats.flatten(0, 1)).float())
                    x = (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1)
                    rec["imagined"].append(x.unflatten(0, feats.shape[:2]).cpu().numpy())
                if out.rollout_logits is not None:
                    rec["rollout_probs"].append(torch.softmax(out.rollout_logits.float()[0], -1).cpu().numpy())
        obs = torch.as_tensor(nobs, device=dev)
        if done:
            score = 0.0

    def arr(k, dtype=None):
        return np.asarray(rec[k], dtype=dtype) if rec[k] else None

    return AgentClip(frames=np.stack(rec["frames"]), actions=arr("actions", np.int64),
                     rewards=arr("rewards", np.float64),
                     probs=np.stack(rec["probs"]), values=arr("values", np.float64), scores=arr("scores", np.float64),
                     dones=arr("dones", bool), action_names=names, start=warmup,
                     agent_kind=getattr(agent, "kind", type(agent).__name__), imagined=arr("imagined"),
                     rollout_actions=arr("rollout_actions", np.int64), imagined_rewards=arr("imagined_rewards"),
                     rollout_probs=arr("rollout_probs"))


# --------------------------------------------------------------------------------- one step's picture
def _font():
    from PIL import ImageFont

    return ImageFont.load_default(size=11)


MAX_DIFF_GAIN = 32.0
"""``view="diff"``: the largest amplification of ``|imagined(a) - mean over a of imagined|``."""


def _downsample(x: np.ndarray, pool: int, how: str = "mean") -> np.ndarray:
    """Pool the (..., H, W, 3) uint8 frames ``pool`` times: the mean (frames) or the max (differences)."""
    if pool == 1:
        return x
    h, w = x.shape[-3] // pool * pool, x.shape[-2] // pool * pool
    x = x[..., :h, :w, :].reshape(*x.shape[:-3], h // pool, pool, w // pool, pool, 3)
    if how == "max":
        return x.max((-4, -2))
    return (x.astype(np.float32).mean((-4, -2)) + 0.5).astype(np.uint8)


def compose_step(clip: AgentClip, t: int, pool: int = 2, view: str = "frames", title: str | None = None) -> np.ndarray:
    """The picture of step ``t``: the real screen with the action, reward, score and value on the left;
    for an imagining agent, on the right, the decoded imagined frames (average-pooled by ``pool``): one
    column per first action (headed by pi(a | o_t); the chosen action's column framed), one row per
    imagined step, each cell labelled with the action that led to it and its predicted reward when not 0.
    ``view="diff"`` shows instead how each rollout differs from the mean of all rollouts at that depth
    (amplified so that the largest difference is bright, at most ``MAX_DIFF_GAIN`` times; max-pooled):
    what the first action changes in the model's prediction."""
    from PIL import Image, ImageDraw

    if view not in ("frames", "diff"):
        raise ValueError(f"view must be 'frames' or 'diff', not {view!r}")
    real = as_hwc_uint8(clip.frames[t])
    H, W = real.shape[:2]
    names = clip.action_names
    a_t = int(clip.actions[t])
    left_w = W + 2 * _GAP
    grid = clip.imagined is not None
    if grid:
        cells = clip.imagined[t]  # (A, D, H, W, 3)
        if view == "diff":
            f = cells.astype(np.float32)
            d = np.abs(f - f.mean(0, keepdims=True))
            gain = min(MAX_DIFF_GAIN, 255.0 / max(float(d.max()), 1e-6))
            cells = _downsample(np.clip(gain * d, 0, 255).astype(np.uint8), pool, "max")
        else:
            cells = _downsample(cells, pool)
        A, D, h, w = cells.shape[:4]
        row_lab, head_h = 30, 3 * _LABEL_H + 4
        cell_h = _LABEL_H + h + _GAP
        right_w = row_lab + A * (w + _GAP) + _GAP
        height = max(2 * _LABEL_H + H + 5 * 13 + 3 * _GAP, head_h + D * cell_h + _GAP)
    else:
        right_w, height = 0, _LABEL_H + H + 5 * 13 + 3 * _GAP
    canvas = Image.new("RGB", (left_w + right_w, height), _BG)
    draw, font = ImageDraw.Draw(canvas), _font()
    # left: the real game
    draw.text((_GAP, 2), title if title is not None else f"real screen, step {clip.start + t}", fill=_FG, font=font)
    canvas.paste(Image.fromarray(real), (_GAP, _LABEL_H + 2))
    y = _LABEL_H + H + 2 * _GAP
    lines = [(f"action {names[a_t]}  (p={clip.probs[t, a_t]:.2f})", _HI),
             (f"reward {clip.rewards[t]:g}   score {clip.scores[t]:g}", _FG),
             (f"V(o_t) = {clip.values[t]:.2f}", _FG)]
    if clip.dones[t]:
        lines.append(("episode ended", (255, 120, 120)))
    for k, (text, color) in enumerate(lines):
        draw.text((_GAP, y + 13 * k), text, fill=color, font=font)
    if not grid:
        return np.asarray(canvas)
    # right: actions (columns) x depth (rows)
    x0 = left_w + row_lab
    what = "decoded imagined frames" if view == "frames" else f"|rollout - mean of the rollouts| x{gain:.0f}"
    draw.text((x0, 2), f"{what}: one rollout per first action (columns), imagined steps t+1..t+{D} (rows)",
              fill=_FG, font=font)
    for i in range(A):
        x = x0 + i * (w + _GAP)
        color = _HI if i == a_t else _FG
        draw.text((x, 2 + _LABEL_H), names[i][:12], fill=color, font=font)
        draw.text((x, 2 + 2 * _LABEL_H), f"pi={clip.probs[t, i]:.2f}", fill=color, font=font)
        for j in range(D):
            y = head_h + j * cell_h
            act = int(clip.rollout_actions[t, i, j])
            rew = float(clip.imagined_rewards[t, i, j])
            label = short_name(names[act]) + (f"  r={rew:g}" if rew else "")
            draw.text((x, y), label, fill=_DIM if j else color, font=font)
            canvas.paste(Image.fromarray(cells[i, j]), (x, y + _LABEL_H))
        if i == a_t:
            draw.rectangle((x - 2, head_h + _LABEL_H - 2, x + w + 1, head_h + (D - 1) * cell_h + _LABEL_H + h + 1),
                           outline=_HI, width=2)
    for j in range(D):
        draw.text((left_w + 2, head_h + j * cell_h + _LABEL_H + h // 2 - 6), f"t+{j + 1}", fill=_DIM, font=font)
    return np.asarray(canvas)


def _encode(img: np.ndarray) -> bytes:
    """A small PNG of a picture: 128 colours, no dithering (a fifth to a tenth of the RGB PNG's size; the
    Atari palette and the blurry decoded frames lose nothing visible)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).quantize(colors=128, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(
        buf, format="PNG", optimize=True)
    return buf.getvalue()


def imagination_figure(clip: AgentClip, t: int, pool: int = 2, view: str = "frames", dpi: int = 100):
    """:func:`compose_step` of step ``t`` as a matplotlib figure, one image pixel per figure pixel."""
    import matplotlib.pyplot as plt

    img = compose_step(clip, t, pool=pool, view=view)
    fig = plt.figure(figsize=(img.shape[1] / dpi, img.shape[0] / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(img, interpolation="nearest")
    ax.axis("off")
    return fig


# ------------------------------------------------------------------------------------------ players
def clip_jshtml(clip: AgentClip, fps: float = 3.0, pool: int = 2) -> str:
    """A matplotlib ``jshtml`` player over the clip's pictures (no kernel, no network needed)."""
    return _jshtml([compose_step(clip, t, pool=pool) for t in range(len(clip))], fps)


def _jshtml(pics: list[np.ndarray], fps: float) -> str:
    """matplotlib's player, its frames swapped for the small PNGs of :func:`_encode` (the player shows
    an image at its own size, so the figure is rendered tiny and only its frame count matters; should
    the swap not match this matplotlib's output, the figure is rendered at full size instead)."""
    import base64
    import re

    pattern = re.compile(r'(frames\[(\d+)\] = ")data:image/png;base64,[^"]*(")')
    html = _render_jshtml(pics, fps, dpi=4)
    if len(pattern.findall(html)) != len(pics):
        return offline_jshtml(_render_jshtml(pics, fps, dpi=100))
    html = pattern.sub(lambda m: m.group(1) + "data:image/png;base64,"
                       + base64.b64encode(_encode(pics[int(m.group(2))])).decode() + m.group(3), html)
    return offline_jshtml(html)


def _render_jshtml(pics: list[np.ndarray], fps: float, dpi: int) -> str:
    import matplotlib.pyplot as plt
    from matplotlib import animation

    fig = plt.figure(figsize=(pics[0].shape[1] / 100, pics[0].shape[0] / 100), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.axis("off")
    im = ax.imshow(pics[0], interpolation="nearest")

    def show(i):
        im.set_data(pics[i])
        return (im,)

    anim = animation.FuncAnimation(fig, show, frames=len(pics), interval=1000 / fps, blit=False)
    html = anim.to_jshtml(default_mode="once")
    plt.close(fig)
    return html


def imagination_player(clip: AgentClip, fps: float = 3.0, pool: int = 2, fallback: bool = True):
    """An ipywidgets player over a precomputed clip: play button and slider, linked in the browser to a
    ``Stack`` of the pictures of every step (nothing runs in Python while it plays, so it also works on
    the static page, where the widget state is saved). With ``fallback``, the output also carries the
    :func:`clip_jshtml` player as ``text/html``, for renderers without the widget manager."""
    import ipywidgets as W

    pics = [compose_step(clip, t, pool=pool) for t in range(len(clip))]
    n = len(pics)
    images = [W.Image(value=_encode(p), format="png", layout=W.Layout(width=f"{p.shape[1]}px", max_width="100%"))
              for p in pics]
    stack = W.Stack(images, selected_index=0)
    slider = W.IntSlider(0, 0, n - 1, description="step", layout=W.Layout(width="420px"))
    play = W.Play(value=0, min=0, max=n - 1, interval=int(1000 / fps), description="play")
    W.jslink((play, "value"), (slider, "value"))
    W.jslink((slider, "value"), (stack, "selected_index"))
    caption = W.HTML(f"<small>{clip.agent_kind} agent: steps {clip.start}..{clip.start + n - 1} of one real game, "
                     f"precomputed; play or move the slider</small>")
    html = _jshtml(pics, fps) if fallback else None
    return _Player([W.HBox([play, slider]), stack, caption], fallback_html=html)


_PLAYER = None


def _Player(children, fallback_html: str | None = None):
    """A VBox whose display also offers ``text/html`` (the jshtml player) next to the widget view."""
    global _PLAYER
    if _PLAYER is None:
        import ipywidgets as W

        class Player(W.VBox):
            def __init__(self, children, fallback_html=None):
                super().__init__(children)
                self._fallback_html = fallback_html

            def _repr_mimebundle_(self, **kwargs):
                data = super()._repr_mimebundle_(**kwargs)
                if self._fallback_html and isinstance(data, dict):
                    data = {**data, "text/html": self._fallback_html}
                return data

        _PLAYER = Player
    return _PLAYER(children, fallback_html=fallback_html)


# ------------------------------------------------------------- the I2A study's curves (ssmlib.studies.i2a loads it)
def _variant_colours() -> dict[str, str]:
    from ..book import MODEL_COLOURS, VARIANTS

    return {v: MODEL_COLOURS[v] for v in VARIANTS}


VARIANT_COLORS = _variant_colours()
"""The I2A agents' colours: the book's (:data:`ssmlib.book.MODEL_COLOURS`), kept here for older callers."""


def mean_over_seeds(curves: list[tuple[Sequence[float], Sequence[float]]], points: int = 200):
    """Each ``(x, y)`` curve linearly interpolated onto one grid of x where every curve is defined, and
    their mean: ``(grid, mean, per-curve values)``."""
    curves = [(np.asarray(x, float), np.asarray(y, float)) for x, y in curves if len(x)]
    if not curves:
        return np.array([]), np.array([]), np.zeros((0, 0))
    lo, hi = max(x[0] for x, _ in curves), min(x[-1] for x, _ in curves)
    grid = np.linspace(lo, hi, points) if hi > lo else np.array([lo])
    ys = np.stack([np.interp(grid, x, y) for x, y in curves])
    return grid, ys.mean(0), ys


def plot_study_curves(ax, study: dict, variants: Sequence[str], value: str = "return", window: int = 100,
                      budget: bool = True):
    """Per variant: each seed as a thin line and the mean over seeds as a thick one, against agent steps.

    ``value="return"``: the running mean of the last ``window`` episode returns (``ssmlib.studies.i2a.curve``);
    any other name: that field of ``metrics.jsonl`` (e.g. ``kl_pi_rollout``). ``study``: from
    ``ssmlib.studies.i2a.load_study``."""
    from ..studies.i2a import curve, runs_of

    for v in variants:
        color = VARIANT_COLORS.get(v)
        seeds = []
        for run in runs_of(study, v):
            r = study["runs"][run]
            if value == "return":
                x, y = curve(r["episodes"], window)
            else:
                pts = [(m["step"], m[value]) for m in r["metrics"] if m.get(value) is not None]
                x, y = [p[0] for p in pts], [p[1] for p in pts]
            if len(x):
                ax.plot(x, y, color=color, lw=0.7, alpha=0.45)
                seeds.append((x, y))
        grid, mean, _ = mean_over_seeds(seeds)
        if len(grid):
            ax.plot(grid, mean, color=color, lw=2.2, label=f"{v} (mean of {len(seeds)} seeds)")
    if budget and "budget_agent_steps" in study:
        ax.axvline(study["budget_agent_steps"], color="0.5", ls="--", lw=1, label="common budget")
    ax.set_xlabel("agent steps (x4 emulator frames)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7.5)
    return ax
