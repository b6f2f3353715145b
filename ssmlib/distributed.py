"""Data-parallel training over several processes (one per GPU) with torch.distributed.

The same ``train`` command, started by torchrun, runs data-parallel::

    torchrun --standalone --nproc-per-node 4 -m ssmlib train --model sSSM --data data/MsPacman --profile paper

Each process (rank) joins the group from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK): NCCL
on GPUs (rank r on ``cuda:LOCAL_RANK``), gloo on the CPU. What stays the same whatever the number of
ranks N: the global batch (``batch_size`` windows per optimiser step, ``batch_size / N`` on each rank)
and the learning rate, so a run's hyper-parameters mean the same on 1 GPU and on 8.

Data: the train episodes are cut into S *data shards* (episode i goes to shard ``i mod S``); each
shard has its own window sampler with its own seeded generator and draws ``batch_size / S`` windows a
step. A run starts with S = N; rank r holds the contiguous block of S/N shards ``[r*S/N, (r+1)*S/N)``,
so the global batch is the same list of windows, in the same order, for every number of ranks that
divides S.
That makes the layout testable (one process with ``data_shards=2`` draws exactly the global batch of
two ranks) and makes resuming on another number of ranks exact where it can be:

* same N: exact (model, optimiser, every shard's generator, every rank's torch RNG), as on one GPU;
* M ranks with S mod M == 0 (e.g. a 4-GPU run continued on 2 GPUs or on a laptop): the same windows
  in the same order; the torch RNG of each rank (the sSSM's and dSSM-VAE's posterior noise) is
  re-seeded from (seed, step, rank), and sums are taken in another order, so results agree within
  float tolerance for the deterministic models and in distribution for the latent ones;
* otherwise: the train episodes are re-cut into S' = M shards seeded from (seed, step): the run
  continues sensibly (same config, same global batch) but draws other windows than the uninterrupted run.

Only rank 0 writes (metrics, config, checkpoints, summary; atomically as on one GPU); loss terms are
averaged over ranks, frames/s are global. A single process (no torchrun, or ``--nproc-per-node 1``)
never creates a process group: it is exactly the one-GPU code path.

Stopping: the ranks agree at every step on whether to stop, so ``--time-limit`` (the planned stop)
and a SIGINT to torchrun (which passes it on once to every rank) end all ranks at the same step with a
checkpoint. Ctrl-C in a terminal can reach each rank twice (from the terminal and from torchrun): the
"second Ctrl-C" aborts at once, and the last periodic checkpoint is kept.

NVLink multicast (NVLS) stays off: ``NCCL_NVLS_ENABLE=0``, ``TORCH_SYMM_MEM_DISABLE_MULTICAST=1``,
``NVSHMEM_DISABLE_NVLS=1`` are set here when unset (the launcher scripts set them too), because on the
lent machines a program that uses it can take the host's shared GPUs out of service.

``python -m ssmlib.distributed report --runs RUN ... --out results/scaling/<machine>.json`` turns the
run folders of ``scripts/gpu_scaling.sh`` into the scaling study.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from .errors import SsmlibError

MULTICAST_OFF = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}
"""Environment kept on every launch: no NVLink multicast (NVLS) in NCCL, PyTorch or NVSHMEM."""


def env_rank() -> int:
    """This process's global rank as torchrun set it (0 when not launched by torchrun)."""
    return int(os.environ.get("RANK", "0"))


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def derived_seed(*parts: Any) -> int:
    """A 63-bit seed from any tuple of ints/strings, the same on every machine (no Python hash())."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


# --------------------------------------------------------------------------------------------------
# process group


@dataclass
class Context:
    """Who this process is in the data-parallel group; ``world_size == 1`` means no group at all."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device | None = None
    """cuda:LOCAL_RANK or cpu under torchrun; None for a single process (train resolves it)."""
    backend: str | None = None
    owns_group: bool = False
    """True when setup() created the process group (and close() destroys it)."""

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()

    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        """In-place sum over ranks (nothing to do for one process)."""
        if self.enabled:
            torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM)
        return t

    def max_(self, t: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return t

    def all_gather(self, obj: Any) -> list:
        """Every rank's ``obj`` (picklable), in rank order; used for small states at checkpoints."""
        if not self.enabled:
            return [obj]
        out: list = [None] * self.world_size
        torch.distributed.all_gather_object(out, obj)
        return out

    def close(self) -> None:
        if self.owns_group and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        self.owns_group = False


def setup(device: str | None = None) -> Context:
    """Join the process group torchrun describes in the environment; a plain Context without torchrun.

    ``device``: None (CUDA if available), ``cpu`` (gloo) or ``cuda`` (NCCL; rank r uses cuda:LOCAL_RANK).
    """
    world = env_world_size()
    if world <= 1:
        return Context()
    for k, v in MULTICAST_OFF.items():
        os.environ.setdefault(k, v)
    rank, local = env_rank(), int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    kind = torch.device(device)
    if kind.type == "cuda":
        if not torch.cuda.is_available():
            raise SsmlibError(f"device {device} requested but CUDA is not available here")
        if kind.index is not None and kind.index != local:
            raise SsmlibError(f"--device {device}: under torchrun each rank uses cuda:LOCAL_RANK; pass --device cuda")
        if local >= torch.cuda.device_count():
            raise SsmlibError(f"local rank {local} needs cuda:{local}, but only {torch.cuda.device_count()} "
                              f"GPUs are visible; start at most that many processes per node")
        dev, backend = torch.device("cuda", local), "nccl"
        torch.cuda.set_device(dev)  # before anything allocates: samplers size themselves on this device
    elif kind.type == "cpu":
        dev, backend = torch.device("cpu"), "gloo"
    else:
        raise SsmlibError(f"device {device}: only cpu and cuda are supported")
    owns = not torch.distributed.is_initialized()
    if owns:
        torch.distributed.init_process_group(backend, **({"device_id": dev} if backend == "nccl" else {}))
    return Context(rank=torch.distributed.get_rank(), world_size=torch.distributed.get_world_size(),
                   local_rank=local, device=dev, backend=backend, owns_group=owns)


def reduce_metrics(ctx: Context, metrics: dict[str, float], op: str = "mean", device=None) -> dict[str, float]:
    """The mean (or ``op="sum"``) over ranks of a dict of floats; every rank must pass the same keys."""
    if not ctx.enabled:
        return dict(metrics)
    keys = sorted(metrics)
    t = ctx.sum_(torch.tensor([float(metrics[k]) for k in keys], dtype=torch.float64, device=device or ctx.device))
    return dict(zip(keys, (t if op == "sum" else t / ctx.world_size).tolist()))


# --------------------------------------------------------------------------------------------------
# data shards


def plan_shards(batch_size: int, world_size: int, saved_shards: int | None = None) -> tuple[int, bool]:
    """``(data shards, kept)`` for a run on ``world_size`` ranks: a fresh run uses one shard per rank;
    a resumed run keeps its ``saved_shards`` when they divide over the ranks (``kept``), else re-cuts."""
    if batch_size % world_size:
        raise SsmlibError(f"batch_size {batch_size} does not divide over {world_size} ranks "
                          f"(the global batch is split evenly; choose a multiple of {world_size})")
    if saved_shards is not None and saved_shards % world_size == 0 and batch_size % saved_shards == 0:
        return saved_shards, True
    return world_size, False


def check_shards(batch_size: int, shards: int, world_size: int) -> None:
    """Refuse a shard count that does not split the batch evenly or does not divide over the ranks."""
    if shards < 1:
        raise SsmlibError(f"data_shards must be at least 1, got {shards}")
    if shards % world_size:
        raise SsmlibError(f"{shards} data shards do not divide over {world_size} ranks")
    if batch_size % shards:
        raise SsmlibError(f"batch_size {batch_size} does not divide over {shards} data shards")


def rank_shards(num_shards: int, rank: int, world_size: int) -> list[int]:
    """The contiguous block of shards rank ``rank`` holds: concatenated in rank order, the global order."""
    per = num_shards // world_size
    return list(range(rank * per, (rank + 1) * per))


def shard_episodes(ds, shard: int, num_shards: int, split: str = "train") -> list:
    """Episode ``i`` of the split (in dataset order) belongs to shard ``i mod num_shards``."""
    return ds.split(split)[shard::num_shards]


class ShardedSampler:
    """The train windows of some data shards; ``sample(n)`` draws ``n / len(shards)`` from each, in order.

    With one shard it is exactly the single-process WindowSampler (same seed, same state format);
    with S shards, shard s has its own generator seeded from ``(seed, S, s, salt)``. ``shards`` is
    any subset, so one process can hold all S shards and draw the global batch of S ranks.
    """

    def __init__(self, ds, num_shards: int, shards: Sequence[int], *, context: int, horizon: int, jump: int,
                 device, seed: int, salt: tuple = ()):
        from .data.windows import WindowSampler

        self.num_shards, self.shards = num_shards, list(shards)
        self.samplers = []
        for s in self.shards:
            if num_shards == 1:
                self.samplers.append(WindowSampler(ds, "train", context=context, horizon=horizon, jump=jump,
                                                   device=device, seed=seed))
                continue
            try:
                self.samplers.append(WindowSampler(
                    ds, "train", context=context, horizon=horizon, jump=jump, device=device,
                    seed=derived_seed(seed, "shard", num_shards, s, *salt),
                    episodes=shard_episodes(ds, s, num_shards)))
            except SsmlibError:
                raise SsmlibError(f"data shard {s} of {num_shards} (train episodes i with i mod {num_shards} == {s}) "
                                  f"has no episode of {context + horizon} frames; use fewer ranks or collect more data"
                                  ) from None

    def __len__(self) -> int:
        return sum(len(s) for s in self.samplers)

    def sample(self, batch_size: int) -> dict[str, torch.Tensor]:
        if batch_size % len(self.samplers):
            raise SsmlibError(f"batch of {batch_size} windows does not split over {len(self.samplers)} data shards")
        if len(self.samplers) == 1:
            return self.samplers[0].sample(batch_size)
        parts = [s.sample(batch_size // len(self.samplers)) for s in self.samplers]
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}

    def state_dicts(self) -> dict[int, dict]:
        """Shard id -> that shard's sampler state (this process's shards only)."""
        return {s: smp.state_dict() for s, smp in zip(self.shards, self.samplers)}

    def load_state_dicts(self, states: dict[int, dict]) -> None:
        for s, smp in zip(self.shards, self.samplers):
            smp.load_state_dict(states[s])


def pack_sampler_state(num_shards: int, states: dict[int, dict]) -> dict:
    """The checkpoint's ``sampler`` entry: one shard keeps the single-GPU format ``{"generator": ..}``."""
    if num_shards == 1:
        return states[0]
    return {"num_shards": num_shards, "shards": [states[s] for s in range(num_shards)]}


def unpack_sampler_state(state: dict) -> tuple[int, dict[int, dict]]:
    """``(num_shards, shard id -> state)`` of a checkpoint's ``sampler`` entry (any format)."""
    if "num_shards" not in state:
        return 1, {0: state}
    return int(state["num_shards"]), dict(enumerate(state["shards"]))


# --------------------------------------------------------------------------------------------------
# per-rank torch RNG (the posterior noise of the latent models)


def rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    out = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        out["cuda"] = torch.cuda.get_rng_state(device)
    return out


def set_rng_state(state: dict[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"].to("cpu", torch.uint8))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].to("cpu", torch.uint8), device)


# --------------------------------------------------------------------------------------------------
# the scaling report (scripts/gpu_scaling.sh)


def steady_fps(records: list[dict], skip_steps: int) -> dict:
    """Frames/s of the logging intervals that end after ``skip_steps`` (compile and warm-up excluded)."""
    fps = [r["frames_per_s"] for r in records
           if r.get("split") == "train" and r.get("frames_per_s") and r["step"] > skip_steps]
    if not fps:
        return {"frames_per_s": None, "intervals": 0}
    return {"frames_per_s": statistics.median(fps), "frames_per_s_mean": statistics.fmean(fps),
            "frames_per_s_min": min(fps), "frames_per_s_max": max(fps), "intervals": len(fps)}


TARGET_SPEEDUP = {2: 1.8, 4: 3.4}
"""Issue #7's targets: training frames/s at N GPUs over 1 GPU, same model and per-GPU batch."""


def scaling_report(runs: Sequence[str | os.PathLike], out, skip_steps: int, extra: dict | None = None) -> dict:
    """Write ``out`` (atomically, with provenance) from the run folders of one scaling session."""
    from .io import atomic_write_json, provenance
    from .train import CONFIG, SUMMARY, read_metrics

    rows = []
    for run in runs:
        run = Path(run)
        if not (run / CONFIG).exists():
            raise SsmlibError(f"{run} holds no training run (no {CONFIG})")
        cfg = json.loads((run / CONFIG).read_text())
        summary = json.loads((run / SUMMARY).read_text()) if (run / SUMMARY).exists() else {}
        n = int(cfg.get("distributed", {}).get("world_size", 1))
        batch = int(cfg["train_cfg"]["batch_size"])
        rows.append({"gpus": n, "run": run.name, "model": cfg["model"], "global_batch": batch,
                     "per_gpu_batch": batch // n, "horizon": cfg["train_cfg"]["horizon"],
                     "status": summary.get("status"), "steps": summary.get("step"),
                     "compiled": cfg.get("compiled"), "amp_bf16": cfg.get("amp_bf16"),
                     "wall_s": summary.get("wall_s"), "data_fingerprint": cfg["data"]["fingerprint"],
                     **steady_fps(read_metrics(run), skip_steps)})
    rows.sort(key=lambda r: r["gpus"])
    base = next((r["frames_per_s"] for r in rows if r["gpus"] == 1), None)
    for r in rows:
        if base and r["frames_per_s"]:
            r["speedup"] = r["frames_per_s"] / base
            r["efficiency"] = r["frames_per_s"] / (r["gpus"] * base)
            if r["gpus"] in TARGET_SPEEDUP:
                r["target_speedup"] = TARGET_SPEEDUP[r["gpus"]]
                r["meets_target"] = r["speedup"] >= TARGET_SPEEDUP[r["gpus"]]
    gpus = []
    if torch.cuda.is_available():
        gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    doc = {
        "study": "data-parallel training throughput (issue #7)",
        "measure": (f"median training frames/s (global: windows x horizon per step, all ranks) over the "
                    f"logging intervals after step {skip_steps} (torch.compile and warm-up excluded); "
                    f"efficiency = fps_N / (N fps_1); fps_1 is one process without DDP"),
        "batch": "per-GPU batch held fixed (--batch-size = per-GPU x N) for throughput; training itself "
                 "keeps the config's global batch whatever N is",
        "skip_steps": skip_steps, "rows": rows, "gpus": gpus,
        "provenance": provenance("cuda" if gpus else "cpu", torch=torch.__version__,
                                 nccl=".".join(map(str, torch.cuda.nccl.version())) if gpus else None,
                                 env={k: os.environ.get(k) for k in MULTICAST_OFF}),
        **(extra or {}),
    }
    atomic_write_json(out, doc)
    return doc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ssmlib.distributed", description="data-parallel helpers")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("report", help="write the scaling study from the run folders of gpu_scaling.sh")
    r.add_argument("--runs", nargs="+", required=True, metavar="DIR", help="run folders (one per GPU count)")
    r.add_argument("--out", required=True, help="results/scaling/<machine>.json")
    r.add_argument("--skip-steps", type=int, default=100, help="steps excluded as compile/warm-up")
    r.add_argument("--note", action="append", default=[], metavar="KEY=VALUE", help="extra fields (repeatable)")
    args = p.parse_args(argv)
    try:
        extra = {}
        for note in args.note:
            if "=" not in note:
                raise SsmlibError(f"--note {note}: expected key=value")
            k, v = note.split("=", 1)
            try:  # numbers stay numbers
                extra[k] = json.loads(v)
            except json.JSONDecodeError:
                extra[k] = v
        doc = scaling_report(args.runs, args.out, args.skip_steps, extra)
    except SsmlibError as e:
        print(f"ssmlib: error: {e}", file=sys.stderr)
        return 2
    for row in doc["rows"]:
        fps = row["frames_per_s"]
        tail = f", {row['speedup']:.2f}x, efficiency {row['efficiency']:.2f}" if "speedup" in row else ""
        print(f"{row['gpus']} GPU(s): {fps:.0f} frames/s{tail}" if fps else f"{row['gpus']} GPU(s): no steady interval")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
