"""How much smaller could an I2A campaign run's committed state be, and at what cost to its restart?

The measurement behind the campaign's ``state_average_bits`` (the design change of 2026-12-03). Before it, an open
run committed its weights and its RMSprop averages (``square_avg``) in bfloat16: 4 bytes per parameter, 3.7 MiB for
model-free and 9.4-9.7 MiB for an I2A or copy agent, against a state budget of 8 MiB
(``i2a_campaign.STATE_BUDGET_MIB``). This script measures, on states with bfloat16 averages, what storing the
averages as b-bit codes of log2(v) (``ssmlib.agents.log_codes``) does. Each tensor's range runs from its smallest
log2 max(v, floor) to its largest log2 v, with a floor of (eps / 100)^2 and RMSprop's eps = 1e-5, below which
sqrt(v) moves the step's denominator by under 1%. The measure is the per-parameter step-size factor after a
restart from such state: (sqrt(v) + eps) / (sqrt(v_hat) + eps). The codes are stored as uint8 whatever the bits,
so the size is 3 bytes per parameter for any b <= 8; the output also gives every arm's state size both ways.
States already stored as codes are refused (re-coding decoded codes is exact and measures nothing); the campaign's
model-free-s0/-s1 states with bfloat16 averages are in the git history (commit fb6084b,
checkpoints/i2a_campaign/MsPacman/).

Usage: python scripts/state_quantization.py --states <folder of states with bf16 averages> [--bits 4,6,8]
       [--out results/i2a/MsPacman/campaign/state-quantization.json]
"""

import argparse
from pathlib import Path

import torch

from ssmlib import checkpoint as ckpt
from ssmlib.agents.checkpoint import KIND
from ssmlib.agents.log_codes import FLOOR, is_average, step_factors
from ssmlib.agents.a2c import RMSPROP_EPS
from ssmlib.errors import SsmlibError
from ssmlib.io import atomic_write_json, provenance, sha256_file


def arm_state_mib(game: str, env_models: dict[str, str]) -> dict[str, dict]:
    """Per arm of the I2A campaign: its agent's parameters and its committed state's MiB with 8-bit averages and
    with bfloat16 ones (``i2a_campaign.state_mib``), each agent built with ``env_models``' weights."""
    import dataclasses

    from ssmlib.studies import i2a_campaign as ic

    cfg = ic.load_config(game)
    cfg = dataclasses.replace(cfg, env_models={m: {"path": p} for m, p in env_models.items()})
    out = {}
    for run in ic.campaign_runs(cfg):
        if run.seed or run.arm["name"] in out:
            continue
        coded = ic.state_mib(dataclasses.replace(cfg, state_average_bits=8), run)
        out[run.arm["name"]] = {"parameters": round(coded * 2**20 / 3), "mib_coded": coded,
                                "mib_bf16": ic.state_mib(dataclasses.replace(cfg, state_average_bits=0), run)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--states", required=True, help="folder of committed states with bfloat16 averages")
    ap.add_argument("--source", default="", help="where the states come from, recorded in the output (default: --states)")
    ap.add_argument("--bits", default="4,6,8")
    ap.add_argument("--out", default="results/i2a/MsPacman/campaign/state-quantization.json")
    ap.add_argument("--game", default="MsPacman", help="the I2A campaign whose arms' state sizes are reported too")
    ap.add_argument("--env-models", default="dSSM-DET=checkpoints/campaign/MsPacman/dSSM-DET-s2.safetensors,"
                    "sSSM=checkpoints/campaign/MsPacman/sSSM-rp-s0.safetensors",
                    help="model=weights the arms' agents are built with, until the campaign has chosen its own (a "
                         "state's size depends on the model's action count only)")
    args = ap.parse_args()
    qs = [0.0, 0.001, 0.01, 0.5, 0.99, 0.999, 1.0]
    rows = []
    for path in sorted(Path(args.states).glob("*.safetensors")):
        meta, tensors = ckpt.load_checkpoint(path, kind=KIND)
        if meta.get("state_average_bits"):
            raise SsmlibError(f"{path} stores its averages as {meta['state_average_bits']}-bit codes already; give a "
                              "folder of states with bfloat16 averages (e.g. from git history, see --help)")
        averages = [v for k, v in tensors.items() if is_average(k) and v.dim()]
        weights = sum(v.numel() for k, v in tensors.items() if k.startswith("agent."))
        for bits in map(int, args.bits.split(",")):
            f = torch.cat([step_factors(v, bits) for v in averages])
            sample = f[torch.randperm(len(f), generator=torch.Generator().manual_seed(0))[:1_000_000]]
            quant = torch.quantile(sample, torch.tensor(qs[1:-1])).tolist()
            rows.append({"state": path.name, "sha256": sha256_file(path), "bits": bits, "averages": len(f),
                         "parameters": weights,
                         "state_mib_bf16_weights": (2 * weights + len(f)) / 2**20,  # one uint8 code per average
                         "step_factor_quantiles": dict(zip(map(str, qs), [f.min().item(), *quant, f.max().item()]))})
            q = rows[-1]["step_factor_quantiles"]
            print(f"{path.name} {bits} bits: {rows[-1]['state_mib_bf16_weights']:.2f} MiB, step factor "
                  f"min {q['0.0']:.3f}, 1% {q['0.01']:.3f}, 99% {q['0.99']:.3f}, max {q['1.0']:.3f}")
    arms = arm_state_mib(args.game, dict(x.split("=", 1) for x in args.env_models.split(",")))
    for arm, a in arms.items():
        print(f"{arm}: {a['parameters']:,} parameters, {a['mib_coded']:.2f} MiB coded, {a['mib_bf16']:.2f} MiB in bf16")
    atomic_write_json(args.out, {"rows": rows, "arms": arms, "env_models": args.env_models, "eps": RMSPROP_EPS,
                                 "floor": FLOOR, "states": args.source or str(args.states),
                                 "provenance": provenance("cpu"), "note": __doc__.split("\n\n")[1]})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    try:
        main()
    except SsmlibError as e:
        raise SystemExit(f"error: {e}") from None
