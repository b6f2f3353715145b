"""Jumpy models and the jumpy study: chunked windows on hand-made data, k = 1 equals the plain model,
the open-loop predictive log-likelihood, the report at matched env steps, and the rollout bench's variants."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ssmlib.studies import jumpy
from ssmlib.config import ModelConfig
from ssmlib.data import store
from ssmlib.data.store import open_dataset
from ssmlib.data.windows import WindowDataset, WindowSampler, to_device
from ssmlib.errors import SsmlibError
from ssmlib.evaluate import evaluate
from ssmlib.models import CONTEXT, build_model
from test_models import _one_thread  # noqa: F401  (autouse: one torch thread, as in the model tests)

ROOT = Path(__file__).resolve().parent.parent
TINY = ["channel_scale=0.25", "horizon=3", "batch_size=2", "steps=2", "log_every=1", "eval_every=0"]


def tiny_model(name: str, ds, jump: int = 1, seed: int = 0):
    torch.manual_seed(seed)
    cfg = ModelConfig(model=name, height=ds.height, width=ds.width, num_actions=ds.num_actions, channel_scale=0.25,
                      z_channels=16, jump=jump)
    return build_model(cfg).eval()


@pytest.fixture(scope="module")
def counting_dataset(tmp_path_factory):
    """A hand-made dataset through the store API: one 30-row episode whose frame i is filled with the
    value i, whose action i is i % 9 and whose reward i is i (0 on the last row, as collect writes it)."""
    root = tmp_path_factory.mktemp("counting")
    n, A = 30, 9
    rows = np.arange(n)
    arrays = {"frames": np.broadcast_to(rows[:, None, None, None], (n, 8, 8, 3)).astype(np.uint8),
              "actions": (rows % A).astype(np.uint8), "rewards": rows.astype(np.float32),
              "episode": np.zeros(n, np.int64), "done": np.zeros(n, np.uint8)}
    arrays["actions"][-1], arrays["rewards"][-1], arrays["done"][-1] = 0, 0, store.TERMINATED
    entry = store.write_shard(root, 0, arrays)
    store.write_manifest(root, {"format": store.FORMAT, "game": "MsPacman", "height": 8, "width": 8,
                                "num_actions": A, "action_meanings": [str(a) for a in range(A)], "seed": 0,
                                "test_fraction": 1.0, "complete": True, "shards": [entry]})
    return root


# ----- windows ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 3])
def test_windows_chunk_actions_and_sum_rewards_by_hand(counting_dataset, k):
    ds = open_dataset(counting_dataset)
    s = WindowSampler(ds, "test", context=3, horizon=2, jump=k)
    b = s.gather(torch.tensor([1]))  # the window starting at row 1
    rows = [1 + j * k for j in range(5)]  # its frames: every k-th row
    assert (b["frames"][0, :, 0, 0, 0] * 255).round().long().tolist() == rows
    chunks = [[(r + i) % 9 for i in range(k)] for r in rows[:-1]]  # the k actions from each kept frame
    assert b["actions"][0].tolist() == ([c[0] for c in chunks] if k == 1 else chunks)
    assert b["rewards"][0].tolist() == [sum(r + i for i in range(k)) for r in rows[:-1]]  # summed rewards
    assert len(s) == 30 - (4 * k + 1) + 1  # every window of 4k+1 env frames in the episode, no more
    one = to_device(WindowDataset.collate([WindowDataset(ds, "test", context=3, horizon=2, jump=k)[1]]), "cpu")
    assert all(torch.equal(one[n], b[n]) for n in b)


def test_anchored_windows_share_the_context_frame_and_the_targets(counting_dataset):
    ds = open_dataset(counting_dataset)
    anchors = jumpy.anchor_rows(ds, 8, (1, 2, 4))
    assert anchors.tolist() == list(range(8, 30 - 8))  # 2*4 rows of context behind, 8 env steps ahead
    for k in (1, 2, 4):
        b = next(jumpy.anchored_sampler(ds, k, 8, anchors).iterate(len(anchors)))
        frame_rows = (b["frames"][:, :, 0, 0, 0] * 255).round().long()
        assert frame_rows[:, CONTEXT - 1].tolist() == anchors.tolist()  # the same last context frame
        for e in (4, 8):  # the target at env step e is transition e / k
            assert frame_rows[:, CONTEXT - 1 + e // k].tolist() == (anchors + e).tolist()
    with pytest.raises(SsmlibError, match="multiple of every jump"):
        jumpy.check_env_steps((4, 6), (1, 4))


# ----- models ----------------------------------------------------------------------------------------


def test_jump_1_model_equals_the_plain_model(quick_dataset):
    ds = open_dataset(quick_dataset)
    plain = tiny_model("sSSM", ds)
    cfg = dataclasses.replace(plain.cfg, jump=1)
    jumpy_1 = build_model(cfg).eval()
    jumpy_1.load_state_dict(plain.state_dict())  # strict: the same parameters, the same shapes
    batch = WindowSampler(ds, "test", horizon=3, jump=1).gather(torch.tensor([0, 5]))
    assert torch.equal(batch["actions"], WindowSampler(ds, "test", horizon=3).gather(torch.tensor([0, 5]))["actions"])
    model_batch = {n: batch[n] for n in ("frames", "actions", "rewards")}
    with torch.no_grad():
        outs = []
        for m in (plain, jumpy_1):
            torch.manual_seed(1)
            sc = m.score(model_batch, num_samples=2)
            roll = m.imagine(m.initial_state(batch["frames"][:, :CONTEXT]), batch["actions"][:, CONTEXT - 1:],
                             decode=True, sample=True)
            outs.append((sc["log_px"], sc["kl"], roll.frame_logits, roll.reward_logits))
    assert all(torch.equal(a, b) for a, b in zip(*outs))


def test_open_loop_ll_is_the_exact_ll_for_dssm_det(quick_dataset):
    ds = open_dataset(quick_dataset)
    ev = evaluate(tiny_model("dSSM-DET", ds), ds, batch_size=4, num_samples=4, max_windows=6, horizon=4)
    ph, tot = ev["per_horizon"], ev["total"]
    assert ev["open_loop_samples"] == 1  # deterministic imagination: one sample
    # dSSM-DET's state never sees a frame: teacher forcing and open-loop imagination are the same pass
    assert ph["ll_open_loop_nats"] == pytest.approx(ph["ll_nats"], rel=1e-6)
    assert tot["ll_open_loop_nats"] == pytest.approx(tot["ll_nats"], rel=1e-6)
    assert tot["ll_open_loop_joint_nats"] == pytest.approx(tot["ll_nats"], rel=1e-6)
    assert tot["ll_open_loop_nats_per_frame"] == pytest.approx(tot["ll_nats_per_frame"], rel=1e-6)


def test_open_loop_ll_of_sssm_is_finite_and_not_positive(quick_dataset):
    ds = open_dataset(quick_dataset)
    model = tiny_model("sSSM", ds)
    ev = evaluate(model, ds, batch_size=4, num_samples=3, max_windows=6, horizon=4)
    assert ev["open_loop_samples"] == 3
    vals = ev["per_horizon"]["ll_open_loop_nats"] + [ev["total"]["ll_open_loop_nats"],
                                                      ev["total"]["ll_open_loop_joint_nats"]]
    assert all(np.isfinite(v) and v <= 0 for v in vals)
    # the per-frame average of K prior samples is at least the joint's share (log-mean-exp of a sum is
    # at most the sum of log-mean-exps), and the estimate repeats with the seed
    assert ev["total"]["ll_open_loop_joint_nats"] <= ev["total"]["ll_open_loop_nats"] + 1e-3
    again = evaluate(model, ds, batch_size=4, num_samples=3, max_windows=6, horizon=4)
    assert again["per_horizon"]["ll_open_loop_nats"] == ev["per_horizon"]["ll_open_loop_nats"]


def test_k1_scores_at_env_steps_are_its_per_horizon_values(quick_dataset):
    ds = open_dataset(quick_dataset)
    model = tiny_model("dSSM-DET", ds)
    anchors = jumpy.anchor_rows(ds, 4, (1, 2), max_windows=5)
    ev, at = jumpy.score(model, ds, anchors, env_steps=(2, 4), samples=2, batch_size=4)
    assert ev["windows"] == 5 and ev["horizon"] == 4 and at["transition"] == [2, 4]
    for key in jumpy.MATCHED:
        assert at[key] == [ev["per_horizon"][key][1], ev["per_horizon"][key][3]]
    ev2, at2 = jumpy.score(tiny_model("dSSM-DET", ds, jump=2), ds, anchors, env_steps=(2, 4), samples=2, batch_size=4)
    assert ev2["horizon"] == 2 and at2["transition"] == [1, 2]


# ----- the study -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_runs(quick_dataset, tmp_path_factory):
    runs = tmp_path_factory.mktemp("jumpy") / "runs"
    codes = jumpy.train_runs(quick_dataset, runs, ["dSSM-DET", "sSSM"], [1, 2], "quick", device="cpu", sets=TINY)
    assert codes == {"dSSM-DET-k1": 0, "dSSM-DET-k2": 0, "sSSM-k1": 0, "sSSM-k2": 0}
    return runs


def test_jumpy_report_writes_a_well_formed_study(quick_dataset, tiny_runs, tmp_path):
    results = tmp_path / "results"
    summary = jumpy.report(quick_dataset, tiny_runs, results, ["dSSM-DET", "sSSM"], [1, 2], env_steps=(2, 4),
                           samples=2, max_windows=4, device="cpu")
    assert [(r["run"], r["jump"]) for r in summary["rows"]] == [
        ("dSSM-DET-k1", 1), ("dSSM-DET-k2", 2), ("sSSM-k1", 1), ("sSSM-k2", 2)]
    assert summary["env_steps"] == [2, 4] and summary["test_windows"] == 4
    assert {"git_sha", "device", "versions"} <= set(summary["provenance"])
    for r in summary["rows"]:
        at = r["at_env_steps"]
        assert r["train_steps"] == 2 and r["test_windows"] == 4 and r["horizon"] == 4 // r["jump"]
        assert at["env_step"] == [2, 4] and at["transition"] == [2 // r["jump"], 4 // r["jump"]]
        assert all(v <= 0 for v in at["ll_open_loop_nats"]) and all(0 <= v <= 1 for v in at["reward_acc_open_loop"])
        cfg = json.loads((results / r["run"] / "config.json").read_text())
        assert cfg["model_cfg"]["jump"] == r["jump"]  # each run was trained at its own k
        for f in ("eval.json", "metrics.jsonl", "summary.json"):
            assert (results / r["run"] / f).stat().st_size > 0
    table = (results / "table.md").read_text()
    assert "| sSSM-k2 | 2 |" in table and "| sSSM-k2 | 4 | 2 |" in table
    study = jumpy.load_study(results=results)
    assert study["evals"]["sSSM-k2"]["at_env_steps"]["transition"] == [1, 2] and len(study["curves"]) == 4
    assert jumpy.load_study(results=tmp_path / "nothing") is None


def test_jumpy_cli_refuses_bad_input_in_one_line(quick_dataset, tiny_runs, tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "ssmlib", "jumpy", *args], capture_output=True, text=True,
                              cwd=ROOT)

    bad = cli("report", "--data", str(quick_dataset), "--runs", str(tiny_runs), "--env-steps", "3",
              "--results", str(tmp_path / "r"), "--device", "cpu")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "multiple of every jump" in bad.stderr
    none = cli("report", "--data", str(quick_dataset), "--runs", str(tmp_path), "--jumps", "1", "--env-steps", "2",
               "--results", str(tmp_path / "r"), "--device", "cpu")
    assert none.returncode == 2 and "no trained run" in none.stderr


# ----- the rollout bench -----------------------------------------------------------------------------


def test_bench_rollout_skips_gpu_variants_on_cpu_and_refuses_unknown_ones(tmp_path):
    out = tmp_path / "rollout.json"
    r = subprocess.run([sys.executable, "-m", "ssmlib", "bench", "rollout", "--profile", "quick", "--batches", "2",
                        "--horizon", "4", "--repeats", "1", "--models", "RAR,dSSM-DET:4",
                        "--variants", "fp32-eager,bf16-graph,bf16-compile", "--out", str(out)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())
    assert result["skipped_variants"] == ["bf16-graph", "bf16-compile"]
    assert {(x["model"], x["jump"], x["variant"]) for x in result["rows"]} == {
        ("RAR", 1, "fp32-eager"), ("dSSM-DET", 4, "fp32-eager")}
    assert all(x["env_steps_per_s"] > 0 and x["speedup_vs_RAR"] > 0 for x in result["rows"])
    assert {x["transitions"] for x in result["rows"] if x["jump"] == 4} == {1}
    bad = subprocess.run([sys.executable, "-m", "ssmlib", "bench", "rollout", "--variants", "bf16-compiled",
                          "--out", str(tmp_path / "x.json")], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "unknown variant(s) bf16-compiled" in bad.stderr
