"""Datasets on disk: sharded uint8 arrays + a manifest with per-file checksums; atomic writes.

Layout of a dataset folder::

    manifest.json            game, preprocessing, policy, seed, versions, shard list with sha256 of each file
    shard-00000/frames.npy   (N, H, W, 3) uint8   frame o_t
               actions.npy  (N,) uint8           action a_t taken at o_t (0 on an episode's last row)
               rewards.npy  (N,) float32         reward of a_t (0 on an episode's last row)
               episode.npy  (N,) int64           episode id; each episode's rows are contiguous
               done.npy     (N,) uint8           on an episode's last row: 1 terminated, 2 truncated; else 0

A shard is written to a temporary folder and renamed into place, then the manifest is rewritten
atomically: a killed collection leaves only complete, listed shards, and ``--resume`` collects the rest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SsmlibError
from ..io import atomic_save_npy, atomic_write_json, sha256_file

FORMAT = "ssmlib-dataset/1"
ARRAYS = {"frames": np.uint8, "actions": np.uint8, "rewards": np.float32, "episode": np.int64, "done": np.uint8}
TERMINATED, TRUNCATED = 1, 2


def shard_name(i: int) -> str:
    return f"shard-{i:05d}"


DIGEST_CACHE = ".sha256-cache.json"
"""Per dataset folder: the sha256 of each file hashed on this machine, keyed by the file's size and
modification time (ns). A file whose size and mtime are unchanged is not hashed again (a lease's 24 GB
dataset was hashed once per process that opened it); any write changes the mtime, so a changed file is
always hashed."""


def _read_digest_cache(root: Path) -> dict:
    try:
        return json.loads((root / DIGEST_CACHE).read_text())
    except (OSError, ValueError):
        return {}


def _write_digest_cache(root: Path, cache: dict) -> None:
    try:
        atomic_write_json(root / DIGEST_CACHE, cache)
    except OSError:  # a read-only dataset: hash again next time
        pass


def file_digest(root: Path, rel: str, cache: dict) -> str:
    """The sha256 of ``root/rel``, from ``cache`` when its size and mtime are unchanged (``cache`` is updated)."""
    st = (root / rel).stat()
    hit = cache.get(rel)
    if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
        return hit[2]
    digest = sha256_file(root / rel)
    cache[rel] = [st.st_size, st.st_mtime_ns, digest]
    return digest


def remove_stale_temps(root: Path) -> None:
    """Delete what a killed writer left in ``root``: temp files of atomic writes (``.NAME.XXXX.tmp``) and
    half-written shard folders (``.shard-NNNNN.tmp``). Only a resuming collection calls this: it is the
    folder's one writer, and nothing listed in the manifest is ever a temp."""
    for p in root.iterdir():
        if p.name.startswith(".") and p.name.endswith(".tmp"):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def write_shard(root: Path, index: int, arrays: dict[str, np.ndarray], remember: bool = True) -> dict:
    """Write one shard atomically (temp folder, then rename); return its manifest entry. ``remember``: also
    enter its digests in the folder's digest cache (``remember_digests``); a collection's worker processes
    leave that to the one process that owns the folder's files, so that no two rewrite the cache at once."""
    n = len(arrays["frames"])
    for k, dtype in ARRAYS.items():
        if arrays[k].dtype != dtype or len(arrays[k]) != n:
            raise ValueError(f"shard array {k}: {arrays[k].dtype} {arrays[k].shape}, expected {dtype} with {n} rows")
    final = root / shard_name(index)
    tmp = root / f".{shard_name(index)}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    files = {}
    for k in ARRAYS:
        atomic_save_npy(tmp / f"{k}.npy", np.ascontiguousarray(arrays[k]))
        files[f"{k}.npy"] = sha256_file(tmp / f"{k}.npy")
    shutil.rmtree(final, ignore_errors=True)  # a stale, unlisted shard from a killed run
    os.replace(tmp, final)
    entry = {"name": final.name, "index": index, "rows": n,
             "episodes": int(len(np.unique(arrays["episode"]))), "files": files}
    if remember:
        remember_digests(root, entry)
    return entry


def remember_digests(root: Path, entry: dict) -> None:
    """Enter a just-written shard's digests (``entry``: ``write_shard``'s) in the digest cache, for the first
    open: a rename keeps the files' mtimes, so they need not be hashed again."""
    cache = _read_digest_cache(root)
    for fname, digest in entry["files"].items():
        st = (root / entry["name"] / fname).stat()
        cache[f"{entry['name']}/{fname}"] = [st.st_size, st.st_mtime_ns, digest]
    _write_digest_cache(root, cache)


def write_manifest(root: Path, manifest: dict) -> None:
    atomic_write_json(root / "manifest.json", manifest)


def read_manifest(root: str | os.PathLike) -> dict:
    root = Path(root)
    path = root / "manifest.json"
    if not root.is_dir():
        raise SsmlibError(f"no dataset at {root} (collect one with: python -m ssmlib collect --out {root} --steps N)")
    if not path.exists():
        raise SsmlibError(f"{root} is not an ssmlib dataset: it has no manifest.json")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        # the manifest is written atomically, so this is damage from outside; its shard checksums are lost
        raise SsmlibError(f"{path} is corrupt ({e}); collect the dataset again with: "
                          f"python -m ssmlib collect --out {root} --overwrite --steps N (and its other settings)") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        have = manifest.get("format") if isinstance(manifest, dict) else None
        raise SsmlibError(f"{path} has format {have!r}, expected {FORMAT!r}")
    return manifest


def resumable_from_cli(manifest: dict) -> bool:
    """Whether ``collect --out DIR --resume`` alone can continue this dataset: its settings are all in
    the manifest, and so is its policy unless it was a Python callable (then only Python can)."""
    policy = manifest.get("policy") or {}
    if policy.get("name") == "split":  # an agent on a share of the envs, the rest random (the campaign's): the CLI
        first, second = policy.get("first") or {}, policy.get("second") or {}  # rebuilds both from the manifest
        return second.get("name") == "random" and _agent_with_epsilon(first)
    return policy.get("name") == "random" or _agent_with_epsilon(policy)


def _agent_with_epsilon(policy: dict) -> bool:
    return policy.get("name") == "epsilon" and (policy.get("policy") or {}).get("name") == "agent"


def repair_advice(root: Path, manifest: dict) -> str:
    """How to re-collect a damaged or missing shard: shard i comes from seed (seed, i), so ``--resume``
    verifies every listed shard and collects any bad one again, byte for byte."""
    if resumable_from_cli(manifest):
        return f"re-collect it with: python -m ssmlib collect --out {root} --resume"
    return (f"re-collect it with ssmlib.data.collect.collect(cfg, {str(root)!r}, steps, policy=<the same policy>, "
            f"resume=True)")


def verify_shards(root: Path, manifest: dict) -> list[tuple[dict, str]]:
    """Every listed shard whose files are missing or do not match their sha256: ``(entry, reason)``."""
    bad, cache = [], _read_digest_cache(root)
    for entry in manifest.get("shards", []):
        for fname, digest in entry["files"].items():
            path = root / entry["name"] / fname
            if not path.exists():
                bad.append((entry, f"{path} is missing"))
                break
            found = file_digest(root, f"{entry['name']}/{fname}", cache)
            if found != digest:
                bad.append((entry, f"{path} has sha256 {found}, the manifest lists {digest}"))
                break
    _write_digest_cache(root, cache)
    return bad


def fingerprint(manifest: dict) -> str:
    """Identity of a dataset's content: its settings and the checksums of its shards.

    Unlike the manifest's own bytes it ignores timing and the collecting commit, so the same data
    collected again from the same seed on another machine has the same fingerprint (checkpoints
    record it, and resuming training on other data is refused).
    """
    keys = ("format", "game", "height", "width", "preprocessing", "frameskip", "sticky_actions",
            "max_episode_steps", "num_envs", "steps_per_shard", "seed", "test_fraction", "policy")
    content = {k: manifest.get(k) for k in keys}
    content["shards"] = [s["files"] for s in manifest["shards"]]
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def episode_in_test(seed: int, episode_id: int, test_fraction: float) -> bool:
    """Train/test split by episode: a hash of (seed, episode id), deterministic on every machine."""
    h = hashlib.blake2b(f"{seed}:{episode_id}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") / 2**64 < test_fraction


@dataclass
class Episode:
    id: int
    shard: int
    start: int
    """First row in its shard."""
    length: int
    """Frames in the episode (transitions + 1)."""
    test: bool


class Dataset:
    """A collected dataset, opened read-only; arrays are memory-mapped, checksums verified on open."""

    def __init__(self, root: str | os.PathLike, verify: bool = True):
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        self.manifest_sha256 = hashlib.sha256((self.root / "manifest.json").read_bytes()).hexdigest()
        self.fingerprint = fingerprint(self.manifest)
        if not self.manifest["shards"]:
            raise SsmlibError(f"dataset {self.root} has no complete shard yet; continue it with: "
                              f"python -m ssmlib collect --out {self.root} --resume")
        self.shards: list[dict[str, np.ndarray]] = []
        cache = _read_digest_cache(self.root) if verify else {}
        for entry in self.manifest["shards"]:
            self.shards.append(self._open_shard(entry, verify, cache))
        if verify:
            _write_digest_cache(self.root, cache)
        self.episodes = self._index_episodes()

    def _open_shard(self, entry: dict, verify: bool, cache: dict) -> dict[str, np.ndarray]:
        arrays = {}
        for fname, digest in entry["files"].items():
            path = self.root / entry["name"] / fname
            if not path.exists():
                raise SsmlibError(f"dataset file missing: {path}; {repair_advice(self.root, self.manifest)}")
            if verify and (found := file_digest(self.root, f"{entry['name']}/{fname}", cache)) != digest:
                raise SsmlibError(f"checksum mismatch in {path}: sha256 {found}, the manifest lists {digest} "
                                  f"(corrupt or truncated); {repair_advice(self.root, self.manifest)}")
            try:
                arrays[fname.removesuffix(".npy")] = np.load(path, mmap_mode="r", allow_pickle=False)
            except (ValueError, OSError, EOFError) as e:
                raise SsmlibError(f"cannot read {path} ({e}); {repair_advice(self.root, self.manifest)}") from None
        n = entry["rows"]
        for k, a in arrays.items():
            if len(a) != n:
                raise SsmlibError(f"{self.root / entry['name'] / (k + '.npy')} has {len(a)} rows, manifest says {n}; "
                                  f"{repair_advice(self.root, self.manifest)}")
        return arrays

    def _index_episodes(self) -> list[Episode]:
        m = self.manifest
        out = []
        for si, shard in enumerate(self.shards):
            ep = np.asarray(shard["episode"])
            starts = np.flatnonzero(np.r_[True, ep[1:] != ep[:-1]])
            ends = np.r_[starts[1:], len(ep)]
            for s, e in zip(starts, ends):
                eid = int(ep[s])
                out.append(Episode(eid, si, int(s), int(e - s), episode_in_test(m["seed"], eid, m["test_fraction"])))
        return out

    # Convenience views used by the CLI, the notebooks and the window sampler.
    game = property(lambda self: self.manifest["game"])
    height = property(lambda self: self.manifest["height"])
    width = property(lambda self: self.manifest["width"])
    num_actions = property(lambda self: self.manifest["num_actions"])
    action_meanings = property(lambda self: self.manifest["action_meanings"])

    def __len__(self) -> int:
        return sum(len(s["frames"]) for s in self.shards)

    def episode(self, e: Episode | int) -> dict[str, np.ndarray]:
        """All rows of one episode (by Episode or by position in ``self.episodes``)."""
        if isinstance(e, int):
            e = self.episodes[e]
        return {k: np.array(a[e.start:e.start + e.length]) for k, a in self.shards[e.shard].items()}

    def split(self, name: str) -> list[Episode]:
        if name not in ("train", "test", "all"):
            raise SsmlibError(f"unknown split {name!r}; choose train, test or all")
        return [e for e in self.episodes if name == "all" or e.test == (name == "test")]

    def summary(self) -> dict:
        lengths = np.array([e.length for e in self.episodes])
        rewards = np.concatenate([np.asarray(s["rewards"]) for s in self.shards])
        actions = np.concatenate([np.asarray(s["actions"])[np.asarray(s["done"]) == 0] for s in self.shards])
        return {
            "game": self.game, "frames": len(self), "episodes": len(self.episodes),
            "test_episodes": sum(e.test for e in self.episodes),
            "terminated_episodes": int(sum((np.asarray(s["done"]) == TERMINATED).sum() for s in self.shards)),
            "mean_episode_length": float(lengths.mean()),
            "reward_values": {str(float(v)): int(c) for v, c in zip(*np.unique(rewards, return_counts=True))},
            "action_counts": np.bincount(actions, minlength=self.num_actions).tolist(),
        }


def split_problem(ds: Dataset, split: str = "test", span: int = 13) -> str | None:
    """Why ``split`` of ``ds`` holds no window of ``span`` frames (no episode, or none that long), with
    what to do about it, as one line; None when it holds one. ``train`` and ``eval`` need test windows
    of ``context + horizon`` frames (13 at the default 3 + 10)."""
    episodes = ds.split(split)
    longest = max((e.length for e in episodes), default=0)
    if longest >= span:
        return None
    m = ds.manifest
    have = (f"no {split} episode" if not episodes else
            f"no {split} episode of {span} frames (the longest of {len(episodes)} has {longest})")
    why = (f"the {split} split is a hash-chosen {m['test_fraction']:.0%} of its {len(ds.episodes)} episodes"
           if split == "test" else f"{len(ds.episodes)} episodes")
    if split == "test" and m["test_fraction"] <= 0:
        return f"{ds.root} has {have}: it was collected with test_fraction 0"
    if m["steps_per_shard"] + 1 < span:  # an episode never spans two shards: more shards cannot help
        return (f"{ds.root} has {have}: its shards hold {m['steps_per_shard']} steps per env, fewer than a "
                f"window's {span} frames; collect a new dataset with a larger --steps-per-shard")
    steps = m["target_shards"] * m["num_envs"] * m["steps_per_shard"]
    more = (f"python -m ssmlib collect --out {ds.root} --resume --steps {2 * steps}" if resumable_from_cli(m)
            else f"collect(..., resume=True) and twice the steps ({2 * steps})")
    return f"{ds.root} has {have} ({why}); collect more with: {more}"


def open_dataset(path: str | os.PathLike, verify: bool = True) -> Dataset:
    """Open a dataset folder; one clear SsmlibError line for anything missing, truncated or corrupt."""
    return Dataset(path, verify=verify)
