"""Diagnostics of the reward head (issue #13), stored in results/reward_head/ (README there).

    python scripts/reward_probe.py align --data DIR
        Is r_k the reward of a_k, seen between o_k and o_{k+1}? The score digits (bottom rows of the
        frame) change between o_{k+lag} and o_{k+lag+1} when r_k != 0: only lag 0 should light up.
    python scripts/reward_probe.py grads --data DIR [--model dSSM-DET] [--set KEY=VALUE ...]
        One training batch as ``train`` builds it (quick profile, class weights from the data): the
        gradient of the reward term and of the frame term on the trunk and on the head, and the share
        of the clipped global gradient that lands in the reward head.
    python scripts/reward_probe.py probe --checkpoint CKPT --data DIR
        Frozen trunk (dSSM-DET): the open-loop states s_1..s_T of train/test windows, then fresh reward
        heads trained on them alone with the class-weighted cross-entropy, reading s_t; s_t and a_{t-1};
        s_{t-1}, s_t and a_{t-1}. Test AUC of P(r != 0) by horizon: what the states hold, head by head.
    python scripts/reward_probe.py train [--no-class-weights] -- <python -m ssmlib train arguments>
        ``ssmlib train`` in-process, with one patch for the probe only: ``--no-class-weights`` keeps every
        class weight at 1. (``ssmlib.train`` gives both categorical heads their reward values and class
        weights from the data; when these runs were made it did so for ``categorical`` only, and this
        command patched it in for ``categorical-action``.)
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch


def align(args) -> None:
    from ssmlib.data.store import open_dataset

    ds = open_dataset(args.data, verify=False)
    rows = {lag: ([], []) for lag in (-1, 0, 1)}
    for ep in ds.split("train"):
        e = ds.episode(ep)
        f, r = np.asarray(e["frames"], np.float32), np.asarray(e["rewards"])
        H = f.shape[1]
        bottom = f[:, int(H * 0.85):]  # the score digits
        diff = np.abs(bottom[1:] - bottom[:-1]).mean((1, 2, 3))  # diff[k] = |o_{k+1} - o_k|
        n = len(diff)
        for lag in rows:
            k = np.arange(max(0, -lag), min(n, n - lag))
            nz = r[k] != 0
            rows[lag][0].append(diff[k + lag][nz]), rows[lag][1].append(diff[k + lag][~nz])
    out = {}
    for lag, (a, b) in rows.items():
        a, b = np.concatenate(a), np.concatenate(b)
        out[f"lag{lag}"] = {"score_change_given_reward": float((a > 0.05).mean()),
                            "score_change_given_no_reward": float((b > 0.05).mean()),
                            "n_reward": int(len(a)), "n_no_reward": int(len(b))}
    print(json.dumps(out, indent=1))


def grads(args) -> None:
    from ssmlib import config as C
    from ssmlib.data.store import open_dataset
    from ssmlib.data.windows import WindowSampler
    from ssmlib.models import build_model
    from ssmlib.train import reward_classes

    ds = open_dataset(args.data, verify=False)
    prof = C.get_profile("quick")
    mcfg, tcfg = prof.model, prof.train
    mcfg.model = args.model
    man = ds.manifest
    mcfg.height, mcfg.width, mcfg.num_actions = man["height"], man["width"], man["num_actions"]
    sets = C.parse_sets(args.set)
    mcfg = C.apply_sets(mcfg, {k: v for k, v in sets.items() if hasattr(mcfg, k)})
    tcfg = C.apply_sets(tcfg, {k: v for k, v in sets.items() if hasattr(tcfg, k)})
    if args.checkpoint:  # a trained model (its own config and reward values), weights from this data
        from ssmlib.checkpoint import load_model
        from ssmlib.checkpoint import read_meta, train_config

        model = load_model(args.checkpoint).train()
        mcfg = model.cfg
        values, weights = reward_classes(ds, mcfg)
        tcfg = train_config(read_meta(args.checkpoint)) or tcfg
    else:
        values, weights = reward_classes(ds, mcfg)
        mcfg.reward_values = tuple(values)
        torch.manual_seed(0)
        model = build_model(mcfg)
    model.set_reward_class_weights(weights)
    sampler = WindowSampler(ds, "train", horizon=tcfg.horizon, seed=0)
    # a batch with rewards in it (as most batches of 32 have)
    batch = {k: v for k, v in sampler.sample(args.batch).items() if k in ("frames", "actions", "rewards")}
    head = [p for n, p in model.named_parameters() if n.startswith("reward_head.")]
    trunk = [p for n, p in model.named_parameters() if not n.startswith("reward_head.") and not n.startswith("decoder.")]
    params = list(model.parameters())

    def grad_of(term):
        model.zero_grad(set_to_none=True)
        term.backward(retain_graph=True)
        g = lambda ps: float(sum(float((p.grad.float() ** 2).sum()) for p in ps if p.grad is not None) ** 0.5)  # noqa
        flat = lambda ps: torch.cat([p.grad.flatten() if p.grad is not None else torch.zeros(p.numel()) for p in ps])  # noqa
        return {"head": g(head), "trunk": g(trunk), "all": g(params)}, flat(trunk)

    out = model.loss(batch, kl_weight=1.0, reward_weight=tcfg.reward_weight, kl_balance=tcfg.kl_balance,
                     free_nats=tcfg.kl_free_nats)
    r = batch["rewards"][:, 2:]
    cls = model.reward_head.classes(r)
    w_used = float((model.reward_class_weights[cls]).mean())
    g_frame, t_frame = grad_of(out["recon"])
    # the reward term as the loss weights it: reward_weight * class-weighted cross-entropy
    w_term = out["loss"] - out["recon"] - (out["kl"] if model.latent else 0)
    g_rew, t_rew = grad_of(w_term)
    g_all, _ = grad_of(out["loss"])
    scale = min(1.0, tcfg.grad_clip / g_all["all"]) if tcfg.grad_clip > 0 else 1.0
    res = {
        "model": mcfg.model, "checkpoint": args.checkpoint, "batch": args.batch, "reward_weight": tcfg.reward_weight,
        "class_values": values, "class_weights": [round(w, 3) for w in weights],
        "mean_class_weight_of_batch_steps": round(w_used, 3), "nonzero_steps_in_batch": int((r != 0).sum()),
        "loss_terms": {k: round(float(v.detach()), 4) for k, v in out.items()},
        "grad_norm_frame_term": g_frame, "grad_norm_weighted_reward_term": g_rew, "grad_norm_total": g_all,
        "clip_scale": scale,
        "head_share_of_clipped_global_grad_sq": (g_all["head"] / g_all["all"]) ** 2,
        "trunk_cos_reward_vs_frame": float(torch.nn.functional.cosine_similarity(t_rew, t_frame, dim=0)),
        "trunk_ratio_reward_to_frame": g_rew["trunk"] / max(g_frame["trunk"], 1e-12),
    }
    print(json.dumps(res, indent=1))


def probe(args) -> None:
    from ssmlib.checkpoint import load_model
    from ssmlib.data.store import open_dataset
    from ssmlib.data.windows import WindowSampler
    from ssmlib.models.blocks import CategoricalRewardHead
    from ssmlib.stats import auc
    from ssmlib.train import reward_classes

    ds = open_dataset(args.data, verify=False)
    m = load_model(args.checkpoint, device="cpu")
    values, weights = reward_classes(ds, m.cfg)
    T = args.horizon

    @torch.no_grad()
    def states(split, n):
        sampler = WindowSampler(ds, split, horizon=T, seed=1)
        idx = torch.linspace(0, len(sampler) - 1, min(n, len(sampler))).long()
        out = {"s": [], "prev": [], "a": [], "r": [], "own": []}
        for chunk in idx.split(64):
            b = sampler.gather(sampler.starts[chunk])
            acts = b["actions"][:, 2:2 + T]
            s0 = m.initial_state(b["frames"][:, :3])
            roll = m.imagine(s0, acts, sample=False)
            S = roll.features[:, :, :m.state_channels]
            out["s"].append(S), out["prev"].append(torch.cat([s0.s[:, None], S[:, :-1]], 1))
            out["a"].append(acts), out["r"].append(b["rewards"][:, 2:2 + T]), out["own"].append(
                m.reward_p_nonzero(roll.reward_logits))
        return {k: torch.cat(v) for k, v in out.items()}

    import os
    if args.cache and os.path.exists(args.cache):
        tr, te = torch.load(args.cache)
    else:
        tr, te = states("train", args.train_windows), states("test", args.test_windows)
        if args.cache:
            torch.save((tr, te), args.cache)
    print("states", len(tr["s"]), len(te["s"]), flush=True)
    Cs, A, h, w = m.state_channels, m.action_channels, m.h, m.w
    res = {"checkpoint": str(args.checkpoint), "train_windows": len(tr["s"]), "test_windows": len(te["s"]),
           "steps": args.steps, "batch": args.batch, "lr": args.lr, "auc_by_h": {}}
    y = (te["r"] != 0).numpy()
    res["auc_by_h"]["checkpoint_head"] = [round(auc(te["own"][:, j].numpy(), y[:, j]), 3) for j in range(T)]
    for name, cin, act, prev in (("s_t", Cs, 0, False), ("s_t+a", Cs, A, False), ("s_prev+s_t+a", 2 * Cs, A, True)):
        torch.manual_seed(0)
        head = CategoricalRewardHead(cin, h, w, values, m.cfg.channel_scale, action_channels=act)
        wts = torch.tensor(weights)
        opt = torch.optim.Adam(head.parameters(), lr=args.lr)

        def inputs(d, i, j):
            s = torch.cat([d["prev"][i, j], d["s"][i, j]], 1) if prev else d["s"][i, j]
            return s, m.tile(d["a"][i, j]).float() if act else None

        N = len(tr["s"])
        for _ in range(args.steps):
            i, j = torch.randint(N, (args.batch,)), torch.randint(T, (args.batch,))
            c = head.classes(tr["r"][i, j])
            lp = head(*inputs(tr, i, j)).log_softmax(-1).gather(1, c[:, None])[:, 0]
            loss = -(wts[c] * lp).sum() / wts[c].sum()
            opt.zero_grad(), loss.backward(), opt.step()
        with torch.no_grad():
            n = len(te["s"])
            p = torch.stack([1 - head(*inputs(te, torch.arange(n), torch.full((n,), j))).softmax(-1)[:, head.zero_class]
                             for j in range(T)], 1)
        res["auc_by_h"][name] = [round(auc(p[:, j].numpy(), y[:, j]), 3) for j in range(T)]
        res["auc_by_h"][name + " (total)"] = round(auc(p.numpy(), y), 3)
        print(name, res["auc_by_h"][name], flush=True)
    print(json.dumps(res, indent=1))


def train(args, rest) -> int:
    from ssmlib.models.base import EnvironmentModel

    if args.no_class_weights:
        EnvironmentModel.set_reward_class_weights = lambda self, w: None  # every weight stays 1
    from ssmlib.__main__ import main
    sys.argv = ["ssmlib", "train", *rest]
    return main()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("align")
    a.add_argument("--data", required=True)
    g = sub.add_parser("grads")
    g.add_argument("--data", required=True)
    g.add_argument("--model", default="dSSM-DET")
    g.add_argument("--checkpoint", default=None, help="measure at these trained weights (else a fresh model)")
    g.add_argument("--batch", type=int, default=32)
    g.add_argument("--set", action="append", default=[])
    q = sub.add_parser("probe")
    q.add_argument("--checkpoint", required=True)
    q.add_argument("--data", required=True)
    q.add_argument("--horizon", type=int, default=5)
    q.add_argument("--train-windows", type=int, default=2000)
    q.add_argument("--test-windows", type=int, default=600)
    q.add_argument("--steps", type=int, default=1500)
    q.add_argument("--batch", type=int, default=256)
    q.add_argument("--lr", type=float, default=1e-3)
    q.add_argument("--cache", default=None, help="a .pt file of the states (written once, then read)")
    t = sub.add_parser("train")
    t.add_argument("--no-class-weights", action="store_true")
    args, rest = p.parse_known_args()
    if args.cmd == "align":
        align(args)
    elif args.cmd == "grads":
        grads(args)
    elif args.cmd == "probe":
        probe(args)
    else:
        return train(args, [x for x in rest if x != "--"]) or 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
