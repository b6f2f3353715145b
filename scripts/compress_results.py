"""Store the repository's larger finished results files gzip-compressed, to keep the tracked tree small.

The whole tracked tree travels with every GPU call and must stay under 56 MiB, while the two campaigns add
files lease by lease. JSON and JSON-lines results compress about 4x. A file is compressed here when it

* ends in ``.json`` or ``.jsonl`` and has at least ``--min-bytes`` (default 20,000),
* does not lie under a ``campaign`` folder and is not a campaign's sample-count study (``*-campaign.json``):
  the campaigns' own code writes and rewrites those,
* is not cited by its path in the README, a results README, a notebook, a script, the package or a test (a
  reader following the path must find it), and does not lie in a folder that the book lists by suffix
  (``GLOBBED``: ``speed/*.json``, ``bench_collect/*.json``).

``NAME`` becomes ``NAME.gz`` (gzip, no time stamp, so equal contents give equal bytes), written atomically before
``NAME`` is deleted. Every reader in ``ssmlib`` finds the compressed sibling (``ssmlib.io.stored_path``), and a
study that writes ``NAME`` again deletes the stale ``NAME.gz`` (``studies.common.copy_files``, ``save_run``).

Usage: python scripts/compress_results.py [--dry-run] [--min-bytes N]
"""

import argparse
import gzip
from pathlib import Path

from ssmlib.config import REPO_ROOT
from ssmlib.io import atomic_write_bytes

CITING = ("README.md", "results/**/*.md", "notebooks/*.py", "scripts/*", "ssmlib/**/*.py", "tests/*.py")
"""Where a path that must stay as written can be cited."""


GLOBBED = ("speed", "bench_collect")
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
    data = gzip.compress(path.read_bytes(), compresslevel=9, mtime=0)
    atomic_write_bytes(path.with_name(path.name + ".gz"), data)
    path.unlink()
    return len(data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="list what would be compressed, change nothing")
    ap.add_argument("--min-bytes", type=int, default=20_000, help="files smaller than this stay as they are")
    args = ap.parse_args()
    files = compressible(REPO_ROOT, args.min_bytes)
    before = sum(p.stat().st_size for p in files)
    after = 0
    for p in files:
        after += 0 if args.dry_run else compress(p)
        print(p.relative_to(REPO_ROOT))
    print(f"{len(files)} files, {before:,} bytes" + ("" if args.dry_run else f" -> {after:,} bytes"))


if __name__ == "__main__":
    main()
