"""What the book's chapters share, in one import: the datasets they open, the quick training run they
repeat, and one colour per model and agent.

Nothing here is a new fact: the quick dataset is :func:`ssmlib.agents.quick.quick_dataset`, the demo
dataset :func:`ssmlib.pretrained.demo_dataset`, the model names :data:`ssmlib.config.MODEL_NAMES`, the
agent variants :data:`ssmlib.studies.i2a.VARIANTS`, the jumpy runs :data:`ssmlib.studies.jumpy.MODELS` x
:data:`ssmlib.studies.jumpy.JUMPS`. This module only gathers them for the notebooks and adds the colours, which
live nowhere else.
"""

from __future__ import annotations

from pathlib import Path

from .agents.quick import QUICK_DATASET, quick_dataset, quick_env_model
from .config import CONTEXT, MODEL_NAMES, RUNS_DIR, book_profile, get_profile
from .errors import SsmlibError
from .pretrained import demo_dataset, load_pretrained
from .studies.i2a import VARIANTS
from .studies.jumpy import JUMPS, MODELS, run_name

__all__ = ["CONTEXT", "MODEL_NAMES", "VARIANTS", "COPY_BASELINES", "JUMPY_RUNS", "MODEL_COLOURS", "colour",
           "quick_dataset", "quick_dataset_path", "book_dataset", "demo_dataset", "load_pretrained",
           "quick_env_model", "train_quick", "BOOK_RUNS", "PAPER_DATASET", "PAPER_DATASET_STEPS"]

BOOK_RUNS = RUNS_DIR / "book"
"""Where the chapters write what they train and collect (``runs/book/<chapter>/...``)."""

PAPER_DATASET = BOOK_RUNS / "MsPacman-paper"
"""Chapter 1's dataset at the paper profile (200x160), collected only when the book runs at that profile."""
PAPER_DATASET_STEPS = 128_000


# ------------------------------------------------------------------------------------------ names
COPY_BASELINES = ("copy previous frame", "copy last context frame")
"""The two copy references of a zoo study's summary rows (:func:`ssmlib.studies.zoo.reference_rows` names them)."""

JUMPY_RUNS = tuple(run_name(m, k) for m in MODELS for k in JUMPS)
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
    models, jumps = MODELS, JUMPS
    for m in models:
        for k in jumps:
            if k == 1:
                out[run_name(m, k)] = out[m]
            else:
                shades = _JUMP_SHADES.get(m, {})
                if k not in shades:
                    raise SsmlibError(f"ssmlib.book has no colour for the jumpy run {run_name(m, k)!r}")
                out[run_name(m, k)] = shades[k]
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
def quick_dataset_path() -> Path:
    """Where :func:`quick_dataset` lives (without collecting it)."""
    return QUICK_DATASET


def book_dataset(profile: str | None = None):
    """Chapter 1's dataset at ``profile`` (the book's profile when None): the shared quick dataset at
    ``quick``, a 128k-step 200x160 one at ``paper``."""
    profile = profile or book_profile()
    if profile == "quick":
        return quick_dataset()
    from .data.collect import config_with, ensure_dataset

    return ensure_dataset(PAPER_DATASET, config_with(get_profile(profile).data, test_fraction=0.2),
                          PAPER_DATASET_STEPS)


# ------------------------------------------------------------------------------- models: load or train
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
