"""``campaign unpack``: a lease's returned files put in place, or refused with nothing changed."""
import gzip
import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from ssmlib.errors import SsmlibError
from ssmlib.io import read_text
from ssmlib.studies.lease_files import unpack

ZOO = "results/model_zoo/MsPacman/campaign"
I2A = "results/i2a/MsPacman/campaign"
MTIME = 1_764_741_420  # 2025-12-03 05:57 UTC
OLD = json.dumps({"run": "sSSM-s0", "leases": [{"lease": 1, "end_step": 100}]})  # the committed lineage
NEW = json.dumps({"run": "sSSM-s0", "leases": [{"lease": 1, "end_step": 100}, {"lease": 2, "end_step": 250}]})


def make_tar(path: Path, files: dict[str, bytes], mtime: int = MTIME, link: str | None = None,
             mtimes: dict[str, int] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), (mtimes or {}).get(name, mtime)
            tar.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link)
            info.type, info.linkname, info.mtime = tarfile.SYMTYPE, "/etc/passwd", mtime
            tar.addfile(info)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def split(path: Path, size: int) -> None:
    data = path.read_bytes()
    path.unlink()
    for i in range(0, len(data), size):
        (path.parent / f"{path.name}.part-a{chr(ord('a') + i // size)}").write_bytes(data[i:i + size])


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    (root / ZOO / "sSSM-s0").mkdir(parents=True)
    (root / ZOO / "sSSM-s0" / "lineage.json").write_text(OLD)
    (root / "checkpoints/i2a_campaign/MsPacman").mkdir(parents=True)
    (root / "checkpoints/i2a_campaign/MsPacman/model-free-s0.safetensors").write_text("stale state")
    return root


def test_a_split_zoo_tar_is_joined_unpacked_and_its_log_named_by_its_newest_file(repo, tmp_path):
    back = tmp_path / "back"
    (repo / "checkpoints/campaign/MsPacman").mkdir(parents=True)
    (repo / "checkpoints/campaign/MsPacman/sSSM-s1.safetensors").write_text("a run this lease did not train")
    make_tar(back / "campaign.tar", {f"{ZOO}/sSSM-s0/lineage.json": NEW.encode() + b" " * 6000,
                                     "checkpoints/campaign/MsPacman/sSSM-s0.safetensors": b"w" * 5000},
             mtimes={"checkpoints/campaign/MsPacman/sSSM-s0.safetensors": MTIME - 3600})  # the log: the newest
    split(back / "campaign.tar", 4096)
    assert len(list(back.glob("campaign.tar.part-*"))) > 1
    (back / "lease.log").write_text("the lease's log\n")
    done = unpack(back, root=repo)
    assert (repo / ZOO / "sSSM-s0/lineage.json").read_bytes() == NEW.encode() + b" " * 6000
    assert (repo / "checkpoints/campaign/MsPacman/sSSM-s0.safetensors").read_bytes() == b"w" * 5000
    assert read_text(repo / ZOO / "logs/2025-12-03-0557-h200.log.gz") == "the lease's log\n"  # stored compressed
    assert done[0].startswith("unpacked campaign.tar") and "2025-12-03-0557-h200.log.gz" in done[1]
    # the zoo's checkpoints are merged, the I2A's untouched
    assert (repo / "checkpoints/campaign/MsPacman/sSSM-s1.safetensors").exists()
    assert (repo / "checkpoints/i2a_campaign/MsPacman/model-free-s0.safetensors").exists()
    assert unpack(back, root=repo) == done  # the same lease again: same files, same log


def test_the_i2a_tar_replaces_the_committed_state_of_the_runs_it_no_longer_holds(repo, tmp_path):
    back = tmp_path / "back"
    make_tar(back / "campaign.tar", {f"{ZOO}/table.md": b"t"})
    make_tar(back / "i2a/i2a_campaign.tar", {f"{I2A}/model-free-s0/lineage.json": b"finished",
                                             "checkpoints/i2a_campaign/MsPacman/model-free-s2.safetensors": b"s2"},
             mtime=MTIME + 60)
    (back / "i2a.log").write_text("i2a")
    done = unpack(back, root=repo)
    ckpts = sorted(p.name for p in (repo / "checkpoints/i2a_campaign/MsPacman").iterdir())
    assert ckpts == ["model-free-s2.safetensors"]  # s0 finished in the lease: its state is gone
    assert read_text(repo / I2A / "logs/2025-12-03-0558-h200.log") == "i2a"  # read_text finds the .gz
    assert any("no lease.log" in line for line in done)


@pytest.mark.parametrize("bad", [{"results/model_zoo/MsPacman/campaign/../../../escape": b"x"},
                                 {"results/other/file": b"x"},
                                 {"/abs/file": b"x"},
                                 {"results/model_zoo/Bowling/campaign/x": b"x"}])
def test_a_member_outside_the_campaign_is_refused_before_anything_changes(repo, tmp_path, bad):
    back = tmp_path / "back"
    make_tar(back / "campaign.tar", {f"{ZOO}/sSSM-s0/lineage.json": NEW.encode(), **bad})
    (back / "lease.log").write_text("log")
    with pytest.raises(SsmlibError, match="refused, member .* nothing was unpacked"):
        unpack(back, root=repo)
    assert (repo / ZOO / "sSSM-s0/lineage.json").read_text() == OLD
    assert not (repo / ZOO / "logs").exists()


def test_a_link_is_refused(repo, tmp_path):
    back = tmp_path / "back"
    make_tar(back / "campaign.tar", {f"{ZOO}/a": b"a"}, link=f"{ZOO}/passwd")
    with pytest.raises(SsmlibError, match="not a plain file or folder"):
        unpack(back, root=repo)


def test_a_bad_i2a_tar_stops_the_zoo_tar_too_and_keeps_the_i2a_state(repo, tmp_path):
    back = tmp_path / "back"
    make_tar(back / "campaign.tar", {f"{ZOO}/sSSM-s0/lineage.json": NEW.encode()})
    make_tar(back / "i2a/i2a_campaign.tar", {"results/model_zoo/MsPacman/campaign/x": b"wrong campaign"})
    with pytest.raises(SsmlibError, match="i2a/i2a_campaign.tar: refused") as refusal:
        unpack(back, root=repo)
    assert (repo / ZOO / "sSSM-s0/lineage.json").read_text() == OLD
    assert (repo / "checkpoints/i2a_campaign/MsPacman/model-free-s0.safetensors").exists()
    # the advice in the message, followed: a copy of the folder without the bad tar unpacks the zoo's
    assert "copy the folder without this one" in str(refusal.value)
    copy = tmp_path / "copy"
    shutil.copytree(back, copy)
    shutil.rmtree(copy / "i2a")
    unpack(copy, root=repo)
    assert (repo / ZOO / "sSSM-s0/lineage.json").read_text() == NEW
    assert (repo / "checkpoints/i2a_campaign/MsPacman/model-free-s0.safetensors").exists()


def test_a_missing_part_is_named(repo, tmp_path):
    back = tmp_path / "back"
    make_tar(back / "campaign.tar", {f"{ZOO}/big": bytes(range(256)) * 64})
    split(back / "campaign.tar", 8192)
    (back / "campaign.tar.part-ab").unlink()
    with pytest.raises(SsmlibError, match="cannot be read .* all its parts .*part-aa"):
        unpack(back, root=repo)
    assert (repo / ZOO / "sSSM-s0/lineage.json").read_text() == OLD


def test_a_folder_without_a_tar_or_a_log_already_stored_otherwise_is_refused(repo, tmp_path):
    with pytest.raises(SsmlibError, match="holds no campaign tar"):
        unpack(tmp_path, root=repo)
    with pytest.raises(SsmlibError, match="is not a folder"):
        unpack(tmp_path / "nowhere", root=repo)
    back = tmp_path / "back"
    make_tar(back / "campaign.tar", {f"{ZOO}/sSSM-s0/lineage.json": NEW.encode()})
    (back / "lease.log").write_text("this lease")
    (repo / ZOO / "logs").mkdir()
    (repo / ZOO / "logs/2025-12-03-0557-h200.log").write_text("another lease")
    with pytest.raises(SsmlibError, match="already exists with other contents"):
        unpack(back, root=repo)
    assert (repo / ZOO / "sSSM-s0/lineage.json").read_text() == OLD
    (repo / ZOO / "logs/2025-12-03-0557-h200.log").write_text("this lease")  # unpacked before 2026-12-04, plain:
    unpack(back, root=repo)  # the same lease again is accepted, and its log ends up stored once, compressed
    assert sorted(p.name for p in (repo / ZOO / "logs").iterdir()) == ["2025-12-03-0557-h200.log.gz"]
    (repo / ZOO / "sSSM-s0/lineage.json").write_text(OLD)
    (repo / ZOO / "logs/2025-12-03-0557-h200.log.gz").unlink()  # another lease's log, stored compressed
    (repo / ZOO / "logs/2025-12-03-0557-h200.log.gz").write_bytes(gzip.compress(b"another lease"))
    with pytest.raises(SsmlibError, match="already exists with other contents"):
        unpack(back, root=repo)
    assert (repo / ZOO / "sSSM-s0/lineage.json").read_text() == OLD


def test_an_i2a_call_on_its_own_returns_its_tar_at_the_top(repo, tmp_path):
    back = tmp_path / "back"
    make_tar(back / "i2a_campaign.tar", {f"{I2A}/table.md": b"t"})
    (back / "lease.log").write_text("i2a alone")
    done = unpack(back, root=repo)
    assert done[0].startswith("unpacked i2a_campaign.tar")
    assert not (repo / "checkpoints/i2a_campaign/MsPacman").exists()  # no open run's state in the tar
    assert read_text(repo / I2A / "logs/2025-12-03-0557-h200.log") == "i2a alone"
    assert not (repo / ZOO / "logs").exists()


def test_an_i2a_call_on_its_own_may_name_its_log_i2a_log(repo, tmp_path):
    back = tmp_path / "back"
    make_tar(back / "i2a_campaign.tar", {f"{I2A}/table.md": b"t"})
    (back / "i2a.log").write_text("i2a alone, named as beside the zoo")
    done = unpack(back, root=repo)
    assert "stored i2a.log as results/i2a/MsPacman/campaign/logs/2025-12-03-0557-h200.log.gz" in done
    assert read_text(repo / I2A / "logs/2025-12-03-0557-h200.log") == "i2a alone, named as beside the zoo"


def test_a_tar_whose_lineage_does_not_continue_the_committed_one_is_a_branch_and_refused(repo, tmp_path):
    """Two calls from one tree (the first not unpacked before the second, on a machine no longer warm) both
    continue the committed state: whichever is unpacked second does not continue the first, and is refused."""
    first, second = tmp_path / "first", tmp_path / "second"
    make_tar(first / "campaign.tar", {f"{ZOO}/sSSM-s0/lineage.json": NEW.encode(),
                                      "checkpoints/campaign/MsPacman/sSSM-s0.safetensors": b"first"})
    sibling = json.dumps({"run": "sSSM-s0", "leases": [{"lease": 1, "end_step": 100}, {"lease": 2, "end_step": 240}]})
    make_tar(second / "campaign.tar", {f"{ZOO}/sSSM-s0/lineage.json": sibling.encode(),
                                       "checkpoints/campaign/MsPacman/sSSM-s0.safetensors": b"second"},
             mtime=MTIME + 600)
    unpack(first, root=repo)
    with pytest.raises(SsmlibError, match=r"sSSM-s0's lineage does not continue the committed one \(lease 2 differs"
                                          r".*branches/"):
        unpack(second, root=repo)
    assert (repo / ZOO / "sSSM-s0/lineage.json").read_text() == NEW  # nothing changed
    assert (repo / "checkpoints/campaign/MsPacman/sSSM-s0.safetensors").read_bytes() == b"first"
    # a tar with fewer leases than committed (an older call unpacked late) is refused the same way
    make_tar(second / "campaign.tar", {f"{ZOO}/sSSM-s0/lineage.json": OLD.encode()})
    with pytest.raises(SsmlibError, match=r"lease 2 differs: 1 leases in the tar, 2 committed"):
        unpack(second, root=repo)
    # a run the lease did not train comes back unchanged, and one the repository has never seen is new
    make_tar(second / "campaign.tar", {f"{ZOO}/sSSM-s0/lineage.json": NEW.encode(),
                                       f"{ZOO}/sSSM-s1/lineage.json": OLD.encode()})
    assert unpack(second, root=repo)[0].startswith("unpacked campaign.tar")


def test_a_tar_that_would_undo_a_committed_design_change_or_holds_no_lineage_is_refused(repo, tmp_path):
    back = tmp_path / "back"
    (repo / ZOO / "config.json").write_text(json.dumps({"design_changes": ["2026-12-02: a", "2026-12-03: b"]}))
    make_tar(back / "campaign.tar", {f"{ZOO}/config.json": json.dumps({"design_changes": ["2026-12-02: a"]}).encode()})
    with pytest.raises(SsmlibError, match=r"lacks design changes committed here .*\(2 committed, 1 in the tar\)"
                                          r".*git revert"):
        unpack(back, root=repo)
    assert "2026-12-03: b" in (repo / ZOO / "config.json").read_text()
    # a config that carries the committed changes and one more (made by the lease itself) is taken
    newer = json.dumps({"design_changes": ["2026-12-02: a", "2026-12-03: b", "2026-12-04: c"]})
    make_tar(back / "campaign.tar", {f"{ZOO}/config.json": newer.encode()})
    unpack(back, root=repo)
    assert (repo / ZOO / "config.json").read_text() == newer
    for bad, why in ((b"not json", "cannot be read"), (b'{"leases": 3}', "not a list")):
        make_tar(back / "campaign.tar", {f"{ZOO}/sSSM-s0/lineage.json": bad})
        with pytest.raises(SsmlibError, match=why):
            unpack(back, root=repo)
        assert (repo / ZOO / "sSSM-s0/lineage.json").read_text() == OLD


STUDY = "results/open_loop_samples/MsPacman-campaign.json"


def _study(names: dict[str, str], windows: int = 64) -> bytes:
    """A sample-count study file: its config and, per checkpoint, the sha256 and the scoring time."""
    return json.dumps({"config": {"windows": windows, "k_max": 256}, "checkpoints": {
        n: {"sha256": sha, "provenance": {"time": f"2026-12-03T16:4{i}:10+0000"}} for i, (n, sha) in
        enumerate(names.items())}}).encode()


def test_the_open_loop_study_continuing_the_committed_one_is_stored_with_its_log(repo, tmp_path):
    (repo / STUDY).parent.mkdir(parents=True)
    (repo / STUDY).write_bytes(_study({"sSSM-s0@10.29M": "aa"}))
    back = tmp_path / "back"
    make_tar(back / "campaign.tar", {f"{ZOO}/sSSM-s0/lineage.json": NEW.encode()})
    returned = _study({"sSSM-s0@10.29M": "aa", "sSSM-s0@16.93M": "bb"})
    (back / "open_loop_samples.json").write_bytes(returned)
    (back / "open_loop_samples.log").write_text("the study's log")
    done = unpack(back, root=repo)
    # stored compressed since 2026-12-04 (the plain file of before is gone), read under its logical name
    assert not (repo / STUDY).exists() and gzip.decompress((repo / f"{STUDY}.gz").read_bytes()) == returned
    assert read_text(repo / STUDY) == returned.decode()
    assert read_text(repo / "results/open_loop_samples/logs/MsPacman-campaign-2026-12-03-1641-h200.log") == \
        "the study's log"
    assert any("1 checkpoint(s) added: sSSM-s0@16.93M" in line for line in done)
    assert any(f"as {STUDY}.gz" in line for line in done)
    assert (repo / ZOO / "sSSM-s0/lineage.json").read_text() == NEW
    # a folder with the study alone is unpacked too; without a committed study the first one is stored
    (repo / f"{STUDY}.gz").unlink()
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "open_loop_samples.json").write_bytes(returned)
    assert "2 checkpoint(s) added" in unpack(alone, root=repo)[0] and read_text(repo / STUDY) == returned.decode()
    # a study that scored nothing new (its copy of the committed file came back with another log) stores nothing,
    # and does not stop the tars: the log named after the newest scoring would clash with the last lease's
    (back / "open_loop_samples.json").write_bytes(returned)
    (back / "open_loop_samples.log").write_text("a study cut short before its first checkpoint")
    (repo / ZOO / "sSSM-s0/lineage.json").write_text(OLD)
    done = unpack(back, root=repo)
    assert "adds no checkpoint to results/open_loop_samples/MsPacman-campaign.json: nothing stored" in done[-1]
    assert (repo / ZOO / "sSSM-s0/lineage.json").read_text() == NEW and read_text(repo / STUDY) == returned.decode()
    assert read_text(repo / "results/open_loop_samples/logs/MsPacman-campaign-2026-12-03-1641-h200.log") == \
        "the study's log"


@pytest.mark.parametrize("returned, why", [
    (_study({"sSSM-s0@10.29M": "aa"}, windows=16), "another configuration"),
    (_study({"sSSM-s0@10.29M": "changed", "sSSM-s0@16.93M": "bb"}), r"lacks or changed committed checkpoints \(sSSM-s0@10.29M\)"),
    (_study({"sSSM-s0@16.93M": "bb"}), "lacks or changed"),
    (b"{not json", "not a sample-count study"),
    (json.dumps({"config": {"windows": 64, "k_max": 256}, "checkpoints": 5}).encode(), "not a sample-count study"),
])
def test_an_open_loop_study_that_does_not_continue_the_committed_one_stops_everything(repo, tmp_path, returned, why):
    (repo / STUDY).parent.mkdir(parents=True)
    committed = _study({"sSSM-s0@10.29M": "aa"})
    (repo / STUDY).write_bytes(committed)
    back = tmp_path / "back"
    make_tar(back / "campaign.tar", {f"{ZOO}/sSSM-s0/lineage.json": NEW.encode()})
    (back / "open_loop_samples.json").write_bytes(returned)
    with pytest.raises(SsmlibError, match=why) as refused:
        unpack(back, root=repo)
    assert (repo / STUDY).read_bytes() == committed and (repo / ZOO / "sSSM-s0/lineage.json").read_text() == OLD
    assert "copy the folder without open_loop_samples.json" in str(refused.value)  # the advice works:
    (back / "open_loop_samples.json").unlink()
    unpack(back, root=repo)
    assert (repo / ZOO / "sSSM-s0/lineage.json").read_text() == NEW
