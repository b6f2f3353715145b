"""How well the I2A campaign's committed state compresses with xz, and what that predicts for an I2A run's state.

The measurement behind ``i2a_campaign.STATE_BUDGET_MIB`` (8.5 by the design change of 2026-12-04, 9.0 since 2026-12-05). Per open run's
committed state (``checkpoints/i2a_campaign/<game>/<run>.safetensors.xz``): its raw and stored bytes, and the xz
ratio of its two parts alone, the bfloat16 weights and the uint8 log codes of RMSprop's averages. No I2A state
exists before the gated arms start, so the I2A estimate combines the trained pilot I2A agent's bfloat16 weights
(the I2A the book serves, ``ssmlib.pretrained.pretrained_agent_path``: the pilot's
``checkpoints/agents/MsPacman-i2a-distill.safetensors`` until the campaign keeps a run; 2 bytes a parameter) with the codes' ratio (1 byte a
parameter). Also the tree a GPU call carries (``ssmlib.tree_size``).

Usage: python scripts/state_compression.py [--game MsPacman] [--out results/i2a/MsPacman/campaign/state-compression.json]
"""

import argparse
import lzma
from pathlib import Path

import torch

from ssmlib.config import REPO_ROOT
from ssmlib.pretrained import pretrained_agent_path
from ssmlib.io import atomic_write_json, provenance
from ssmlib.studies import i2a_campaign as ic
from ssmlib.studies.common import read_json
from ssmlib.tree_size import travelling_bytes



def xz_ratio(tensors, dtype) -> tuple[int, float]:
    """Bytes of the tensors of ``dtype`` (in name order) and the xz ratio of their concatenation."""
    blob = b"".join(v.contiguous().view(torch.uint8).numpy().tobytes() for _, v in sorted(tensors.items())
                    if v.dtype == dtype and v.dim())
    return len(blob), len(lzma.compress(blob, preset=ic.XZ_PRESET)) / len(blob)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--game", default="MsPacman")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    out = args.out or ic.campaign_dir(args.game) / "state-compression.json"
    states = []
    for path in sorted(ic.state_dir(args.game).glob(f"*{ic.STATE_SUFFIX}")):
        side = read_json(ic.state_sidecar(path))
        _, tensors = ic.load_state(path)
        wb, wr = xz_ratio(tensors, torch.bfloat16)
        cb, cr = xz_ratio(tensors, torch.uint8)
        states.append({"state": str(path.relative_to(REPO_ROOT)), "step": side["step"], "raw_bytes": side["raw_bytes"],
                       "stored_bytes": path.stat().st_size, "ratio": path.stat().st_size / side["raw_bytes"],
                       "weights_bytes": wb, "weights_ratio": wr, "codes_bytes": cb, "codes_ratio": cr})
    from safetensors.torch import load_file

    # the served I2A's weights: the pilot's until the campaign keeps a run of the arm (then the pilot is retired)
    pilot = pretrained_agent_path(args.game, "i2a-distill-dSSM-DET")
    pb, pr = xz_ratio(load_file(pilot), torch.bfloat16)
    codes = max((s["codes_ratio"] for s in states), default=None)
    doc = {"preset": ic.XZ_PRESET, "states": states,
           "pilot_i2a_weights": {"path": str(pilot.relative_to(REPO_ROOT)), "bytes": pb, "ratio": pr},
           "i2a_state_ratio_estimate": None if codes is None else (2 * pr + codes) / 3,
           "estimate": "(2 x the pilot I2A weights' ratio + the largest codes' ratio) / 3: 2 bytes of bfloat16 weights "
                       "and 1 byte of codes per parameter",
           "tree_bytes": travelling_bytes(), "provenance": provenance()}
    atomic_write_json(out, doc)
    for s in states:
        print(f"{s['state']}: {s['raw_bytes']:,} -> {s['stored_bytes']:,} ({s['ratio']:.3f}); weights "
              f"{s['weights_ratio']:.3f}, codes {s['codes_ratio']:.3f}")
    print(f"pilot I2A weights {pr:.3f}; I2A state estimate {doc['i2a_state_ratio_estimate']}; tree {doc['tree_bytes']:,}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
