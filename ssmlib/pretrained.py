"""Small pretrained environment models, exported without optimiser or RNG state so that a laptop without
a GPU can load them and explore real rollouts.

A game with a model-zoo campaign (``results/model_zoo/<game>/campaign``) is served by the campaign: a
model's pretrained weights are its **best seed so far** (the evaluated run with the lowest latest
open-loop excess, ``zoo_campaign.best_run``; ``checkpoints/campaign/<game>/<run>.safetensors``), so the
book follows the campaign lease by lease. Other games (and models the campaign has not evaluated yet) are
served by the first zoo's runs, ``checkpoints/<game>/<model>.safetensors`` (``results/model_zoo/<game>/``).
``python -m ssmlib export --checkpoint runs/.../sSSM --out checkpoints/Bowling/sSSM.safetensors``.
"""

from __future__ import annotations

from pathlib import Path

from .checkpoint import export  # noqa: F401  (the export command, and where callers import it from)
from .config import CHECKPOINTS_DIR
from .errors import SsmlibError


def pretrained_path(game: str, model: str) -> Path:
    """The weights served as ``model``'s pretrained model of ``game``: the campaign's best seed where the
    game's campaign has evaluated one, else the first zoo's committed run (see the module docstring)."""
    from .studies.zoo_campaign import best_run, campaign_dir

    if (campaign_dir(game) / "config.json").exists():
        try:
            best = best_run(game, model)["weights"]
            if best.exists():
                return best
        except SsmlibError:
            pass  # no evaluated run of this model yet
    return CHECKPOINTS_DIR / game / f"{model}.safetensors"


def available() -> list[tuple[str, str]]:
    """(game, model) pairs of the pretrained environment models (not the agents')."""
    from .config import MODEL_NAMES

    games = {p.parent.name for p in CHECKPOINTS_DIR.glob("*/*.safetensors") if p.stem in MODEL_NAMES}
    games |= {p.name for p in (CHECKPOINTS_DIR / "campaign").glob("*") if p.is_dir()}
    return sorted((g, m) for g in games for m in MODEL_NAMES if pretrained_path(g, m).exists())


def load_pretrained(game: str = "MsPacman", model: str = "sSSM", device: str = "cpu"):
    """A committed pretrained model, in eval mode; a clear error lists what is available."""
    from .checkpoint import load_model

    path = pretrained_path(game, model)
    if not path.exists():
        have = ", ".join(f"{g}/{m}" for g, m in available()) or "none"
        raise SsmlibError(f"no pretrained {model} for {game} (available: {have})")
    return load_model(path, expect_model=model, device=device)


def _cli_export(args) -> int:
    meta = export(args.checkpoint, args.out, args.overwrite, args.dtype)
    print(f"wrote {args.out}: {meta['model']} step {meta['step']}, {meta['num_parameters']:,} parameters")
    return 0


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("export", help="weights-only copy of a training checkpoint (for checkpoints/)")
    p.add_argument("--checkpoint", required=True, help="checkpoint file or run folder")
    p.add_argument("--out", required=True, help="e.g. checkpoints/MsPacman/sSSM.safetensors")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"),
                   help="storage dtype of the weights (bfloat16: half the bytes)")
    p.set_defaults(func=_cli_export)


def cache_dir() -> Path:
    """Where ssmlib keeps what it makes on its own (the demo datasets): ``$SSMLIB_CACHE``, else
    ``$XDG_CACHE_HOME/ssmlib``, else ``~/.cache/ssmlib`` -- never inside the installed package."""
    import os

    if os.environ.get("SSMLIB_CACHE"):
        return Path(os.environ["SSMLIB_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "ssmlib"


def demo_dataset(game: str = "MsPacman", height: int = 200, width: int = 160, steps: int = 1200):
    """A small real dataset at the pretrained models' frame size, from a seed the GPU runs never used
    (1000), so its episodes are unseen by every committed checkpoint. Collected once (a few seconds
    on a CPU) into :func:`cache_dir` ``/datasets/``, then reused (and repaired if a shard is damaged)."""
    from .config import DataConfig
    from .data.collect import ensure_dataset

    cfg = DataConfig(game=game, height=height, width=width, num_envs=4, steps_per_shard=steps // 4,
                     seed=1000, test_fraction=1.0)
    return ensure_dataset(cache_dir() / "datasets" / f"{game}-{height}x{width}-demo", cfg, steps)
