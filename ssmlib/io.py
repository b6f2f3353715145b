"""Atomic writes and provenance: every file under results/ and every checkpoint goes through here."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from .errors import SsmlibError

import numpy as np


TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
"""How :func:`provenance` writes a time (and every lineage's lease ``time``)."""


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Write ``path`` through ``write(fileobj)`` into a temp file in the same folder, fsync, rename.

    A reader sees the old file or the new one, never half of one, even if the process is killed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results and checkpoints are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def atomic_write_json(path, obj: Any, indent: int | None = 2) -> None:
    """``indent=None``: one line, for large per-episode records that travel with every GPU call. A path ending
    in ``.gz`` is written gzip-compressed (see :func:`atomic_write_text`)."""
    atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=True, default=_json_default))


def atomic_write_text(path, text: str) -> None:
    """``text`` (UTF-8) written atomically; gzip-compressed when ``path`` ends in ``.gz`` (:func:`atomic_write_packed`)."""
    atomic_write_packed(path, text.encode())


def atomic_write_packed(path, data: bytes) -> None:
    """``data`` written atomically; gzip-compressed when ``path`` ends in ``.gz``, with no time stamp in the header,
    so that equal contents give equal bytes (git sees no change)."""
    atomic_write_bytes(path, gzip.compress(data, mtime=0) if str(path).endswith(".gz") else data)


def drop_other_form(written) -> None:
    """After writing ``written`` (``NAME`` or ``NAME.gz``), delete the other form of it, which
    :func:`stored_path` would otherwise read (``NAME``) or keep beside it, stale (``NAME.gz``)."""
    written = Path(written)
    other = written.with_name(written.name.removesuffix(".gz")) if written.name.endswith(".gz") else \
        written.with_name(written.name + ".gz")
    other.unlink(missing_ok=True)


def parse_time(stamp: str) -> float:
    """Seconds since the epoch of a time written by :func:`provenance` (``%Y-%m-%dT%H:%M:%S%z``)."""
    import datetime as dt

    return dt.datetime.strptime(stamp, TIME_FORMAT).timestamp()


def stored_path(path) -> Path:
    """Where the content of ``path`` is stored: ``path`` itself when it exists, else its gzip-compressed sibling
    ``<name>.gz`` when that exists (results files are compressed to keep the repository small:
    ``scripts/compress_results.py``), else ``path``."""
    path = Path(path)
    if path.exists() or path.name.endswith(".gz"):
        return path
    packed = path.with_name(path.name + ".gz")
    return packed if packed.exists() else path


def read_text(path) -> str:
    """The text of ``path`` (or of its compressed sibling: :func:`stored_path`), decompressed when the stored name
    ends in ``.gz`` (the counterpart of ``atomic_write_text``)."""
    return read_packed(path).decode()


def read_packed(path) -> bytes:
    """The bytes of ``path`` (or of its compressed sibling: :func:`stored_path`), decompressed when the stored name
    ends in ``.gz`` (the counterpart of :func:`atomic_write_packed`)."""
    path = stored_path(path)
    return gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()


def atomic_save_npy(path, array: np.ndarray) -> None:
    atomic_write(path, lambda f: np.save(f, array, allow_pickle=False))


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def sha256_file(path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def round_floats(obj, digits: int = 7):
    """``obj`` (JSON-like) with every float rounded to ``digits`` significant digits: compact results files."""
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}")
    if isinstance(obj, dict):
        return {k: round_floats(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [round_floats(v, digits) for v in obj]
    return obj


def write_study_config(path: Path, doc: dict, why: str) -> Path:
    """A study's config written once, with where it was written (refused if it exists: ``why``)."""
    path = Path(path)
    if path.exists():
        raise SsmlibError(f"{path} exists: {why}")
    atomic_write_json(path, {**doc, "provenance": provenance("cpu")})
    return path


def amend_study_config(path: Path, config_class, change: str, updates: dict, missing: str) -> Path:
    """Change a written study config on the record: ``updates`` (fields of ``config_class`` only) applied and
    ``change`` (what, why, and what had run by then) appended to its ``design_changes`` with today's date.
    For changes that judge no number already seen, or that only make a rule stricter (``campaign amend-stop``).
    The amended config must still load as ``config_class``."""
    import dataclasses
    import datetime

    path = Path(path)
    if not path.exists():
        raise SsmlibError(f"{path} is missing ({missing})")
    doc = json.loads(path.read_text())
    unknown = set(updates) - {f.name for f in dataclasses.fields(config_class)}
    if unknown or "design_changes" in updates:
        raise SsmlibError(f"not fields of the design that may be amended: {', '.join(sorted(unknown or updates))}")
    doc.update(updates)
    doc["design_changes"] = [*doc.get("design_changes", []), f"{datetime.date.today().isoformat()}: {change}"]
    try:
        config_class(**{k: v for k, v in doc.items() if k != "provenance"})
    except TypeError as e:
        raise SsmlibError(f"the amended design does not load: {e}") from None
    atomic_write_json(path, doc)
    return path


def read_study_config(path: Path, missing: str) -> dict:
    """A study's config without its provenance; a missing file is refused with the advice ``missing``."""
    path = Path(path)
    if not path.exists():
        raise SsmlibError(f"{path} is missing ({missing})")
    doc = json.loads(path.read_text())
    doc.pop("provenance", None)
    return doc


def git_sha(short: bool = False) -> str:
    """The repository's HEAD commit (with '+dirty' if tracked files changed).

    Where the tree is not a git checkout (a copy sent to a GPU machine), $SSMLIB_GIT_SHA, else 'unknown'.
    """
    if os.environ.get("SSMLIB_GIT_SHA"):
        return os.environ["SSMLIB_GIT_SHA"]
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        if len(sha) != 40 or any(c not in "0123456789abcdef" for c in sha):
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        sha = sha[:10] if short else sha
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def device_name(device: str | None = None) -> str:
    """A human name of the compute device: the GPU's name, else the CPU's model and core count."""
    try:
        import torch

        if (device is None or str(device).startswith("cuda")) and torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except ImportError:
        pass
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu} ({os.cpu_count()} cores)"


def provenance(device: str | None = None, **extra) -> dict:
    """What every results file records: git sha, device, library versions, host, time."""
    import importlib.metadata as md

    versions = {}
    for pkg in ("torch", "numpy", "gymnasium", "ale-py"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    return {
        "git_sha": git_sha(),
        "device": device_name(device),
        "python": platform.python_version(),
        "versions": versions,
        "host": platform.node(),
        "time": time.strftime(TIME_FORMAT),
        **extra,
    }
