"""One training step of every engine variant on real windows, each loss term and gradient checked finite.

A smoke check to run on a GPU before a long run (a CPU runs the eager fp32 variant only):
``python scripts/check_step.py --data DIR [--model sSSM] [--batch 32]``. Prints one JSON line per
variant: the loss terms, the gradient norm, and the parameters whose gradient is not finite.
"""

from __future__ import annotations

import argparse
import contextlib
import json

import torch

from ssmlib.config import get_profile
from ssmlib.data.store import open_dataset
from ssmlib.data.windows import WindowSampler
from ssmlib.models import build_model
from ssmlib.train import forward_backward, loss_options, reward_classes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--model", default="sSSM")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--profile", default="paper")
    p.add_argument("--only", default=None, help="comma-separated variants (default: all that the device runs)")
    args = p.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    prof = get_profile(args.profile)
    ds = open_dataset(args.data)
    cfg, tc = prof.model, prof.train
    cfg.model, cfg.height, cfg.width, cfg.num_actions = args.model, ds.height, ds.width, ds.num_actions
    values, weights = reward_classes(ds, cfg)
    cfg.reward_values = tuple(values)
    sampler = WindowSampler(ds, "train", horizon=tc.horizon, device=str(dev), seed=0)
    batch = {k: v for k, v in sampler.sample(args.batch).items() if k in ("frames", "actions", "rewards")}
    # name: (bf16 autocast, channels_last, torch.compile options or None for eager)
    variants = {"fp32-eager": (False, False, None)}
    if dev.type == "cuda":
        variants.update({
            "bf16-eager": (True, False, None), "bf16-eager-cl": (True, True, None),
            "bf16-compile-cl": (True, True, {}),  # what train does with compile on
            # which part of compilation breaks the gradient (the guard has fallen back to eager on an H200):
            "bf16-compile-cl-aot_eager": (True, True, {"backend": "aot_eager"}),  # autograd graph, no inductor
            "bf16-compile": (True, False, {}), "fp32-compile": (False, False, {}),
            "bf16-compile-cl-no-layout-opt": (True, True, {"options": {"layout_optimization": False}}),
            "bf16-compile-cl-no-epilogue-fusion": (True, True, {"options": {"epilogue_fusion": False}}),
            "bf16-compile-cl-no-padding": (True, True, {"options": {"shape_padding": False,
                                                                    "comprehensive_padding": False}}),
            "bf16-compile-cl-max-autotune": (True, True, {"mode": "max-autotune-no-cudagraphs"}),
        })
    if args.only:
        unknown = set(args.only.split(",")) - set(variants)
        if unknown:
            raise SystemExit(f"--only: unknown variants {sorted(unknown)}; choose from {sorted(variants)}")
        variants = {k: v for k, v in variants.items() if k in args.only.split(",")}
    variants = [(name, amp, cl, comp) for name, (amp, cl, comp) in variants.items()]
    for name, amp, cl, comp in variants:
        torch.manual_seed(0)
        model = build_model(cfg).to(dev)
        model.set_reward_class_weights(weights)
        if cl:
            model = model.to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(model.parameters(), lr=tc.lr)
        params = list(model.parameters())
        torch._dynamo.reset()
        model.compile_frame_terms(comp is not None, **(comp or {}))  # as train does: reward and KL stay eager
        loss_fn = model.loss
        autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if amp else contextlib.nullcontext
        for kl_w in (1e-3, 1.0):
            try:
                out, gnorm = forward_backward(loss_fn, opt, params, batch, torch.tensor(kl_w, device=dev),
                                              tc.grad_clip, loss_options(tc), autocast)
            except Exception as e:  # one variant failing to compile must not hide the others
                print(json.dumps({"variant": name, "kl_weight": kl_w, "error": f"{type(e).__name__}: {e}"[:300]}),
                      flush=True)
                break
            bad = [n for n, q in model.named_parameters() if q.grad is not None and not torch.isfinite(q.grad).all()]
            print(json.dumps({"variant": name, "kl_weight": kl_w, **{k: float(v) for k, v in out.items()},
                              "grad_norm": float(gnorm), "non_finite_grads": len(bad),
                              "parameters": sum(1 for _ in model.parameters()), "first_non_finite": bad[:4]}),
                  flush=True)


if __name__ == "__main__":
    main()
