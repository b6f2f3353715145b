"""scripts/lease_start.sh's warm state: back-to-back calls on one machine keep every call's lineage.

Each call copies the caller's tree over the machine's, so a lease that starts from the caller's tree again
must put back what the previous call wrote (and only then)."""
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from ssmlib.studies import compile_warmup

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("sha256sum") is None,
                                reason="needs bash and coreutils")


def lease(machine: Path, append: str, **env) -> str:
    """One call, under the scripts' ``set -euo pipefail``: source lease_start.sh, append ``append`` to the
    lineage (the lease's work), write the weights (their folder may not exist yet), save the state."""
    script = (f'set -euo pipefail; CAMPAIGN_PATHS=("results/c" "checkpoints/c"); source "{ROOT}/scripts/lease_start.sh"\n'
              f'echo "{append}" >> results/c/run/lineage.txt; mkdir -p checkpoints/c; echo w > checkpoints/c/run.bin\n'
              f'save_warm_state')
    done = subprocess.run(["bash", "-c", script], cwd=machine, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "OUT": str(machine / "out"), "SSMLIB_GIT_SHA": "x", **env})
    assert done.returncode == 0, done.stderr
    return done.stdout


def send(tree: Path, machine: Path) -> None:
    """What the device tool does: the caller's tracked folders replace the machine's; runs/ (ignored) stays."""
    for sub in ("results", "checkpoints"):
        shutil.rmtree(machine / sub, ignore_errors=True)
        if (tree / sub).exists():
            shutil.copytree(tree / sub, machine / sub)


def lineage(root: Path) -> list[str]:
    return (root / "results/c/run/lineage.txt").read_text().split()


@pytest.fixture
def tree(tmp_path):
    t = tmp_path / "tree"
    (t / "results/c/run").mkdir(parents=True)  # no checkpoints/c yet: a new game's first lease
    (t / "results/c/run/lineage.txt").write_text("lease0\n")
    return t


def test_back_to_back_calls_without_unpacking_keep_every_lease(tree, tmp_path):
    machine = tmp_path / "machine"
    machine.mkdir()
    send(tree, machine)
    assert "restored" not in lease(machine, "lease1")  # a bare machine: nothing to restore
    send(tree, machine)  # the caller unpacked nothing: its old tree goes out again
    assert "restored the previous call's campaign state" in lease(machine, "lease2")
    send(tree, machine)
    lease(machine, "lease3")
    assert lineage(machine) == ["lease0", "lease1", "lease2", "lease3"]


def test_require_warm_trains_only_where_the_previous_calls_state_is(tree, tmp_path):
    machine = tmp_path / "machine"
    machine.mkdir()
    send(tree, machine)
    script = (f'set -euo pipefail; CAMPAIGN_PATHS=("results/c" "checkpoints/c"); source "{ROOT}/scripts/lease_start.sh"\n'
              f'echo trained >> results/c/run/lineage.txt; echo "restored=$WARM_RESTORED"')
    env = {"PATH": "/usr/bin:/bin", "OUT": str(machine / "out"), "SSMLIB_GIT_SHA": "x", "REQUIRE_WARM": "1",
           "WARM_RESTORED": "1"}  # inherited from a caller: reset by lease_start.sh
    bare = subprocess.run(["bash", "-c", script], cwd=machine, capture_output=True, text=True, env=env)
    assert bare.returncode == 3 and "does not hold the previous call's state" in bare.stdout
    assert lineage(machine) == ["lease0"]  # a bare machine trained nothing
    lease(machine, "lease1")
    send(tree, machine)  # the same tree again, not unpacked: this machine holds lease1
    assert "restored the previous call's campaign state" in lease(machine, "lease2", REQUIRE_WARM="1")
    assert lineage(machine) == ["lease0", "lease1", "lease2"]
    refused = subprocess.run(["bash", "-c", script], cwd=machine, capture_output=True, text=True,
                             env={**env, "WARM_RESTORE": "0"})  # would train the stale tree as sent
    assert refused.returncode == 3 and lineage(machine) == ["lease0", "lease1", "lease2"]
    for sub in ("results", "checkpoints"):  # the caller unpacked lease2: the end state
        shutil.rmtree(tree / sub, ignore_errors=True)
        shutil.copytree(machine / sub, tree / sub)
    send(tree, machine)
    ended = subprocess.run(["bash", "-c", script], cwd=machine, capture_output=True, text=True, env=env)
    assert ended.returncode == 0 and "restored=0" in ended.stdout and "already holds" in ended.stdout
    assert lineage(machine) == ["lease0", "lease1", "lease2", "trained"]
    send(tree, machine)
    restored = lease(machine, "lease3", REQUIRE_WARM="1")
    assert "restored the previous call's" not in restored  # the last call's start was the unpacked tree: as sent
    (tree / "results/c/run/lineage.txt").write_text("other\n")
    send(tree, machine)  # another tree: not the one the last call started from
    other = subprocess.run(["bash", "-c", script], cwd=machine, capture_output=True, text=True, env=env)
    assert other.returncode == 3 and lineage(machine) == ["other"]


def test_a_tree_holding_the_previous_calls_result_is_used_as_sent(tree, tmp_path):
    machine = tmp_path / "machine"
    machine.mkdir()
    send(tree, machine)
    lease(machine, "lease1")
    for sub in ("results", "checkpoints"):  # the caller unpacks the call's tar and adds its log
        shutil.rmtree(tree / sub, ignore_errors=True)
        shutil.copytree(machine / sub, tree / sub)
    (tree / "results/c/logs").mkdir()
    (tree / "results/c/logs/lease1.log").write_text("log")
    send(tree, machine)
    out = lease(machine, "lease2")
    assert "already holds the previous call's campaign state" in out
    assert lineage(machine) == ["lease0", "lease1", "lease2"]
    assert (machine / "results/c/logs/lease1.log").exists()


def test_restore_can_be_turned_off(tree, tmp_path):
    machine = tmp_path / "machine"
    machine.mkdir()
    send(tree, machine)
    lease(machine, "bad")
    send(tree, machine)
    assert "restored" not in lease(machine, "lease1", WARM_RESTORE="0")  # the bad lease thrown away
    assert lineage(machine) == ["lease0", "lease1"]


def test_a_tree_changed_otherwise_is_kept_with_a_warning(tree, tmp_path):
    machine = tmp_path / "machine"
    machine.mkdir()
    send(tree, machine)
    lease(machine, "lease1")
    (tree / "results/c/run/lineage.txt").write_text("repaired\n")  # e.g. a lineage repaired by hand
    send(tree, machine)
    out = lease(machine, "lease2")
    assert "neither the previous call's start nor its end" in out
    assert lineage(machine) == ["repaired", "lease2"]


def packed(machine: Path, size: int) -> list[str]:
    """Source lease_start.sh, write ``size`` bytes of weights and pack the campaign's tar into out/."""
    script = (f'set -euo pipefail; CAMPAIGN_PATHS=("results/c" "checkpoints/c"); source "{ROOT}/scripts/lease_start.sh"\n'
              f'mkdir -p checkpoints/c; head -c {size} /dev/urandom > checkpoints/c/run.bin; pack_campaign c.tar')
    done = subprocess.run(["bash", "-c", script], cwd=machine, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "OUT": str(machine / "out"), "SSMLIB_GIT_SHA": "x"})
    assert done.returncode == 0, done.stderr
    return sorted(p.name for p in (machine / "out").iterdir())


def test_a_tar_over_the_devices_16_mib_file_limit_comes_back_in_parts(tree, tmp_path):
    machine = tmp_path / "machine"
    machine.mkdir()
    send(tree, machine)
    assert packed(machine, 1000) == ["c.tar"]  # small: one file, as before
    parts = packed(machine, 20 * 1024 * 1024)  # 18 MB lost a call's results on 2026-12-02
    assert parts == ["c.tar.part-aa", "c.tar.part-ab"]
    sizes = [(machine / "out" / p).stat().st_size for p in parts]
    assert max(sizes) <= 16 * 1024 * 1024
    joined = tmp_path / "joined.tar"
    joined.write_bytes(b"".join((machine / "out" / p).read_bytes() for p in parts))
    listing = subprocess.run(["tar", "-tf", str(joined)], capture_output=True, text=True, check=True).stdout
    assert "checkpoints/c/run.bin" in listing.split()


def _i2a_blocks() -> str:
    """gpu_campaign.sh's two I2A=1 blocks (start beside the zoo's lease; wait, bounded), as written there."""
    text = (ROOT / "scripts/gpu_campaign.sh").read_text()
    start = text[text.index('if [ "${I2A:-0}" = 1 ]; then'):]
    start = start[:start.index("\nfi\n") + 4]
    after = text[text.index('if [ -n "${I2A_PID:-}" ]; then'):]
    return start, after[:after.index("\nfi\n") + 4]


@pytest.mark.parametrize("i2a_seconds,waits", [(0, True), (5, False)])
def test_the_i2a_lease_runs_beside_the_zoo_and_never_holds_back_its_tar(tmp_path, i2a_seconds, waits):
    start, after = _i2a_blocks()
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts/gpu_i2a_campaign.sh").write_text(  # a stub of the I2A lease: where it writes, how long
        f'echo "i2a OUT=$OUT LEASE_SECONDS=$LEASE_SECONDS MAX_RUNS=$MAX_RUNS REQUIRE_WARM=$REQUIRE_WARM"; '
        f'sleep {i2a_seconds}; echo "i2a end"\n')
    script = (f'set -euo pipefail\nOUT="{tmp_path}/out"; mkdir -p "$OUT"; LEFT=200; elapsed=10\n{start}\n'
              f'echo "zoo lease"\n{after}\necho "zoo tar"\n')
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "I2A": "1", "I2A_DELAY": "0", "I2A_WAIT": "2",
                               "REQUIRE_WARM": "1"})  # the zoo's: the I2A lane beside it is not held to it
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "zoo lease" and lines[-1] == "zoo tar"
    log = (tmp_path / "out/i2a.log").read_text()
    assert f"i2a OUT={tmp_path}/out/i2a LEASE_SECONDS=180 MAX_RUNS=2 REQUIRE_WARM=0" in log  # LEFT - delay - 20
    if waits:
        assert "i2a end" in log and "I2A lease done" in log
    else:  # still running after I2A_WAIT: the zoo's tar goes on without it
        assert "I2A lease still running: the zoo's tar is written without waiting" in done.stdout
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin"})  # I2A unset: nothing beside the zoo
    assert done.stdout.splitlines() == ["zoo lease", "zoo tar"]


def _lease_block() -> str:
    """gpu_campaign.sh's zoo lease under its bound, and the record of what a killed lease left, as written there."""
    text = (ROOT / "scripts/gpu_campaign.sh").read_text()
    block = text[text.index("LEASE_EXIT=0"):]
    return block[:block.index("\nfi\n") + 4]


@pytest.mark.parametrize("lease_seconds,records", [(5, True), (0, False)])
def test_a_lease_killed_at_its_bound_is_followed_by_a_record_of_what_it_left(tmp_path, lease_seconds, records):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "python3"  # the lease sleeps past its bound or ends in time; record says what it was asked
    stub.write_text(f'#!/bin/bash\ncase "$4" in lease) sleep {lease_seconds};; record) echo "record $*";; esac\n')
    stub.chmod(0o755)
    script = (f'set -euo pipefail\nGAME=MsPacman; DATA=/d; LEFT=1; RECORD_SECONDS=0; SECONDS_PER_RUN=1; MAX_RUNS=2;'
              f' t0=$(date +%s)\n{_lease_block()}\necho "tar"\n')
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin", "COMPILE": "0"})
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.splitlines()[-1] == "tar"
    assert ("lease ended with exit 124" in out) is records
    assert ("record -m ssmlib campaign record --game MsPacman --data /d" in out) is records


def test_the_open_loop_study_runs_beside_the_lease_and_continues_the_committed_file(tmp_path):
    """gpu_campaign.sh's OPEN_LOOP=1 blocks, as written there: the committed study is copied to $OUT before the
    script continues it there, every OPEN_LOOP_EXTRA checkpoint becomes one --checkpoint, and the lease waits for
    it before its tar; it runs unless OPEN_LOOP=0."""
    text = (ROOT / "scripts/gpu_campaign.sh").read_text()
    start = text[text.index('if [ "${OPEN_LOOP:-1}" = 1 ]; then'):]
    start = start[:start.index("\nfi\n") + 4]
    wait = text[text.index('[ -z "${OPEN_LOOP_PID:-}" ]'):]
    wait = wait[:wait.index("|| true; }\n") + 10]
    last = next(ln for ln in text.splitlines() if ln.startswith("STUDY_LAST="))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "python3"  # the study: what it was asked, and whether it found the committed file in $OUT
    stub.write_text('#!/bin/bash\ncase "$1" in -c) exit "${CONTINUES:-0}";; esac\n'  # check_study's verdict
                    'echo "study $*"; [ -f "$OUT/open_loop_samples.json" ] && echo "continues: '
                    '$(cat "$OUT/open_loop_samples.json")"\n')
    stub.chmod(0o755)
    (tmp_path / "results/open_loop_samples").mkdir(parents=True)
    (tmp_path / "results/open_loop_samples/MsPacman-campaign.json").write_text("committed")
    script = (f'set -euo pipefail\nOUT="{tmp_path}/out"; export OUT; mkdir -p "$OUT"; GAME=MsPacman; DATA=/d\n'
              f'mkdir -p runs; {last}\n{start}\necho "zoo lease"\n{wait}\necho "zoo tar"\n')
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "OPEN_LOOP": "1",
           "OPEN_LOOP_EXTRA": "a@1M=.carry/a@1M.safetensors@1000000 b@2M=.carry/b.safetensors@2000000"}
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "zoo lease" and done.stdout.splitlines()[-1] == "zoo tar"
    from ssmlib.studies.lease_files import STUDY_FILE, STUDY_LOG  # what `unpack` looks for in the returned folder

    log = (tmp_path / "out" / STUDY_LOG).read_text()
    assert "study scripts/open_loop_samples.py --data /d --campaign MsPacman --checkpoint a@1M=.carry/a@1M.safetensors" \
           "@1000000 --checkpoint b@2M=.carry/b.safetensors@2000000 --device cuda" in log
    assert f"--out {tmp_path}/out/{STUDY_FILE}" in log and "continues: committed" in log
    assert "study scripts/open_loop_samples.py" in done.stdout  # the log's tail, printed after the lease
    env["OPEN_LOOP_EXTRA"] = ""  # no extra checkpoint: an empty list under set -u
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert "--campaign MsPacman --device cuda" in (tmp_path / "out/open_loop_samples.log").read_text()
    env.pop("OPEN_LOOP")  # the default: it runs
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env)
    assert done.stdout.splitlines()[0] == "zoo lease" and "study scripts/open_loop_samples.py" in done.stdout
    env["OPEN_LOOP"] = "0"
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env)
    assert done.stdout.splitlines() == ["zoo lease", "zoo tar"]
    # committed compressed (since 2026-12-04): the study continues its decompressed contents
    import gzip

    (tmp_path / "results/open_loop_samples/MsPacman-campaign.json").unlink()
    (tmp_path / "results/open_loop_samples/MsPacman-campaign.json.gz").write_bytes(gzip.compress(b"packed"))
    env.pop("OPEN_LOOP")
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert "continues: packed" in (tmp_path / "out" / STUDY_LOG).read_text()
    (tmp_path / "results/open_loop_samples/MsPacman-campaign.json").write_text("plain")  # both: the plain one, as
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env)
    assert "continues: plain" in (tmp_path / "out" / STUDY_LOG).read_text()  # every reader and unpack prefer it
    # a warm machine that restored the previous call's state continues that call's study, not the committed one
    # (not unpacked yet, the committed file lacks what that call added: unpack would refuse this call's study)
    assert (tmp_path / "runs/open_loop_samples-MsPacman.last.json").read_text() == "plain"  # kept by the last call
    (tmp_path / "runs/open_loop_samples-MsPacman.last.json").write_text("previous call")
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**env, "WARM_RESTORED": "1"})
    assert done.returncode == 0, done.stderr
    assert "continues: previous call" in (tmp_path / "out" / STUDY_LOG).read_text()
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env)
    assert "continues: plain" in (tmp_path / "out" / STUDY_LOG).read_text()  # not restored: the committed file
    (tmp_path / "runs/open_loop_samples-MsPacman.last.json").write_text("behind the committed file")
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**env, "WARM_RESTORED": "1", "CONTINUES": "1"})  # check_study refuses it
    assert "continues: plain" in (tmp_path / "out" / STUDY_LOG).read_text()


def _warm_blocks() -> tuple[str, str]:
    """gpu_campaign.sh's compile warm-up: its start beside the data's collection, and the bounded wait after it."""
    text = (ROOT / "scripts/gpu_campaign.sh").read_text()
    start = text[text.index("WARM_LOG="):]
    start = start[:start.index("\nfi\n") + 4]
    wait = text[text.index("WARM_EXIT=\n"):]
    return start, wait[:wait.index("\nfi\n") + 4]


@pytest.mark.parametrize("warm_seconds,warm_wait,killed", [(0, "0", False), (30, "1", True), (30, "0", True)])
def test_the_lease_waits_for_the_compile_warm_up_at_most_warm_wait_and_kills_all_of_it(tmp_path, warm_seconds,
                                                                                         warm_wait, killed):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "python3"  # collect ends at once; the warm-up's train process (a grandchild) runs warm_seconds
    stub.write_text('#!/bin/bash\ncase "$3" in campaign) printf "%%s\\n" "$@" > "%s/warm.args"; sleep %d & echo $! > "%s/train.pid"; '
                    'wait;; esac\n' % (tmp_path, warm_seconds, tmp_path))
    stub.chmod(0o755)
    start, wait = _warm_blocks()
    script = (f'set -euo pipefail\nGAME=MsPacman; MAX_RUNS=2; INDUCTOR_CACHE="{tmp_path}/no-cache"\n{start}\n'
              f'sleep 1; echo "data"\n{wait}\necho "runs"\n')
    t0 = time.monotonic()
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin", "WARM_WAIT": warm_wait})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    skips = warm_wait == "0"  # the lease says which models the warm-up leaves out, before its data
    assert lines[:2 if skips else 1] == (["compile warm-up leaves out: sSSM"] if skips else []) + ["data"]
    lines = lines[1:] if skips else lines
    assert lines[-1] == "runs" and time.monotonic() - t0 < 15
    assert lines[1].startswith(f"compile warm-up: exit {137 if killed else 0} ")
    call = compile_warmup.parse_log(  # what measures it
        "\n".join(done.stdout.splitlines()[:3 if skips else 2]) + "\ncollected in 2 s; each run trains 300 s\n")
    assert call["warm_up"]["exit"] == (137 if killed else 0) and call["warm_up"]["waited_s"] <= int(warm_wait) + 1
    assert call["warm_up"]["left_out"] == (["sSSM"] if skips else [])
    # a lease that does not wait leaves the sSSM's warm-up out (it never ended before the data)
    args = (tmp_path / "warm.args").read_text().split("\n")[:-1]  # one line per argument
    assert args[-2:] == ["--skip-models", "sSSM" if warm_wait == "0" else ""]
    train = int((tmp_path / "train.pid").read_text())
    time.sleep(0.2)
    assert not Path(f"/proc/{train}").exists() or "Z" in Path(f"/proc/{train}/stat").read_text().split()[2]


def _data_block() -> str:
    """gpu_campaign.sh's collection of the campaign's data, as written there."""
    text = (ROOT / "scripts/gpu_campaign.sh").read_text()
    block = text[text.index('DATA_NEW='):]
    return block[:block.index("; }\n") + 4]


@pytest.mark.parametrize("workers_fail,data_there", [(False, False), (True, False), (True, True)])
def test_the_data_are_collected_by_workers_and_again_in_one_process_if_that_fails(tmp_path, workers_fail, data_there):
    bin_dir, data = tmp_path / "bin", tmp_path / "data"
    bin_dir.mkdir()
    if data_there:  # a warm machine's dataset, which the campaign now refuses: refused again, not re-collected
        data.mkdir()
        (data / "manifest.json").write_text("{}")
    stub = bin_dir / "python3"  # records each call and whether the folder was there; workers may fail
    stub.write_text('#!/bin/bash\necho "call $* (folder there: $([ -d "$DATA" ] && echo yes || echo no))"\n'
                    f'case "$*" in *--workers*) mkdir -p "$DATA"; {"exit 2" if workers_fail else "exit 0"};; esac\n')
    stub.chmod(0o755)
    script = f'set -euo pipefail\nGAME=MsPacman; DATA="{data}"\n{_data_block()}\necho "trained"\n'
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin", "DATA": str(data), "DATA_WORKERS": "3"})
    calls = [ln for ln in done.stdout.splitlines() if ln.startswith("call ")]
    assert calls[0] == (f"call -m ssmlib campaign data --game MsPacman --out {data} --workers 3 "
                        f"(folder there: {'yes' if data_there else 'no'})")
    if data_there:  # the lease ends with the refusal's exit code, as before the workers
        assert done.returncode == 2 and calls[1:] == [] and "trained" not in done.stdout
        return
    assert done.returncode == 0, done.stderr
    if workers_fail:  # the workers' folder is removed, and one process collects it afresh
        assert "campaign data with 3 workers ended with exit 2: collecting again in one process" in done.stdout
        assert calls[1:] == [f"call -m ssmlib campaign data --game MsPacman --out {data} (folder there: no)"]
    else:
        assert calls[1:] == []
    assert done.stdout.splitlines()[-1] == "trained"
