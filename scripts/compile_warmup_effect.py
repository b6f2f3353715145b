"""What a bare machine's first compilation costs the model-zoo campaign's runs, and what the compile warm-up buys
back, from the committed lease logs and lineages (``ssmlib.studies.compile_warmup`` says how).

Usage: python scripts/compile_warmup_effect.py [--game MsPacman] [--out results/model_zoo/MsPacman/campaign/compile-warmup.json]
"""

import argparse
import json
from pathlib import Path

from ssmlib.studies import compile_warmup


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--game", default="MsPacman")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    path = compile_warmup.write(args.game, out=args.out)
    doc = json.loads(path.read_text())
    for group, s in doc["summary"].items():
        print(f"{group:45s} {s['runs']:2d} runs  overhead median {s['overhead_s']['median']:6.1f} s "
              f"[{s['overhead_s']['min']:.1f}, {s['overhead_s']['max']:.1f}]  lost {s['lost_s']['median']:6.1f} s "
              f"[{s['lost_s']['min']:.1f}, {s['lost_s']['max']:.1f}]  share of window "
              f"{s['share']['median']:.3f} [{s['share']['min']:.3f}, {s['share']['max']:.3f}]  first step "
              + ("-" if s["first_step_s"] is None else
                 f"{s['first_step_s']['median']:.1f} s [{s['first_step_s']['min']:.1f}, {s['first_step_s']['max']:.1f}]"))
    for r in doc["left_out"]:
        print(f"left out: {r['log']} {r['run']} ({r['kind']}): trained {r['trained_s']} s of {r['given_s']} given, "
              f"first step {r['first_step_s']} s; {r['why']}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
