"""Data-parallel training (ssmlib.distributed) on the CPU: two torchrun processes with gloo against one
process that draws the same global batch, resume of a 2-rank checkpoint in one process, rank 0 alone writes.

The deterministic dSSM-DET is used so that the comparison is exact up to float summation order (the
latent models draw their posterior noise per rank, which agrees only in distribution).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ssmlib import checkpoint as ckpt
from ssmlib import distributed as dd
from ssmlib import train as tr
from ssmlib.errors import SsmlibError

REPO = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "_dist_worker.py"
# Tiny, as tests/test_train.py: quarter channels, 3-step windows, a global batch of 4 (2 per rank).
TINY = dict(channel_scale=0.25, horizon=3, batch_size=4, log_every=1, eval_every=1, ckpt_every=1, kl_warmup_steps=4)
RUN_FILES = {tr.CHECKPOINT, "checkpoint.json", tr.CONFIG, tr.METRICS, tr.SUMMARY}


def torchrun(args: list[str], watch: Path) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc-per-node 2 -m ssmlib ARGS`` (a free port), each rank watched for writes."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(WORKER),
           *map(str, args)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SSMLIB_TEST_WATCH": str(watch)}
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)


def single(data, out, steps: int, **kw):
    return tr.train("dSSM-DET", data, out, overrides={**TINY, "steps": steps}, device="cpu", progress=False, **kw)


def tensors(run: Path) -> dict[str, torch.Tensor]:
    return ckpt.load_checkpoint(run / tr.CHECKPOINT)[1]


def assert_same_training_state(a: Path, b: Path, rtol: float, atol: float) -> None:
    ta, tb = tensors(a), tensors(b)
    for k in ta:
        if k.startswith(("model.", "optim.")):
            torch.testing.assert_close(ta[k], tb[k], rtol=rtol, atol=atol, msg=k)
        elif k.startswith("sampler."):  # the same windows were drawn: every shard's generator agrees exactly
            assert torch.equal(ta[k], tb[k]), k


def assert_same_metrics(a: Path, b: Path) -> None:
    ra, rb = tr.read_metrics(a), tr.read_metrics(b)
    assert [(r["step"], r["split"]) for r in ra] == [(r["step"], r["split"]) for r in rb]
    for x, y in zip(ra, rb):
        for k in ("loss", "recon", "reward", "elbo", "grad_norm", "windows"):
            if k in x:
                assert x[k] == pytest.approx(y[k], rel=1e-5), (x["step"], x["split"], k)


@pytest.fixture(scope="module")
def two_ranks(quick_dataset, tmp_path_factory):
    """One optimiser step of dSSM-DET on 2 gloo ranks (global batch 4), checkpoint and test metrics at step 1."""
    out = tmp_path_factory.mktemp("ddp") / "two"
    sets = [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]
    p = torchrun(["train", "--model", "dSSM-DET", "--data", quick_dataset, "--out", out, "--device", "cpu",
                  "--steps", 1, "--no-progress", *sets], watch=out)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-4000:]
    assert "on 2 ranks" in p.stdout
    return out


def test_one_step_on_two_ranks_equals_one_process(two_ranks, quick_dataset, tmp_path):
    one = tmp_path / "one"
    single(quick_dataset, one, steps=1, data_shards=2)  # one process drawing the global batch of 2 ranks
    assert_same_training_state(two_ranks, one, rtol=1e-5, atol=1e-6)
    assert_same_metrics(two_ranks, one)
    cfg = json.loads((two_ranks / tr.CONFIG).read_text())
    assert cfg["distributed"] == {"world_size": 2, "data_shards": 2, "backend": "gloo", "batch_per_rank": 2}
    assert cfg["train_cfg"]["batch_size"] == 4 and cfg["train_cfg"]["lr"] == json.loads((one / tr.CONFIG).read_text())[
        "train_cfg"]["lr"]  # the global batch and lr are the config's, whatever the number of ranks
    assert json.loads((two_ranks / tr.SUMMARY).read_text())["world_size"] == 2


def test_only_rank_0_writes(two_ranks):
    assert {p.name for p in two_ranks.iterdir()} == RUN_FILES  # and no temp file left behind
    rank0 = json.loads(Path(f"{two_ranks}.rank0.json").read_text())
    rank1 = json.loads(Path(f"{two_ranks}.rank1.json").read_text())
    assert rank1 == []
    assert any(e == "os.rename" and Path(p).name.startswith(f".{tr.CHECKPOINT}") for e, p in rank0)  # the hook works


def test_resume_two_rank_checkpoint_in_one_process(two_ranks, quick_dataset, tmp_path):
    resumed = tmp_path / "resumed"
    shutil.copytree(two_ranks, resumed)
    s = tr.train(None, quick_dataset, resumed, overrides={"steps": 3}, resume=True, device="cpu", progress=False)
    assert s["status"] == "done" and s["step"] == 3 and s["world_size"] == 1 and s["data_shards"] == 2
    straight = tmp_path / "straight"
    single(quick_dataset, straight, steps=3, data_shards=2)
    # the data shards divide over 1 process: the same windows as an uninterrupted run, weights within float tolerance
    assert_same_training_state(resumed, straight, rtol=1e-4, atol=1e-5)
    assert_same_metrics(resumed, straight)
    last = json.loads((resumed / tr.CONFIG).read_text())["resumes"][-1]
    assert (last["step"], last["from_world_size"], last["world_size"], last["shards_kept"]) == (1, 2, 1, True)


def test_batch_that_does_not_divide_is_one_error_line(quick_dataset, tmp_path):
    out = tmp_path / "odd"
    p = torchrun(["train", "--model", "sSSM", "--data", quick_dataset, "--out", out, "--device", "cpu",
                  "--batch-size", 3, "--steps", 1], watch=out)
    assert p.returncode != 0
    lines = [s for s in p.stderr.splitlines() if s.startswith("ssmlib: error:")]
    assert lines == ["ssmlib: error: batch_size 3 does not divide over 2 ranks (the global batch is split evenly; "
                     "choose a multiple of 2)"]
    assert not out.exists()
    with pytest.raises(SsmlibError, match="batch_size 4 does not divide over 3 data shards"):
        single(quick_dataset, tmp_path / "odd1", steps=1, data_shards=3)
    assert not (tmp_path / "odd1").exists()


def test_shard_layout(quick_dataset):
    from ssmlib.data.store import open_dataset
    from ssmlib.data.windows import WindowSampler

    ds = open_dataset(quick_dataset)
    kw = dict(context=3, horizon=3, jump=1, device="cpu", seed=7)
    # one shard is the single-process sampler, unchanged
    torch.testing.assert_close(dd.ShardedSampler(ds, 1, [0], **kw).sample(4),
                               WindowSampler(ds, "train", horizon=3, seed=7).sample(4))
    # shards cut the train episodes (i mod S); ranks holding them in order draw the one-process global batch
    eps = [dd.shard_episodes(ds, s, 2) for s in range(2)]
    assert sorted(e.id for e in eps[0] + eps[1]) == sorted(e.id for e in ds.split("train"))
    assert not {e.id for e in eps[0]} & {e.id for e in eps[1]}
    whole = dd.ShardedSampler(ds, 2, [0, 1], **kw).sample(6)
    parts = [dd.ShardedSampler(ds, 2, dd.rank_shards(2, r, 2), **kw).sample(3) for r in range(2)]
    for k in whole:
        assert torch.equal(whole[k], torch.cat([p[k] for p in parts])), k
    assert set(whole["episode"][:3].tolist()) <= {e.id for e in eps[0]}
    # what a resume on M ranks does with S saved shards
    assert dd.plan_shards(8, 2) == (2, False)
    assert dd.plan_shards(8, 1, saved_shards=2) == (2, True)
    assert dd.plan_shards(8, 2, saved_shards=4) == (4, True)
    assert dd.plan_shards(12, 3, saved_shards=2) == (3, False)  # re-cut: continues, not bit-exact
    with pytest.raises(SsmlibError, match="batch_size 30 does not divide over 4 ranks"):
        dd.plan_shards(30, 4)
