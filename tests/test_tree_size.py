"""The tree a GPU call carries (ssmlib.tree_size): what counts, and the limit held on the repository itself."""

import subprocess

import pytest

from ssmlib import tree_size
from ssmlib.config import REPO_ROOT
from ssmlib.errors import SsmlibError


def _git(root, *args):
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def test_tracked_and_untracked_unignored_files_travel_ignored_and_deleted_ones_do_not(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / ".gitignore").write_text("runs/\n")
    (tmp_path / "kept.bin").write_bytes(b"k" * 1000)
    (tmp_path / "gone.bin").write_bytes(b"g" * 5000)
    _git(tmp_path, "add", ".")
    (tmp_path / "gone.bin").unlink()  # tracked, deleted in the working tree
    (tmp_path / "new.bin").write_bytes(b"n" * 300)  # untracked, not ignored: the device copies it
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "big.bin").write_bytes(b"r" * 10**6)  # ignored
    names = sorted(f.name for f in tree_size.travelling_files(tmp_path))
    assert names == [".gitignore", "kept.bin", "new.bin"]
    assert tree_size.travelling_bytes(tmp_path) == len("runs/\n") + 1000 + 300
    line = tree_size.report(tmp_path, largest=1)
    assert line.startswith("the tree a GPU call carries: 1,306 bytes (0.0 MiB of 56); largest (MiB): kept.bin 0.0")
    assert "OVER" not in line


def test_over_the_limit_the_report_says_what_to_do(tmp_path, monkeypatch):
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.bin").write_bytes(b"a" * 2048)
    monkeypatch.setattr(tree_size, "LIMIT_MIB", 0.001)
    assert "OVER the limit: drop superseded files or store them compressed" in tree_size.report(tmp_path)


def test_a_folder_git_cannot_read_is_refused_in_one_line(tmp_path):
    with pytest.raises(SsmlibError, match="is not a git checkout git can read"):
        tree_size.travelling_files(tmp_path / "missing")


def test_the_repository_a_gpu_call_carries_is_under_the_limit():
    """Every GPU call copies this tree (64 MiB with the wheels); the campaigns' committed state grows inside it."""
    if not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    total = tree_size.travelling_bytes()
    assert 0 < total < tree_size.LIMIT_MIB * 2**20, tree_size.report()
