"""Rebuild model-zoo campaign lineages that back-to-back calls on one warm machine folded into one lease.

Before scripts/lease_start.sh kept a warm state, each call's tree replaced the lineage the previous call had
written, so every call recorded one lease from step 0 (frames right, per-lease record lost). Given the
campaign tars of those calls in order, this writes each run's lineage with one lease per call
(ssmlib.studies.zoo_campaign.join_snapshots), each lease's own metrics log, and a note saying so.
Unpack the LAST tar at the repository root first: the runs' evaluations and weights are taken from the tree.
Usage: python scripts/join_lineage_snapshots.py --game MsPacman --runs dSSM-VAE-s0,dSSM-VAE-s1 --note "..." a.tar b.tar ...
"""
import argparse
import json
import tarfile
from pathlib import Path

from ssmlib.io import atomic_write_json
from ssmlib.studies import zoo_campaign as zc
from ssmlib.studies.common import read_json


def member(tar: Path, name: str) -> str:
    with tarfile.open(tar) as t:
        return t.extractfile(name).read().decode()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tars", nargs="+", type=Path, help="the calls' campaign.tar files, oldest first")
    ap.add_argument("--game", default="MsPacman")
    ap.add_argument("--runs", required=True, help="comma-separated run names")
    ap.add_argument("--note", required=True, help="why the lineage was rebuilt (stored in it)")
    args = ap.parse_args()
    cfg = zc.load_config(args.game)
    for run in args.runs.split(","):
        inner = f"results/model_zoo/{args.game}/campaign/{run}"
        snaps = [json.loads(member(t, f"{inner}/lineage.json")) for t in args.tars]
        logs = [[json.loads(x) for x in member(t, f"{inner}/metrics-lease1.jsonl").splitlines() if x.strip()]
                for t in args.tars]
        lin, own = zc.join_snapshots(snaps, logs, cfg, args.note)
        out = zc.campaign_dir(args.game) / run
        for old in [*out.glob("metrics-lease*.jsonl"), *out.glob("metrics-lease*.jsonl.gz")]:
            old.unlink()
        for k, rows in enumerate(own, start=1):
            (out / f"metrics-lease{k}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        ev = read_json(out / zc.EVAL_FILE)
        ev["lease"] = len(lin["leases"])
        atomic_write_json(out / zc.EVAL_FILE, ev, indent=None)
        atomic_write_json(out / "lineage.json", lin)
        print(run, [(x["lease"], x["frames_end"], round(x["train_wall_s"]), x["compile"]) for x in lin["leases"]])


if __name__ == "__main__":
    main()
