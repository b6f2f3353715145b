"""book/vendor_gz.py: the vendored scripts kept in git gzip-compressed are unpacked before the book is
built, atomically, and only when their content matches the sha256 recorded in VERSIONS.txt.

Fast, CPU, in tmp_path (the repository's files are only read).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("_ssmlib_vendor_gz", ROOT / "book" / "vendor_gz.py")
vendor_gz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(vendor_gz)

DATA = b"define('x', [], function () { return 42; });\n" * 100


def _layout(tmp_path: Path, data: bytes = DATA, sha: str | None = None):
    gz_dir, vendor = tmp_path / "vendor-gz", tmp_path / "extra" / "vendor"
    (gz_dir / "lib").mkdir(parents=True)
    vendor.mkdir(parents=True)
    (gz_dir / "lib" / "a.js.gz").write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
    versions = vendor / "VERSIONS.txt"
    versions.write_text(f"lib 1.0 (npm)\n{sha or hashlib.sha256(data).hexdigest()}  lib/a.js\n")
    return gz_dir, vendor, versions


def test_unpacks_a_missing_file(tmp_path):
    gz_dir, vendor, versions = _layout(tmp_path)
    assert vendor_gz.unpack(gz_dir, vendor, versions) == [vendor / "lib" / "a.js"]
    assert (vendor / "lib" / "a.js").read_bytes() == DATA
    assert sorted(p.name for p in (vendor / "lib").iterdir()) == ["a.js"], "a temporary file was left behind"


def test_refuses_a_wrong_sha256_and_writes_nothing(tmp_path):
    gz_dir, vendor, versions = _layout(tmp_path, sha="0" * 64)
    with pytest.raises(vendor_gz.VendorError, match=r"a\.js\.gz unpacks to sha256 .* not the 0{64}"):
        vendor_gz.unpack(gz_dir, vendor, versions)
    assert not (vendor / "lib").exists() or not any((vendor / "lib").iterdir())


def test_leaves_an_up_to_date_file_alone(tmp_path):
    gz_dir, vendor, versions = _layout(tmp_path)
    vendor_gz.unpack(gz_dir, vendor, versions)
    dest = vendor / "lib" / "a.js"
    os.utime(dest, (1_000_000, 1_000_000))  # older than its .gz, same content: still not rewritten
    inode = dest.stat().st_ino
    assert vendor_gz.unpack(gz_dir, vendor, versions) == []
    assert dest.stat().st_ino == inode and dest.stat().st_mtime == 1_000_000


def test_rewrites_a_stale_file_and_refuses_a_newer_edited_one(tmp_path):
    gz_dir, vendor, versions = _layout(tmp_path)
    dest = vendor / "lib" / "a.js"
    dest.parent.mkdir()
    dest.write_bytes(b"old version")
    os.utime(dest, (1_000_000, 1_000_000))  # older than the .gz: replaced
    assert vendor_gz.unpack(gz_dir, vendor, versions) == [dest]
    assert dest.read_bytes() == DATA
    dest.write_bytes(b"edited by hand")  # newer than the .gz: kept, and the build stops naming it
    with pytest.raises(vendor_gz.VendorError, match=r"lib/a\.js differs from the sha256"):
        vendor_gz.unpack(gz_dir, vendor, versions)
    assert dest.read_bytes() == b"edited by hand"


def test_pack_then_unpack_round_trips_deterministically(tmp_path):
    gz_dir, vendor, versions = _layout(tmp_path, sha="0" * 64)
    (vendor / "lib").mkdir()
    (vendor / "lib" / "a.js").write_bytes(DATA)
    vendor_gz.pack(["lib/a.js"], gz_dir, vendor, versions)
    first = (gz_dir / "lib" / "a.js.gz").read_bytes()
    vendor_gz.pack(["lib/a.js"], gz_dir, vendor, versions)
    assert (gz_dir / "lib" / "a.js.gz").read_bytes() == first
    assert vendor_gz.recorded_sha256(versions) == {"lib/a.js": hashlib.sha256(DATA).hexdigest()}
    assert versions.read_text().startswith("lib 1.0 (npm)\n")
    (vendor / "lib" / "a.js").unlink()
    assert vendor_gz.unpack(gz_dir, vendor, versions) == [vendor / "lib" / "a.js"]


def test_the_repository_copies_match_versions_txt():
    """Every book/vendor-gz/*.gz has a recorded sha256 that its content matches, and lies outside
    book/extra (which is copied verbatim into the HTML); the unpacked files are git-ignored."""
    gzs = sorted(vendor_gz.GZ_DIR.rglob("*.gz"))
    assert {g.relative_to(vendor_gz.GZ_DIR).as_posix() for g in gzs} >= {
        "html-manager/embed-amd.js.gz", "mathjax/tex-chtml.js.gz"}
    shas = vendor_gz.recorded_sha256()
    for gz in gzs:
        rel = gz.relative_to(vendor_gz.GZ_DIR).as_posix().removesuffix(".gz")
        assert hashlib.sha256(gzip.decompress(gz.read_bytes())).hexdigest() == shas[rel], rel
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    for gz in gzs:
        assert f"/book/extra/vendor/{gz.relative_to(vendor_gz.GZ_DIR).as_posix().removesuffix('.gz')}" in ignored
    assert not list((ROOT / "book" / "extra").rglob("*.gz"))
