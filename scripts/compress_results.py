"""Store the repository's larger finished results files gzip-compressed, to keep the tracked tree small.

The whole tracked tree travels with every GPU call and must stay under 56 MiB, while the two campaigns add
files lease by lease. JSON and JSON-lines results compress about 4x. A file is compressed here when it

* ends in ``.json`` or ``.jsonl`` and has at least ``--min-bytes`` (default 20,000),
* does not lie under a ``campaign`` folder and is not a campaign's sample-count study (``*-campaign.json``):
  the campaigns' own code writes and rewrites those,
* is not cited by its path in the README, a results README, a notebook, a script, the package or a test (a
  reader following the path must find it), and does not lie in a folder that the book lists by suffix
  (``GLOBBED``: ``speed/*.json``, ``bench_collect/*.json``, ``bench_collect_workers/*.json``).

``NAME`` becomes ``NAME.gz`` (gzip, no time stamp, so equal contents give equal bytes), written atomically before
``NAME`` is deleted. Every reader in ``ssmlib`` finds the compressed sibling (``ssmlib.io.stored_path``), and a
study that writes ``NAME`` again deletes the stale ``NAME.gz`` (``studies.common.copy_files``, ``save_run``).

Usage: python scripts/compress_results.py [--dry-run] [--min-bytes N]
       python scripts/compress_results.py --record BASE [--out FILE]   (measure, from git, what it did since BASE)
"""

import argparse
import subprocess
from pathlib import Path

from ssmlib.config import REPO_ROOT, RESULTS_DIR
from ssmlib.io import atomic_write_json, atomic_write_packed, drop_other_form, provenance

RECORD = RESULTS_DIR / "repo_size" / "compression.json"
"""What the compression of 2026-12-04 did, measured from git (``--record``): the README's figures come from it."""

CITING = ("README.md", "results/**/*.md", "notebooks/*.py", "scripts/*", "ssmlib/**/*.py", "tests/*.py")
"""Where a path that must stay as written can be cited."""


GLOBBED = ("speed", "bench_collect", "bench_collect_workers")
"""Folders of results/ whose files the book and the claims find with globs such as ``*.json``."""


def cited_text(root: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for pattern in CITING for p in sorted(root.glob(pattern))
                     if p.is_file())


def compressible(root: Path, min_bytes: int = 20_000, cited: str | None = None) -> list[Path]:
    """The results files this script compresses (see the module's docstring), sorted."""
    cited = cited_text(root) if cited is None else cited
    out = []
    for p in sorted((root / "results").rglob("*")):
        rel = p.relative_to(root)
        if (p.is_file() and p.suffix in (".json", ".jsonl") and p.stat().st_size >= min_bytes
                and "campaign" not in rel.parts[:-1] and not p.name.endswith("-campaign.json")
                and rel.parts[1] not in GLOBBED
                and str(rel) not in cited):
            out.append(p)
    return out


def compress(path: Path) -> int:
    """``path`` -> ``path.gz`` (atomic), then ``path`` deleted; returns the compressed size."""
    packed = path.with_name(path.name + ".gz")
    atomic_write_packed(packed, path.read_bytes())
    drop_other_form(packed)
    return packed.stat().st_size


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True).stdout


def tree_sizes(root: Path, rev: str, under: str = "") -> dict[str, int]:
    """Bytes of every file tracked at ``rev`` (under the folder ``under``)."""
    out = {}
    for line in _git(root, "ls-tree", "-r", "-l", rev, *([under] if under else [])).splitlines():
        meta, path = line.split("\t", 1)
        size = meta.split()[3]
        if size != "-":
            out[path] = int(size)
    return out


def record(root: Path, base: str, head: str = "HEAD", calls: int = 12) -> dict:
    """What compression did between ``base`` and ``head``, measured from git: every results file stored as
    ``NAME.gz`` at ``head`` that was ``NAME`` at ``base`` (bytes before and after), the tracked tree's bytes at both,
    and the bytes of results/ at each of the last ``calls`` campaign-call commits up to ``base`` (what a call adds)."""
    before, after = tree_sizes(root, base), tree_sizes(root, head)
    files = [{"path": p, "bytes_before": before[p], "bytes_after": after[p + ".gz"]} for p in sorted(before)
             if p.startswith("results/") and p not in after and p + ".gz" in after]
    log = _git(root, "log", f"-{calls}", "--format=%H %cI %s", "--grep=^campaign: call", base).splitlines()
    growth = [{"commit": h[:7], "time": t, "results_bytes": sum(tree_sizes(root, h, "results").values())}
              for h, t, _ in (line.split(" ", 2) for line in reversed(log))]
    return {"base": _git(root, "rev-parse", "--short", base).strip(), "head": _git(root, "rev-parse", "--short", head).strip(),
            "files": files, "bytes_before": sum(f["bytes_before"] for f in files),
            "bytes_after": sum(f["bytes_after"] for f in files),
            "tree_bytes_base": sum(before.values()), "tree_bytes_head": sum(after.values()),
            "results_bytes_at_campaign_calls": growth, "provenance": provenance()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="list what would be compressed, change nothing")
    ap.add_argument("--min-bytes", type=int, default=20_000, help="files smaller than this stay as they are")
    ap.add_argument("--record", metavar="BASE", help="instead: measure from git what compression did since the "
                    "commit BASE and write it to --out (nothing is compressed)")
    ap.add_argument("--out", type=Path, default=RECORD, help=f"where --record writes (default {RECORD})")
    args = ap.parse_args()
    if args.record:
        doc = record(REPO_ROOT, args.record)
        atomic_write_json(args.out, doc)
        print(f"wrote {args.out}: {len(doc['files'])} files, {doc['bytes_before']:,} -> {doc['bytes_after']:,} bytes; "
              f"tree {doc['tree_bytes_base']:,} -> {doc['tree_bytes_head']:,} bytes")
        return
    files = compressible(REPO_ROOT, args.min_bytes)
    before = sum(p.stat().st_size for p in files)
    after = 0
    for p in files:
        after += 0 if args.dry_run else compress(p)
        print(p.relative_to(REPO_ROOT))
    print(f"{len(files)} files, {before:,} bytes" + ("" if args.dry_run else f" -> {after:,} bytes"))


if __name__ == "__main__":
    main()
