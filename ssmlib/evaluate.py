"""The same metrics for every environment model, on the held-out test episodes.

For each test window (3 context frames, then ``T`` target frames with the recorded actions) and each
horizon ``h = 1..T``:

* **log-likelihood of the frame**, in nats per frame (higher is better) and as a negative
  log-likelihood in bits per dimension, ``-nats / (3 H W ln 2)`` (lower is better):

  - models without latents (AR, RAR, dSSM-DET): the exact ``log p(o_h | o_<h, a)`` from ``score``
    (teacher-forced for AR/RAR, open-loop for dSSM-DET, whose state never sees the frames);
  - latent models (dSSM-VAE, sSSM): the per-step ELBO ``E_q[log p(o_h|...)] - KL`` (one sample mean
    over ``K``), and the tighter importance-weighted bound with ``K`` posterior samples,
    ``L_K(h) = logmeanexp_k sum_{t<=h} (log p(o_t|..) + log p(z_t|..) - log q(z_t|..))``, reported per
    step as increments ``L_K(h) - L_K(h-1)`` and in total as ``L_K(T)``;

* **reward accuracy** (all bits of the reward right): teacher-forced / filtered (``score``), and from
  open-loop imagination with the prior from the context frames;
* **frame MSE** of open-loop imagination (``imagine(..., decode=True, sample=False)``: the prior mean
  for latent models), the mean frame ``sigmoid(logits)`` against the real one; and of the filtered pass;
* **open-loop predictive log-likelihood**: what a model that never sees a frame after the context
  gives the real frame h steps ahead. Imagination from the context with the recorded actions, ``K``
  samples from the prior (one for models that imagine deterministically, ``model.stochastic`` false):

  .. math:: \\log p(o_h \\mid o_{\\le 0}, a_{0:h-1}) \\approx \\log \\frac{1}{K} \\sum_{k=1}^{K}
            \\mathrm{Bernoulli}(o_h \\mid \\ell^{(k)}_h) = \\mathrm{logmeanexp}_k \\log \\mathrm{Bernoulli}(o_h \\mid \\ell^{(k)}_h)

  with :math:`\\ell^{(k)}_h` the frame logits of sample k after h transitions (nats per frame; in
  expectation a lower bound by Jensen). Unlike the filtering LL above, it is comparable between a
  jumpy model (one transition = k env steps) and a k=1 model that sees every real frame: both are
  read at the same env step (``ssmlib.jumpy``). The total is the sum over h of these marginals;
  ``ll_open_loop_joint_nats`` is the joint ``logmeanexp_k sum_h log Bernoulli(o_h | l^(k)_h)``.
  For dSSM-DET all of these equal its exact log-likelihood (its state never sees a frame);
* **cumulative reward of open-loop imagination** (``return_*``): the most likely reward of each
  transition (``decode_reward``) summed up to h, against the real rewards summed the same way
  (both as the reward head encodes them). For a jumpy model a transition's reward is already the sum
  over its k env steps, so these are comparable across k at the same env step.

``evaluate`` returns a JSON-ready dict; ``python -m ssmlib eval --checkpoint ... --data ...`` writes it
with provenance.
"""

from __future__ import annotations

import argparse
import contextlib
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .errors import SsmlibError

CONTEXT = 3


def _logmeanexp(x: torch.Tensor, dim: int = 0) -> torch.Tensor:
    return torch.logsumexp(x, dim) - math.log(x.shape[dim])


def _sampler_for(model, data, horizon: int | None, device):
    """``data`` is a WindowSampler (used as is) or a dataset (its test split)."""
    if hasattr(data, "iterate"):
        return data
    from .data.windows import WindowSampler

    for attr, want in (("height", model.cfg.height), ("width", model.cfg.width), ("num_actions", model.cfg.num_actions)):
        if getattr(data, attr) != want:
            raise SsmlibError(f"the model is for {model.cfg.height}x{model.cfg.width} frames with "
                              f"{model.cfg.num_actions} actions, the data has {data.height}x{data.width} "
                              f"with {data.num_actions}")
    return WindowSampler(data, split="test", context=CONTEXT, horizon=horizon or 10, jump=model.cfg.jump,
                         device=str(device), seed=0)


@torch.no_grad()
def evaluate(model, data, batch_size: int = 16, num_samples: int = 8, max_windows: int | None = None,
             horizon: int | None = None, seed: int = 0, amp: bool = False, progress: bool = False) -> dict:
    """Per-horizon test metrics of ``model`` (see the module docstring) as a JSON-ready dict.

    ``data``: a test-split ``WindowSampler``, or a dataset (then its test split with ``horizon``
    target frames, default 10). ``num_samples`` posterior samples per window for latent models (ignored
    otherwise), and prior samples of the open-loop predictive LL for stochastic models. ``max_windows``:
    an evenly spaced subset of the test windows. Draws its random numbers from a fork of torch's RNG
    seeded with ``seed``, so results repeat and the caller's RNG is untouched.
    """
    from .models.blocks import decode_reward, encode_reward

    if num_samples < 1:
        raise SsmlibError(f"num_samples must be >= 1, got {num_samples}")
    dev = next(model.parameters()).device
    sampler = _sampler_for(model, data, horizon, dev)
    if len(sampler) == 0:
        raise SsmlibError("no test window to evaluate on (the test split is empty or its episodes too short)")
    K = num_samples if model.latent else 1
    K_open = num_samples if model.stochastic else 1  # prior samples of the open-loop predictive LL
    H, W = model.cfg.height, model.cfg.width
    dims = 3 * H * W
    use_amp = amp and dev.type == "cuda"
    cols: dict[str, list[np.ndarray]] = {}

    def add(name: str, t: torch.Tensor) -> None:
        cols.setdefault(name, []).append(t.double().cpu().numpy())

    was_training = model.training
    model.eval()
    total_batches = None
    if progress:
        n = len(sampler) if max_windows is None else min(len(sampler), max_windows)
        total_batches = math.ceil(n / batch_size)
    from tqdm.auto import tqdm

    with torch.random.fork_rng(devices=[dev.index or 0] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        for batch in tqdm(sampler.iterate(batch_size, max_windows=max_windows), total=total_batches,
                          disable=not progress, desc=f"eval {model.name}", unit="batch"):
            batch = {k: batch[k] for k in ("frames", "actions", "rewards")}
            T = batch["frames"].shape[1] - CONTEXT
            acts = batch["actions"][:, CONTEXT - 1:CONTEXT - 1 + T]
            target = batch["frames"][:, CONTEXT:]
            with torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else contextlib.nullcontext():
                s = model.score(batch, num_samples=K)
                s = {k: v.float() if v.is_floating_point() else v for k, v in s.items()}
                s0 = model.initial_state(batch["frames"][:, :CONTEXT])
                roll = model.imagine(s0, acts, decode=True, sample=False)
                open_logits = roll.frame_logits
                if K_open > 1:  # K prior samples in one batched rollout, sample-major: row k*B + b
                    rep = lambda t: t.repeat(K_open, *([1] * (t.dim() - 1)))  # noqa: E731
                    open_logits = model.imagine(s0.map(rep), rep(acts), decode=True, sample=True).frame_logits
            log_open = -F.binary_cross_entropy_with_logits(
                open_logits.float(), target.repeat(K_open, 1, 1, 1, 1), reduction="none").sum((-3, -2, -1))
            log_open = log_open.reshape(K_open, -1, T)  # (K, B, T)
            add("ll_open_loop", _logmeanexp(log_open, 0))
            add("ll_open_loop_joint", _logmeanexp(log_open.sum(-1), 0)[:, None])
            log_px, kl = s["log_px"][:K], s["kl"][:K]
            elbo = (log_px - kl).mean(0)
            if model.latent:
                cum = _logmeanexp((log_px + s["log_pz"][:K] - s["log_qz"][:K]).cumsum(-1), 0)
                iwae = torch.diff(cum, dim=-1, prepend=torch.zeros_like(cum[:, :1]))
            else:
                iwae = elbo
            add("elbo", elbo)
            add("iwae", iwae)
            add("recon", log_px.mean(0))
            add("kl", kl.mean(0))
            add("reward_acc_teacher", s["reward_correct"][:K].float().mean(0))
            add("frame_mse_teacher", s["frame_mse"][:K].mean(0))
            add("frame_mse_open_loop", (torch.sigmoid(roll.frame_logits.float()) - target).square().mean((-3, -2, -1)))
            bits = encode_reward(batch["rewards"][:, CONTEXT - 1:CONTEXT - 1 + T], model.cfg.reward_bits)
            add("reward_acc_open_loop", ((roll.reward_logits.float() > 0) == (bits > 0.5)).all(-1).float())
            ret_err = decode_reward(roll.reward_logits.float()).cumsum(-1) - decode_reward(bits * 2 - 1).cumsum(-1)
            add("return_abs_err_open_loop", ret_err.abs())
            add("return_acc_open_loop", (ret_err == 0).float())
    model.train(was_training)

    a = {k: np.concatenate(v, 0) for k, v in cols.items()}  # each (N, T)
    N, T = a["elbo"].shape
    bpd = -1.0 / (dims * math.log(2))

    def mean(x: np.ndarray) -> list[float]:
        return [float(v) for v in x.mean(0)]

    def sem(x: np.ndarray) -> float:
        return float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else float("nan")

    ll = a["iwae"]  # exact log p for models without latents, the K-sample bound otherwise
    elbo_tot, iwae_tot = a["elbo"].sum(1), a["iwae"].sum(1)
    per_h = {
        "h": list(range(1, T + 1)),
        "ll_nats": mean(ll),
        "nll_bits_per_dim": [v * bpd for v in mean(ll)],
        "elbo_nats": mean(a["elbo"]),
        "elbo_nll_bits_per_dim": [v * bpd for v in mean(a["elbo"])],
        "iwae_nats": mean(a["iwae"]),
        "recon_nats": mean(a["recon"]),
        "kl_nats": mean(a["kl"]),
        "reward_acc_teacher": mean(a["reward_acc_teacher"]),
        "reward_acc_open_loop": mean(a["reward_acc_open_loop"]),
        "frame_mse_teacher": mean(a["frame_mse_teacher"]),
        "frame_mse_open_loop": mean(a["frame_mse_open_loop"]),
        "ll_open_loop_nats": mean(a["ll_open_loop"]),
        "return_acc_open_loop": mean(a["return_acc_open_loop"]),
        "return_abs_err_open_loop": mean(a["return_abs_err_open_loop"]),
    }
    open_tot = a["ll_open_loop"].sum(1)
    total = {
        "ll_nats": float(iwae_tot.mean()),
        "ll_nats_sem": sem(iwae_tot),
        "ll_nats_per_frame": float(iwae_tot.mean() / T),
        "nll_bits_per_dim": float(iwae_tot.mean() / T * bpd),
        "elbo_nats": float(elbo_tot.mean()),
        "elbo_nats_sem": sem(elbo_tot),
        "elbo_nll_bits_per_dim": float(elbo_tot.mean() / T * bpd),
        "iwae_nats": float(iwae_tot.mean()),
        "iwae_minus_elbo_nats": float((iwae_tot - elbo_tot).mean()),
        "reward_acc_teacher": float(a["reward_acc_teacher"].mean()),
        "reward_acc_open_loop": float(a["reward_acc_open_loop"].mean()),
        "frame_mse_teacher": float(a["frame_mse_teacher"].mean()),
        "frame_mse_open_loop": float(a["frame_mse_open_loop"].mean()),
        "ll_open_loop_nats": float(open_tot.mean()),
        "ll_open_loop_nats_sem": sem(open_tot),
        "ll_open_loop_nats_per_frame": float(open_tot.mean() / T),
        "ll_open_loop_joint_nats": float(a["ll_open_loop_joint"].mean()),
        # the whole rollout's summed reward: the values at the last horizon
        "return_acc_open_loop": float(a["return_acc_open_loop"][:, -1].mean()),
        "return_abs_err_open_loop": float(a["return_abs_err_open_loop"][:, -1].mean()),
    }
    return {
        "model": model.name,
        "latent": bool(model.latent),
        "log_likelihood": (f"importance-weighted bound, K={K}" if model.latent else "exact"),
        "num_samples": K,
        "open_loop_samples": K_open,
        "windows": int(N),
        "context": CONTEXT,
        "horizon": int(T),
        "jump": int(model.cfg.jump),
        "frame_dims": dims,
        "seed": seed,
        "per_horizon": per_h,
        "total": total,
    }


# --------------------------------------------------------------------------------------------------
# command line


def run_cli(args: argparse.Namespace) -> int:
    """``python -m ssmlib eval --checkpoint ... --data ...``: print a table; write JSON with --out."""
    from .checkpoint import load_checkpoint, build_from_checkpoint
    from .data.store import open_dataset
    from .data.windows import WindowSampler
    from .io import atomic_write_json, provenance, sha256_file
    from .train import resolve_device

    dev = resolve_device(args.device)
    if Path(args.checkpoint).is_dir() and (Path(args.checkpoint) / "checkpoint.safetensors").exists():
        args.checkpoint = str(Path(args.checkpoint) / "checkpoint.safetensors")  # a run folder
    ds = open_dataset(args.data, verify=True)
    meta, tensors = load_checkpoint(args.checkpoint, dataset=ds)
    model = build_from_checkpoint(args.checkpoint, meta, tensors, device=dev).eval()
    del tensors
    horizon = args.horizon or (meta.get("train_cfg") or {}).get("horizon") or 10
    sampler = WindowSampler(ds, split="test", context=CONTEXT, horizon=horizon, jump=model.cfg.jump,
                            device=str(dev), seed=0)
    res = evaluate(model, sampler, batch_size=args.batch_size, num_samples=args.samples,
                   max_windows=args.max_windows, seed=args.seed, progress=True)
    t, ph = res["total"], res["per_horizon"]
    print(f"{res['model']} on {res['windows']} test windows of {ds.game} ({res['log_likelihood']}):")
    print(f"  log-likelihood {t['ll_nats_per_frame']:.1f} nats/frame ({t['nll_bits_per_dim']:.4f} bits/dim), "
          f"ELBO {t['elbo_nats'] / res['horizon']:.1f} nats/frame; reward acc {t['reward_acc_teacher']:.3f} "
          f"(open loop {t['reward_acc_open_loop']:.3f}); open-loop MSE {t['frame_mse_open_loop']:.5f}; "
          f"open-loop LL {t['ll_open_loop_nats_per_frame']:.1f} nats/frame (K={res['open_loop_samples']})")
    print("  h  ll_nats  bits/dim  open-loop: ll_nats  MSE      reward acc")
    for i, h in enumerate(ph["h"]):
        print(f"  {h:<2} {ph['ll_nats'][i]:8.1f}  {ph['nll_bits_per_dim'][i]:.4f}    {ph['ll_open_loop_nats'][i]:8.1f}  "
              f"{ph['frame_mse_open_loop'][i]:.5f}  {ph['reward_acc_open_loop'][i]:.3f}")
    if args.out:
        doc = {
            "results": res,
            "checkpoint": {"path": str(args.checkpoint), "sha256": sha256_file(args.checkpoint),
                           "step": meta.get("step"), "model_cfg": meta.get("model_cfg"),
                           "train_cfg": meta.get("train_cfg"),
                           "trained_on_fingerprint": meta.get("data_fingerprint")},
            "data": {"dir": str(args.data), "game": ds.game, "fingerprint": ds.fingerprint,
                     "split": "test"},
            "provenance": provenance(str(dev)),
        }
        atomic_write_json(Path(args.out), doc)
        print(f"wrote {args.out}")
    return 0


def add_cli(subparsers) -> argparse.ArgumentParser:
    """Register ``eval`` on an argparse subparsers object; dispatch via ``args.func(args)``."""
    p = subparsers.add_parser("eval", help="test log-likelihood, reward accuracy and rollout MSE of a checkpoint",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, metavar="PATH", help="a checkpoint.safetensors written by train, or its run folder")
    p.add_argument("--data", required=True, metavar="DIR", help="dataset folder (its test episodes are used)")
    p.add_argument("--samples", type=int, default=8, metavar="K",
                   help="posterior samples for the importance-weighted bound (latent models; default 8)")
    p.add_argument("--max-windows", type=int, default=None, metavar="N",
                   help="evaluate an evenly spaced subset of N test windows (default: all)")
    p.add_argument("--horizon", type=int, default=None, help="target frames per window (default: training's)")
    p.add_argument("--batch-size", type=int, default=16, help="windows per batch (default 16)")
    p.add_argument("--seed", type=int, default=0, help="seed of the posterior samples (default 0)")
    p.add_argument("--out", default=None, metavar="FILE.json", help="write the results here (atomically)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available)")
    p.set_defaults(func=run_cli)
    return p


# --------------------------------------------------------------------------------------------------
# diagnostics used by the book


def bernoulli_floor(frames) -> torch.Tensor:
    """The best log-likelihood any per-pixel Bernoulli model can reach on ``frames``, per frame (nats).

    For an intensity o in [0, 1], ``o log p + (1-o) log(1-p)`` is largest at p = o, where it equals
    ``-H_b(o)``, minus the binary entropy; summed over a frame: ``-sum_{c,y,x} H_b(o_{c,y,x})``. This
    part of every model's nats is irreducible, so differences between models are judged against it.
    ``frames``: uint8 (..., H, W, 3) (as stored) or float (..., 3, H, W) in [0, 1] (as in a batch).
    """
    x = torch.as_tensor(frames)
    if x.dtype == torch.uint8:
        x = x.float().div(255.0)
    x = x.float()
    return -(torch.special.entr(x) + torch.special.entr(1 - x)).sum((-3, -2, -1))


def count_pixel_calls(model, fn) -> dict[str, int]:
    """Run ``fn()`` and count what went through the model's pixel encoder and decoder: calls and frames.

    This is where the time of pixel-space imagination goes: AR/RAR encode and decode a frame at every
    step; a state-space model encodes only its context and decodes only when asked.
    """
    counts = {"encoder_calls": 0, "decoder_calls": 0, "encoder_frames": 0, "decoder_frames": 0}

    def hook(part):
        def count(module, inputs, output):
            counts[f"{part}_calls"] += 1
            counts[f"{part}_frames"] += int(output.shape[0])
        return count

    handles = [getattr(model, part).register_forward_hook(hook(part)) for part in ("encoder", "decoder")]
    try:
        with torch.no_grad():
            fn()
    finally:
        for h in handles:
            h.remove()
    return counts
