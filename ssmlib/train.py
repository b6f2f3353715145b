"""One training loop for every environment model (nanoGPT-sized).

``train("sSSM", "data/MsPacman", "runs/MsPacman/sSSM", profile="quick")`` or, from the shell,
``python -m ssmlib train --model sSSM --data data/MsPacman``. What it does, in order:

1. opens the dataset (checksums verified) and builds the model from the profile's ModelConfig, with
   the frame size and action count taken from the data and ``--set key=value`` overrides applied;
2. AdamW, global grad-norm clipping, a linear KL warm-up (``kl_warmup_steps``; deterministic models
   ignore it), bf16 autocast and ``torch.compile`` on CUDA (plain fp32 eager on the CPU);
3. every ``log_every`` steps a line in ``metrics.jsonl`` (loss terms averaged over the interval, lr,
   grad norm, frames/s, wall time); every ``eval_every`` steps the same terms on a fixed set of test
   windows (``split: "test"``); a tqdm bar shows frames/s (frames = batch x horizon per step);
4. every ``ckpt_every`` steps and at the end ``checkpoint.safetensors`` (+ ``.json``), written
   atomically, with the model, the optimiser, torch's RNG and the window sampler's RNG, so that
   ``--resume`` continues a killed run exactly as if it had never stopped;
5. a non-finite loss or gradient stops the run before the optimiser steps, naming the step; the last
   good checkpoint is never overwritten. Ctrl-C (or SIGTERM) finishes the current step, saves, and exits
   cleanly (a second one aborts at once). The run folder's rules (refuse, overwrite, resume, logs, stops)
   are ``ssmlib.runs``'s, shared with the agents' A2C loop.
6. started by ``torchrun --nproc-per-node N``, the same loop runs data-parallel (DDP; ssmlib.distributed
   says what is split, what is kept and what resumes exactly): the global batch and learning rate stay
   the config's, only rank 0 writes, loss terms are averaged over ranks and frames/s are global.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import functools
import time
from pathlib import Path
from typing import Any, Callable

import torch

from . import checkpoint as ckpt
from . import distributed, runs
from .config import (CONTEXT, MODEL_NAMES, PROFILES, ModelConfig, TrainConfig, apply_sets, get_profile, parse_sets,
                     to_dict)
from .distributed import resolve_device
from .errors import SsmlibError, warn
from .io import provenance
from .runs import CHECKPOINT, CONFIG, METRICS, STOPS, SUMMARY, MetricsLog, read_metrics  # noqa: F401 (re-exported)

EVAL_WINDOWS = 256
"""Test windows scored at every evaluation during training (evenly spaced, the same every time)."""
# The ModelConfig fields that come from the data, never from the user.
FROM_DATA = ("height", "width", "num_actions")
# Overrides a resumed run may change: they do not alter the optimisation trajectory.
RESUMABLE = ("steps", "log_every", "eval_every", "ckpt_every", "compile")
TERMS = ("loss", "recon", "kl", "reward", "elbo")
TEST_TERMS = TERMS + ("floor", "excess")
"""Test terms add the exact Bernoulli floor of the target frames and the excess ``floor - ELBO`` (nats/frame)."""


# --------------------------------------------------------------------------------------------------
# configs


def apply_overrides(train_cfg: TrainConfig, model_cfg: ModelConfig, overrides: dict | None
                    ) -> tuple[TrainConfig, ModelConfig]:
    """Copies of the configs with ``overrides`` (field name -> value, strings coerced) applied by
    ``config.apply_sets``, the code path of the profiles' override tables; a key goes to TrainConfig if it
    names one of its fields, else to ModelConfig."""
    tnames = {f.name for f in dataclasses.fields(TrainConfig)}
    mnames = {f.name for f in dataclasses.fields(ModelConfig)}
    for key in overrides or {}:
        if key in FROM_DATA:
            raise SsmlibError(f"--set {key}: the frame size and action count come from the data")
        if key == "model":
            raise SsmlibError("--set model: choose the model with --model")
        if key not in tnames | mnames:
            close = difflib.get_close_matches(key, sorted(tnames | mnames), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise SsmlibError(f"--set {key}: no such TrainConfig or ModelConfig field{hint}")
    overrides = overrides or {}
    train_cfg = apply_sets(train_cfg, {k: v for k, v in overrides.items() if k in tnames})
    model_cfg = apply_sets(model_cfg, {k: v for k, v in overrides.items() if k not in tnames})
    for name in ("batch_size", "steps", "horizon", "context", "log_every"):
        if getattr(train_cfg, name) < 1:
            raise SsmlibError(f"{name} must be at least 1, got {getattr(train_cfg, name)}")
    if train_cfg.lr <= 0:
        raise SsmlibError(f"lr must be positive, got {train_cfg.lr}")
    return train_cfg, model_cfg


# --------------------------------------------------------------------------------------------------
# helpers of the loop


def lr_at(step: int, lr: float, warmup: int) -> float:
    """Learning rate of (1-based) optimiser step ``step``: linear from lr/warmup up to lr."""
    return lr if warmup <= 0 else lr * min(1.0, step / warmup)


def kl_weight_at(step: int, warmup: int) -> float:
    """KL weight of (1-based) optimiser step ``step``: linear from 1/warmup up to 1."""
    return 1.0 if warmup <= 0 else min(1.0, step / warmup)


def reward_counts(ds, jump: int = 1, split: str = "train") -> dict[float, int]:
    """How often each reward (summed over ``jump`` consecutive steps, as a jumpy model sees it) occurs
    in a split: ``{value: count}`` over every step of every episode."""
    import numpy as np

    counts: dict[float, int] = {}
    for e in ds.split(split):
        r = np.asarray(ds.episode(e)["rewards"], np.float64)
        if jump > 1:
            r = np.convolve(r, np.ones(jump), "valid") if len(r) >= jump else r[:0]
        vals, n = np.unique(r, return_counts=True)
        for v, c in zip(vals.tolist(), n.tolist()):
            counts[float(v)] = counts.get(float(v), 0) + int(c)
    return counts


def reward_classes(ds, model_cfg: ModelConfig) -> tuple[list[float], list[float]]:
    """The categorical reward head's values and loss weights on the train split (see ``blocks``)."""
    from .models.blocks import reward_values_from_counts

    return reward_values_from_counts(reward_counts(ds, model_cfg.jump), model_cfg.reward_classes,
                                     values=model_cfg.reward_values or None)


def loss_options(train_cfg: TrainConfig) -> dict:
    """The keyword arguments of ``model.loss`` that come from the training config."""
    return {"reward_weight": train_cfg.reward_weight, "kl_balance": train_cfg.kl_balance,
            "free_nats": train_cfg.kl_free_nats}


def forward_backward(loss_fn, optimizer, params, batch: dict, kl_w, grad_clip: float, loss_opts: dict, autocast
                     ) -> tuple[dict, torch.Tensor]:
    """The step's maths up to the optimiser (shared by the loop and ``bench train``): the loss terms
    under autocast, gradients, and the global gradient norm after clipping to ``grad_clip``."""
    with autocast():
        out = loss_fn(batch, kl_weight=kl_w, **loss_opts)
    optimizer.zero_grad(set_to_none=True)
    out["loss"].backward()
    gnorm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip > 0 else float("inf"))
    return out, gnorm


def train_step(loss_fn, optimizer, params, batch: dict, kl_w, grad_clip: float, loss_opts: dict, autocast,
               guard: Callable[[torch.Tensor, torch.Tensor], Any] | None = None) -> tuple[dict, torch.Tensor]:
    """One optimiser step, the loop's and ``bench train``'s: ``forward_backward``, then ``guard(loss, gnorm)``
    (it raises on a non-finite step, or flags it for fused AdamW to skip on the device), then the update."""
    out, gnorm = forward_backward(loss_fn, optimizer, params, batch, kl_w, grad_clip, loss_opts, autocast)
    if guard is not None:
        guard(out["loss"], gnorm)
    optimizer.step()
    return out, gnorm


def skip_nonfinite_on_device(optimizer, loss: torch.Tensor, gnorm: torch.Tensor) -> torch.Tensor:
    """Flag a step whose loss or gradient is not finite for fused AdamW to skip (its ``found_inf``, as under a
    GradScaler: no update, no step count), without the host waiting for the device. Returns the flag."""
    nonfinite = ~(torch.isfinite(loss.detach()) & torch.isfinite(gnorm))
    optimizer.found_inf = nonfinite.float()
    return nonfinite


def check_compiled_step(model, loss_fn, optimizer, params, batch: dict, grad_clip: float, loss_opts: dict, autocast,
                        dev: torch.device) -> str | None:
    """Before training: one step of the compiled pass, its gradient checked finite (no update; the RNG
    is forked, so training draws what it would have drawn). If it is not finite and the same step
    without compilation is, compilation is switched off and the reason returned (a guard: torch 2.11's
    inductor once gave NaN gradients on an H200 for a graph whose eager twin was finite)."""
    def finite_step() -> bool:
        out, gnorm = forward_backward(loss_fn, optimizer, params, batch, torch.ones((), device=dev), grad_clip,
                                      loss_opts, autocast)
        optimizer.zero_grad(set_to_none=True)
        return bool(torch.isfinite(out["loss"].detach()) & torch.isfinite(gnorm))

    with torch.random.fork_rng(devices=[dev.index or 0] if dev.type == "cuda" else []):
        if finite_step():
            return None
        model.compile_frame_terms(False)
        if finite_step():
            return "the compiled step's gradient was not finite and the eager step's was: training without compile"
        model.compile_frame_terms(True)  # not compilation's fault: the loop reports the non-finite step
    return None


def _model_batch(batch: dict) -> dict:
    return {k: batch[k] for k in ("frames", "actions", "rewards")}


@torch.no_grad()
def test_metrics(model, sampler, batch_size: int, max_windows: int, autocast, ctx: distributed.Context | None = None
                 ) -> dict:
    """Mean loss terms (kl_weight 1, i.e. the true ELBO) over a fixed, evenly spaced set of test windows.

    Runs under a forked RNG with a fixed seed, so it neither perturbs training nor varies between calls.
    Under data parallelism (``ctx``) rank r scores every N-th of those windows and the sums are reduced.
    """
    ctx = ctx or distributed.Context()
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    devices = [dev.index or 0] if dev.type == "cuda" else []
    from .evaluate import bernoulli_floor

    sums = dict.fromkeys(TEST_TERMS, 0.0)
    n = 0
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(12345)
        for batch in sampler.iterate(batch_size, max_windows=max_windows, part=(ctx.rank, ctx.world_size)):
            b = batch["frames"].shape[0]
            with autocast():
                out = model.loss(_model_batch(batch), kl_weight=1.0)
            floor = bernoulli_floor(batch["frames"][:, CONTEXT:]).mean()  # exact floor of these targets
            out = {**out, "floor": floor, "excess": floor - out["elbo"].float()}
            vals = torch.stack([out[k].detach().float() for k in TEST_TERMS]).tolist()
            for k, v in zip(TEST_TERMS, vals):
                sums[k] += v * b
            n += b
    model.train(was_training)
    if ctx.enabled:  # every rank scored its share of the windows
        sums = distributed.reduce_metrics(ctx, {**sums, "windows": n}, op="sum", device=dev)
        n = int(sums.pop("windows"))
    if n == 0:
        return {}
    return {**{k: sums[k] / n for k in TEST_TERMS}, "windows": n}


class NonFiniteError(SsmlibError):
    """A non-finite loss or gradient stopped training."""


class _LossModule(torch.nn.Module):
    """What DDP wraps: its forward is the model's loss, so DDP syncs the gradients of what the loss used."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict, kl_weight, reward_weight: float = 1.0, kl_balance: float = 0.5,
                free_nats: float = 0.0) -> dict:
        return self.model.loss(batch, kl_weight=kl_weight, reward_weight=reward_weight, kl_balance=kl_balance,
                               free_nats=free_nats)


# --------------------------------------------------------------------------------------------------
# the run: its folder and configs, its model and data, its state


@dataclasses.dataclass
class RunSettings:
    """The arguments of one ``train`` call (``train`` says what each means)."""

    model_name: str | None
    data_dir: Any
    out_dir: Any = None
    profile: str = "quick"
    overrides: dict | None = None
    resume: bool = False
    device: str | None = None
    overwrite: bool = False
    progress: bool = True
    eval_windows: int = EVAL_WINDOWS
    callback: Callable[[int, dict], None] | None = None
    time_limit: float | None = None
    init_from: str | None = None
    data_shards: int | None = None


@dataclasses.dataclass
class _Run:
    """What the helpers of the loop share: the folder, configs and data (``_open_run``), the model,
    optimiser and samplers (``_build``), and the state that checkpoints and stops read."""

    ctx: distributed.Context
    args: RunSettings
    ds: Any
    out: Path
    model_name: str
    train_cfg: TrainConfig
    model_cfg: ModelConfig
    overrides: dict
    meta: dict | None = None  # the checkpoint resumed from (None: a new run)
    folder: runs.RunFolder | None = None  # out's rules: refuse, overwrite, resume, logs, config, summary
    tensors: dict | None = None
    init_meta: dict | None = None  # the checkpoint of init_from
    init_tensors: dict | None = None
    shards: int = 1  # data shards of the whole run (ssmlib.distributed)
    shards_kept: bool = False  # a resume continues its saved shards' generators
    saved_sampler: dict | None = None
    dev: torch.device | None = None
    use_amp: bool = False
    use_compile: bool = False
    use_channels_last: bool = False
    model: Any = None
    optimizer: Any = None
    sampler: Any = None
    test_sampler: Any = None
    train_windows: int = 0
    metrics: Any = None
    config: dict = dataclasses.field(default_factory=dict)
    run_info: dict = dataclasses.field(default_factory=dict)
    step: int = 0  # the step the loop starts from
    wall0: float = 0.0  # wall time of the run before this process
    last_saved: int | None = None
    agreed: int = 0  # under DDP: the stop code the ranks agreed on at the last step (runs.STOPS)
    deferred: bool = False  # non-finite steps skipped on the device, checked every check_every steps
    bad_step: torch.Tensor | None = None

    @property
    def resuming(self) -> bool:
        return self.meta is not None

    @property
    def ckpt_path(self) -> Path:
        return self.out / CHECKPOINT

    def autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.use_amp else contextlib.nullcontext()


def _open_run(ctx: distributed.Context, args: RunSettings) -> _Run:
    """Check the request, open the data and settle the configs (a new run, a resume or init_from) and the
    data shards; only once they are known to be good does rank 0 create (or clear) the run folder."""
    from .data.store import open_dataset

    if args.profile not in PROFILES:
        raise SsmlibError(f"unknown profile {args.profile!r}; choose one of {', '.join(PROFILES)}")
    if args.model_name is not None and args.model_name not in MODEL_NAMES:
        raise SsmlibError(f"unknown model {args.model_name!r}; choose one of {', '.join(MODEL_NAMES)}")
    ds = open_dataset(args.data_dir, verify=ctx.is_main)  # rank 0 checks every checksum; the others trust it
    out_dir = args.out_dir
    if out_dir is None:
        if args.model_name is None:
            raise SsmlibError("choose a model with --model (or give --out of a run to resume)")
        out_dir = Path("runs") / ds.game / args.model_name
    out = Path(out_dir)
    folder = runs.RunFolder(out, resume=args.resume, overwrite=args.overwrite, main=ctx.is_main)
    folder.check()
    overrides = dict(args.overrides or {})
    run = (_resumed_configs if folder.resuming else _new_configs)(ctx, args, ds, out, overrides)
    run.folder = folder
    if run.train_cfg.context != 3:
        raise SsmlibError(f"context {run.train_cfg.context}: the models build their state from exactly 3 frames")
    _plan_data_shards(run)
    ctx.barrier()  # every rank has read what it needs from the run folder before rank 0 changes it
    folder.create()  # rank 0, only now that the configs are known to be good
    return run


def _resumed_configs(ctx: distributed.Context, args: RunSettings, ds, out: Path, overrides: dict) -> _Run:
    """A resume: the checkpoint's configs, of which only the RESUMABLE fields may be overridden."""
    ckpt_path = out / CHECKPOINT
    meta, tensors = ckpt.load_checkpoint(ckpt_path, expect_model=args.model_name, dataset=ds)
    if meta.get("data_fingerprint") != ds.fingerprint:
        raise SsmlibError(f"cannot resume {out}: it was trained on other data (fingerprint "
                          f"{str(meta.get('data_fingerprint'))[:12]}, {args.data_dir} has {ds.fingerprint[:12]})")
    if ckpt.train_config(meta) is None or meta.get("optimizer") is None or "sampler" not in meta:
        raise SsmlibError(f"cannot resume from {ckpt_path}: it holds no training state")
    old_train, model_cfg = ckpt.train_config(meta), ckpt.model_config(meta)
    train_cfg, new_model_cfg = apply_overrides(old_train, model_cfg, overrides)
    runs.refuse_changes(out, [(old_train, train_cfg, RESUMABLE), (model_cfg, new_model_cfg, ())])
    return _Run(ctx, args, ds, out, meta["model"], train_cfg, model_cfg, overrides, meta=meta, tensors=tensors)


def _new_configs(ctx: distributed.Context, args: RunSettings, ds, out: Path, overrides: dict) -> _Run:
    """A new run: the profile's configs (the model's from init_from's checkpoint), overridden, sized by the data."""
    if args.model_name is None:
        raise SsmlibError("choose a model with --model")
    prof = get_profile(args.profile)
    init_meta = init_tensors = None
    if args.init_from is not None:  # the architecture comes with the weights
        init_meta, init_tensors = ckpt.load_checkpoint(args.init_from, expect_model=args.model_name, dataset=ds)
    train_cfg, model_cfg = apply_overrides(prof.train, ckpt.model_config(init_meta) if init_meta else prof.model,
                                           overrides)
    model_cfg.model = args.model_name
    model_cfg.height, model_cfg.width, model_cfg.num_actions = ds.height, ds.width, ds.num_actions
    return _Run(ctx, args, ds, out, args.model_name, train_cfg, model_cfg, overrides, init_meta=init_meta,
                init_tensors=init_tensors)


def _plan_data_shards(run: _Run) -> None:
    """Data shards: a new run cuts the train episodes into one shard per rank (or data_shards); a resumed
    run keeps its shards where they divide over the ranks it has now, else re-cuts them (not exact)."""
    saved_shards = None
    if run.resuming:
        saved_shards, run.saved_sampler = distributed.unpack_sampler_state(
            ckpt.unpack_state(run.meta["sampler"], run.tensors))
    run.shards, run.shards_kept = distributed.plan_shards(run.train_cfg.batch_size, run.ctx.world_size, saved_shards)
    if run.args.data_shards is not None and not run.resuming:
        distributed.check_shards(run.train_cfg.batch_size, run.args.data_shards, run.ctx.world_size)
        run.shards = run.args.data_shards
    elif run.args.data_shards is not None and run.args.data_shards != run.shards:
        raise SsmlibError(f"cannot change data_shards when resuming {run.out} (it continues with {run.shards})")


def _build(run: _Run) -> None:
    """The device, the model (seeded; init_from's weights), AdamW and this rank's window samplers."""
    from .models import build_model

    ctx, train_cfg, model_cfg = run.ctx, run.train_cfg, run.model_cfg
    run.dev = dev = ctx.device if ctx.enabled else resolve_device(run.args.device)
    on_cuda = dev.type == "cuda"
    run.use_amp = train_cfg.amp and on_cuda
    run.use_compile = train_cfg.compile and on_cuda
    if on_cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    if model_cfg.reward_head != "bits":  # categorical heads: reward values (a new run) and loss weights from the data
        values, class_weights = reward_classes(run.ds, model_cfg)
        model_cfg.reward_values = tuple(values)
        model_cfg.reward_class_weights = tuple(class_weights)  # the model applies them; stored: readouts divide them out
    torch.manual_seed(train_cfg.seed)
    model = build_model(model_cfg).to(dev)
    # NHWC convolutions: what cuDNN's bf16 kernels want; not under compile: inductor's bf16 channels_last
    # code gave a non-finite gradient on an H200 (results/speed/engine/compile-diagnosis-h200/)
    run.use_channels_last = on_cuda and train_cfg.channels_last and not run.use_compile
    if run.use_channels_last:
        model = model.to(memory_format=torch.channels_last)
    if not run.resuming and run.args.init_from is not None:
        model.load_state_dict(ckpt.model_state(run.init_tensors))
    run.model = model
    run.optimizer = torch.optim.AdamW(model.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay,
                                      **({"fused": True} if on_cuda else {}))
    # this rank's data shards; a re-cut on resume is seeded from the step so it does not replay the start
    run.sampler = distributed.ShardedSampler(
        run.ds, run.shards, distributed.rank_shards(run.shards, ctx.rank, ctx.world_size), context=train_cfg.context,
        horizon=train_cfg.horizon, jump=model_cfg.jump, device=str(dev), seed=train_cfg.seed,
        salt=("resume", int(run.meta["step"])) if run.resuming and not run.shards_kept else ())
    run.train_windows = sum(ctx.all_gather(len(run.sampler)))
    run.test_sampler = _test_sampler(run)


def _test_sampler(run: _Run):
    """The test windows' sampler; None (with a warning) when no test episode is long enough."""
    from .data.windows import WindowSampler

    train_cfg, model_cfg = run.train_cfg, run.model_cfg
    try:
        return WindowSampler(run.ds, split="test", context=train_cfg.context, horizon=train_cfg.horizon,
                             jump=model_cfg.jump, device=str(run.dev), seed=train_cfg.seed)
    except SsmlibError:  # no test episode long enough: train without test metrics (config.json says so)
        if run.ctx.is_main:
            from .data.store import split_problem

            span = (train_cfg.context + train_cfg.horizon - 1) * model_cfg.jump + 1
            warn(f"{split_problem(run.ds, 'test', span)}; training without test metrics")
        return None


def _start_or_resume(run: _Run) -> None:
    """A new run seeds this rank's torch RNG; a resume restores the checkpoint's state. Writes config.json."""
    ctx, train_cfg = run.ctx, run.train_cfg
    run.metrics = run.folder.log(METRICS)
    run.run_info = provenance(str(run.dev), data_fingerprint=run.ds.fingerprint)
    dist_info = {"world_size": ctx.world_size, "data_shards": run.shards, "backend": ctx.backend,
                 "batch_per_rank": train_cfg.batch_size // ctx.world_size}
    if not run.resuming and ctx.enabled:  # independent posterior noise on every rank (the weights are equal)
        torch.manual_seed(distributed.derived_seed(train_cfg.seed, "rank", ctx.rank))
    if run.resuming:
        run.config = _resume_state(run, dist_info)
    else:
        run.folder.start_logs(None)
        run.config = _new_config(run, dist_info)
    run.folder.write_config(run.config)
    run.tensors = run.init_tensors = None  # loaded into the model and optimiser


def _resume_state(run: _Run, dist_info: dict) -> dict:
    """Load the model, optimiser, samplers and torch RNG of the checkpoint; the config with this resume added."""
    ctx, meta, tensors, dev = run.ctx, run.meta, run.tensors, run.dev
    run.model.load_state_dict(ckpt.model_state({k: v.to(dev) for k, v in tensors.items() if k.startswith("model.")}))
    ckpt.load_optimizer(run.optimizer, meta, tensors)
    run.step, run.wall0 = int(meta["step"]), float(meta.get("wall_s", 0.0))
    if run.shards_kept:
        run.sampler.load_state_dicts(run.saved_sampler)
    saved_world = int(meta.get("world_size", 1))
    if saved_world == ctx.world_size == 1:
        ckpt.set_rng_state(tensors)
    elif saved_world == ctx.world_size:  # each rank continues its own torch RNG
        distributed.set_rng_state({k.rsplit(".", 1)[1]: v for k, v in tensors.items()
                                   if k.startswith(f"rank_rng.{ctx.rank}.")}, dev)
    else:  # another number of ranks: fresh, reproducible streams
        torch.manual_seed(distributed.derived_seed(run.train_cfg.seed, "rank", ctx.rank, "step", run.step))
    run.folder.start_logs(run.step)  # lines written after the checkpoint by the run that stopped are dropped
    config = run.folder.read_config()
    config.setdefault("resumes", []).append({"step": run.step, "provenance": run.run_info, **dist_info,
                                             "from_world_size": saved_world, "shards_kept": run.shards_kept})
    config["train_cfg"] = to_dict(run.train_cfg)
    config["distributed"] = dist_info
    return config


def _new_config(run: _Run, dist_info: dict) -> dict:
    """``config.json`` of a new run."""
    ds, args, init_meta = run.ds, run.args, run.init_meta
    return {
        "model": run.model_name, "profile": args.profile, "overrides": run.overrides,
        "model_cfg": to_dict(run.model_cfg), "train_cfg": to_dict(run.train_cfg),
        "data": {"dir": str(args.data_dir), "game": ds.game, "height": ds.height, "width": ds.width,
                 "num_actions": ds.num_actions, "fingerprint": ds.fingerprint,
                 "train_windows": run.train_windows, "test_windows": len(run.test_sampler or [])},
        "eval_windows": args.eval_windows if run.test_sampler is not None else 0,
        "num_parameters": sum(p.numel() for p in run.model.parameters()),
        "amp_bf16": run.use_amp, "compiled": run.use_compile, "channels_last": run.use_channels_last, "provenance": run.run_info,
        "init_from": (None if args.init_from is None else {"path": str(args.init_from), "step": init_meta.get("step"),
                                                            "git_sha": init_meta.get("git_sha")}),
        "distributed": dist_info,
    }


def _loss_fn(run: _Run):
    """The loss the loop differentiates: the model's (frame terms compiled on CUDA, behind the compiled-step
    guard) or, under data parallelism, DDP's wrapper of it."""
    model, ctx, dev = run.model, run.ctx, run.dev
    # the model's convolutional pass and frame likelihood are compiled; the reward and KL terms stay eager
    model.compile_frame_terms(run.use_compile)
    if ctx.enabled:  # DDP averages the gradients over ranks during backward
        loss_fn = torch.nn.parallel.DistributedDataParallel(
            _LossModule(model), device_ids=[dev.index] if dev.type == "cuda" else None, gradient_as_bucket_view=True)
    else:
        loss_fn = model.loss
    model.train()
    if run.use_compile and not ctx.enabled:
        first = _model_batch(run.sampler.samplers[0].gather(run.sampler.samplers[0].starts[:run.train_cfg.batch_size]))
        why = check_compiled_step(model, loss_fn, run.optimizer, [p for p in model.parameters() if p.requires_grad],
                                  first, run.train_cfg.grad_clip, loss_options(run.train_cfg), run.autocast, dev)
        if why:
            warn(why)
            run.config["compile_fallback"] = why
            run.folder.write_config(run.config)
    return loss_fn


# --------------------------------------------------------------------------------------------------
# the loop's steps: guards, logging, evaluation, checkpoints, summary


def _non_finite(run: _Run, at: int, what: str, value: str) -> NonFiniteError:
    kept = (f"the last good checkpoint {run.ckpt_path} (step {run.last_saved}) is kept"
            if run.last_saved is not None else "no checkpoint had been written yet")
    return NonFiniteError(f"non-finite {what} ({value}) at step {at}; "
                          f"training stopped, {kept} (try a lower --lr or --set grad_clip)")


def _arm_guard(run: _Run) -> None:
    """Where a non-finite step is caught. CUDA, one process: it is skipped ON THE DEVICE (fused AdamW reads
    ``found_inf``) and the first such step is remembered there; the host reads it every ``check_every``
    steps, so the CPU never waits for the GPU inside the loop. Else the host checks every step."""
    fused = getattr(run.optimizer, "defaults", {}).get("fused", False)
    run.deferred = run.dev.type == "cuda" and not run.ctx.enabled and fused
    run.bad_step = torch.zeros((), dtype=torch.long, device=run.dev)  # first non-finite step (0: none)


def _agree_stop(run: _Run, stop: runs.StopRule) -> int:
    """Under DDP every rank must stop at the same step: the stop codes are reduced (with each step's flags)."""
    return int(run.ctx.max_(torch.full((1,), float(stop.code()), device=run.dev)).item()) if run.ctx.enabled else 0


def _stop_now(run: _Run, stop: runs.StopRule) -> int:
    """The stop code before the next step: the ranks' agreed one under DDP, else this process's."""
    return run.agreed if run.ctx.enabled else stop.code()


def _guard_step(run: _Run, step: int, stop: runs.StopRule, loss: torch.Tensor, gnorm: torch.Tensor) -> None:
    """Stop on a non-finite loss or gradient before the optimiser steps (on CUDA with one process, defer it:
    see ``_arm_guard``); under DDP also agree on the stop code (``run.agreed``)."""
    if run.deferred:
        nonfinite = skip_nonfinite_on_device(run.optimizer, loss, gnorm)
        run.bad_step = torch.where(nonfinite & (run.bad_step == 0), step + 1, run.bad_step)
        return
    if run.ctx.enabled:  # the one sync per step: non-finite on any rank, and the stop codes
        flags = torch.cat([torch.stack([~torch.isfinite(loss.detach()), ~torch.isfinite(gnorm)]).float(),
                           torch.full((1,), float(stop.code()), device=run.dev)])
        loss_bad, grad_bad, code = run.ctx.max_(flags).tolist()
        ok, run.agreed = not (loss_bad or grad_bad), int(code)
    else:
        ok = bool(torch.isfinite(loss.detach()) & torch.isfinite(gnorm))  # the one sync per step
    if not ok:
        loss_bad = loss_bad if run.ctx.enabled else not torch.isfinite(loss.detach())
        what = "loss" if loss_bad else "gradient"
        run.metrics.write({"step": step + 1, "split": "train", "event": f"non-finite {what}",
                           "loss": loss.item(), "grad_norm": gnorm.item()})
        raise _non_finite(run, step + 1, what, f"{loss.item():.4g}")


def _check_deferred(run: _Run, step: int) -> None:
    """Every ``check_every`` steps (and at the last) the host reads whether a step was skipped on the device."""
    check_every = run.train_cfg.check_every or run.train_cfg.log_every
    if run.deferred and (step % check_every == 0 or step == run.train_cfg.steps) and (at := int(run.bad_step)):
        run.metrics.write({"step": at, "split": "train", "event": "non-finite loss or gradient",
                           "skipped_on_device": True})
        raise _non_finite(run, at, "loss or gradient", "update skipped on the device")


class _Interval:
    """The current logging interval's sums (loss terms and grad norm, kept on the device) and time."""

    def __init__(self, dev: torch.device):
        self.acc = torch.zeros(len(TERMS) + 1, device=dev)  # interval sums of the loss terms and the grad norm
        self.n, self.time = 0, 0.0
        self.fps: list[float] = []  # frames/s of each logging interval of this process

    def add(self, out_terms: dict, gnorm: torch.Tensor, t0: float) -> float:
        """Add a finished step (started at ``t0``); returns its duration."""
        with torch.no_grad():
            self.acc += torch.stack([out_terms[k].detach().float() for k in TERMS] + [gnorm.float()])
        self.n += 1
        dt = time.perf_counter() - t0
        self.time += dt
        return dt

    def log(self, run: _Run, step: int, kw: float, wall: Callable[[], float]) -> dict:
        """Write the interval's ``metrics.jsonl`` record (means over the interval and the ranks) and start anew."""
        B, T, W = run.train_cfg.batch_size, run.train_cfg.horizon, run.ctx.world_size
        vals = (run.ctx.sum_(self.acc) / (self.n * W)).tolist()  # mean over the interval and the ranks
        record = {"step": step, "split": "train", **dict(zip(TERMS, vals)), "grad_norm": vals[-1],
                  "kl_weight": kw, "lr": run.optimizer.param_groups[0]["lr"],
                  "frames_per_s": self.n * B * T / max(self.time, 1e-9),
                  "frames": step * B * T, "wall_s": wall()}
        run.metrics.write(record)
        self.fps.append(record["frames_per_s"])
        self.acc.zero_()
        self.n, self.time = 0, 0.0
        return record


def _progress_bar(run: _Run):
    from tqdm.auto import tqdm

    limit = run.args.time_limit
    return tqdm(total=run.train_cfg.steps, initial=run.step, disable=not (run.args.progress and run.ctx.is_main),
                unit="step", dynamic_ncols=True,
                desc=f"{run.model_name}" + (f" (stops at {limit:.0f}s)" if limit else ""))


def _schedule(run: _Run, t: int, kl_w: torch.Tensor) -> float:
    """Set the KL weight (``kl_w``, on the device) and, inside the warm-up, the lr of optimiser step ``t``
    (1-based); returns the KL weight."""
    cfg = run.train_cfg
    kw = kl_weight_at(t, cfg.kl_warmup_steps)  # beta_t = min(1, t / warmup)
    kl_w.fill_(kw)
    if t <= cfg.lr_warmup_steps:  # a float lr: fused AdamW takes it without a sync
        for group in run.optimizer.param_groups:  # lr_t = lr min(1, t / warmup)
            group["lr"] = lr_at(t, cfg.lr, cfg.lr_warmup_steps)
    return kw


def _bar_follows_time_limit(run: _Run, bar, step: int, step0: int, stop: runs.StopRule) -> None:
    """The run ends at the time limit or at --steps, whichever comes first: the bar's total follows
    (updated on logging steps)."""
    limit, steps = run.args.time_limit, run.train_cfg.steps
    if not limit or stop.t0 is None or step % run.train_cfg.log_every != 0 or step <= step0:
        return
    el = stop.elapsed()
    reach = step + (step - step0) / max(el, 1e-9) * max(limit - el, 0.0)
    bar.total = int(min(steps, max(step, reach)))
    bar.refresh()


def _eval_due(run: _Run, step: int) -> bool:
    every = run.train_cfg.eval_every
    return run.test_sampler is not None and every > 0 and (step % every == 0 or step == run.train_cfg.steps)


def _note_missed_time_up(run: _Run, step: int, stop: runs.StopRule) -> None:
    """A SIGTERM that came before any TIME_UP: TIME_UP's state at that moment (``StopRule.time_up_state``) in the
    log and the summary (a campaign copies it into the lineage), so a run that trained on past its lease's TIME_UP
    says why. Not in the metrics: an interrupted and resumed run's log equals a straight run's. A run whose main
    thread sat in one long C call while both signals came handles TIME_UP first (lower number) and notes nothing."""
    if stop.time_up_at_interrupt is None or not run.ctx.is_main:
        return
    print(f"interrupted at step {step:,} without a TIME_UP received; TIME_UP then: {stop.time_up_at_interrupt}",
          flush=True)


def _first_test(run: _Run, step: int, wall: Callable[[], float], last_test: dict) -> dict:
    """Under compile, a test record after this process's first step, before the time limit's clock starts: the
    test pass is compiled now and not at the final record. On an H200 that compilation took 50 s, so a run told
    its time was up (``runs.TIME_UP``) ended a minute late and twice outlived its lease unrecorded (2026-12-02,
    the fresh sSSM-rp-s0; ``results/speed/engine/time-up-diagnosis-h200/``)."""
    if run.use_compile and run.test_sampler is not None:
        return _test_record(run, step, wall) or last_test
    return last_test


def _final_test(run: _Run, status: str, step: int, last_test: dict, wall: Callable[[], float]) -> dict:
    """A planned stop (a lease's end) is scored like a last step: runs compare at equal wall-clock."""
    if status == "time-limit" and run.test_sampler is not None and last_test.get("step") != step and step > 0:
        t0 = time.perf_counter()
        last_test = _test_record(run, step, wall) or last_test
        # timed in the run's log: a lease's sSSM-rp-s0 outlived its bound after TIME_UP (2026-12-03, cause unknown)
        if run.ctx.is_main:
            print(f"final test at step {step:,}: {time.perf_counter() - t0:.1f} s", flush=True)
    return last_test


def _test_record(run: _Run, step: int, wall: Callable[[], float]) -> dict:
    """Score the test windows (each rank its share) and write the record; ``{}`` when none were scored."""
    tm = test_metrics(run.model, run.test_sampler, run.train_cfg.batch_size // run.ctx.world_size,
                      run.args.eval_windows, run.autocast, run.ctx)
    if not tm:
        return {}
    record = {"step": step, "split": "test", **tm, "wall_s": wall()}
    run.metrics.write(record)
    return record


def _save(run: _Run, at_step: int, wall: float) -> None:
    """Checkpoint ``at_step``; a pending non-finite step or parameter raises instead, so that the last good
    checkpoint is never replaced by a broken model."""
    ctx, B, T = run.ctx, run.train_cfg.batch_size, run.train_cfg.horizon
    # every rank takes part (its shards' generators, its torch RNG); rank 0 alone writes
    shard_states: dict[int, dict] = {}
    for part in ctx.all_gather(run.sampler.state_dicts()):
        shard_states.update(part)
    rank_rngs = ctx.all_gather(distributed.rng_state(run.dev)) if ctx.enabled else []
    if run.deferred and (at := int(run.bad_step)):  # a skipped non-finite step since the last check
        raise _non_finite(run, at, "loss or gradient", "update skipped on the device")
    with torch.no_grad():
        bad = [n for n, p in run.model.named_parameters() if not torch.isfinite(p).all()]
    if bad:  # never replace a good checkpoint by a broken model (the weights are equal on every rank)
        raise NonFiniteError(f"step {at_step}: parameter {bad[0]} is not finite; checkpoint not written")
    if ctx.is_main:
        extra_t: dict[str, torch.Tensor] = {}
        sampler_state = distributed.pack_sampler_state(run.shards, shard_states)
        extra = {"data_fingerprint": run.ds.fingerprint, "wall_s": wall, "profile": run.config.get("profile"),
                 "sampler": ckpt.pack_state(sampler_state, "sampler", extra_t),
                 "frames_seen": at_step * B * T, "world_size": ctx.world_size}
        for r, state in enumerate(rank_rngs):
            extra_t.update({f"rank_rng.{r}.{k}": v for k, v in state.items()})
        ckpt.save_checkpoint(run.ckpt_path, run.model, run.optimizer, step=at_step, train_cfg=run.train_cfg,
                             extra_meta=extra, extra_tensors=extra_t)
    run.last_saved = at_step


def steady_fps(interval_fps: list[float]) -> float | None:
    """Steady throughput: the median logged interval after the first (which pays for torch.compile and
    warm-up); the first alone when it is the only one."""
    rest = interval_fps[1:] or interval_fps
    return sorted(rest)[len(rest) // 2] if rest else None


def _finish(run: _Run, status: str, step: int, last_train: dict, last_test: dict, train_time: float,
            interval_fps: list[float], wall: float, time_up_missed: dict | None = None) -> dict:
    """The run's summary, written to ``summary.json`` by rank 0 once every rank is done."""
    B, T = run.train_cfg.batch_size, run.train_cfg.horizon
    summary = {
        "status": status, "model": run.model_name, "step": step, "steps": run.train_cfg.steps,
        "out_dir": str(run.out), "checkpoint": str(run.ckpt_path) if run.last_saved is not None else None,
        "train": last_train, "test": last_test,
        "frames_per_s": (step - int(run.meta["step"] if run.meta else 0)) * B * T / max(train_time, 1e-9),
        # steady state: the median interval after the first (which pays for torch.compile and warm-up)
        "frames_per_s_steady": steady_fps(interval_fps),
        "wall_s": wall, "device": run.run_info["device"], "world_size": run.ctx.world_size,
        "data_shards": run.shards,
    }
    if time_up_missed is not None:
        summary["time_up_missed"] = time_up_missed
    run.folder.write_summary(summary)
    run.ctx.barrier()  # every rank returns once the run folder is complete
    return summary


# --------------------------------------------------------------------------------------------------
# the loop


def train(model_name: str | None, data_dir, out_dir=None, profile: str = "quick", overrides: dict | None = None,
          resume: bool = False, device: str | None = None, overwrite: bool = False, progress: bool = True,
          eval_windows: int = EVAL_WINDOWS, callback: Callable[[int, dict], None] | None = None,
          time_limit: float | None = None, init_from: str | None = None, data_shards: int | None = None) -> dict:
    """Train ``model_name`` on the dataset at ``data_dir``; write everything under ``out_dir``.

    ``time_limit`` (seconds of this process's loop, counted from its first finished step so that
    compilation is not counted; 0 stops before the first step) stops the run cleanly with a checkpoint, status
    ``time-limit``; ``resume=True`` later continues it exactly. ``init_from`` starts a new run from the
    weights (and model config) of another checkpoint, e.g. a committed pretrained one, with a fresh
    optimiser at step 0.

    ``out_dir`` defaults to ``runs/<game>/<model>``. An existing, non-empty ``out_dir`` is refused
    unless ``resume`` (continue from its checkpoint, exactly; with no checkpoint there yet, start
    over) or ``overwrite``. ``overrides`` maps TrainConfig/ModelConfig field names to values. On a
    resume the configs come from the checkpoint; only ``steps``, ``log_every``, ``eval_every``,
    ``ckpt_every`` and ``compile`` may be changed. ``callback(step, record)`` is called after every
    step (record: that step's loss terms as floats, only on logging steps; else ``{}``).

    Under torchrun (WORLD_SIZE > 1) the run is data-parallel over the ranks (ssmlib.distributed):
    ``batch_size`` stays the global batch. ``data_shards`` (a new run only; default: one per rank)
    cuts the train episodes into that many shards, each drawing ``batch_size / data_shards`` windows
    a step, so that one process with ``data_shards=N`` draws exactly the global batch of N ranks.

    Returns a summary dict (also written to ``summary.json``): status ``done`` or ``interrupted``,
    the step reached, the last train and test metrics, frames/s and wall time.
    """
    args = RunSettings(model_name=model_name, data_dir=data_dir, out_dir=out_dir, profile=profile,
                       overrides=overrides, resume=resume, device=device, overwrite=overwrite, progress=progress,
                       eval_windows=eval_windows, callback=callback, time_limit=time_limit, init_from=init_from,
                       data_shards=data_shards)
    ctx = distributed.setup(device)
    try:
        return _train(ctx, args)
    finally:
        ctx.close()


def _train(ctx: distributed.Context, args: RunSettings) -> dict:
    run = _open_run(ctx, args)  # the folder and the configs (new, resume, init_from), refused before any write
    _build(run)  # device, model, AdamW, window samplers
    _start_or_resume(run)  # this rank's torch RNG or the checkpoint's state; config.json
    loss_fn = _loss_fn(run)  # compiled (behind its guard), DDP-wrapped under torchrun
    cfg, dev = run.train_cfg, run.dev
    B = cfg.batch_size // ctx.world_size  # the global batch over the ranks
    params = [p for p in run.model.parameters() if p.requires_grad]
    kl_w, loss_opts = torch.zeros((), device=dev), loss_options(cfg)
    _arm_guard(run)  # non-finite steps: skipped on the device (CUDA, one process) or stopped on the host
    run.last_saved = run.step if run.resuming else None
    interval, clock, bar = _Interval(dev), runs.SaveClock(every_steps=cfg.ckpt_every), _progress_bar(run)
    step = step0 = run.step
    status, last_train, last_test, train_time = "done", {}, {}, 0.0
    start = time.perf_counter()

    def wall() -> float:
        return run.wall0 + time.perf_counter() - start

    try:
        with runs.StopRule(args.time_limit) as stop:  # Ctrl-C / SIGTERM: finish the step, save, return
            run.agreed = _agree_stop(run, stop)
            while step < cfg.steps:
                if code := _stop_now(run, stop):
                    status = STOPS[code]
                    break
                t0 = time.perf_counter()
                batch = _model_batch(run.sampler.sample(B))
                kw = _schedule(run, step + 1, kl_w)  # the KL weight and lr warm-ups
                out_terms, gnorm = train_step(loss_fn, run.optimizer, params, batch, kl_w, cfg.grad_clip, loss_opts,
                                              run.autocast, guard=functools.partial(_guard_step, run, step, stop))
                step += 1
                if step == step0 + 1:
                    last_test = _first_test(run, step, wall, last_test)
                stop.start_clock()  # the time limit counts from the first finished step, not compilation
                _check_deferred(run, step)
                train_time += interval.add(out_terms, gnorm, t0)
                bar.update(1)
                _bar_follows_time_limit(run, bar, step, step0, stop)
                record: dict = {}
                if step % cfg.log_every == 0 or step == cfg.steps:
                    record = last_train = interval.log(run, step, kw, wall)
                    bar.set_postfix(loss=f"{record['loss']:.1f}", fps=f"{record['frames_per_s']:.0f}", refresh=False)
                if _eval_due(run, step):
                    last_test = _test_record(run, step, wall) or last_test
                if clock.due(step) or step == cfg.steps:
                    _save(run, step, wall())
                if args.callback is not None:
                    args.callback(step, record)
            last_test = _final_test(run, status, step, last_test, wall)
            if status != "done" and run.last_saved != step:
                _save(run, step, wall())
            _note_missed_time_up(run, step, stop)  # last: a SIGTERM during the final test or save counts too
    finally:
        bar.close()
    return _finish(run, status, step, last_train, last_test, train_time, interval.fps, wall(),
                   stop.time_up_at_interrupt)


# --------------------------------------------------------------------------------------------------
# command line


def run_cli(args: argparse.Namespace) -> int:
    """``python -m ssmlib train ...``: 0 when done, 130 when stopped by Ctrl-C (checkpoint saved)."""
    overrides = parse_sets(args.set)
    for flag, key in (("steps", "steps"), ("batch_size", "batch_size"), ("lr", "lr")):
        if getattr(args, flag) is not None:
            overrides[key] = getattr(args, flag)
    summary = train(args.model, args.data, args.out, profile=args.profile, overrides=overrides,
                    resume=args.resume, overwrite=args.overwrite, device=args.device,
                    time_limit=args.time_limit, progress=not args.no_progress, init_from=args.init_from,
                    data_shards=args.data_shards)
    if distributed.env_rank() != 0:  # one report, from rank 0
        return 130 if summary["status"] == "interrupted" else 0
    test = summary["test"]
    tail = f", test ELBO {test['elbo']:.1f} nats/frame" if test.get("elbo") is not None else ""
    ranks = f" on {summary['world_size']} ranks" if summary["world_size"] > 1 else ""
    print(f"{summary['status']}: {summary['model']} step {summary['step']}/{summary['steps']}, "
          f"{summary['frames_per_s']:.0f} frames/s{ranks}{tail}; checkpoint {summary['checkpoint']}")
    if summary["status"] in ("interrupted", "time-limit"):
        launcher = (f"torchrun --nproc-per-node {summary['world_size']} -m ssmlib" if summary["world_size"] > 1
                    else "python -m ssmlib")
        print(f"resume with: {launcher} train --out {summary['out_dir']} --data {args.data} --resume")
        return 130 if summary["status"] == "interrupted" else 0
    return 0


def add_cli(subparsers) -> argparse.ArgumentParser:
    """Register ``train`` on an argparse subparsers object; dispatch via ``args.func(args)``."""
    p = subparsers.add_parser("train", help="train an environment model on a collected dataset",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=MODEL_NAMES, default=None,
                   help="which environment model (required unless resuming)")
    p.add_argument("--data", required=True, metavar="DIR", help="dataset folder written by `collect`")
    p.add_argument("--out", default=None, metavar="DIR", help="run folder (default runs/<game>/<model>)")
    p.add_argument("--profile", choices=PROFILES, default="quick", help="config profile (default: quick)")
    p.add_argument("--steps", type=int, default=None, help="optimiser steps (profile's if omitted)")
    p.add_argument("--batch-size", type=int, default=None, help="windows per step (profile's if omitted)")
    p.add_argument("--lr", type=float, default=None, help="AdamW learning rate (profile's if omitted)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--overwrite", action="store_true", help="start over in an existing --out")
    p.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                   help="stop cleanly (checkpoint saved) after this many seconds of this process; --resume continues")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs stay in metrics.jsonl)")
    p.add_argument("--init-from", default=None, metavar="CHECKPOINT",
                   help="start from these weights (e.g. checkpoints/MsPacman/sSSM.safetensors), fresh optimiser")
    p.add_argument("--data-shards", type=int, default=None, metavar="S",
                   help="cut the train episodes into S shards, batch_size/S windows from each per step "
                        "(default: one per torchrun rank; S=N in one process draws the global batch of N ranks)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override any TrainConfig/ModelConfig field, e.g. --set horizon=5 (repeatable); every "
                        "field with its value and meaning: python -m ssmlib config --section model,train")
    p.set_defaults(func=run_cli)
    return p
