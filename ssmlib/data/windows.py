"""Training windows: 3 context frames + T future frames, with their actions and rewards, never crossing
an episode boundary.

A window starting at frame t of an episode holds frames o_t .. o_{t+C+T-1} and the actions
a_t .. a_{t+C+T-2} (a_i taken at o_i, leading to o_{i+1}) with their rewards. A jumpy window
(jump k) keeps every k-th frame; its actions become chunks (.., k) and its rewards are summed over
each chunk, so one model transition spans k environment steps.

Batch format (what every model's ``loss`` and ``score`` take)::

    frames   float32 (B, C+T, 3, H, W) in [0, 1]
    actions  int64   (B, C+T-1)        or (B, C+T-1, k) for jump k > 1
    rewards  float32 (B, C+T-1)        summed over the chunk for jump k > 1
    episode, start   int64 (B,)        where each window comes from
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import SsmlibError
from .store import Dataset


def window_starts(lengths: np.ndarray, offsets: np.ndarray, span: int) -> np.ndarray:
    """Global row indices of every valid window start: the window's ``span`` frames stay in one episode."""
    starts = [off + np.arange(n - span + 1) for n, off in zip(lengths, offsets) if n >= span]
    return np.concatenate(starts).astype(np.int64) if starts else np.zeros(0, np.int64)


class WindowSampler:
    """Random or in-order batches of windows from one split, gathered by index on the target device.

    The split's frames are copied once into one uint8 tensor (on the GPU when ``storage='device'``,
    in pinned host memory when ``'host'``); a batch is then one gather, with no per-window Python.
    """

    def __init__(self, ds: Dataset, split: str = "train", context: int = 3, horizon: int = 10, jump: int = 1,
                 device: str | torch.device = "cpu", seed: int = 0, storage: str = "auto", episodes=None):
        if context < 1 or horizon < 1 or jump < 1:
            raise SsmlibError(f"context, horizon and jump must be >= 1 (got {context}, {horizon}, {jump})")
        self.ds, self.split, self.context, self.horizon, self.jump = ds, split, context, horizon, jump
        self.device = torch.device(device)
        self.length = context + horizon  # frames per window
        self.span = (self.length - 1) * jump + 1  # environment frames a window covers
        # ``episodes``: a subset of the split (a data-parallel shard, ssmlib.distributed); default all of it
        episodes = ds.split(split) if episodes is None else list(episodes)
        lengths = np.array([e.length for e in episodes], np.int64)
        offsets = np.r_[0, np.cumsum(lengths)[:-1]].astype(np.int64)
        self.starts = torch.from_numpy(window_starts(lengths, offsets, self.span))
        if len(self.starts) == 0:
            raise SsmlibError(f"the {split} split of {ds.root} has no episode of {self.span} frames "
                              f"(context {context} + horizon {horizon}, jump {jump}); collect more data")
        self.episode_of_row = torch.from_numpy(np.repeat([e.id for e in episodes], lengths))
        self.row_in_episode = torch.from_numpy(np.concatenate([np.arange(n) for n in lengths]))
        rows = int(lengths.sum())
        frame_shape, frame_dtype = ds.shards[0]["frames"].shape[1:], ds.shards[0]["frames"].dtype
        if storage == "auto":
            nbytes = rows * int(np.prod(frame_shape)) * frame_dtype.itemsize
            storage = "device" if self.device.type == "cuda" and self._fits_on_device(nbytes) else "host"
        self.storage = storage
        where = self.device if storage == "device" else torch.device("cpu")
        pin = storage == "host" and self.device.type == "cuda"
        self.frames = torch.empty((rows, *frame_shape), dtype=torch.from_numpy(np.empty(0, frame_dtype)).dtype,
                                  device=where, pin_memory=pin)
        actions, rewards = np.empty(rows, np.int64), np.empty(rows, ds.shards[0]["rewards"].dtype)
        # episode by episode from the memory-mapped shards: the host never holds a second copy of the frames
        # (a full copy per process: anon-rss 41 GiB when the OOM killer ended one of three runs on one machine,
        # results/model_zoo/MsPacman/campaign/logs/2026-12-02-0845-h200-machine.txt)
        for e, row in zip(episodes, offsets):
            shard, span = ds.shards[e.shard], slice(e.start, e.start + e.length)
            self.frames[row:row + e.length] = torch.from_numpy(np.ascontiguousarray(shard["frames"][span]))
            actions[row:row + e.length] = shard["actions"][span]
            rewards[row:row + e.length] = shard["rewards"][span]
        self.actions = torch.from_numpy(actions).to(where)
        self.rewards = torch.from_numpy(rewards).to(where)
        if storage == "device":  # the whole pipeline on the GPU: indices drawn there, no host sync per batch
            self.starts = self.starts.to(where)
            self.episode_of_row, self.row_in_episode = self.episode_of_row.to(where), self.row_in_episode.to(where)
        self.generator = torch.Generator(device=self.starts.device).manual_seed(seed)

    @staticmethod
    def _fits_on_device(nbytes: int) -> bool:
        free, _ = torch.cuda.mem_get_info()
        return nbytes < 0.5 * free

    def __len__(self) -> int:
        return len(self.starts)

    def gather(self, starts: torch.Tensor) -> dict[str, torch.Tensor]:
        """The windows beginning at global rows ``starts`` (B,), as a batch on ``self.device``."""
        k, L = self.jump, self.length
        where = self.frames.device
        starts = starts.to(where)
        frame_rows = starts[:, None] + torch.arange(L, device=where) * k  # (B, L)
        frames = self.frames[frame_rows]  # (B, L, H, W, 3) uint8
        step_rows = starts[:, None, None] + (torch.arange(L - 1, device=where) * k)[:, None] \
            + torch.arange(k, device=where)  # (B, L-1, k)
        actions = self.actions[step_rows]
        rewards = self.rewards[step_rows].sum(-1)
        if k == 1:
            actions = actions[..., 0]
        rows = starts.to(self.episode_of_row.device)
        batch = {"frames": frames, "actions": actions, "rewards": rewards,
                 "episode": self.episode_of_row[rows], "start": self.row_in_episode[rows]}
        return to_device(batch, self.device)

    def sample(self, batch_size: int) -> dict[str, torch.Tensor]:
        """``batch_size`` windows drawn uniformly (with replacement) from the split."""
        i = torch.randint(len(self.starts), (batch_size,), generator=self.generator, device=self.starts.device)
        return self.gather(self.starts[i])

    def iterate(self, batch_size: int, max_windows: int | None = None, part: tuple[int, int] = (0, 1)):
        """A deterministic pass over the split's windows (an evenly spaced subset if ``max_windows``).

        ``part=(i, n)``: only every n-th of those windows from the i-th (rank i of n data-parallel ranks).
        """
        idx = torch.arange(len(self.starts), device=self.starts.device)
        if max_windows is not None and max_windows < len(idx):
            idx = torch.linspace(0, len(idx) - 1, max_windows, device=self.starts.device).round().long()
        idx = idx[part[0]::part[1]]
        for b in range(0, len(idx), batch_size):
            yield self.gather(self.starts[idx[b:b + batch_size]])

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        try:
            self.generator.set_state(state["generator"])
        except (RuntimeError, ValueError):  # a CPU generator's state into a CUDA one, or the reverse
            raise SsmlibError(f"the saved window-sampler state does not fit a {self.generator.device.type} "
                              f"sampler (saved with the data stored elsewhere); resume on the same kind "
                              f"of device") from None


class WindowDataset(torch.utils.data.Dataset):
    """The same windows as a map-style torch Dataset over the memory-mapped shards (no copy in RAM).

    For datasets larger than memory: ``DataLoader(WindowDataset(ds), batch_size, shuffle=True,
    num_workers=..., pin_memory=True, collate_fn=WindowDataset.collate)`` gives pinned batches;
    ``to_device(batch, device)`` then gives the batch format above on the device.
    """

    def __init__(self, ds: Dataset, split: str = "train", context: int = 3, horizon: int = 10, jump: int = 1):
        self.ds, self.length, self.jump = ds, context + horizon, jump
        self.span = (self.length - 1) * jump + 1
        self.index = [(e, t) for e in ds.split(split) for t in range(e.length - self.span + 1)]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        e, t = self.index[i]
        shard, k, L = self.ds.shards[e.shard], self.jump, self.length
        row = e.start + t
        steps = row + (np.arange(L - 1) * k)[:, None] + np.arange(k)
        actions = torch.from_numpy(np.asarray(shard["actions"])[steps].astype(np.int64))
        return {"frames": torch.from_numpy(np.array(shard["frames"][row:row + self.span:k])),
                "actions": actions[:, 0] if k == 1 else actions,
                "rewards": torch.from_numpy(np.asarray(shard["rewards"])[steps].sum(-1)),
                "episode": torch.tensor(e.id), "start": torch.tensor(t)}

    @staticmethod
    def collate(items: list[dict]) -> dict[str, torch.Tensor]:
        """Stack windows; frames stay uint8 HWC (4x less to pin and copy), ``to_device`` converts."""
        return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def to_device(batch: dict[str, torch.Tensor], device) -> dict[str, torch.Tensor]:
    """Move a batch to ``device`` and turn its uint8 HWC frames into float CHW in [0, 1] there."""
    batch = {n: t.to(device, non_blocking=True) for n, t in batch.items()}
    # uint8 HWC -> float CHW in [0, 1] (a copy on the device; the model reads NCHW or channels_last)
    batch["frames"] = batch["frames"].permute(0, 1, 4, 2, 3).float().div_(255.0)
    return batch
