"""Vectorised collection of ALE frames with any policy, shard by shard, resumable.

Shard ``i`` is collected by ``num_envs`` environments reset with seeds drawn from ``(seed, i)`` and a
policy RNG drawn from the same pair, so a collection that is killed and resumed writes exactly the
bytes an uninterrupted one would. Tensors are pre-allocated as (steps, envs, ...) as in CleanRL.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import pickle
import shutil
import signal
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from ..config import DataConfig, TrainConfig
from ..errors import SsmlibError, warn
from ..io import git_sha
from . import store
from .ale import PREPROCESSING, action_meanings, check_frame_size, make_vector_env, preprocess, resolve_game


class Policy(Protocol):
    """Any callable: (frames (n, H, W, 3) uint8, rng) -> actions (n,) int. ``describe()`` is optional."""

    def __call__(self, frames: np.ndarray, rng: np.random.Generator) -> np.ndarray: ...


class RandomPolicy:
    """Uniform random actions, each held for a geometric number of steps (mean ``mean_repeat``).

    Holding actions moves MsPacman through corridors instead of jittering in place, which covers
    more of the maze than i.i.d. actions at the same budget.
    """

    def __init__(self, num_actions: int, mean_repeat: float = 4.0):
        self.num_actions, self.mean_repeat = num_actions, mean_repeat
        self._current: np.ndarray | None = None

    def __call__(self, frames, rng):
        n = len(frames)
        if self._current is None or len(self._current) != n:
            self._current = rng.integers(0, self.num_actions, n)
        change = rng.random(n) < 1.0 / max(self.mean_repeat, 1.0)
        self._current = np.where(change, rng.integers(0, self.num_actions, n), self._current)
        return self._current

    def describe(self) -> dict:
        return {"name": "random", "mean_repeat": self.mean_repeat}


class EpsilonPolicy:
    """Wrap a policy (e.g. a trained agent) so each env takes a uniform random action with probability eps."""

    def __init__(self, policy: Callable, num_actions: int, epsilon: float = 0.05):
        self.policy, self.num_actions, self.epsilon = policy, num_actions, epsilon

    def __call__(self, frames, rng):
        a = np.asarray(self.policy(frames, rng))
        explore = rng.random(len(a)) < self.epsilon
        return np.where(explore, rng.integers(0, self.num_actions, len(a)), a)

    def describe(self) -> dict:
        inner = getattr(self.policy, "describe", lambda: {"name": repr(self.policy)})()
        return {"name": "epsilon", "epsilon": self.epsilon, "policy": inner}


class SplitPolicy:
    """The first ``round(share * n)`` of the ``n`` envs follow ``first``, the others ``second``, every step,
    so a share of the episodes comes from each (e.g. half from a trained agent, half random: the
    states an agent visits and the rooms a random policy reaches). Each part keeps its own state."""

    def __init__(self, first: Callable, second: Callable, share: float):
        if not 0.0 < share < 1.0:
            raise SsmlibError(f"the agent's share of the envs must be between 0 and 1, got {share}")
        self.first, self.second, self.share = first, second, share

    def __call__(self, frames, rng):
        m = int(round(self.share * len(frames)))
        a = np.asarray(self.first(frames[:m], rng)) if m else np.zeros(0, np.int64)
        b = np.asarray(self.second(frames[m:], rng)) if m < len(frames) else np.zeros(0, np.int64)
        return np.concatenate([a, b]).astype(np.int64)

    def describe(self) -> dict:
        return {"name": "split", "share": self.share, "first": describe_policy(self.first),
                "second": describe_policy(self.second)}


def describe_policy(policy) -> dict:
    return policy.describe() if hasattr(policy, "describe") else {"name": repr(policy)}


_POOL: ThreadPoolExecutor | None = None


def preprocess_parallel(screens: np.ndarray, height: int, width: int, out: np.ndarray) -> None:
    """``preprocess`` over a batch of screens in threads (cv2 releases the GIL), into ``out``."""
    global _POOL
    n = len(screens)
    if n < 8:
        out[:] = preprocess(screens, height, width)
        return
    if _POOL is None:
        import os

        _POOL = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1))
    chunks = np.array_split(np.arange(n), min(n, _POOL._max_workers))

    def work(idx):
        out[idx[0]:idx[-1] + 1] = preprocess(screens[idx[0]:idx[-1] + 1], height, width)

    list(_POOL.map(work, chunks))


def collect_shard(env, cfg: DataConfig, index: int, policy_factory: Callable[[], Policy],
                  progress=None, timing: dict | None = None) -> dict[str, np.ndarray]:
    """Run ``cfg.num_envs`` envs for ``cfg.steps_per_shard`` steps from seeds (cfg.seed, index); cut into episodes.
    ``timing``: seconds per phase (setup, env, policy, preprocess, split) added into it."""
    n, steps, H, W = cfg.num_envs, cfg.steps_per_shard, cfg.height, cfg.width
    timing = {} if timing is None else timing
    seeds = (np.random.SeedSequence([cfg.seed, index]).generate_state(n) >> 1).astype(np.int64)  # ALE takes int32 seeds
    rng = np.random.default_rng([cfg.seed, index, 1])
    policy = _timed(timing, "setup", policy_factory)  # fresh policy state per shard: shards are independent
    frames = np.empty((steps + 1, n, H, W, 3), np.uint8)
    actions = np.zeros((steps, n), np.int64)
    rewards = np.zeros((steps, n), np.float32)
    ended = np.zeros((steps, n), np.uint8)  # 1 terminated, 2 truncated, at the step that ended an episode
    obs, _ = _timed(timing, "env", env.reset, seed=seeds)
    _timed(timing, "preprocess", preprocess_parallel, obs[:, -1], H, W, frames[0])
    for k in range(steps):
        actions[k] = _timed(timing, "policy", policy, frames[k], rng)
        obs, r, term, trunc, _ = _timed(timing, "env", env.step, actions[k])
        _timed(timing, "preprocess", preprocess_parallel, obs[:, -1], H, W, frames[k + 1])
        rewards[k] = r
        ended[k] = np.where(term, store.TERMINATED, np.where(trunc, store.TRUNCATED, 0))
        if progress is not None:
            progress.update(n)
    return _timed(timing, "split", split_episodes, frames, actions, rewards, ended, first_episode_id=index * 100_000)


def split_episodes(frames, actions, rewards, ended, first_episode_id: int, min_frames: int = 2) -> dict[str, np.ndarray]:
    """Cut (steps, envs) streams into contiguous episodes, following NEXT_STEP autoreset.

    Stream of env j: o_0, a_0, r_0, o_1, ... If step k ended an episode (o_{k+1} is its last frame),
    step k+1 is a reset step (its action is ignored, its reward is 0) whose observation o_{k+2} starts
    the next episode.
    The episode cut by the shard's end is marked truncated.
    """
    steps, n = actions.shape
    pieces = {k: [] for k in store.ARRAYS}
    eid = first_episode_id
    for j in range(n):
        start = 0  # index of the episode's first frame
        while start <= steps:
            # find the step that ends this episode, if any, before the shard ends
            end_steps = np.flatnonzero(ended[start:, j])
            if len(end_steps):
                last = start + end_steps[0] + 1  # index of the episode's last frame
                flag = ended[last - 1, j]
            else:
                last, flag = steps, store.TRUNCATED
            length = last - start + 1
            if length >= min_frames:
                acts = np.zeros(length, np.uint8)
                rews = np.zeros(length, np.float32)
                acts[:-1] = actions[start:last, j]
                rews[:-1] = rewards[start:last, j]
                done = np.zeros(length, np.uint8)
                done[-1] = flag
                pieces["frames"].append(frames[start:last + 1, j])
                pieces["actions"].append(acts)
                pieces["rewards"].append(rews)
                pieces["episode"].append(np.full(length, eid, np.int64))
                pieces["done"].append(done)
                eid += 1
            start = last + 1  # frame `last` is terminal, step `last` resets, frame last+1 starts anew
    return {k: np.concatenate(v) for k, v in pieces.items()}


def _manifest_for(cfg: DataConfig, game, policy: dict, n_shards: int) -> dict:
    import importlib.metadata as md

    return {
        "format": store.FORMAT, "game": game.name, "rom": game.rom, "env_id": game.env_id,
        "num_actions": len(action_meanings(game)), "action_meanings": action_meanings(game),
        "height": cfg.height, "width": cfg.width, "preprocessing": PREPROCESSING,
        "frameskip": cfg.frameskip, "sticky_actions": cfg.sticky_actions,
        "max_episode_steps": cfg.max_episode_steps, "num_envs": cfg.num_envs,
        "steps_per_shard": cfg.steps_per_shard, "seed": cfg.seed, "test_fraction": cfg.test_fraction,
        "policy": policy, "target_shards": n_shards, "complete": False, "shards": [],
        "versions": {"ale-py": md.version("ale-py"), "gymnasium": md.version("gymnasium")},
        "git_sha": git_sha(), "collect_seconds": 0.0,
    }


# Manifest keys that must agree for --resume to continue a collection.
_RESUME_KEYS = ("format", "game", "height", "width", "frameskip", "sticky_actions", "max_episode_steps",
                "num_envs", "steps_per_shard", "seed", "test_fraction", "policy")


def check_data_config(cfg: DataConfig) -> None:
    """Refuse settings no collection can run with (the CLI's flags are also range-checked in ssmlib/cliargs.py)."""
    check_frame_size(cfg.height, cfg.width)
    for name in ("num_envs", "steps_per_shard", "frameskip", "max_episode_steps"):
        if getattr(cfg, name) < 1:
            raise SsmlibError(f"{name} must be at least 1, got {getattr(cfg, name)}")
    if not 0 <= cfg.sticky_actions <= 1:
        raise SsmlibError(f"sticky_actions must be between 0 and 1, got {cfg.sticky_actions}")
    if not 0 <= cfg.test_fraction <= 1:
        raise SsmlibError(f"test_fraction must be between 0 and 1, got {cfg.test_fraction}")
    if not cfg.mean_action_repeat >= 1:
        raise SsmlibError(f"mean_action_repeat must be at least 1, got {cfg.mean_action_repeat}")
    if not 0 <= cfg.seed < 2**63:
        raise SsmlibError(f"seed must be a non-negative integer, got {cfg.seed}")


def config_from_manifest(manifest: dict) -> DataConfig:
    """The DataConfig a dataset was collected with (what ``collect --resume`` continues by default)."""
    policy = manifest.get("policy") or {}
    random_part = (policy.get("second") or {}) if policy.get("name") == "split" else policy  # who holds mean_repeat
    return DataConfig(game=manifest["game"], height=manifest["height"], width=manifest["width"],
                      frameskip=manifest["frameskip"], sticky_actions=manifest["sticky_actions"],
                      num_envs=manifest["num_envs"], steps_per_shard=manifest["steps_per_shard"],
                      mean_action_repeat=random_part.get("mean_repeat", DataConfig.mean_action_repeat),
                      test_fraction=manifest["test_fraction"], max_episode_steps=manifest["max_episode_steps"],
                      seed=manifest["seed"])


def _differences(manifest: dict, fresh: dict) -> str:
    return "; ".join(f"{k}: {manifest.get(k)!r} there, {fresh.get(k)!r} here"
                     for k in _RESUME_KEYS if manifest.get(k) != fresh.get(k))


def collect(cfg: DataConfig, out: str | Path, total_steps: int | None, *, policy: Policy | None = None,
            policy_factory: Callable[[], Policy] | None = None, resume: bool = False,
            overwrite: bool = False, progress: bool = True, workers: int = 1) -> store.Dataset:
    """Collect ``total_steps`` agent steps (rounded up to whole shards) of ``cfg.game`` into ``out``.

    Give a stateless ``policy`` or a ``policy_factory`` (a fresh policy per shard); default: RandomPolicy.
    Refuses an existing folder unless ``resume`` (continue a matching collection) or ``overwrite``.
    ``resume`` first verifies every listed shard and collects any missing or corrupt one again (shard
    i comes from seed (seed, i), so the bytes are the same); ``total_steps`` may then be None (the
    collection's own target). Warns when the test split has no window for ``train``/``eval``.
    ``workers`` > 1 collects that many shards at once, each in its own process with its share of the cores
    (``_collect_in_processes``): the same bytes, as every shard depends only on its own seeds; the policy
    (factory) must then be picklable.
    """
    game = resolve_game(cfg.game)
    check_data_config(cfg)
    out = Path(out)
    resuming = resume and (out / "manifest.json").exists()
    if total_steps is None and not resuming:
        raise SsmlibError("give the number of agent steps to collect (--steps N)")
    if total_steps is not None and total_steps <= 0:
        raise SsmlibError(f"--steps must be positive, got {total_steps}")
    if workers < 1:
        raise SsmlibError(f"workers must be at least 1, got {workers}")
    num_actions = len(action_meanings(game))
    if policy_factory is None:  # partials, not lambdas: a worker process is sent the factory
        policy_factory = functools.partial(_same_policy, policy) if policy is not None else functools.partial(
            RandomPolicy, num_actions, cfg.mean_action_repeat)
    n_shards = math.ceil(total_steps / (cfg.num_envs * cfg.steps_per_shard)) if total_steps else 0
    fresh = _manifest_for(cfg, game, describe_policy(policy_factory()), n_shards)

    if out.exists() and not out.is_dir():
        raise SsmlibError(f"output {out} exists and is not a folder")
    if out.exists() and any(out.iterdir()):
        if overwrite:
            shutil.rmtree(out)
            resuming = False
        elif resume:
            pass
        else:
            raise SsmlibError(f"output folder {out} exists; use --resume to continue it or --overwrite to replace it")
    if resuming:
        manifest = store.read_manifest(out)
        diff = _differences(manifest, fresh)
        if diff:
            raise SsmlibError(f"cannot resume {out}: it was collected with other settings ({diff})")
        manifest["target_shards"] = max(manifest["target_shards"], n_shards)
        store.remove_stale_temps(out)  # a kill between a temp write and its rename (the digest cache's, a shard's)
        for entry, reason in store.verify_shards(out, manifest):  # the advice of a checksum error leads here
            warn(f"shard {entry['index']} of {out} is damaged ({reason}); collecting it again from its seed")
            manifest["shards"] = [s for s in manifest["shards"] if s["index"] != entry["index"]]
            manifest["complete"] = False
            shutil.rmtree(out / entry["name"], ignore_errors=True)
            manifest.setdefault("recollected", []).append({"index": entry["index"], "files": entry["files"]})
    else:
        manifest = fresh
    out.mkdir(parents=True, exist_ok=True)
    store.write_manifest(out, manifest)

    done = {s["index"] for s in manifest["shards"]}
    todo = [i for i in range(manifest["target_shards"]) if i not in done]
    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo) * cfg.num_envs * cfg.steps_per_shard, unit="step", unit_scale=True,
               desc=f"collect {game.name}", disable=not progress, smoothing=0.1)
    workers = min(workers, len(todo)) or 1
    env = make_vector_env(game, cfg.num_envs, sticky_actions=cfg.sticky_actions, frameskip=cfg.frameskip,
                          max_episode_steps=cfg.max_episode_steps) if todo and workers == 1 else None
    seconds0, start = manifest.get("collect_seconds", 0.0), time.perf_counter()

    phases = {}  # this call's seconds per phase (collect_phases_s in the manifest), summed over its workers

    def listed(entry: dict) -> None:  # a written shard enters the manifest (atomically, after its files)
        manifest["shards"] = sorted(manifest["shards"] + [entry], key=lambda s: s["index"])
        manifest["collect_seconds"] = seconds0 + time.perf_counter() - start
        manifest["collect_phases_s"] = {k: round(v, 2) for k, v in sorted(phases.items())}
        manifest["collect_workers"] = workers  # how this call collected (not a setting: the bytes are the same)
        manifest["complete"] = len(manifest["shards"]) >= manifest["target_shards"]
        store.write_manifest(out, manifest)

    try:
        if workers > 1:
            _collect_in_processes(cfg, out, todo, policy_factory, workers, phases, listed, bar)
        else:
            _collect_here(env, cfg, out, todo, policy_factory, phases, listed, bar)
    except (KeyboardInterrupt, BrokenProcessPool) as e:
        bar.close()
        how = (f"python -m ssmlib collect --out {out} --resume" if store.resumable_from_cli(manifest)
               else "collect(..., resume=True) with the same policy")
        what = "interrupted" if isinstance(e, KeyboardInterrupt) else (
            "a collection worker died (killed, e.g. out of memory, or crashed)")
        raise SsmlibError(f"{what}: {len(manifest['shards'])} of {manifest['target_shards']} shards of {out} "
                          f"are complete and valid; continue with: {how}") from None
    finally:
        if env is not None:
            env.close()
        bar.close()
    if not manifest["complete"]:  # a resumed, already complete collection whose flag was lost
        manifest["complete"] = len(manifest["shards"]) >= manifest["target_shards"]
        store.write_manifest(out, manifest)
    ds = store.open_dataset(out, verify=False)
    problem = store.split_problem(ds, "test", TrainConfig().context + TrainConfig().horizon)
    if problem:
        warn(f"{problem}; until then `train` reports no test metrics and `eval` refuses the dataset")
    return ds


def _collect_here(env, cfg: DataConfig, out: Path, todo: list[int], policy_factory: Callable[[], Policy],
                  phases: dict, listed: Callable[[dict], None], bar) -> None:
    """Collect the shards ``todo`` in this process, with one writer thread: shard i is written and hashed while
    shard i+1 is collected (I/O and hashing release the GIL); at most two shards are in memory."""
    with ThreadPoolExecutor(max_workers=1) as writer:
        pending = None
        for i in todo:
            arrays = collect_shard(env, cfg, i, policy_factory, progress=bar, timing=phases)
            if pending is not None:
                listed(_timed(phases, "wait_for_writer", pending.result))
            pending = writer.submit(_timed, phases, "write_in_thread", store.write_shard, out, i, arrays)
        if pending is not None:
            listed(_timed(phases, "wait_for_writer", pending.result))


def _same_policy(policy: Policy) -> Policy:
    """The policy factory of a stateless ``policy`` (a partial of this: a worker process can be sent it)."""
    return policy


def _collect_in_processes(cfg: DataConfig, out: Path, todo: list[int], policy_factory: Callable[[], Policy],
                          workers: int, phases: dict, listed: Callable[[dict], None], bar) -> None:
    """Collect the shards ``todo`` in ``workers`` processes at once, each with its own vector env on its share
    of the cores: one process left most of them idle while its envs waited on the policy, the preprocessing or
    the split (the cold leases of 2026-12-04 17:47 and 20:44 and 2026-12-05 04:57 logged "collected in" 101, 151
    and 114 s on 16 cores, and their phases, in the campaign's logs).
    Each worker writes its shard (atomically) and returns its manifest entry; this process alone enters it in
    the manifest and the digest cache, as the shards finish. Spawned workers: the parent may hold CUDA."""
    import multiprocessing as mp

    try:
        pickle.dumps(policy_factory)
    except Exception as e:  # noqa: BLE001 (any pickling failure)
        raise SsmlibError(f"collecting with {workers} workers needs a policy factory that can be sent to another "
                          f"process ({type(e).__name__}: {e}); collect with workers=1") from None
    threads = max(1, len(os.sched_getaffinity(0)) // workers)  # the cores this process may use, not the host's
    # an executor, not multiprocessing.Pool: a worker that dies (the OOM killer, a crash) breaks it at once
    # (BrokenProcessPool), where a Pool loses the task and waits for it forever
    pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_worker_start,
                               initargs=(threads, os.getpid()))
    try:
        futures = [pool.submit(_worker_shard, (cfg, str(out), i, policy_factory)) for i in todo]
        for done in as_completed(futures):
            entry, timing = done.result()
            store.remember_digests(out, entry)
            for k, v in timing.items():
                phases[k] = phases.get(k, 0.0) + v
            listed(entry)
            bar.update(cfg.num_envs * cfg.steps_per_shard)
    except BaseException:
        # end the workers now: shutdown alone would wait for the shards in flight (a half-written one is a temp
        # folder, which --resume removes); Python 3.11 has no public way, hence the executor's own process table
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            proc.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


_WORKER: dict = {}  # a collection worker's own state: its env's thread count, then its env (made at first use)


def _worker_start(threads: int, parent: int) -> None:
    """A collection worker: Ctrl-C is the parent's to handle (it ends the workers), and a parent killed outright
    takes its workers with it (Linux: else an orphan would finish its shard while a resumed collection writes
    the same one); ``threads`` cores for the env and the preprocessing."""
    global _POOL
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # before torch is imported (by an agent policy): its kernels' threads too, else every worker starts one per core
    # (the agent's policy took 71 s in two workers on 2 cores against 11 s in one process, 2026-12-05)
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the executor's workers still end once their parent's pipe closes
        pass
    if os.getppid() != parent:  # the parent died before the line above: nothing would ever end this worker
        os._exit(1)
    _WORKER["threads"] = threads
    _POOL = ThreadPoolExecutor(max_workers=min(8, threads))


def _worker_shard(job: tuple) -> tuple[dict, dict]:
    """One shard in a worker process: collected, written, and its manifest entry and phase seconds returned."""
    cfg, out, index, policy_factory = job
    if "env" not in _WORKER:
        _WORKER["env"] = make_vector_env(cfg.game, cfg.num_envs, sticky_actions=cfg.sticky_actions,
                                         frameskip=cfg.frameskip, max_episode_steps=cfg.max_episode_steps,
                                         num_threads=_WORKER["threads"])
    timing: dict = {}
    arrays = collect_shard(_WORKER["env"], cfg, index, policy_factory, timing=timing)
    entry = _timed(timing, "write", store.write_shard, Path(out), index, arrays, remember=False)
    return entry, timing


def _timed(timing: dict, phase: str, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, its seconds added to ``timing[phase]``: where a collection's time goes, recorded
    in its manifest (not in its fingerprint)."""
    t0 = time.perf_counter()
    try:
        return fn(*args, **kwargs)
    finally:
        timing[phase] = timing.get(phase, 0.0) + time.perf_counter() - t0


def config_with(cfg: DataConfig, **changes) -> DataConfig:
    return dataclasses.replace(cfg, **{k: v for k, v in changes.items() if v is not None})


def ensure_dataset(out: str | Path, cfg: DataConfig, total_steps: int, progress: bool = False) -> store.Dataset:
    """Open the dataset in ``out`` if it is complete; collect (or finish) it otherwise. Used by the book."""
    out = Path(out)
    if (out / "manifest.json").exists():
        m = store.read_manifest(out)
        if m["complete"] and all(m.get(k) == v for k, v in (("game", resolve_game(cfg.game).name),
                                                             ("height", cfg.height), ("width", cfg.width),
                                                             ("seed", cfg.seed))):
            if not store.verify_shards(out, m):
                return store.open_dataset(out, verify=False)  # just verified
            # a damaged shard: resume collects it again from its seed (below), the rest is kept
    return collect(cfg, out, total_steps, resume=True, progress=progress)
