"""The data pipeline: games, preprocessing, episodes, shards, checksums, resume, windows."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ssmlib.config import get_profile
from ssmlib.data import store
from ssmlib.data.ale import check_frame_size, preprocess, resolve_game
from ssmlib.data.collect import collect, config_with, split_episodes
from ssmlib.data.store import DIGEST_CACHE, episode_in_test, open_dataset
from ssmlib.data.windows import WindowDataset, WindowSampler, to_device
from ssmlib.errors import SsmlibError

ROOT = Path(__file__).resolve().parent.parent


def test_resolve_game_accepts_common_spellings():
    for name in ("MsPacman", "mspacman", "ms_pacman", "ALE/MsPacman-v5"):
        g = resolve_game(name)
        assert (g.name, g.rom, g.env_id) == ("MsPacman", "ms_pacman", "ALE/MsPacman-v5")
    assert resolve_game("bowling").name == "Bowling"


def test_unknown_game_lists_close_matches():
    with pytest.raises(SsmlibError, match="did you mean.*MsPacman"):
        resolve_game("MsPacmn")


@pytest.mark.parametrize("h,w", [(81, 64), (80, 60), (0, 64), (216, 160)])
def test_frame_size_must_be_multiple_of_8(h, w):
    with pytest.raises(SsmlibError):
        check_frame_size(h, w)


def test_preprocess_resizes_rgb_screens_and_refuses_others():
    screens = np.random.default_rng(0).integers(0, 256, (2, 3, 210, 160, 3), dtype=np.uint8)
    out = preprocess(screens, 80, 64)
    assert out.shape == (2, 3, 80, 64, 3) and out.dtype == np.uint8
    flat = np.full((210, 160, 3), 77, np.uint8)
    assert (preprocess(flat, 200, 160) == 77).all()  # area resize keeps a flat colour exactly
    with pytest.raises(SsmlibError, match="expected uint8 ALE screens"):
        preprocess(np.zeros((100, 100, 3), np.uint8), 80, 64)


def test_split_episodes_follows_next_step_autoreset():
    # one env, 7 steps: the episode ends at step 2 (frame 3 is terminal), step 3 resets, frame 4 starts anew
    steps = 7
    frames = np.arange(steps + 1, dtype=np.uint8)[:, None, None, None, None] * np.ones((1, 1, 2, 2, 3), np.uint8)
    actions = np.arange(10, 10 + steps)[:, None]
    rewards = np.arange(steps, dtype=np.float32)[:, None]
    ended = np.zeros((steps, 1), np.uint8)
    ended[2, 0] = store.TERMINATED
    out = split_episodes(frames, actions, rewards, ended, first_episode_id=5)
    assert out["episode"].tolist() == [5, 5, 5, 5, 6, 6, 6, 6]
    assert out["frames"][:, 0, 0, 0].tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    assert out["actions"].tolist() == [10, 11, 12, 0, 14, 15, 16, 0]  # action 13 (reset step) dropped
    assert out["rewards"].tolist() == [0, 1, 2, 0, 4, 5, 6, 0]
    assert out["done"].tolist() == [0, 0, 0, store.TERMINATED, 0, 0, 0, store.TRUNCATED]


def test_split_is_deterministic_and_by_episode(quick_dataset):
    a, b = open_dataset(quick_dataset), open_dataset(quick_dataset)
    assert [e.test for e in a.episodes] == [e.test for e in b.episodes]
    assert any(e.test for e in a.episodes) and not all(e.test for e in a.episodes)
    flags = [episode_in_test(0, i, 0.1) for i in range(2000)]
    assert flags == [episode_in_test(0, i, 0.1) for i in range(2000)]
    assert 0.05 < np.mean(flags) < 0.15
    assert flags != [episode_in_test(1, i, 0.1) for i in range(2000)]


def test_dataset_manifest_records_provenance(quick_dataset):
    m = json.loads((quick_dataset / "manifest.json").read_text())
    for key in ("game", "preprocessing", "policy", "seed", "versions", "sticky_actions", "frameskip"):
        assert key in m
    assert m["versions"]["ale-py"] and m["complete"] and len(m["shards"]) == 2
    assert all(len(s["files"]) == len(store.ARRAYS) for s in m["shards"])
    ds = open_dataset(quick_dataset)
    assert ds.num_actions == 9 and ds.action_meanings[0] == "NOOP"
    assert ds.shards[0]["frames"].shape[1:] == (80, 64, 3)


def test_windows_never_cross_episodes(quick_dataset):
    ds = open_dataset(quick_dataset)
    for split in ("train", "test"):
        s = WindowSampler(ds, split, context=3, horizon=10)
        first = s.episode_of_row[s.starts]
        last = s.episode_of_row[s.starts + s.span - 1]
        assert torch.equal(first, last)
        # every episode of the split contributes exactly length - span + 1 windows: none is missed
        assert len(s) == sum(max(0, e.length - s.span + 1) for e in ds.split(split))


def test_window_contents_match_the_episode(quick_dataset):
    ds = open_dataset(quick_dataset)
    s = WindowSampler(ds, "train", context=3, horizon=4, seed=1)
    b = s.sample(6)
    assert b["frames"].shape == (6, 7, 3, 80, 64) and b["frames"].dtype == torch.float32
    assert 0.0 <= b["frames"].min() and b["frames"].max() <= 1.0
    by_id = {e.id: e for e in ds.episodes}
    for i in range(6):
        ep = ds.episode(by_id[int(b["episode"][i])])
        t = int(b["start"][i])
        want = torch.from_numpy(ep["frames"][t:t + 7]).permute(0, 3, 1, 2).float() / 255
        assert torch.equal(b["frames"][i], want)
        assert b["actions"][i].tolist() == ep["actions"][t:t + 6].tolist()
        assert b["rewards"][i].tolist() == ep["rewards"][t:t + 6].tolist()


def test_sampler_store_is_every_episode_of_the_split_in_order(quick_dataset):
    """The sampler copies the split episode by episode from the memory-mapped shards (no second host copy):
    its rows are exactly the split's episodes, concatenated, frames, actions and rewards aligned."""
    ds = open_dataset(quick_dataset)
    for split in ("train", "test"):
        s = WindowSampler(ds, split, context=3, horizon=4)
        eps = [ds.episode(e) for e in ds.split(split)]
        assert torch.equal(s.frames, torch.from_numpy(np.concatenate([e["frames"] for e in eps])))
        assert s.actions.tolist() == np.concatenate([e["actions"] for e in eps]).tolist()
        assert s.rewards.tolist() == np.concatenate([e["rewards"] for e in eps]).tolist()


def test_jumpy_windows_chunk_actions_and_sum_rewards(quick_dataset):
    ds = open_dataset(quick_dataset)
    k = 4
    s = WindowSampler(ds, "train", context=3, horizon=2, jump=k, seed=2)
    b = s.sample(5)
    assert b["actions"].shape == (5, 4, k) and b["frames"].shape[1] == 5
    by_id = {e.id: e for e in ds.episodes}
    for i in range(5):
        ep = ds.episode(by_id[int(b["episode"][i])])
        t = int(b["start"][i])
        for j in range(4):
            assert b["actions"][i, j].tolist() == ep["actions"][t + j * k:t + (j + 1) * k].tolist()
            assert float(b["rewards"][i, j]) == pytest.approx(float(ep["rewards"][t + j * k:t + (j + 1) * k].sum()))
        want = torch.from_numpy(ep["frames"][t:t + 4 * k + 1:k]).permute(0, 3, 1, 2).float() / 255
        assert torch.equal(b["frames"][i], want)
    # the DataLoader path gives the same windows as the in-memory sampler
    wd = WindowDataset(ds, "train", context=3, horizon=2, jump=k)
    assert len(wd) == len(s)
    one = to_device(WindowDataset.collate([wd[7]]), "cpu")
    ref = s.gather(s.starts[7:8])
    assert all(torch.equal(one[n], ref[n]) for n in ref)


def test_sampler_resume_state(quick_dataset):
    ds = open_dataset(quick_dataset)
    a = WindowSampler(ds, "train", horizon=3, seed=5)
    a.sample(4)
    state = a.state_dict()
    x = a.sample(4)
    b = WindowSampler(ds, "train", horizon=3, seed=99)
    b.load_state_dict(state)
    assert torch.equal(b.sample(4)["start"], x["start"])


def test_checksum_catches_a_flipped_byte(quick_dataset, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(quick_dataset, copy)
    path = copy / "shard-00001" / "frames.npy"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(SsmlibError, match=r"checksum mismatch in .*shard-00001/frames.npy"):
        open_dataset(copy)


def test_truncated_shard_is_named(quick_dataset, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(quick_dataset, copy)
    path = copy / "shard-00000" / "rewards.npy"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(SsmlibError, match="shard-00000/rewards.npy"):
        open_dataset(copy)
    with pytest.raises(SsmlibError, match="shard-00000/rewards.npy"):
        open_dataset(copy, verify=False)  # even without checksums the short file is refused


def test_missing_or_foreign_folder(tmp_path):
    with pytest.raises(SsmlibError, match="no dataset"):
        open_dataset(tmp_path / "nope")
    (tmp_path / "x").mkdir()
    with pytest.raises(SsmlibError, match="no manifest.json"):
        open_dataset(tmp_path / "x")
    (tmp_path / "x" / "manifest.json").write_text("{not json")
    with pytest.raises(SsmlibError, match="corrupt"):
        open_dataset(tmp_path / "x")


def test_existing_output_is_refused_and_overwrite_replaces(quick_dataset, tmp_path):
    cfg = config_with(get_profile("quick").data, num_envs=2, steps_per_shard=50)
    out = tmp_path / "d"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    with pytest.raises(SsmlibError, match="exists"):
        collect(cfg, out, 100, progress=False)
    assert (out / "keep.txt").read_text() == "precious"  # nothing lost
    with pytest.raises(SsmlibError, match="other settings"):
        collect(config_with(cfg, seed=1), quick_dataset, 100, resume=True, progress=False)
    collect(cfg, out, 100, overwrite=True, progress=False)
    assert not (out / "keep.txt").exists() and open_dataset(out).manifest["complete"]


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "ssmlib", *args], capture_output=True, text=True, cwd=ROOT, **kw)


def _wait_for_a_listed_shard(out: Path, seconds: float = 120) -> None:
    """Until the collection in ``out`` has listed a shard in its manifest (or ``seconds`` have passed)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if json.loads((out / "manifest.json").read_text())["shards"]:
                return
        except (OSError, ValueError):  # not written yet, or caught between its write and rename
            pass
        time.sleep(0.05)


def test_resume_after_a_killed_collection_equals_an_uninterrupted_one(tmp_path):
    # 16 shards: a kill that a loaded machine delivers a few shards late still lands mid-way (with 4 shards and
    # "fewer than 4 listed" the test failed once while other jobs shared the 2 cores)
    common = ["collect", "--steps", "800", "--envs", "2", "--steps-per-shard", "25", "--no-progress"]
    ref = tmp_path / "ref"
    assert _cli(*common, "--out", str(ref)).returncode == 0
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "ssmlib", *common, "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_a_listed_shard(out)  # kill -9 once at least one shard is listed, mid-way through the rest
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = open_dataset(out)  # what is listed is valid (checksums verified)
    total = len(open_dataset(ref).manifest["shards"])
    assert total == 16 and 1 <= len(partial.manifest["shards"]) < total and not partial.manifest["complete"]
    r = _cli(*common, "--out", str(out))
    assert r.returncode == 2 and "--resume" in r.stderr
    assert _cli(*common, "--out", str(out), "--resume").returncode == 0
    done, want = open_dataset(out).manifest, open_dataset(ref).manifest
    assert done["complete"]
    assert [s["files"] for s in done["shards"]] == [s["files"] for s in want["shards"]]
    # no temp files left (the digest cache is the one dot-file a dataset keeps)
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name != DIGEST_CACHE]
    # each call records where its time went; timing is not content: the fingerprints agree
    phases = open_dataset(ref).manifest["collect_phases_s"]
    assert set(phases) == {"setup", "env", "policy", "preprocess", "split", "wait_for_writer", "write_in_thread"}
    assert all(v >= 0 for v in phases.values()) and phases["env"] > 0
    assert open_dataset(out).fingerprint == open_dataset(ref).fingerprint


def test_collecting_shards_in_worker_processes_writes_the_same_bytes(tmp_path):
    # the campaign's own kind of policy (the committed agent on half the envs, the rest random) at its frame size:
    # each shard depends only on its seeds, so three worker processes write what one process writes
    common = ["collect", "--profile", "paper", "--steps", "120", "--envs", "2", "--steps-per-shard", "20",
              "--policy-agent", "checkpoints/agents/MsPacman-model-free.safetensors", "--agent-share", "0.5",
              "--no-progress"]
    one, three = tmp_path / "one", tmp_path / "three"
    for out, workers in ((one, "1"), (three, "3")):
        r = _cli(*common, "--out", str(out), "--workers", workers)
        assert r.returncode == 0, r.stderr
    a, b = open_dataset(one).manifest, open_dataset(three).manifest
    assert len(b["shards"]) == 3 and b["complete"] and b["collect_workers"] == 3 and a["collect_workers"] == 1
    assert [s["files"] for s in b["shards"]] == [s["files"] for s in a["shards"]]
    assert open_dataset(three).fingerprint == open_dataset(one).fingerprint
    assert {"env", "policy", "preprocess", "split", "write"} <= set(b["collect_phases_s"])
    # this process entered every worker's digests, so a first open hashes nothing again
    cache = json.loads((three / DIGEST_CACHE).read_text())
    assert {f"{s['name']}/{f}" for s in b["shards"] for f in s["files"]} == set(cache)
    assert not [p for p in three.iterdir() if p.name.startswith(".") and p.name != DIGEST_CACHE]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_a_collection_with_workers_stopped_midway_leaves_no_worker_and_resumes_to_the_same_bytes(tmp_path, sig):
    # 6 shards of about half a second each: a worker that outlived its parent would be seen finishing its shard
    common = ["collect", "--steps", "4800", "--envs", "2", "--steps-per-shard", "400", "--no-progress"]
    ref, out = tmp_path / "ref", tmp_path / "stopped"
    assert _cli(*common, "--out", str(ref)).returncode == 0
    log = tmp_path / "stderr.txt"  # not a pipe: waiting on a pipe would wait for every process that holds it
    proc = subprocess.Popen([sys.executable, "-m", "ssmlib", *common, "--out", str(out), "--workers", "2"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=log.open("w"))
    _wait_for_a_listed_shard(out)  # stop it once a shard is listed, mid-way through the rest
    proc.send_signal(sig)
    proc.wait(timeout=60)
    err = log.read_text()
    if sig == signal.SIGINT:  # one line that says how to go on, and it works (below)
        assert proc.returncode == 2 and "interrupted" in err and "--resume" in err and "Traceback" not in err
    # no worker outlives it: before PR_SET_PDEATHSIG a worker went on to write its shard after a SIGKILL, which
    # a resumed collection may be writing at the same time
    before = sorted(p.name for p in out.iterdir())
    time.sleep(2.0)
    assert sorted(p.name for p in out.iterdir()) == before
    assert not open_dataset(out).manifest["complete"]
    assert _cli(*common, "--out", str(out), "--resume", "--workers", "2").returncode == 0
    assert open_dataset(out).fingerprint == open_dataset(ref).fingerprint
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name != DIGEST_CACHE]


def test_a_worker_that_dies_ends_the_collection_with_resume_advice_instead_of_a_hang(tmp_path):
    # a policy that kills its worker at its first step (the OOM killer's doing, on a GPU machine): with
    # multiprocessing.Pool the lost shard was waited for forever, and a lease lost its call
    (tmp_path / "dying_policy.py").write_text("import os\n\nclass Dies:\n    def __call__(self, frames, rng):\n"
                                              "        os._exit(9)\n")
    out = tmp_path / "d"
    script = ("import functools, sys\nfrom dying_policy import Dies\nfrom ssmlib.config import get_profile\n"
              "from ssmlib.data.collect import collect, config_with\nfrom ssmlib.errors import SsmlibError\n"
              "cfg = config_with(get_profile('quick').data, num_envs=2, steps_per_shard=10)\n"
              f"try:\n    collect(cfg, {str(out)!r}, 80, policy_factory=functools.partial(Dies), progress=False, "
              "workers=2)\nexcept SsmlibError as e:\n    print(e, file=sys.stderr)\n    sys.exit(2)\n")
    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"})
    assert r.returncode == 2, r.stderr
    assert "a collection worker died" in r.stderr and "0 of 4 shards" in r.stderr and "resume" in r.stderr


def test_a_split_collection_is_resumable_from_the_command_line_with_its_own_action_repeat():
    from ssmlib.data.collect import config_from_manifest

    agent = {"name": "epsilon", "epsilon": 0.1, "policy": {"name": "agent", "checkpoint": "a.safetensors"}}
    split = {"name": "split", "share": 0.5, "first": agent, "second": {"name": "random", "mean_repeat": 2.5}}
    base = {"game": "MsPacman", "height": 80, "width": 64, "frameskip": 4, "sticky_actions": 0.25, "num_envs": 4,
            "steps_per_shard": 10, "test_fraction": 0.1, "max_episode_steps": 100, "seed": 7}
    assert store.resumable_from_cli({"policy": split})  # the advice after a stop names the CLI (it rebuilds both)
    assert not store.resumable_from_cli({"policy": {**split, "second": {"name": "<function f>"}}})
    assert config_from_manifest({**base, "policy": split}).mean_action_repeat == 2.5


def test_workers_need_a_policy_another_process_can_be_sent(tmp_path):
    cfg = config_with(get_profile("quick").data, num_envs=2, steps_per_shard=10)
    always_left = lambda frames, rng: np.full(len(frames), 3)  # noqa: E731  (a lambda cannot be pickled)
    with pytest.raises(SsmlibError, match="with 2 workers needs a policy factory.*collect with workers=1"):
        collect(cfg, tmp_path / "d", 40, policy=always_left, progress=False, workers=2)
    with pytest.raises(SsmlibError, match="workers must be at least 1"):
        collect(cfg, tmp_path / "e", 40, progress=False, workers=0)
    # one worker needs no pickling: the same call collects
    assert collect(cfg, tmp_path / "f", 40, policy=always_left, progress=False, workers=1).manifest["complete"]


def test_resume_removes_what_a_kill_between_write_and_rename_leaves(tmp_path):
    # what a SIGKILL can leave at any instant, planted by hand (the killed-collection test above meets
    # them only when the kill lands in that instant: once, on CI, the digest cache's temp file)
    common = ["collect", "--steps", "100", "--envs", "2", "--steps-per-shard", "25", "--no-progress"]
    out = tmp_path / "d"
    assert _cli(*common, "--out", str(out)).returncode == 0
    (out / "..sha256-cache.json.ab12cd34.tmp").write_text("{")  # atomic_write's mkstemp name
    (out / ".manifest.json.ef56gh78.tmp").write_text("{")
    (out / ".shard-00001.tmp").mkdir()
    (out / ".shard-00001.tmp" / "frames.npy").write_bytes(b"half")
    (out / "notes.tmp").write_text("a reader's file")  # not a dot-file: not ours to delete
    assert _cli(*common, "--out", str(out), "--resume").returncode == 0
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [DIGEST_CACHE]
    assert (out / "notes.tmp").read_text() == "a reader's file"
    assert open_dataset(out).manifest["complete"]


@pytest.mark.parametrize("args,message", [
    (["--game", "MsPacmn"], "unknown game 'MsPacmn'; did you mean MsPacman"),
    (["--height", "84"], "not a multiple of 8"),
    (["--steps", "0"], "collect --steps must be at least 1, got 0"),
])
def test_cli_errors_are_one_clear_line(tmp_path, args, message):
    base = {"--steps": "10", "--out": str(tmp_path / "o")}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    r = _cli("collect", *[x for kv in base.items() for x in kv])
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ssmlib: error:") and message in lines[0]
    assert "Traceback" not in r.stderr


def test_cli_refuses_existing_output(quick_dataset):
    r = _cli("collect", "--steps", "10", "--out", str(quick_dataset))
    assert r.returncode == 2 and "exists" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert open_dataset(quick_dataset).manifest["complete"]


def test_bench_collect_writes_a_well_formed_file(tmp_path):
    out = tmp_path / "bench.json"
    r = _cli("bench", "collect", "--envs", "2", "--seconds", "0.3", "--out", str(out))
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())
    row = result["rows"][0]
    assert row["envs"] == 2 and row["sync_steps_per_s"] > 0 and row["native_steps_per_s"] > 0
    assert row["native_over_sync"] == pytest.approx(row["native_steps_per_s"] / row["sync_steps_per_s"])
    assert {"git_sha", "device", "versions"} <= set(result["provenance"])


def test_bench_collect_workers_times_each_count_and_checks_the_bytes(tmp_path):
    out = tmp_path / "workers.json"
    r = _cli("bench", "collect-workers", "--workers", "1,2", "--shards", "2", "--envs", "2", "--steps-per-shard", "20",
             "--profile", "quick", "--repeats", "2", "--out", str(out))
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())
    assert [row["workers"] for row in result["rows"]] == [1, 2]
    assert all(row["same_bytes"] and row["frames"] == result["rows"][0]["frames"] > 0 for row in result["rows"])
    first, second = result["rows"]
    assert result["repeats"] == 2 and all(len(row["walls_s"]) == 2 for row in result["rows"])
    assert first["wall_s"] == pytest.approx(np.median(first["walls_s"]))
    assert first["speedup"] == 1.0 and second["speedup"] == pytest.approx(first["wall_s"] / second["wall_s"])
    assert result["policy"] == "random" and {"git_sha", "device"} <= set(result["provenance"])
    r = _cli("bench", "collect-workers", "--workers", "1", "--out", str(out))  # refused before any collecting
    assert r.returncode == 2 and "exists; pass --overwrite" in r.stderr


def test_collect_with_any_callable_policy_and_epsilon(tmp_path):
    from ssmlib.data.collect import EpsilonPolicy

    cfg = config_with(get_profile("quick").data, num_envs=2, steps_per_shard=60)
    always_left = lambda frames, rng: np.full(len(frames), 3)  # noqa: E731  (LEFT)
    ds = collect(cfg, tmp_path / "left", 120, policy=always_left, progress=False)
    acted = np.concatenate([np.asarray(s["actions"])[np.asarray(s["done"]) == 0] for s in ds.shards])
    assert len(acted) > 100 and (acted == 3).all()
    assert ds.manifest["policy"]["name"].startswith("<function")
    eps = EpsilonPolicy(always_left, num_actions=9, epsilon=0.5)
    picks = eps(np.zeros((4000, 1)), np.random.default_rng(0))
    assert 0.5 < (picks == 3).mean() < 0.6  # 50% kept + 50% * 1/9 random LEFT
    assert eps.describe()["epsilon"] == 0.5


def test_demo_dataset_goes_to_the_user_cache(tmp_path, monkeypatch):
    from ssmlib.config import REPO_ROOT
    from ssmlib.pretrained import cache_dir, demo_dataset

    monkeypatch.delenv("SSMLIB_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "ssmlib"
    monkeypatch.setenv("SSMLIB_CACHE", str(tmp_path / "cache"))
    assert cache_dir() == tmp_path / "cache"
    ds = demo_dataset("MsPacman", 80, 64, steps=80)
    assert ds.root == tmp_path / "cache" / "datasets" / "MsPacman-80x64-demo" and ds.manifest["complete"]
    assert REPO_ROOT not in ds.root.parents
    written = (ds.root / "manifest.json").stat().st_mtime_ns
    assert demo_dataset("MsPacman", 80, 64, steps=80).fingerprint == ds.fingerprint
    assert (ds.root / "manifest.json").stat().st_mtime_ns == written  # reused, not collected again


def test_digest_cache_skips_unchanged_files_and_never_hides_a_changed_one(tmp_path, monkeypatch):
    out = tmp_path / "d"
    assert _cli("collect", "--steps", "200", "--envs", "2", "--steps-per-shard", "50", "--no-progress",
                "--out", str(out)).returncode == 0
    assert (out / DIGEST_CACHE).exists()  # written with the shards: the first open hashes nothing
    calls = []
    real = store.sha256_file
    monkeypatch.setattr(store, "sha256_file", lambda p: calls.append(p) or real(p))
    open_dataset(out)
    assert calls == []
    # a file rewritten with other bytes of the same size: a new mtime, hashed again, refused
    victim = out / "shard-00000" / "rewards.npy"
    arr = np.load(victim)
    np.save(victim, arr + 1.0)
    with pytest.raises(SsmlibError, match="checksum mismatch"):
        open_dataset(out)
    assert calls == [victim]
    # no cache (e.g. deleted): every file is hashed and the dataset still opens when intact
    np.save(victim, arr)
    (out / DIGEST_CACHE).unlink()
    calls.clear()
    open_dataset(out)
    assert len(calls) == sum(len(s["files"]) for s in store.read_manifest(out)["shards"])
