"""What the repository weighs when it travels to a GPU machine.

Every call to a lent GPU copies the working tree: the files git tracks and the untracked ones it does not ignore,
beside the carried wheels (64 MiB in all). The project keeps that tree under ``LIMIT_MIB`` so the wheels and a
campaign's growth fit; the campaigns' open state (``i2a_campaign.STATE_BUDGET_MIB``) is budgeted inside it.
``python -m ssmlib unpack`` prints the size after every lease, and a test holds the limit.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from .config import REPO_ROOT
from .errors import SsmlibError

LIMIT_MIB = 56.0
"""The working tree a GPU call carries, at most this many MiB (the device takes 64 MiB with the wheels)."""


def travelling_files(root: Path = REPO_ROOT) -> list[Path]:
    """Every file a GPU call copies from ``root``: tracked, or untracked and not ignored (``git ls-files``)."""
    try:
        out = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise SsmlibError(f"{root} is not a git checkout git can read ({e}): the travelling tree is what git "
                          f"tracks or would track") from None
    files = (Path(root) / p for p in dict.fromkeys(out.decode().split("\0")) if p)
    return [f for f in files if f.is_file()]  # a tracked file deleted in the working tree does not travel


def travelling_bytes(root: Path = REPO_ROOT) -> int:
    return sum(f.stat().st_size for f in travelling_files(root))


def report(root: Path = REPO_ROOT, largest: int = 3) -> str:
    """One line: the tree a GPU call carries against ``LIMIT_MIB``, with its largest files; over the limit, what to
    do."""
    files = sorted(travelling_files(root), key=lambda f: f.stat().st_size, reverse=True)
    total = sum(f.stat().st_size for f in files)
    top = ", ".join(f"{f.relative_to(root)} {f.stat().st_size / 2**20:.1f}" for f in files[:largest])
    line = f"the tree a GPU call carries: {total:,} bytes ({total / 2**20:.1f} MiB of {LIMIT_MIB:g}); largest (MiB): {top}"
    if total > LIMIT_MIB * 2**20:
        line += (" -- OVER the limit: drop superseded files or store them compressed before the next call "
                 "(scripts/compress_results.py --dry-run lists candidates)")
    return line
