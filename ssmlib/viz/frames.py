"""Frames for people: strips, a player that works in the static book, a browser widget, learning curves."""

from __future__ import annotations

import io
from typing import Sequence

import numpy as np


def as_hwc_uint8(frame) -> np.ndarray:
    """Accept (H, W, 3) uint8 or (3, H, W) float in [0, 1] (a torch tensor or an array); return (H, W, 3) uint8."""
    a = frame.detach().cpu().numpy() if hasattr(frame, "detach") else np.asarray(frame)
    if a.ndim == 3 and a.shape[0] == 3 and a.shape[-1] != 3:
        a = a.transpose(1, 2, 0)
    if a.dtype != np.uint8:
        a = (np.clip(a, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    return a


def frame_strip(rows: Sequence[Sequence], row_labels: Sequence[str] = (), col_labels: Sequence[str] = (),
                scale: float = 1.6):
    """A grid of frames: one row per sequence (e.g. real / imagined / difference), one column per step."""
    import matplotlib.pyplot as plt

    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    h, w = as_hwc_uint8(rows[0][0]).shape[:2]
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(scale * n_cols * w / h, scale * n_rows), squeeze=False)
    for i, row in enumerate(rows):
        for j in range(n_cols):
            ax = axes[i][j]
            ax.set_xticks([]), ax.set_yticks([])
            if j < len(row):
                ax.imshow(as_hwc_uint8(row[j]), interpolation="nearest")
            else:
                ax.axis("off")
            if i == 0 and j < len(col_labels):
                ax.set_title(col_labels[j], fontsize=8)
            if j == 0 and i < len(row_labels):
                ax.set_ylabel(row_labels[i], fontsize=8)
    fig.tight_layout(pad=0.2)
    return fig


def png_bytes(frame, scale: int = 3) -> bytes:
    from PIL import Image

    img = Image.fromarray(as_hwc_uint8(frame))
    if scale != 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def frames_player(frames, fps: int = 15, scale: float = 2.0, titles: Sequence[str] | None = None):
    """An HTML player (play/pause/step) built with matplotlib's ``to_jshtml``: it works in the static book."""
    import matplotlib.pyplot as plt
    from IPython.display import HTML
    from matplotlib import animation

    frames = [as_hwc_uint8(f) for f in frames]
    h, w = frames[0].shape[:2]
    fig, ax = plt.subplots(figsize=(scale * w / 80 * 1.5, scale * h / 80 * 1.5))
    ax.set_xticks([]), ax.set_yticks([])
    im = ax.imshow(frames[0], interpolation="nearest")
    title = ax.set_title(titles[0] if titles else "frame 0", fontsize=9)

    def show(i):
        im.set_data(frames[i])
        title.set_text(titles[i] if titles else f"frame {i}")
        return im, title

    anim = animation.FuncAnimation(fig, show, frames=len(frames), interval=1000 / fps, blit=False)
    html = anim.to_jshtml(default_mode="once")
    plt.close(fig)
    return HTML(offline_jshtml(html))


# matplotlib's player draws its buttons with FontAwesome 4 icons from a CDN stylesheet. Offline (the
# book, or JupyterLab without network) that link fails; plain characters draw the buttons anywhere.
_JSHTML_ICONS = {"fa fa-minus": "\u2212", "fa fa-fast-backward": "|\u25c0", "fa fa-step-backward": "\u25c1",
                 "fa fa-play fa-flip-horizontal": "\u25c0", "fa fa-pause": "\u2016", "fa fa-play": "\u25b6",
                 "fa fa-step-forward": "\u25b7", "fa fa-fast-forward": "\u25b6|", "fa fa-plus": "+"}


def offline_jshtml(html: str) -> str:
    """``FuncAnimation.to_jshtml()`` output without its CDN stylesheet, its icons as characters."""
    import re

    html = re.sub(r'<link rel="stylesheet"\s+href="https://maxcdn\.bootstrapcdn\.com/font-awesome/[^"]*"\s*/?>\s*', "", html)
    for cls, text in _JSHTML_ICONS.items():
        html = html.replace(f'<i class="{cls}"></i>', text)
    return html


def episode_browser(episode: dict, action_names: Sequence[str], scale: int = 4):
    """A widget to step through one episode: frame, action taken, reward received (live in Jupyter)."""
    import ipywidgets as W

    frames, actions, rewards = episode["frames"], episode["actions"], episode["rewards"]
    n = len(frames)
    image = W.Image(value=png_bytes(frames[0], scale), format="png")
    slider = W.IntSlider(0, 0, n - 1, description="t", continuous_update=True, layout=W.Layout(width="420px"))
    play = W.Play(value=0, min=0, max=n - 1, interval=80, description="play")
    W.jslink((play, "value"), (slider, "value"))
    label = W.HTML()

    def update(change=None):
        t = slider.value
        image.value = png_bytes(frames[t], scale)
        last = t == n - 1
        act = "(episode end)" if last else action_names[int(actions[t])]
        label.value = f"<code>t={t:4d}  action a_t={act:>10}  reward r_t={0 if last else rewards[t]:g}</code>"

    slider.observe(update, names="value")
    update()
    return W.VBox([W.HBox([play, slider]), image, label])


def learning_curves(curves: dict[str, tuple[Sequence[float], Sequence[float]]], xlabel: str = "step",
                    ylabel: str = "", title: str = "", ax=None, logy: bool = False):
    """One line per name: ``curves[name] = (x, y)``."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for name, (x, y) in curves.items():
        ax.plot(x, y, label=name)
    ax.set_xlabel(xlabel), ax.set_ylabel(ylabel), ax.set_title(title)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax
