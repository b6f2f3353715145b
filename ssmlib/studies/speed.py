"""Benchmarks, measured as throughputs and ratios within one run (never as assertions in tests).

``python -m ssmlib bench collect``: agent steps per second of gymnasium's synchronous vector env and
of ale-py's native ``AtariVectorEnv`` (C++ threads) side by side, raw RGB 210x160 screens, random
actions, for several env counts; plus the whole ssmlib collection pipeline (env + preprocessing).
``python -m ssmlib bench collect-workers``: the wall time of one whole collection (``ssmlib.data.collect``) with its
shards collected in 1, 2, 4 ... worker processes, and whether each wrote the same bytes as one process.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..config import PROFILES
from ..data.ale import _quiet_ale, make_vector_env, resolve_game
from ..errors import SsmlibError
from ..io import atomic_write_json, provenance


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
    from ..data.collect import preprocess_parallel

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


def bench_collect_workers(game: str = "MsPacman", workers=(1, 2, 4), shards: int = 4, envs: int = 16,
                          steps_per_shard: int = 250, profile: str = "paper", agent: str | None = None,
                          agent_share: float | None = 0.5, epsilon: float | None = None, repeats: int = 1) -> dict:
    """One collection of ``shards`` shards (``envs`` x ``steps_per_shard`` agent steps each) per worker count, into
    a temporary folder, ``repeats`` times (the counts interleaved): its median wall time, frames/s, speed-up over the
    first count's median, and whether every fingerprint is the first count's (the same bytes). ``agent``: the campaign's kind of policy (that agent on ``agent_share`` of the
    envs, the rest random), else random actions; ``epsilon`` defaults to the model-zoo campaign's. The machine's
    cores and device are in the provenance."""
    import os
    import tempfile

    import torch

    from ..config import get_profile
    from ..data.cli import AgentPolicies
    from ..data.collect import collect, config_with

    from .zoo_campaign import CampaignConfig

    epsilon = CampaignConfig.epsilon if epsilon is None else epsilon
    cfg = config_with(get_profile(profile).data, game=game, num_envs=envs, steps_per_shard=steps_per_shard)
    factory = None
    if agent:
        factory = AgentPolicies.for_data(agent, cfg, epsilon, agent_share)
    walls: dict[int, list[float]] = {w: [] for w in workers}
    fingerprints, frames, phases = {}, {}, {}
    for _ in range(repeats):  # the counts interleaved, so that a busy spell of the machine falls on all of them
        for w in workers:
            with tempfile.TemporaryDirectory(prefix="bench-collect-workers-") as tmp:
                t0 = time.perf_counter()
                ds = collect(cfg, Path(tmp) / "d", shards * envs * steps_per_shard, policy_factory=factory,
                             progress=False, workers=w)
                walls[w].append(time.perf_counter() - t0)
                fingerprints.setdefault(w, set()).add(ds.fingerprint)
                frames[w] = int(sum(s["rows"] for s in ds.manifest["shards"]))
                phases[w] = ds.manifest.get("collect_phases_s", {})
    ref = workers[0]
    rows = []
    for w in workers:
        wall = float(np.median(walls[w]))
        rows.append({"workers": w, "wall_s": wall, "walls_s": walls[w], "frames": frames[w],
                     "frames_per_s": frames[w] / wall, "speedup": float(np.median(walls[ref])) / wall,
                     "same_bytes": fingerprints[w] == fingerprints[ref] and len(fingerprints[w]) == 1,
                     "phases_s": phases[w]})
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "phases_s"}), flush=True)
    return {"study": "bench_collect_workers", "game": cfg.game, "profile": profile,
            "frame": f"{cfg.height}x{cfg.width}", "shards": shards, "envs": envs, "steps_per_shard": steps_per_shard,
            "policy": f"{agent} on {agent_share} of the envs (epsilon {epsilon}), the rest random" if agent
            else "random", "cores": os.cpu_count(), "repeats": repeats, "rows": rows,
            "provenance": provenance(device="cuda" if agent and torch.cuda.is_available() else "cpu")}


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
    _write_result(result, args.out, args.overwrite)


def _write_result(result: dict, out: str | None, overwrite: bool) -> None:
    if out:
        path = Path(out)
        if path.exists() and not overwrite:
            raise SsmlibError(f"{path} exists; pass --overwrite to replace it")
        atomic_write_json(path, result)
        print(f"wrote {path}")


def format_workers_table(result: dict) -> str:
    """``bench_collect_workers``' rows as a table: median wall time (and every repeat's), frames/s, speed-up over the
    first count, same bytes."""
    lines = [f"{'workers':>8} {'wall s':>7} {'frames/s':>9} {'speed-up':>9} {'same bytes':>11}  every repeat (s)"]
    for r in result["rows"]:
        lines.append(f"{r['workers']:>8} {r['wall_s']:>7.1f} {r['frames_per_s']:>9,.0f} {r['speedup']:>8.2f}x "
                     f"{str(r['same_bytes']):>11}  " + ", ".join(f"{x:.1f}" for x in r.get("walls_s", [r["wall_s"]])))
    return "\n".join(lines)


def _cli_collect_workers(args) -> None:
    if args.out and Path(args.out).exists() and not args.overwrite:  # refused before minutes of collecting
        raise SsmlibError(f"{args.out} exists; pass --overwrite to replace it")
    result = bench_collect_workers(args.game, tuple(int(x) for x in args.workers.split(",")), args.shards, args.envs,
                                   args.steps_per_shard, args.profile, args.policy_agent, args.agent_share,
                                   args.epsilon, args.repeats)
    print(format_workers_table(result))
    _write_result(result, args.out, args.overwrite)


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("bench", help="benchmarks: collect, rollout, train (throughputs and ratios in one run)")
    sub = p.add_subparsers(dest="bench", required=True)
    c = sub.add_parser("collect", help="agent steps/s: gymnasium sync vector env vs ale-py AtariVectorEnv")
    c.add_argument("--game", default="MsPacman")
    c.add_argument("--envs", default="1,4,16,64", help="comma-separated env counts")
    c.add_argument("--seconds", type=float, default=5.0, help="seconds per measurement")
    c.add_argument("--out", help="write the JSON result here (e.g. results/bench_collect/cpu-2core.json)")
    c.add_argument("--overwrite", action="store_true")
    c.set_defaults(func=_cli_collect)
    w = sub.add_parser("collect-workers", help="one whole collection's wall time with its shards in 1, 2, 4 ... "
                                               "worker processes, and whether each wrote the same bytes")
    w.add_argument("--game", default="MsPacman")
    w.add_argument("--workers", default="1,2,4", help="comma-separated worker counts (the first is the reference)")
    w.add_argument("--shards", type=int, default=4, help="shards in the collection (the campaign's has 4)")
    w.add_argument("--envs", type=int, default=16, help="environments per shard (the campaign's: 64)")
    w.add_argument("--steps-per-shard", type=int, default=250, help="agent steps per env in a shard (the campaign's: 1000)")
    w.add_argument("--profile", default="paper", choices=PROFILES, help="the frame size's profile (default paper)")
    w.add_argument("--policy-agent", default=None, metavar="CHECKPOINT",
                   help="collect as the campaign does: this agent on --agent-share of the envs, the rest random")
    w.add_argument("--agent-share", type=float, default=0.5)
    w.add_argument("--repeats", type=int, default=1, help="collections per worker count, interleaved (medians)")
    w.add_argument("--epsilon", type=float, default=None, help="the agent's random-action probability (default: the "
                   "model-zoo campaign's)")
    w.add_argument("--out", help="write the JSON result here (e.g. results/bench_collect_workers/cpu-2core.json)")
    w.add_argument("--overwrite", action="store_true")
    w.set_defaults(func=_cli_collect_workers)
    _add_speed_cli(sub)
    from ..viz.play import add_bench_cli  # bench play: the play widget's key-press latency

    add_bench_cli(sub)


# --------------------------------------------------------------------------------------------------
# Imagination speed: ``python -m ssmlib bench rollout``; training speed: ``python -m ssmlib bench train``

ROLLOUT_MODELS = (("AR", 1), ("RAR", 1), ("dSSM-DET", 1), ("dSSM-VAE", 1), ("sSSM", 1), ("sSSM", 2), ("sSSM", 4),
                  ("dSSM-DET", 2), ("dSSM-DET", 4))
"""(model, jump k) pairs of the speed study: the five models and the jumpy SSMs of ``ssmlib.studies.jumpy``."""
ROLLOUT_VARIANTS = ("fp32-eager", "bf16-eager", "bf16-graph", "bf16-compile")
"""fp32 eager; bf16 weights eager; bf16 with the rollout captured as one CUDA graph; bf16 with the rollout
compiled by ``torch.compile`` (inductor's fused kernels, no CUDA graph). All but the first need CUDA."""


def _sync(dev) -> None:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize()


def _median_ms(fn, dev, repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    _sync(dev)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(dev)
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def _peaks(dev) -> dict:
    """Measured bf16 matmul peak and device copy bandwidth of this GPU (the roofline's two roofs)."""
    import torch

    if dev.type != "cuda":
        return {}
    a = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
    ms = _median_ms(lambda: a @ a, dev, 10, 3)
    x = torch.empty(2 ** 30, device=dev, dtype=torch.uint8)
    y = torch.empty_like(x)
    copy_ms = _median_ms(lambda: y.copy_(x), dev, 10, 3)
    return {"bf16_matmul_tflops": 2 * 8192 ** 3 / ms / 1e9, "copy_gb_per_s": 2 * 2 ** 30 / copy_ms / 1e6}


def bench_rollout(profile: str = "paper", batches=(1, 16, 64, 256, 1024), env_horizon: int = 10,
                  variants=ROLLOUT_VARIANTS, models=ROLLOUT_MODELS,
                  repeats: int = 10, warmup: int = 3, device: str | None = None) -> dict:
    """Imagined environment steps per second of every model, latent-only and with frames decoded.

    Variants (``ROLLOUT_VARIANTS``): fp32 eager; bf16 weights eager; bf16 with the whole rollout
    captured as one CUDA graph (launch overhead removed); bf16 with the rollout compiled by
    ``torch.compile`` (its first call, which compiles, is timed apart as ``compile_s``). On a CPU only
    fp32 eager runs; the others are listed in ``skipped_variants``. Jumpy models advance k env steps
    per transition, so a horizon of ``env_horizon`` env steps takes ceil(env_horizon / k) transitions.
    """
    import dataclasses

    import torch

    from ..config import get_profile
    from ..models import build_model

    unknown = [v for v in variants if v not in ROLLOUT_VARIANTS]
    if unknown:
        raise SsmlibError(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(ROLLOUT_VARIANTS)}")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    skipped = () if dev.type == "cuda" else tuple(v for v in variants if v != "fp32-eager")
    variants = tuple(v for v in variants if v not in skipped)
    base = get_profile(profile).model
    rows = []
    for name, k in models:
        cfg = dataclasses.replace(base, model=name, jump=k)
        torch.manual_seed(0)
        for variant in variants:
            dtype = torch.float32 if variant.startswith("fp32") else torch.bfloat16
            model = build_model(cfg).to(dev, dtype).eval()
            compiled = _compiled_imagine(model) if variant.endswith("compile") else None
            T = -(-env_horizon // k)
            for B in batches:
                ctx = torch.rand(B, 3, 3, cfg.height, cfg.width, device=dev, dtype=dtype)
                shape = (B, T) if k == 1 else (B, T, k)
                actions = torch.randint(0, cfg.num_actions, shape, device=dev)
                for decode in (False, True):
                    extra = {}
                    with torch.no_grad():
                        try:
                            state = model.initial_state(ctx)
                            run = lambda: (compiled or model.imagine)(state, actions, decode=decode)  # noqa: E731
                            if variant.endswith("graph"):
                                run = _graphed(run, dev)
                            if compiled is not None:  # the first call compiles (again for a new shape)
                                t0 = time.perf_counter()
                                run()
                                _sync(dev)
                                extra["compile_s"] = time.perf_counter() - t0
                            ms = _median_ms(run, dev, repeats, warmup)
                        except (torch.OutOfMemoryError, RuntimeError) as e:  # recorded, not fatal
                            rows.append({"model": name, "jump": k, "variant": variant, "decode": decode,
                                         "batch": B, "error": str(e).splitlines()[0][:200]})
                            print(json.dumps(rows[-1]), flush=True)
                            torch.cuda.empty_cache() if dev.type == "cuda" else None
                            continue
                    rows.append({"model": name, "jump": k, "variant": variant, "decode": decode, "batch": B,
                                 "transitions": T, "env_steps": T * k, "ms_per_rollout": ms,
                                 "ms_per_env_step": ms / (T * k), "env_steps_per_s": B * T * k / ms * 1e3, **extra})
                    print(json.dumps(rows[-1]), flush=True)
            if dev.type == "cuda":
                torch.cuda.empty_cache()
    _add_ratios(rows)
    result = {"study": "speed_rollout", "profile": profile, "env_horizon": env_horizon, "rows": rows,
              "skipped_variants": list(skipped), "peaks": _peaks(dev), "provenance": provenance(str(dev))}
    result["roofline"] = _roofline(profile, max(batches), dev, result["peaks"], rows)
    return result


def _compiled_imagine(model):
    """``model.imagine`` through ``torch.compile`` (default mode: fused kernels, no CUDA graph).

    Dynamo's caches are reset first: every model's ``imagine`` shares one code object, and after
    ``cache_size_limit`` recompilations of it dynamo would silently fall back to eager.
    """
    import torch

    torch._dynamo.reset()
    return torch.compile(model.imagine)


def _graphed(fn, dev):
    """Capture ``fn`` (a whole rollout) as one CUDA graph; return its replay."""
    import torch

    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(2):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    return g.replay


def _add_ratios(rows: list[dict]) -> None:
    """Speed-up per env step against RAR and AR of the same variant, batch and decode mode."""
    rows_ok = [r for r in rows if "error" not in r]
    ref = {(r["model"], r["variant"], r["batch"], r["decode"]): r["ms_per_env_step"] for r in rows_ok if r["jump"] == 1}
    for r in rows_ok:
        for base in ("RAR", "AR"):
            b = ref.get((base, r["variant"], r["batch"], r["decode"]))
            r[f"speedup_vs_{base}"] = b / r["ms_per_env_step"] if b else None


def roofs_ms(flops: float, min_bytes: float, peaks: dict) -> tuple[float, float]:
    """The two floors of one step, in ms: its FLOPs at the measured bf16 matmul rate (TFLOP/s) and its least bytes
    at the measured copy bandwidth (GB/s). The step's floor is the larger."""
    return flops / (peaks["bf16_matmul_tflops"] * 1e9), min_bytes / (peaks["copy_gb_per_s"] * 1e6)


def _roofline(profile: str, B: int, dev, peaks: dict, rows: list[dict]) -> dict:
    """FLOPs of one latent sSSM transition at batch B (counted by torch) against the GPU's measured roofs."""
    import dataclasses

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from ..config import get_profile
    from ..models import build_model

    if not peaks:
        return {}
    cfg = dataclasses.replace(get_profile(profile).model, model="sSSM")
    model = build_model(cfg).to(dev, torch.bfloat16).eval()
    with torch.no_grad():
        state = model.initial_state(torch.rand(B, 3, 3, cfg.height, cfg.width, device=dev, dtype=torch.bfloat16))
        actions = torch.randint(0, cfg.num_actions, (B, 1), device=dev)
        with FlopCounterMode(display=False) as fc:
            model.imagine(state, actions)
    flops = fc.get_total_flops()
    state_bytes = (state.s.numel() + model.z_channels * model.h * model.w * B) * 2
    weight_bytes = sum(p.numel() for p in model.parameters()) * 2
    min_bytes = 2 * state_bytes + weight_bytes  # read and write the state once, the weights once
    floor_ms = max(roofs_ms(flops, min_bytes, peaks))
    best = min((r["ms_per_env_step"] for r in rows if "error" not in r and r["model"] == "sSSM" and r["jump"] == 1
                and r["batch"] == B and not r["decode"]), default=None)
    return {"batch": B, "flops_per_step": flops, "min_bytes_per_step": min_bytes, "floor_ms_per_step": floor_ms,
            "best_measured_ms_per_step": best, "measured_over_floor": best / floor_ms if best else None,
            "achieved_tflops": flops / best / 1e9 if best else None}


TRAIN_VARIANTS = {
    # name: (per-GPU batch, lr, torch.compile, channels_last) -- the first is the engine before the
    # campaign (batch 32, NCHW); b256-eager-cl is what the paper profile trains with now (compile off:
    # its gradient was not finite on an H200, results/speed/engine/)
    "b32-compile": (32, 5e-4, True, False),
    "b128-compile-cl": (128, 1e-3, True, True),
    "b256-compile-cl": (256, 1.4e-3, True, True),
    "b128-eager-cl": (128, 1e-3, False, True),
    "b32-eager": (32, 5e-4, False, False),
    "b256-eager-cl": (256, 1.4e-3, False, True),
    # compiled without channels_last: the one compiled bf16 form whose gradient was finite on an H200
    # (results/speed/engine/compile-diagnosis-h200/), what train does when compile is on
    "b256-compile": (256, 1.4e-3, True, False),
}
"""Training-step variants of ``bench train``, all bf16 autocast with fused AdamW on CUDA."""


def _busy_share(step, dev, steps: int) -> float | None:
    """Share of the wall time of ``steps`` steps during which the GPU ran kernels or copies (profiler)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    if dev.type != "cuda":
        return None
    _sync(dev)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(dev)
        wall_us = (time.perf_counter() - t0) * 1e6
    spans = sorted((e.time_range.start, e.time_range.end) for e in prof.events()
                   if e.device_type == torch.autograd.DeviceType.CUDA and e.time_range.end > e.time_range.start)
    busy, cur_s, cur_e = 0.0, None, None
    for s_, e_ in spans:  # union of the device intervals (several streams may overlap)
        if cur_e is None or s_ > cur_e:
            busy += 0 if cur_e is None else cur_e - cur_s
            cur_s, cur_e = s_, e_
        else:
            cur_e = max(cur_e, e_)
    busy += 0 if cur_e is None else cur_e - cur_s
    return min(1.0, busy / wall_us)


def bench_train(profile: str = "paper", models=("AR", "RAR", "dSSM-DET", "dSSM-VAE", "sSSM"),
                variants=("b32-compile", "b128-compile-cl"), seconds: float = 10.0, device: str | None = None,
                profile_steps: int = 10, on_row=None) -> dict:
    """Training frames/s per model and variant with the loop's own step (``train.train_step``: the
    ``forward_backward`` of the loop and fused AdamW with the on-device non-finite skip), data drawn on the
    device as uint8 like the sampler; plus the GPU-busy share (profiler), achieved TFLOP/s (FLOPs counted
    on one eager step) and its share of the measured bf16 matmul peak. Throughput: steps timed back to
    back, one sync.

    ``on_row(result)``, if given, is called after every finished model and variant with the document of
    the rows so far (``complete`` false until the last): ``bench train --out`` writes it each time, so a
    run cut short (a lease's ``timeout``) keeps the variants it finished."""
    import torch

    from ..config import get_profile

    unknown = [v for v in variants if v not in TRAIN_VARIANTS]
    if unknown:
        raise SsmlibError(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(TRAIN_VARIANTS)}")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    prof = get_profile(profile)
    peaks = _peaks(dev)
    planned = [(name, variant) for name in models for variant in variants]
    rows = []

    def result() -> dict:
        _add_train_speedups(rows, variants[0])
        return {"study": "speed_train", "profile": profile, "variants": {v: TRAIN_VARIANTS[v] for v in variants},
                "peaks": peaks, "rows": rows, "rows_planned": len(planned), "complete": len(rows) == len(planned),
                "provenance": provenance(str(dev))}

    for name, variant in planned:
        rows.append(_bench_train_row(prof, name, variant, dev, seconds, profile_steps, peaks))
        if dev.type == "cuda":
            torch.cuda.empty_cache()  # the variant's model and optimiser are gone with its row's helper
        if "error" not in rows[-1]:
            print(json.dumps(rows[-1]), flush=True)
        if on_row is not None:
            on_row(result())
    return result()


class _TrainStepBench:
    """One model and variant of ``bench train``: the model, fused AdamW, 4 x B random uint8 windows on the
    device, and ``step()``: B of them drawn at random, then the training loop's own ``train.train_step``."""

    def __init__(self, prof, name: str, B: int, lr: float, compiled: bool, channels_last: bool, dev):
        import contextlib
        import dataclasses

        import torch

        from ..models import build_model
        from ..train import loss_options

        on_cuda, T = dev.type == "cuda", prof.train.horizon
        cfg = dataclasses.replace(prof.model, model=name)
        torch.manual_seed(0)
        model = build_model(cfg).to(dev)
        self.model = model.to(memory_format=torch.channels_last) if channels_last else model
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=lr, **({"fused": True} if on_cuda else {}))
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.model.compile_frame_terms(compiled)  # as train does: the convolutional pass compiled
        self.frames = torch.randint(0, 256, (4 * B, 3 + T, cfg.height, cfg.width, 3), dtype=torch.uint8, device=dev)
        self.actions = torch.randint(0, cfg.num_actions, (4 * B, 2 + T), device=dev)
        self.rewards = (torch.rand(4 * B, 2 + T, device=dev) < 0.08).float() * 10
        self.kl_w = torch.ones((), device=dev)
        self.autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if on_cuda else contextlib.nullcontext
        self.opts, self.grad_clip, self.B, self.dev = loss_options(prof.train), prof.train.grad_clip, B, dev

    def batch(self, i) -> dict:
        from ..data.windows import to_device

        return to_device({"frames": self.frames[i], "actions": self.actions[i], "rewards": self.rewards[i]}, self.dev)

    def step(self) -> None:
        import torch

        from ..train import skip_nonfinite_on_device, train_step

        opt = self.opt
        guard = (lambda loss, gnorm: skip_nonfinite_on_device(opt, loss, gnorm)) if self.dev.type == "cuda" else None
        batch = self.batch(torch.randint(4 * self.B, (self.B,), device=self.dev))
        train_step(self.model.loss, opt, self.params, batch, self.kl_w, self.grad_clip, self.opts, self.autocast, guard)

    def flops(self) -> int:
        """FLOPs of one step's forward and backward, counted on the eager pass (no update)."""
        from torch.utils.flop_counter import FlopCounterMode

        from ..train import forward_backward

        self.model.compile_frame_terms(False)
        with FlopCounterMode(display=False) as fc:
            forward_backward(self.model.loss, self.opt, self.params, self.batch(slice(0, self.B)), self.kl_w,
                             self.grad_clip, self.opts, self.autocast)
        self.opt.zero_grad(set_to_none=True)
        return fc.get_total_flops()


def _time_training(step, dev, seconds: float) -> tuple[float, int, float]:
    """``(first step's seconds, steps timed, their seconds)``: the first step (it pays for compilation) and 5
    more untimed, then steps back to back in tens, one sync per ten, for ``seconds``."""
    t0 = time.perf_counter()
    step()
    _sync(dev)
    first_s = time.perf_counter() - t0
    for _ in range(5):
        step()
    _sync(dev)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(10):
            step()
        n += 10
        _sync(dev)
    return first_s, n, time.perf_counter() - t0


def _bench_train_row(prof, name: str, variant: str, dev, seconds: float, profile_steps: int, peaks: dict) -> dict:
    """The row of one model and variant (an ``error`` row when it runs out of device memory)."""
    import torch

    B, lr, compiled, cl = TRAIN_VARIANTS[variant]
    if dev.type != "cuda":  # a CPU run checks the code path at a small batch
        B, compiled, cl = min(B, 4), False, False
    T = prof.train.horizon
    try:
        bench = _TrainStepBench(prof, name, B, lr, compiled, cl, dev)
        first_s, n, elapsed = _time_training(bench.step, dev, seconds)
        busy = _busy_share(bench.step, dev, profile_steps)
        flops = bench.flops()
    except torch.cuda.OutOfMemoryError as e:
        return {"model": name, "variant": variant, "batch": B, "error": str(e).splitlines()[0]}
    ms = elapsed / n * 1e3
    tflops = flops / (ms * 1e-3) / 1e12
    return {"model": name, "variant": variant, "batch": B, "horizon": T, "lr": lr, "compile": compiled,
            "channels_last": cl, "ms_per_step": ms, "frames_per_s": B * T / ms * 1e3,
            "first_step_s": first_s, "steps_timed": n, "gpu_busy_share": busy,
            "flops_per_step": flops, "achieved_tflops": tflops,
            "share_of_bf16_peak": tflops / peaks["bf16_matmul_tflops"] if peaks else None}


def _add_train_speedups(rows: list[dict], base_name: str) -> None:
    """Frames/s of every row over the same model's ``base_name`` variant."""
    for r in rows:
        base = next((x for x in rows if x["model"] == r["model"] and x["variant"] == base_name and "error" not in x),
                    None)
        if base and "error" not in r:
            r[f"speedup_vs_{base_name}"] = r["frames_per_s"] / base["frames_per_s"]


LR_RULE_RUNS = ("sSSM-b32", "sSSM-b256")
"""The learning-rate rule's two runs (scripts/gpu_engine.sh): the old engine (batch 32, lr 5e-4) and the new
(batch 256, lr 5e-4 * sqrt(256 / 32) = 1.4e-3 after a 1000-step warm-up), each trained alone on one GPU."""


def lr_rule_verdict(folder, runs: tuple[str, str] = LR_RULE_RUNS, wall_tolerance: float = 0.05) -> dict:
    """The rule, written before the runs: the new configuration is validated when, after the same
    wall-clock training time (within ``wall_tolerance``), its test excess over the exact floor (nats/frame,
    the run's final evaluation on the same fixed test windows) is at most the old one's. Returns the
    verdict ("validated" / "not validated" / "not comparable" / "missing") with both runs' numbers."""
    found = {}
    for name in runs:
        path = Path(folder) / name / "summary.json"
        if not path.exists():
            return {"verdict": "missing", "missing": str(path)}
        s = json.loads(path.read_text())
        test = s.get("test") or {}
        found[name] = {"excess": test.get("excess"), "wall_s": s.get("wall_s"), "step": s.get("step"),
                       "frames_per_s": s.get("frames_per_s"), "windows": test.get("windows")}
    old, new = (found[n] for n in runs)
    if old["excess"] is None or new["excess"] is None:
        return {"verdict": "missing", "runs": found, "missing": "a final test evaluation"}
    walls = (old["wall_s"], new["wall_s"])
    if abs(walls[0] - walls[1]) > wall_tolerance * max(walls) or old["windows"] != new["windows"]:
        return {"verdict": "not comparable", "runs": found}
    ok = new["excess"] <= old["excess"]
    return {"verdict": "validated" if ok else "not validated", "runs": found,
            "excess_new_minus_old": new["excess"] - old["excess"],
            "rule": "new excess <= old excess after equal wall-clock (one seed each: no interval)"}


def _check_out(out: str | None, overwrite: bool) -> Path | None:
    """``--out`` as a path, refused before anything runs if it exists and ``--overwrite`` is not given."""
    if not out:
        return None
    path = Path(out)
    if path.exists() and not overwrite:
        raise SsmlibError(f"{path} exists; pass --overwrite to replace it")
    return path


def _write(result: dict, out: str | None, overwrite: bool) -> None:
    path = _check_out(out, overwrite)
    if path is not None:
        atomic_write_json(path, result)
        print(f"wrote {path}")


def _ints(text: str, flag: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise SsmlibError(f"{flag} must be comma-separated integers, got {text!r}") from None
    if any(v < 1 for v in vals):
        raise SsmlibError(f"{flag} must be positive, got {text!r}")
    return vals


def _parse_rollout_models(text: str) -> tuple[tuple[str, int], ...]:
    """'all' or e.g. 'RAR,sSSM,sSSM:4' (model[:jump])."""
    from ..models import MODEL_NAMES

    if text == "all":
        return ROLLOUT_MODELS
    out = []
    for item in text.split(","):
        name, _, k = item.partition(":")
        if name not in MODEL_NAMES:
            raise SsmlibError(f"unknown model {name!r} in --models; choose from {', '.join(MODEL_NAMES)}")
        out.append((name, int(k) if k else 1))
    return tuple(out)


def _cli_rollout(args) -> None:
    result = bench_rollout(args.profile, _ints(args.batches, "--batches"), args.horizon,
                           tuple(args.variants.split(",")), models=_parse_rollout_models(args.models),
                           repeats=args.repeats, device=args.device)
    _write(result, args.out, args.overwrite)


def _cli_train(args) -> None:
    path = _check_out(args.out, args.overwrite)
    on_row = (lambda partial: atomic_write_json(path, partial)) if path is not None else None  # noqa: E731
    bench_train(args.profile, tuple(args.models.split(",")), tuple(args.variants.split(",")),
                seconds=args.seconds, device=args.device, on_row=on_row)
    if path is not None:
        print(f"wrote {path}")


def _add_speed_cli(sub) -> None:
    r = sub.add_parser("rollout", help="imagined env steps/s of every model (latent-only and decoded)")
    r.add_argument("--profile", default="quick", choices=PROFILES)
    r.add_argument("--batches", default="1,16,64,256,1024")
    r.add_argument("--horizon", type=int, default=10, help="env steps per rollout")
    r.add_argument("--variants", default=",".join(ROLLOUT_VARIANTS),
                   help=f"comma-separated, from {','.join(ROLLOUT_VARIANTS)} (only fp32-eager runs on a CPU)")
    r.add_argument("--models", default="all", help="'all' or e.g. RAR,sSSM,sSSM:4 (model[:jump])")
    r.add_argument("--repeats", type=int, default=10)
    r.add_argument("--device", default=None)
    r.add_argument("--out")
    r.add_argument("--overwrite", action="store_true")
    r.set_defaults(func=_cli_rollout)
    t = sub.add_parser("train", help="training frames/s, GPU-busy share and TFLOP/s: the old engine vs the new")
    t.add_argument("--profile", default="quick", choices=PROFILES)
    t.add_argument("--models", default="AR,RAR,dSSM-DET,dSSM-VAE,sSSM")
    t.add_argument("--variants", default="b32-compile,b128-compile-cl",
                   help=f"comma-separated, from {','.join(TRAIN_VARIANTS)} (the first is the baseline of the ratios)")
    t.add_argument("--seconds", type=float, default=10.0, help="seconds timed per model and variant")
    t.add_argument("--device", default=None)
    t.add_argument("--out")
    t.add_argument("--overwrite", action="store_true")
    t.set_defaults(func=_cli_train)
