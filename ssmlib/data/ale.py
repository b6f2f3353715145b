"""ALE games through gymnasium + ale-py: names, environments and the one frame-preprocessing function.

The ROMs ship inside the ale-py wheel. Environments follow ALE v5: frame skip 4, sticky actions with
probability 0.25, at most 108,000 emulator frames per episode, the minimal action set.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import SsmlibError

RAW_HEIGHT, RAW_WIDTH = 210, 160
"""Size of an ALE screen."""

PAPER_GAMES = ("MsPacman", "Bowling", "Centipede", "Surround", "Asteroids", "FishingDerby")
"""MsPacman is certain in the paper; the others are its plausible set (the paper names MsPacman; the others are our reading of its figures)."""


@dataclass(frozen=True)
class Game:
    name: str
    """Short CamelCase name, e.g. MsPacman."""
    rom: str
    """ale-py ROM id, e.g. ms_pacman (what AtariVectorEnv takes)."""
    env_id: str
    """gymnasium id, e.g. ALE/MsPacman-v5."""


def _quiet_ale() -> None:
    import ale_py

    # ALE prints a banner to stderr on first use; it would pollute notebooks and nbval.
    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)


@lru_cache(maxsize=1)
def _games() -> dict[str, Game]:
    import ale_py
    import gymnasium as gym

    _quiet_ale()
    gym.register_envs(ale_py)
    games = {}
    for env_id, spec in gym.registry.items():
        m = re.fullmatch(r"ALE/(\w+)-v5", env_id)
        if m and "game" in spec.kwargs:
            games[m.group(1)] = Game(m.group(1), spec.kwargs["game"], env_id)
    return games


def _key(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", s.lower())


def game_names() -> list[str]:
    """Every ALE game this install knows, by short name."""
    return sorted(_games())


def resolve_game(name: str) -> Game:
    """Accept MsPacman, mspacman, ms_pacman or ALE/MsPacman-v5; unknown names list close matches."""
    games = _games()
    bare = re.sub(r"^ALE/|-v\d+$", "", name)
    by_key = {_key(g): g for g in games}
    by_key.update({_key(g.rom): g.name for g in games.values()})
    if _key(bare) in by_key:
        return games[by_key[_key(bare)]]
    close = difflib.get_close_matches(_key(bare), list(by_key), n=4, cutoff=0.6)
    names = sorted({by_key[c] for c in close})
    hint = f"; did you mean {', '.join(names)}?" if names else f"; {len(games)} games are known (ssmlib.data.ale.game_names())"
    raise SsmlibError(f"unknown game {name!r}{hint}")


def check_frame_size(height: int, width: int) -> None:
    """Frames must be a multiple of 8 in each side: the state map is 1/8 of the frame."""
    if height <= 0 or width <= 0 or height % 8 or width % 8:
        raise SsmlibError(f"frame size {height}x{width} is not a multiple of 8 in each side (e.g. 200x160, 80x64)")
    if height > RAW_HEIGHT or width > RAW_WIDTH:
        raise SsmlibError(f"frame size {height}x{width} is larger than the ALE screen {RAW_HEIGHT}x{RAW_WIDTH}")


PREPROCESSING = "rgb; cv2.resize INTER_AREA from 210x160 to HxW; uint8"
"""What ``preprocess`` does, recorded in every dataset manifest."""


def preprocess(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """The one frame preprocessing of ssmlib: RGB ALE screens (..., 210, 160, 3) uint8 -> (..., H, W, 3).

    Area-averaging resize (``cv2.INTER_AREA``), the whole screen kept (score and lives included).
    The paper's own preprocessing is unknown; it used RGB frames of about 200x160 [ours].
    """
    import cv2

    frames = np.asarray(frames)
    if frames.shape[-3:] == (height, width, 3):
        return frames
    if frames.shape[-3:] != (RAW_HEIGHT, RAW_WIDTH, 3) or frames.dtype != np.uint8:
        raise SsmlibError(f"expected uint8 ALE screens (..., 210, 160, 3), got {frames.dtype} {frames.shape}")
    lead = frames.shape[:-3]
    flat = frames.reshape(-1, RAW_HEIGHT, RAW_WIDTH, 3)
    out = np.empty((flat.shape[0], height, width, 3), np.uint8)
    for i, f in enumerate(flat):
        cv2.resize(f, (width, height), dst=out[i], interpolation=cv2.INTER_AREA)
    return out.reshape(*lead, height, width, 3)


def make_vector_env(game: str | Game, num_envs: int, *, sticky_actions: float = 0.25, frameskip: int = 4,
                    max_episode_steps: int = 27_000, num_threads: int = 0):
    """ale-py's native vector env (C++ threads) returning raw RGB 210x160 screens, ALE v5 semantics.

    Its defaults are an Atari-agent pipeline (84x84 grey, 4-frame stack, reward clipping, fire reset,
    no-op starts); all of those are switched off here so the data are the game's own frames and scores.
    Autoreset is NEXT_STEP: after a terminal step, the next ``step`` resets that env and ignores its action.
    """
    from ale_py.vector_env import AtariVectorEnv

    g = game if isinstance(game, Game) else resolve_game(game)
    _quiet_ale()
    return AtariVectorEnv(
        g.rom, num_envs, num_threads=num_threads or min(num_envs, os.cpu_count() or 1),
        img_height=RAW_HEIGHT, img_width=RAW_WIDTH, grayscale=False, stack_num=1, maxpool=False,
        frameskip=frameskip, repeat_action_probability=sticky_actions,
        max_num_frames_per_episode=max_episode_steps * frameskip, reward_clipping=False,
        use_fire_reset=False, noop_max=0, episodic_life=False,
    )


def make_env(game: str | Game, *, sticky_actions: float = 0.25, frameskip: int = 4, render_mode=None):
    """A single gymnasium ALE v5 environment (for widgets and one-off play)."""
    import gymnasium as gym

    g = game if isinstance(game, Game) else resolve_game(game)
    return gym.make(g.env_id, frameskip=frameskip, repeat_action_probability=sticky_actions,
                    render_mode=render_mode)


def action_meanings(game: str | Game) -> list[str]:
    """Names of the minimal action set, e.g. ['NOOP', 'UP', 'RIGHT', ...] for MsPacman."""
    import ale_py

    g = game if isinstance(game, Game) else resolve_game(game)
    _quiet_ale()
    ale = ale_py.ALEInterface()
    ale.loadROM(ale_py.roms.get_rom_path(g.rom))
    return [a.name for a in ale.getMinimalActionSet()]
