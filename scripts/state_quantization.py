"""How much smaller could an I2A campaign run's committed state be, and at what cost to its restart?

An open run commits its weights and its RMSprop averages (``square_avg``) in bfloat16: 4 bytes per parameter,
3.7 MiB for model-free and 9.4-9.7 MiB for an I2A or copy agent, against a state budget of 8 MiB
(``i2a_campaign.STATE_BUDGET_MIB``). This script measures, on the committed states, what storing the averages
as b-bit codes of log2(v) would do. Each tensor's range runs from a floor of (eps / 100)^2 up to its largest
value, with RMSprop's eps = 1e-5, below which sqrt(v) moves the step's denominator by under 1%. The measure
is the per-parameter step-size factor after a restart from such state: (sqrt(v) + eps) / (sqrt(v_hat) + eps).
It compares no other restart. Nothing in the campaign changes: the measurement informs a design change,
recorded where the campaign's config is amended if one is made.

Usage: python scripts/state_quantization.py [--bits 4,6,8] [--out results/i2a/MsPacman/campaign/state-quantization.json]
"""

import argparse
from pathlib import Path

import torch

from ssmlib import checkpoint as ckpt
from ssmlib.agents.checkpoint import KIND
from ssmlib.agents.log_codes import FLOOR, step_factors
from ssmlib.agents.a2c import RMSPROP_EPS
from ssmlib.io import atomic_write_json, provenance

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--states", default="checkpoints/i2a_campaign/MsPacman", help="folder of committed states")
    ap.add_argument("--bits", default="4,6,8")
    ap.add_argument("--out", default="results/i2a/MsPacman/campaign/state-quantization.json")
    args = ap.parse_args()
    qs = [0.0, 0.001, 0.01, 0.5, 0.99, 0.999, 1.0]
    rows = []
    for path in sorted(Path(args.states).glob("*.safetensors")):
        _, tensors = ckpt.load_checkpoint(path, kind=KIND)
        averages = [v for k, v in tensors.items() if k.endswith("square_avg")]
        weights = sum(v.numel() for k, v in tensors.items() if k.startswith("agent."))
        for bits in map(int, args.bits.split(",")):
            f = torch.cat([step_factors(v, bits) for v in averages])
            sample = f[torch.randperm(len(f), generator=torch.Generator().manual_seed(0))[:1_000_000]]
            quant = torch.quantile(sample, torch.tensor(qs[1:-1])).tolist()
            rows.append({"state": path.name, "bits": bits, "averages": len(f), "parameters": weights,
                         "state_mib_bf16_weights": (2 * weights + bits / 8 * len(f)) / 2**20,
                         "step_factor_quantiles": dict(zip(map(str, qs), [f.min().item(), *quant, f.max().item()]))})
            q = rows[-1]["step_factor_quantiles"]
            print(f"{path.name} {bits} bits: {rows[-1]['state_mib_bf16_weights']:.2f} MiB, step factor "
                  f"min {q['0.0']:.3f}, 1% {q['0.01']:.3f}, 99% {q['0.99']:.3f}, max {q['1.0']:.3f}")
    atomic_write_json(args.out, {"rows": rows, "eps": RMSPROP_EPS, "floor": FLOOR, "provenance": provenance("cpu"),
                                 "note": __doc__.split("\n\n")[1]})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
