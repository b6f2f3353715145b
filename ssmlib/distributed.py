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

The scaling study of ``scripts/gpu_scaling.sh`` (frames/s on N GPUs against one) is ``ssmlib.studies.scaling``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
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


def resolve_device(device: str | None) -> torch.device:
    """``None`` -> CUDA if available, else CPU; refuses CUDA on a machine without it."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SsmlibError(f"device {device} requested but CUDA is not available here")
    if dev.type not in ("cpu", "cuda"):
        raise SsmlibError(f"device {device}: only cpu and cuda are supported")
    return dev


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
