"""What the book's chapters share, in one import: the datasets they open, the quick training run they
repeat, and one colour per model and agent.

Nothing here is a new fact: the quick dataset is :func:`ssmlib.agents.quick.quick_dataset`, the demo
dataset :func:`ssmlib.pretrained.demo_dataset`, the model names :data:`ssmlib.config.MODEL_NAMES`, the
agent variants :data:`ssmlib.agents.study.VARIANTS`, the jumpy runs :data:`ssmlib.jumpy.MODELS` x
:data:`ssmlib.jumpy.JUMPS`. This module only gathers them for the notebooks and adds the colours, which
live nowhere else.

The dataset and training helpers import what they wrap inside the function, so
:mod:`ssmlib.viz.agent_view` can read its colours from here without an import cycle.
"""

from __future__ import annotations

from pathlib import Path

from .config import CONTEXT, MODEL_NAMES, RUNS_DIR
from .errors import SsmlibError

__all__ = ["CONTEXT", "MODEL_NAMES", "VARIANTS", "COPY_BASELINES", "JUMPY_RUNS", "MODEL_COLOURS", "colour",
           "quick_dataset", "quick_dataset_path", "book_dataset", "demo_dataset", "load_pretrained",
           "quick_env_model", "train_quick", "BOOK_RUNS", "PAPER_DATASET", "PAPER_DATASET_STEPS"]

BOOK_RUNS = RUNS_DIR / "book"
"""Where the chapters write what they train and collect (``runs/book/<chapter>/...``)."""

PAPER_DATASET = BOOK_RUNS / "MsPacman-paper"
"""Chapter 1's dataset at the paper profile (200x160), collected only when the book runs at that profile."""
PAPER_DATASET_STEPS = 128_000


# ------------------------------------------------------------------------------------------ names
def _variants() -> tuple[str, ...]:
    from .agents.study import VARIANTS as v

    return tuple(v)


def _jumpy() -> tuple[tuple[str, ...], tuple[int, ...]]:
    from . import jumpy

    return tuple(jumpy.MODELS), tuple(jumpy.JUMPS)


def _run_name(model: str, k: int) -> str:
    from .jumpy import run_name

    return run_name(model, k)


VARIANTS = _variants()
"""The I2A study's agents (:data:`ssmlib.agents.study.VARIANTS`), in its order."""

COPY_BASELINES = ("copy previous frame", "copy last context frame")
"""The two copy references of a zoo study's summary rows (:func:`ssmlib.zoo.reference_rows` names them)."""

JUMPY_RUNS = tuple(_run_name(m, k) for m in _jumpy()[0] for k in _jumpy()[1])
"""Run names of the jumpy study (``<model>-k<jump>``; k = 1 is the model itself)."""


# ---------------------------------------------------------------------------------------- colours
_BASE = {
    # the five environment models
    "AR": "tab:brown", "RAR": "tab:orange", "dSSM-DET": "tab:blue", "dSSM-VAE": "tab:cyan", "sSSM": "tab:red",
    # the copy references of the zoo studies
    "copy previous frame": "0.55", "copy last context frame": "0.75",
    # the I2A study's agents
    "model-free": "0.25", "copy-distill": "tab:purple", "i2a-uniform": "tab:green", "i2a-distill": "tab:olive",
    "i2a-learned": "tab:pink",
}
# jumpy models: k = 1 is the model's own colour; longer jumps lighter (k = 2) and darker (k = 4) shades
_JUMP_SHADES = {"dSSM-DET": {2: "#7fb8e6", 4: "#0b3c6b"}, "sSSM": {2: "#f4a09a", 4: "#7a0f0b"}}


def _colours() -> dict[str, str]:
    out = {}
    for name in (*MODEL_NAMES, *COPY_BASELINES, *VARIANTS):
        if name not in _BASE:
            raise SsmlibError(f"ssmlib.book has no colour for {name!r}: add it to _BASE")
        out[name] = _BASE[name]
    models, jumps = _jumpy()
    for m in models:
        for k in jumps:
            if k == 1:
                out[_run_name(m, k)] = out[m]
            else:
                shades = _JUMP_SHADES.get(m, {})
                if k not in shades:
                    raise SsmlibError(f"ssmlib.book has no colour for the jumpy run {_run_name(m, k)!r}")
                out[_run_name(m, k)] = shades[k]
    return out


MODEL_COLOURS = _colours()
"""One matplotlib colour per model, copy reference, jumpy run and I2A agent, used by every chapter."""


def colour(name: str) -> str:
    """The book's colour for a model, copy reference, jumpy run (``dSSM-DET-k4``) or I2A agent."""
    try:
        return MODEL_COLOURS[name]
    except KeyError:
        raise SsmlibError(f"no book colour for {name!r}; known: {', '.join(MODEL_COLOURS)}") from None


# --------------------------------------------------------------------------------------- datasets
def quick_dataset():
    """The quick dataset every chapter shares (:func:`ssmlib.agents.quick.quick_dataset`)."""
    from .agents.quick import quick_dataset as _quick

    return _quick()


def quick_dataset_path() -> Path:
    """Where :func:`quick_dataset` lives (without collecting it)."""
    from .agents.quick import QUICK_DATASET

    return QUICK_DATASET


def book_dataset(profile: str | None = None):
    """Chapter 1's dataset at ``profile`` (the book's profile when None): the shared quick dataset at
    ``quick``, a 128k-step 200x160 one at ``paper``."""
    from .config import book_profile, get_profile

    profile = profile or book_profile()
    if profile == "quick":
        return quick_dataset()
    from .data.collect import config_with, ensure_dataset

    return ensure_dataset(PAPER_DATASET, config_with(get_profile(profile).data, test_fraction=0.2),
                          PAPER_DATASET_STEPS)


def demo_dataset(game: str = "MsPacman", **kwargs):
    """Unseen episodes at the pretrained models' size (:func:`ssmlib.pretrained.demo_dataset`)."""
    from .pretrained import demo_dataset as _demo

    return _demo(game, **kwargs)


# ------------------------------------------------------------------------------- models: load or train
def load_pretrained(game: str = "MsPacman", model: str = "sSSM", device: str = "cpu"):
    """A committed paper-size model (:func:`ssmlib.pretrained.load_pretrained`)."""
    from .pretrained import load_pretrained as _load

    return _load(game, model, device)


def quick_env_model(dataset_root=None, **kwargs) -> Path:
    """A quick dSSM-DET checkpoint: chapter 4's when it is there, otherwise trained for a few seconds
    (:func:`ssmlib.agents.quick.quick_env_model`)."""
    from .agents.quick import quick_env_model as _env

    return _env(dataset_root, **kwargs)


def train_quick(model: str, chapter: str, dataset=None, run: str | None = None, steps: int = 200,
                **overrides) -> tuple[dict, Path]:
    """The chapters' short CPU run: ``model`` at the quick profile for ``steps`` steps on ``dataset``
    (the shared quick dataset when None), written from scratch to ``runs/book/<chapter>/<run or model>``.

    ``overrides`` go to :func:`ssmlib.train.train`'s ``overrides`` (``log_every``, ``eval_every``,
    ``jump``, ...), except ``eval_windows``, which is its own argument. Returns (summary, run folder).
    """
    from .train import train

    ds = dataset if dataset is not None else quick_dataset()
    run_dir = BOOK_RUNS / chapter / (run or model)
    kwargs = {}
    if "eval_windows" in overrides:
        kwargs["eval_windows"] = overrides.pop("eval_windows")
    summary = train(model, ds.root, run_dir, profile="quick", overrides={"steps": steps, **overrides},
                    overwrite=True, progress=False, **kwargs)
    return summary, run_dir
