#!/usr/bin/env python
"""The two largest vendored scripts of the book, kept in git only gzip-compressed.

    python book/vendor_gz.py                    # unpack (what `make book` and `make test` run first)
    python book/vendor_gz.py --pack [PATH...]   # after scripts/vendor_assets.sh: re-create the .gz copies
                                                # and the sha256 lines (PATH under book/extra/vendor/;
                                                # default: those already in book/vendor-gz/)

book/extra/ is copied verbatim into the built HTML (html_extra_path in _config.yml), so the compressed
copies live outside it, in book/vendor-gz/<path under book/extra/vendor>.gz; the uncompressed files
(git-ignored) are written next to the other vendored files from them before every build. The sha256
of every uncompressed file is recorded in book/extra/vendor/VERSIONS.txt ("<sha256>  <path>" lines);
unpacking refuses a file whose content differs, with one line naming it.

Standard library only (no `gzip` binary, no venv needed): Python 3.11 on a fresh clone is enough.
Exit status 0 on success, 1 with one line on stderr otherwise.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GZ_DIR = ROOT / "book" / "vendor-gz"
VENDOR = ROOT / "book" / "extra" / "vendor"
VERSIONS = VENDOR / "VERSIONS.txt"
SHA_LINE = re.compile(r"^([0-9a-f]{64})  (\S+)$")
SHA_HEADER = "sha256 of the files kept in git only as book/vendor-gz/<path>.gz (unpacked by book/vendor_gz.py):"


class VendorError(Exception):
    """One line naming the file at fault."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def recorded_sha256(versions: Path = VERSIONS) -> dict[str, str]:
    """{path under vendor/: sha256} from the "<sha256>  <path>" lines of VERSIONS.txt."""
    out = {}
    for line in versions.read_text().splitlines():
        m = SHA_LINE.match(line.strip())
        if m:
            out[m.group(2)] = m.group(1)
    return out


def _write_atomic(dest: Path, data: bytes) -> None:
    """Write through a temporary file in dest's folder, then rename: a reader never sees half a file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def unpack(gz_dir: Path = GZ_DIR, vendor: Path = VENDOR, versions: Path = VERSIONS) -> list[Path]:
    """(Re)create vendor/<p> from every gz_dir/<p>.gz that is missing there or stale; returns those written.

    A file already there with the recorded sha256 is left alone. One that differs is rewritten if it
    is older than its .gz; if it is newer (edited, or re-vendored without --pack) this refuses it
    rather than overwrite it. The decompressed bytes must have the recorded sha256, else nothing is
    written. Raises VendorError.
    """
    shas = recorded_sha256(versions)
    written = []
    for gz in sorted(gz_dir.rglob("*.gz")):
        rel = gz.relative_to(gz_dir).as_posix()[: -len(".gz")]
        dest = vendor / rel
        want = shas.get(rel)
        if want is None:
            raise VendorError(f"{_rel(versions)} records no sha256 for {rel} ({_rel(gz)}): run book/vendor_gz.py --pack")
        if dest.is_file():
            if _sha256(dest.read_bytes()) == want:
                continue
            if dest.stat().st_mtime > gz.stat().st_mtime:
                raise VendorError(f"{_rel(dest)} differs from the sha256 in {_rel(versions)} and is newer than "
                                  f"{_rel(gz)}: delete it, or run book/vendor_gz.py --pack to keep it")
        try:
            data = gzip.decompress(gz.read_bytes())
        except (OSError, EOFError) as exc:
            raise VendorError(f"{_rel(gz)} is not a readable gzip file: {exc}") from None
        got = _sha256(data)
        if got != want:
            raise VendorError(f"{_rel(gz)} unpacks to sha256 {got}, not the {want} recorded in {_rel(versions)}")
        _write_atomic(dest, data)
        written.append(dest)
    return written


def pack(rels: list[str], gz_dir: Path = GZ_DIR, vendor: Path = VENDOR, versions: Path = VERSIONS) -> None:
    """Write gz_dir/<rel>.gz (level 9, no name, mtime 0: deterministic) from vendor/<rel> and replace
    the sha256 lines of VERSIONS.txt with those of `rels`."""
    lines = []
    for rel in rels:
        data = (vendor / rel).read_bytes()
        _write_atomic(gz_dir / f"{rel}.gz", gzip.compress(data, compresslevel=9, mtime=0))
        lines.append(f"{_sha256(data)}  {rel}")
    kept = [ln for ln in versions.read_text().splitlines() if not SHA_LINE.match(ln.strip()) and ln != SHA_HEADER]
    _write_atomic(versions, ("\n".join([*kept, SHA_HEADER, *lines]) + "\n").encode())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["--pack"]:
            rels = argv[1:] or sorted(gz.relative_to(GZ_DIR).as_posix()[: -len(".gz")] for gz in GZ_DIR.rglob("*.gz"))
            if not rels:
                raise VendorError(f"nothing to pack: name paths under {_rel(VENDOR)}/")
            pack(rels)
            print(f"packed {', '.join(rels)} into {_rel(GZ_DIR)}/; sha256 recorded in {_rel(VERSIONS)}")
        elif not argv:
            for path in unpack():
                print(f"unpacked {_rel(path)}")
        else:
            print(__doc__.split("\n\n")[1], file=sys.stderr)
            return 2
    except (VendorError, OSError) as exc:
        print(f"vendor unpack FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
