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


# ------------------------------------------------------------------------------------------------ agents

SERVED_AGENTS = {"model-free": "model-free", "i2a-distill-dSSM-DET": "i2a-distill"}
"""The agents the book serves, by the I2A campaign's arm (one of its ``keep_weights``) -> the pilot study's file
name. An arm is served by the campaign's kept best run (``checkpoints/i2a_campaign/<game>/best-<arm>.safetensors``)
once one has finished, until then by the pilot study's seed 0 (``checkpoints/agents/<game>-<pilot>.safetensors``)."""


def pilot_agent_path(game: str, arm: str, checkpoints: Path = CHECKPOINTS_DIR) -> Path:
    """The pilot study's agent of ``arm`` (seed 0 after 2M agent steps), committed before the campaign."""
    if arm not in SERVED_AGENTS:
        raise SsmlibError(f"no served agent {arm!r}; choose one of {', '.join(SERVED_AGENTS)}")
    return Path(checkpoints) / "agents" / f"{game}-{SERVED_AGENTS[arm]}.safetensors"


def pretrained_agent_path(game: str, arm: str, checkpoints: Path = CHECKPOINTS_DIR) -> Path:
    """The weights served as ``arm``'s agent of ``game``: the I2A campaign's kept best run where one has finished,
    else the pilot's (:data:`SERVED_AGENTS`)."""
    from .studies.i2a_campaign import best_weights_path

    pilot = pilot_agent_path(game, arm, checkpoints)  # checks the arm
    best = best_weights_path(game, arm, checkpoints)
    return best if best.exists() else pilot


def agent_source(path) -> str:
    """Where a served agent's weights come from, in one line (for the chapters that load one)."""
    from .agents.checkpoint import KIND
    from .checkpoint import read_meta
    from .config import RESULTS_DIR
    from .studies.common import read_json
    from .studies.i2a import variant_name

    meta = read_meta(path, kind=KIND)
    best = meta.get("campaign_best")
    if best:
        extra = " (an extra seed)" if best.get("extra_seed") else ""
        return (f"the I2A campaign's best finished {best['arm']} run: {best['run']}{extra}, "
                f"{best['steps']:,} agent steps, frozen mean {best['frozen_mean']:.0f} over {best['frozen_games']} "
                f"games, {meta['weights_dtype']} weights")
    cfg = meta["config"]
    run = f"{variant_name(cfg['agent'], cfg['rollout_policy'])}-s{cfg['seed']}"  # the pilot study's run folder
    ev = read_json(RESULTS_DIR / "i2a" / cfg["game"] / run / "eval.json")
    frozen = "" if ev is None else f", frozen mean {ev['return_mean']:.0f} over {ev['episodes']} games"
    return (f"the pilot study's {run}, {meta['step']:,} agent steps{frozen}, {meta.get('weights_dtype') or 'float32'} "
            f"weights (the I2A campaign has kept no finished run of this arm yet)")


def model_source(path) -> str:
    """Where an environment model's weights come from, in one line: a model-zoo campaign run (its name and the
    training frames it had seen) or a first-zoo run (its steps and GPU minutes)."""
    from .checkpoint import read_meta
    from .studies.zoo_campaign import read_lineage, run_frames, weights_path

    path = Path(path)
    meta = read_meta(path)
    src = meta.get("exported_from") or {}
    game, run = path.parent.name, path.stem
    if path.resolve() == weights_path(game, run).resolve():  # a campaign run's: its lineage has the run's frames
        frames = run_frames(read_lineage(game, run))  # (the weights' own step counts their last lease only)
        return f"the model-zoo campaign's {meta['model']} run {run}, {frames / 1e6:.2f}M training frames"
    return (f"the first zoo's {meta['model']} run, {src['step']:,} steps in {src['wall_s'] / 60:.0f} minutes on an "
            f"{src['device']} (chapter 4)")


def pinned_files(game: str, results: Path | None = None) -> set[Path]:
    """Committed files a campaign's config names as an input it reads unchanged in every lease: the model-zoo
    campaign collects its dataset with its ``agent`` (other weights would change the dataset's fingerprint)."""
    from .config import RESULTS_DIR
    from .studies.zoo_campaign import campaign_dir, load_config

    results = Path(results or RESULTS_DIR)
    if not (campaign_dir(game, results) / "config.json").exists():
        return set()
    return {(results.parent / load_config(game, results).agent).resolve()}  # a repository-relative path


def retirable_pilots(game: str, checkpoints: Path = CHECKPOINTS_DIR, results: Path | None = None
                     ) -> list[tuple[Path, str]]:
    """Pilot agents the campaign has superseded, each with why: a served arm's pilot once the arm's best run is
    kept, unless a campaign pins it (:func:`pinned_files`: the model-free pilot, the model-zoo campaign's data
    policy). The first zoo's dSSM-DET the pilot I2A queried stays: it is the default environment model of agent
    runs (``env_model="auto"``, ``config.resolve_env_model``). Each file's ``.json`` sidecar goes with it
    (:func:`retire_pilots`)."""
    from .studies.i2a_campaign import best_weights_path

    pinned = pinned_files(game, results)
    out = []
    for arm in SERVED_AGENTS:
        pilot, best = pilot_agent_path(game, arm, checkpoints), best_weights_path(game, arm, checkpoints)
        if pilot.exists() and best.exists() and pilot.resolve() not in pinned:
            out.append((pilot, f"superseded by the campaign's {best.name}"))
    return out


def retire_pilots(game: str, checkpoints: Path = CHECKPOINTS_DIR, results: Path | None = None) -> list[str]:
    """Delete :func:`retirable_pilots` with their sidecars; one line per file. Run by ``unpack`` after an I2A
    campaign's tar: the kept best of ``i2a-distill-dSSM-DET`` (about 4.8 MiB) beside the pilot I2A (4.8 MiB) it
    replaces would take the repository past the 56 MiB a GPU call carries."""
    from .checkpoint import sidecar_path

    done = []
    for path, why in retirable_pilots(game, checkpoints, results):
        size = path.stat().st_size
        path.unlink()
        sidecar_path(path).unlink(missing_ok=True)
        done.append(f"retired {path.name} ({size / 2**20:.1f} MiB): {why}")
    return done
