"""Benchmarks, measured as throughputs and ratios within one run (never as assertions in tests).

``python -m ssmlib bench collect``: agent steps per second of gymnasium's synchronous vector env and
of ale-py's native ``AtariVectorEnv`` (C++ threads) side by side, raw RGB 210x160 screens, random
actions, for several env counts; plus the whole ssmlib collection pipeline (env + preprocessing).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .data.ale import _quiet_ale, make_vector_env, preprocess, resolve_game
from .errors import SsmlibError
from .io import atomic_write_json, provenance


def _time_steps(step, n_envs: int, seconds: float, warmup: int = 20) -> dict:
    for _ in range(warmup):
        step()
    steps, t0 = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < seconds:
        step()
        steps += 1
    return {"agent_steps": steps * n_envs, "seconds": elapsed, "steps_per_s": steps * n_envs / elapsed}


def bench_sync(game, n_envs: int, seconds: float, seed: int = 0) -> dict:
    """gymnasium.vector.SyncVectorEnv over ALE v5 envs (one Python loop over envs)."""
    import gymnasium as gym

    _quiet_ale()
    envs = gym.vector.SyncVectorEnv([lambda: gym.make(game.env_id) for _ in range(n_envs)])
    envs.reset(seed=seed)
    rng = np.random.default_rng(seed)
    n_act = envs.single_action_space.n
    try:
        return _time_steps(lambda: envs.step(rng.integers(0, n_act, n_envs)), n_envs, seconds)
    finally:
        envs.close()


def bench_native(game, n_envs: int, seconds: float, seed: int = 0, height: int | None = None,
                 width: int | None = None) -> dict:
    """ale-py AtariVectorEnv at raw RGB; with ``height``/``width``, ssmlib's preprocessing is included."""
    from .data.collect import preprocess_parallel

    env = make_vector_env(game, n_envs)
    env.reset(seed=np.arange(seed, seed + n_envs))
    rng = np.random.default_rng(seed)
    n_act = env.single_action_space.n
    out = np.empty((n_envs, height or 1, width or 1, 3), np.uint8)

    def step():
        obs, *_ = env.step(rng.integers(0, n_act, n_envs))
        if height:
            preprocess_parallel(obs[:, -1], height, width, out)

    try:
        return _time_steps(step, n_envs, seconds)
    finally:
        env.close()


def bench_collect(game: str = "MsPacman", env_counts=(1, 4, 16, 64), seconds: float = 5.0,
                  sizes=((80, 64), (200, 160))) -> dict:
    g = resolve_game(game)
    rows = []
    for n in env_counts:
        sync = bench_sync(g, n, seconds)
        native = bench_native(g, n, seconds)
        row = {"envs": n, "sync_steps_per_s": sync["steps_per_s"], "native_steps_per_s": native["steps_per_s"],
               "native_over_sync": native["steps_per_s"] / sync["steps_per_s"]}
        for h, w in sizes:
            row[f"pipeline_{h}x{w}_steps_per_s"] = bench_native(g, n, seconds, height=h, width=w)["steps_per_s"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    return {"study": "bench_collect", "game": g.name, "observation": "rgb 210x160, random actions",
            "seconds_per_measurement": seconds, "rows": rows, "provenance": provenance(device="cpu")}


def format_table(result: dict) -> str:
    cols = [k for k in result["rows"][0] if k != "envs"]
    lines = ["envs | " + " | ".join(cols)]
    for r in result["rows"]:
        lines.append(f"{r['envs']:>4} | " + " | ".join(f"{r[c]:,.1f}" if "over" in c else f"{r[c]:,.0f}" for c in cols))
    return "\n".join(lines)


def _cli_collect(args) -> None:
    counts = tuple(int(x) for x in args.envs.split(","))
    if any(c < 1 for c in counts):
        raise SsmlibError(f"--envs must be positive integers, got {args.envs}")
    result = bench_collect(args.game, counts, args.seconds)
    print(format_table(result))
    if args.out:
        out = Path(args.out)
        if out.exists() and not args.overwrite:
            raise SsmlibError(f"{out} exists; pass --overwrite to replace it")
        atomic_write_json(out, result)
        print(f"wrote {out}")


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("bench", help="benchmarks: collect (more arrive with the models)")
    sub = p.add_subparsers(dest="bench", required=True)
    c = sub.add_parser("collect", help="agent steps/s: gymnasium sync vector env vs ale-py AtariVectorEnv")
    c.add_argument("--game", default="MsPacman")
    c.add_argument("--envs", default="1,4,16,64", help="comma-separated env counts")
    c.add_argument("--seconds", type=float, default=5.0, help="seconds per measurement")
    c.add_argument("--out", help="write the JSON result here (e.g. results/bench_collect/cpu-2core.json)")
    c.add_argument("--overwrite", action="store_true")
    c.set_defaults(func=_cli_collect)
