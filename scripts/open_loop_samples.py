"""How many prior samples the open-loop excess of the stochastic models needs (``ssmlib.studies.open_loop_samples``).

For each checkpoint: K_max open-loop prior rollouts per test window, from 3 context frames with the recorded actions,
10 steps; per window the excess ``F(o_h) - L_K(h)`` (mean over h) for each K; the results file keeps those per-window
numbers, the configuration, each checkpoint's sha256 and the provenance, and is written atomically after every
checkpoint (a second call with the same --out skips the checkpoints already there, so an interrupted run resumes).

Usage: python scripts/open_loop_samples.py --data DIR [--campaign GAME] [--checkpoint NAME=PATH[@FRAMES] ...]
       [--k-max 64] [--ks 1,2,4,8,16,32,64] [--windows 48] [--out results/open_loop_samples/MsPacman.json]
PATH is a file, or ``<commit>:<path>``, a checkpoint as committed then (read with ``git show``), which is how an
earlier point of a campaign run is scored. The data are described in the results by their manifest (game, seed,
policy, steps), not by the folder, which is the caller's.

The results in the repository: ``results/open_loop_samples/MsPacman.json``, made with
``python -m ssmlib collect --profile paper --steps 24000 --seed 11 --policy-agent
checkpoints/agents/MsPacman-model-free.safetensors --epsilon 0.1 --agent-share 0.5 --out DIR`` (the campaign's data
mix, another seed; 64,063 frames, 17 test episodes) on a 2-core CPU.
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ssmlib.checkpoint import load_model
from ssmlib.config import CONTEXT, REPO_ROOT
from ssmlib.data.store import open_dataset
from ssmlib.data.windows import WindowSampler
from ssmlib.errors import SsmlibError
from ssmlib.io import atomic_write_json, provenance, sha256_file, stored_path
from ssmlib.studies.common import read_json
from ssmlib.studies import open_loop_samples as study
from ssmlib.studies import zoo_campaign


def parse_checkpoint(text: str) -> tuple[str, Path, int | None]:
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise SsmlibError(f"--checkpoint takes NAME=PATH or NAME=PATH@FRAMES, got {text!r}")
    path, sep, frames = rest.rpartition("@")
    if not sep or not frames.isdigit():  # no frames given (a path may hold an @ itself)
        return name, Path(rest), None
    return name, Path(path), int(frames)


def materialise(source: Path, out: Path) -> str:
    """Copy the checkpoint ``source`` (a file, or ``<commit>:<path>`` read with git) to ``out``, so that what is
    hashed and scored is one set of bytes even if the file is replaced meanwhile (a lease exporting new weights);
    returns where it came from (:func:`repo_relative`, or the commit resolved to its short sha)."""
    if source.is_file():
        shutil.copyfile(source, out)
        return repo_relative(source)
    commit, sep, path = str(source).partition(":")
    if not sep:
        raise SsmlibError(f"no checkpoint at {source}: give a file, or <commit>:<path> of a committed one")
    git = ["git", "-C", str(REPO_ROOT)]
    try:
        sha = subprocess.run([*git, "rev-parse", "--short", f"{commit}^{{commit}}"], capture_output=True, text=True)
        got = subprocess.run([*git, "show", f"{commit}:{path}"], capture_output=True)
    except OSError:
        raise SsmlibError(f"{source}: a committed checkpoint is read with git, which this machine lacks; "
                          "copy it to a file first") from None
    if sha.returncode or got.returncode:
        raise SsmlibError(f"git show {commit}:{path} failed: {got.stderr.decode().strip() or sha.stderr.strip()}")
    out.write_bytes(got.stdout)
    return f"{sha.stdout.strip()}:{path}"


def repo_relative(path: Path) -> str:
    """Where ``path`` came from, in words a reader of the repository can follow: ``<commit>:<path>`` for a file
    committed unmodified, the path relative to the repository for another file in it (a lent machine has no git),
    else the path as given. The sha256 beside it pins the bytes either way."""
    try:
        rel = str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)
    git = ["git", "-C", str(REPO_ROOT)]
    try:
        tracked = subprocess.run([*git, "ls-files", "--error-unmatch", rel], capture_output=True).returncode == 0
        clean = tracked and subprocess.run([*git, "diff", "--quiet", "HEAD", "--", rel]).returncode == 0
        head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:  # no git on this machine
        return rel
    return f"{head}:{rel}" if clean and head else rel


FORMAT = "open-loop-samples/2"
"""Per checkpoint: per-window, per-horizon excess for every K, and its own provenance, chunk and batch size."""


def score(name: str, path: Path, source: str, sha: str, frames: int | None, ds, ks, a) -> dict:
    """One checkpoint's entry in the results: where it came from, its per-window excess, and how it was drawn."""
    model = load_model(path, dataset=ds, device=a.device)
    sampler = WindowSampler(ds, split="test", context=CONTEXT, horizon=10, jump=model.cfg.jump, device=a.device,
                            seed=0)
    t0 = time.perf_counter()
    samples = study.sample_log_likelihoods(model, sampler, a.k_max, a.windows, a.batch_size, chunk=a.chunk,
                                           seed=a.seed)
    wall = time.perf_counter() - t0
    rows = study.excess_rows(samples, ks)
    drawn = f"{a.k_max} samples" if model.stochastic else "its one future (exact at every K)"
    print(f"{name}: {len(samples['start'])} windows x {drawn} in {wall:.0f} s; excess "
          + ", ".join(f"K={k} {np.mean(rows['excess'][str(k)]):.1f}" for k in ks))
    # the random stream depends on chunk and batch size: both are kept with the numbers they drew
    return {"source": source, "sha256": sha, "model": model.name, "jump": model.cfg.jump, "frames": frames,
            "wall_s": wall, "chunk": a.chunk, "batch_size": a.batch_size, "provenance": provenance(a.device),
            "windows": rows}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="dataset folder (its test episodes are used)")
    p.add_argument("--checkpoint", action="append", default=[], help="NAME=PATH[@FRAMES], repeatable")
    p.add_argument("--campaign", metavar="GAME", help="add the committed weights of every model-zoo campaign run of a "
                   "sampling model (sSSM, dSSM-VAE), named <run>@<frames>M")
    p.add_argument("--k-max", type=int, default=64, help="prior samples per window")
    p.add_argument("--ks", default=",".join(map(str, study.KS)), help="sample counts compared (divisors of --k-max)")
    p.add_argument("--windows", type=int, default=48, help="evenly spaced test windows")
    p.add_argument("--batch-size", type=int, default=8, help="windows per batch")
    p.add_argument("--chunk", type=int, default=16, help="prior samples per batched rollout (divides --k-max)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", required=True, type=Path)
    a = p.parse_args(argv)
    try:
        ks = study.check_ks(a.ks.split(","), a.k_max)
        ckpts = [parse_checkpoint(c) for c in a.checkpoint]
        if a.campaign:
            ckpts += zoo_campaign.sampling_weights(a.campaign)
        if not ckpts:
            raise SsmlibError("nothing to score: give --checkpoint NAME=PATH or --campaign GAME")
        ds = open_dataset(a.data, verify=True)
        m = ds.manifest
        config = {"data": {"fingerprint": ds.fingerprint, "game": ds.game, "seed": m.get("seed"),
                           "policy": m.get("policy"), "frames": sum(s["rows"] for s in m["shards"])},
                  "k_max": a.k_max, "ks": list(ks), "windows": a.windows, "context": CONTEXT, "horizon": 10,
                  "seed": a.seed, "format": FORMAT}
        a.out = stored_path(a.out)  # the campaign's file is committed compressed (NAME.gz): continue it as stored
        doc = read_json(a.out, None)
        if doc is not None and doc.get("config") != config:
            raise SsmlibError(f"{a.out} holds a study with another configuration: pass another --out, or delete it")
        doc = doc or {"config": config, "checkpoints": {}}
        scored = []
        with tempfile.TemporaryDirectory(prefix="open-loop-samples-") as tmp:
            # every checkpoint copied before any is scored: a lease beside this may replace the files meanwhile
            copies = [(name, Path(tmp) / f"{i}.safetensors", frames) for i, (name, _, frames) in enumerate(ckpts)]
            sources = [materialise(src, path) for (_, src, _), (_, path, _) in zip(ckpts, copies)]
            for (name, path, frames), source in zip(copies, sources):
                sha = sha256_file(path)
                if name in doc["checkpoints"]:
                    old = doc["checkpoints"][name]
                    if (old["sha256"], old["frames"]) != (sha, frames):
                        print(f"warning: {a.out} has {name} from another file or frame count; kept it, skipped "
                              f"{source} (give it another name to score it)", file=sys.stderr)
                    else:
                        print(f"{name}: in {a.out} already")
                    continue
                doc["checkpoints"][name] = score(name, path, source, sha, frames, ds, ks, a)
                atomic_write_json(a.out, doc, indent=None)  # per-window numbers: one line, a third of the bytes
                scored.append(name)
        if scored:  # what this call added (the file grows lease by lease: all its pairs would grow quadratically)
            print(study.markdown(study.summarise(doc, names=scored, pairs=[]), doc))
    except SsmlibError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
