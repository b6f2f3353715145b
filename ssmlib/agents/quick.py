"""Quick-profile pieces for the agent chapters: the book's shared quick dataset and a small (80x64)
environment model for the I2A agents that run live on a CPU.

The committed agents and environment models are paper-sized (200x160): too slow to *train* on a
laptop CPU. The live cells of the agent chapters use a quick-profile dSSM-DET instead, reusing the one
chapter 4 trains when it is there, or training one for a few seconds.
"""

from __future__ import annotations

from pathlib import Path

from ..config import RUNS_DIR, get_profile
from ..errors import SsmlibError

QUICK_DATASET = RUNS_DIR / "book" / "MsPacman-quick"
"""The quick dataset every chapter of the book shares (8000 agent steps, 80x64, 20% test episodes)."""
QUICK_DATASET_STEPS = 8000
CHAPTER4_DET = RUNS_DIR / "book" / "04_dssm" / "dSSM-DET"
"""Where chapter 4 leaves its quick dSSM-DET."""
AGENTS_DET = RUNS_DIR / "book" / "agents-env" / "dSSM-DET"
"""Where :func:`quick_env_model` trains its own when chapter 4's is not there."""
QUICK_ENV_STEPS = 150


def quick_dataset():
    """The book's shared quick dataset (collected on first use: about ten seconds; reused after)."""
    from ..data.collect import config_with, ensure_dataset

    return ensure_dataset(QUICK_DATASET, config_with(get_profile("quick").data, test_fraction=0.2),
                          QUICK_DATASET_STEPS)


def _usable(path: Path, dataset) -> bool:
    """A finished-or-not dSSM-DET checkpoint of the quick profile, trained on ``dataset``."""
    from ..checkpoint import check_meta, read_meta

    if not path.exists():
        return False
    try:
        meta = read_meta(path)
        check_meta(path, meta, "dSSM-DET", dataset)
    except SsmlibError:
        return False
    return meta.get("profile") == "quick" and meta.get("data_fingerprint") == dataset.fingerprint


def quick_env_model(dataset_root=None, steps: int = QUICK_ENV_STEPS) -> Path:
    """Path of a quick (80x64) dSSM-DET checkpoint for live I2A cells.

    Chapter 4's (``runs/book/04_dssm/dSSM-DET``) when it exists and was trained on the quick dataset;
    otherwise one trained here for ``steps`` optimiser steps (``runs/book/agents-env/dSSM-DET``,
    about 15-20 s on one CPU core; resumed, not repeated, on later calls).
    """
    from ..data.store import open_dataset
    from ..train import CHECKPOINT, train

    ds = open_dataset(dataset_root) if dataset_root is not None else quick_dataset()
    if _usable(CHAPTER4_DET / CHECKPOINT, ds):
        return CHAPTER4_DET / CHECKPOINT
    own = AGENTS_DET / CHECKPOINT
    if _usable(own, ds) and _steps(own) >= steps:
        return own
    stale = own.exists() and not _usable(own, ds)  # another dataset's: start again rather than resume it
    train("dSSM-DET", ds.root, AGENTS_DET, profile="quick", overrides={"steps": steps}, resume=not stale,
          overwrite=stale, progress=False)
    return own


def _steps(path: Path) -> int:
    from ..checkpoint import read_meta

    return int(read_meta(path).get("step", 0))
