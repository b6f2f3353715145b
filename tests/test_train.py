"""Training loop and evaluation on a real tiny MsPacman dataset: exact resume, NaN stop, refusals, metrics."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import signal

import pytest
import torch

from ssmlib import checkpoint as ckpt
from ssmlib import evaluate as ev
from ssmlib import train as tr
from ssmlib.errors import SsmlibError

# Tiny: quarter channels, 3-step windows, batch 4; every step logged, a checkpoint every 3 steps.
TINY = dict(channel_scale=0.25, horizon=3, batch_size=4, steps=6, log_every=1, eval_every=3, ckpt_every=3,
            kl_warmup_steps=4)


def run(data, out, model="sSSM", **kw):
    overrides = {**TINY, **kw.pop("overrides", {})}
    return tr.train(model, data, out, overrides=overrides, progress=False, eval_windows=4, device="cpu", **kw)


def strip(records):
    """Metrics without the timing fields (which legitimately differ between runs)."""
    return [{k: v for k, v in r.items() if k not in ("wall_s", "frames_per_s")} for r in records]


def test_resume_is_exact(quick_dataset, tmp_path):
    straight = tmp_path / "straight"
    run(quick_dataset, straight)

    broken = tmp_path / "broken"

    def ctrl_c_at_2(step, record):
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C: finish the step, save, exit cleanly

    s = run(quick_dataset, broken, callback=ctrl_c_at_2)
    assert s["status"] == "interrupted" and s["step"] == 2
    assert ckpt.read_meta(broken / tr.CHECKPOINT)["step"] == 2

    def crash_at_5(step, record):
        if step == 5:
            raise RuntimeError("simulated kill")  # dies after step 5; the last checkpoint is step 3

    with pytest.raises(RuntimeError, match="simulated kill"):
        run(quick_dataset, broken, resume=True, callback=crash_at_5)
    assert ckpt.read_meta(broken / tr.CHECKPOINT)["step"] == 3
    assert max(r["step"] for r in tr.read_metrics(broken)) == 5

    s = run(quick_dataset, broken, resume=True)
    assert s["status"] == "done" and s["step"] == 6
    a, b = strip(tr.read_metrics(straight)), strip(tr.read_metrics(broken))
    assert [r["step"] for r in a if r["split"] == "train"] == list(range(1, 7))
    assert a == b  # every train and test line, bit for bit (metrics of steps 4-5 were truncated, then redone)
    _, ta = ckpt.load_checkpoint(straight / tr.CHECKPOINT)
    _, tb = ckpt.load_checkpoint(broken / tr.CHECKPOINT)
    for k in ta:
        if k.startswith(("model.", "optim.", "sampler.")):
            assert torch.equal(ta[k], tb[k]), k
    config = json.loads((broken / tr.CONFIG).read_text())
    assert [r["step"] for r in config["resumes"]] == [2, 3]
    assert config["data"]["fingerprint"] and config["provenance"]["git_sha"]

    # a resumed run must keep its trajectory: changing the horizon is refused, extending it is fine
    with pytest.raises(SsmlibError, match="cannot change horizon"):
        run(quick_dataset, broken, resume=True, overrides={"horizon": 4})
    with pytest.raises(SsmlibError, match="holds a sSSM, not a dSSM-DET"):
        run(quick_dataset, broken, model="dSSM-DET", resume=True)
    # ... and so is other data (here: the same shards, a different seed, hence another split); a
    # manifest change that leaves the content alone (a note) is not "other data"
    other = tmp_path / "other_data"
    shutil.copytree(quick_dataset, other)
    m = json.loads((other / "manifest.json").read_text())
    m["seed"] += 1
    (other / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(SsmlibError, match="trained on other data"):
        run(other, broken, resume=True)


def test_nan_stops_and_keeps_last_good_checkpoint(quick_dataset, tmp_path, monkeypatch):
    import ssmlib.models as models

    real_build = models.build_model

    def build_with_nan_at_step_4(cfg):
        model = real_build(cfg)
        calls = {"n": 0}
        real_loss = model.loss

        def loss(batch, **kw):
            calls["n"] += 1
            out = real_loss(batch, **kw)
            if calls["n"] == 4:
                out["loss"] = out["loss"] * float("nan")
            return out

        model.loss = loss
        return model

    monkeypatch.setattr(models, "build_model", build_with_nan_at_step_4)
    out = tmp_path / "nan"
    with pytest.raises(tr.NonFiniteError, match=r"non-finite loss .* at step 4.*step 3\) is kept") as e:
        run(quick_dataset, out, model="dSSM-DET", overrides={"eval_every": 0})
    assert "\n" not in str(e.value)
    meta = ckpt.read_meta(out / tr.CHECKPOINT)
    assert meta["step"] == 3
    model = ckpt.load_model(out / tr.CHECKPOINT, expect_model="dSSM-DET")
    assert all(torch.isfinite(p).all() for p in model.parameters())
    lines = tr.read_metrics(out)  # still strict JSON: the NaN is written as null
    assert lines[-1]["step"] == 4 and lines[-1]["event"] == "non-finite loss" and lines[-1]["loss"] is None


def test_refuses_existing_out_dir(quick_dataset, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(SsmlibError, match=r"already exists and is not empty; pass --resume .* or --overwrite"):
        run(quick_dataset, out)
    with pytest.raises(SsmlibError, match="no such TrainConfig or ModelConfig field"):
        run(quick_dataset, tmp_path / "x", overrides={"horizn": 3})
    with pytest.raises(SsmlibError, match="come from the data"):
        run(quick_dataset, tmp_path / "x", overrides={"height": 40})
    assert not (tmp_path / "x").exists()  # refused before anything was written


@pytest.fixture(scope="module")
def short_run(quick_dataset, tmp_path_factory):
    """A short dSSM-DET run: 24 steps, logged every 2."""
    out = tmp_path_factory.mktemp("runs") / "det"
    summary = run(quick_dataset, out, model="dSSM-DET",
                  overrides=dict(steps=24, log_every=2, eval_every=12, ckpt_every=12, lr=3e-3))
    return out, summary


def test_metrics_are_well_formed_and_loss_falls(short_run):
    out, summary = short_run
    lines = (out / tr.METRICS).read_text().splitlines()
    recs = [json.loads(s) for s in lines]  # every line strict JSON
    train = [r for r in recs if r["split"] == "train"]
    test = [r for r in recs if r["split"] == "test"]
    assert [r["step"] for r in train] == list(range(2, 25, 2)) and [r["step"] for r in test] == [12, 24]
    for r in train:
        for k in ("loss", "recon", "kl", "reward", "elbo", "lr", "grad_norm", "frames_per_s", "wall_s"):
            assert isinstance(r[k], float) and math.isfinite(r[k]), (k, r)
    assert train[-1]["loss"] < train[0]["loss"] - 50  # nats per frame
    assert test[-1]["elbo"] > test[0]["elbo"]
    assert summary["status"] == "done" and summary["step"] == 24
    cfg = json.loads((out / tr.CONFIG).read_text())
    assert cfg["model_cfg"]["height"] == 80 and cfg["train_cfg"]["horizon"] == 3
    assert json.loads((out / "checkpoint.json").read_text())["step"] == 24


def _check_eval(res, model, T):
    ph, tot = res["per_horizon"], res["total"]
    assert res["model"] == model and res["horizon"] == T and ph["h"] == list(range(1, T + 1))
    for k, v in ph.items():
        assert len(v) == T and all(math.isfinite(x) for x in v), k
    for k in ("ll_nats", "elbo_nats", "iwae_nats", "nll_bits_per_dim", "reward_acc_open_loop", "frame_mse_open_loop"):
        assert math.isfinite(tot[k]), k
    assert 0 <= tot["reward_acc_teacher"] <= 1 and 0 <= tot["frame_mse_open_loop"] <= 1
    dims = 3 * 80 * 64
    assert tot["nll_bits_per_dim"] == pytest.approx(-tot["ll_nats"] / T / (dims * math.log(2)))
    json.dumps(res, allow_nan=False)


def test_evaluate_deterministic_and_latent(quick_dataset):
    from ssmlib.config import ModelConfig
    from ssmlib.data.store import open_dataset
    from ssmlib.data.windows import WindowSampler
    from ssmlib.models import build_model

    ds = open_dataset(quick_dataset)
    sampler = WindowSampler(ds, "test", horizon=3)
    for name in ("dSSM-DET", "sSSM"):
        torch.manual_seed(0)
        model = build_model(ModelConfig(model=name, height=80, width=64, num_actions=ds.num_actions,
                                        channel_scale=0.25, z_channels=16))
        res = ev.evaluate(model, sampler, batch_size=4, num_samples=8, max_windows=8)
        _check_eval(res, name, 3)
        assert res["windows"] == 8
        if name == "dSSM-DET":
            assert res["log_likelihood"] == "exact" and res["total"]["iwae_minus_elbo_nats"] == 0
        else:
            assert res["latent"] and res["num_samples"] == 8
            # IWAE (K=8) >= ELBO in expectation; tolerance for the analytic-vs-sampled KL noise
            assert res["total"]["iwae_nats"] >= res["total"]["elbo_nats"] - 0.5
            again = ev.evaluate(model, sampler, batch_size=4, num_samples=8, max_windows=8)
            assert again == res  # seeded: repeatable


def test_cli_train_resume_and_eval(quick_dataset, short_run, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="ssmlib")
    sub = parser.add_subparsers(dest="command", required=True)
    tr.add_cli(sub)
    ev.add_cli(sub)
    out_json = tmp_path / "eval.json"
    args = parser.parse_args(["eval", "--checkpoint", str(short_run[0] / tr.CHECKPOINT), "--data", str(quick_dataset),
                              "--max-windows", "4", "--batch-size", "4", "--out", str(out_json), "--device", "cpu"])
    assert args.func(args) == 0
    doc = json.loads(out_json.read_text())
    _check_eval(doc["results"], "dSSM-DET", 3)
    assert doc["checkpoint"]["step"] == 24 and doc["provenance"]["git_sha"]
    assert doc["checkpoint"]["trained_on_fingerprint"] == doc["data"]["fingerprint"]

    args = parser.parse_args(["train", "--model", "RAR", "--data", str(quick_dataset), "--out", str(tmp_path / "r"),
                              "--steps", "2", "--batch-size", "2", "--lr", "1e-3", "--device", "cpu",
                              "--set", "horizon=2", "--set", "channel_scale=0.25", "--set", "eval_every=0"])
    assert args.func(args) == 0
    cfg = json.loads((tmp_path / "r" / tr.CONFIG).read_text())
    assert cfg["train_cfg"]["horizon"] == 2 and cfg["train_cfg"]["batch_size"] == 2
    assert cfg["model_cfg"]["channel_scale"] == 0.25 and cfg["train_cfg"]["lr"] == 1e-3
    args = parser.parse_args(["train", "--data", str(quick_dataset), "--out", str(tmp_path / "r"), "--resume",
                              "--steps", "3", "--device", "cpu"])  # --model may be left out when resuming
    assert args.func(args) == 0
    assert "step 3/3" in capsys.readouterr().out


def test_time_limit_stops_cleanly_and_resume_continues(quick_dataset, tmp_path):
    from ssmlib.train import train

    out = tmp_path / "tl"
    sets = {"channel_scale": 0.25, "horizon": 3, "batch_size": 2, "steps": 4, "log_every": 1, "eval_every": 0}
    first = train("dSSM-DET", quick_dataset, out, overrides=sets, time_limit=0.0, progress=False, device="cpu")
    assert first["status"] == "time-limit" and first["step"] == 0 and first["checkpoint"]
    done = train(None, quick_dataset, out, resume=True, progress=False, device="cpu")
    assert done["status"] == "done" and done["step"] == 4


def test_a_sigterm_before_any_time_up_leaves_time_ups_state_in_the_summary_and_a_ctrl_c_does_not(quick_dataset,
                                                                                                tmp_path, capsys):
    """A lease's bound (SIGTERM) ending a run that its TIME_UP should have ended first: the summary (copied into
    the campaign's lineage) says what TIME_UP's handler, mask and pending set were; a user's Ctrl-C adds nothing."""
    def term_at_2(step, record):
        if step == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    s = run(quick_dataset, tmp_path / "term", callback=term_at_2)
    assert s["status"] == "interrupted" and s["step"] == 2
    assert s["time_up_missed"] == {"handler": "this rule's", "c_handler": "Python's", "blocked": False,
                                   "pending": False}
    assert "interrupted at step 2 without a TIME_UP received" in capsys.readouterr().out
    assert json.loads((tmp_path / "term" / "summary.json").read_text())["time_up_missed"] == s["time_up_missed"]

    def ctrl_c_at_2(step, record):
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    assert "time_up_missed" not in run(quick_dataset, tmp_path / "int", callback=ctrl_c_at_2)


def test_bernoulli_floor_and_pixel_call_counts():
    import numpy as np

    from ssmlib.config import ModelConfig
    from ssmlib.evaluate import bernoulli_floor, count_pixel_calls
    from ssmlib.models import build_model

    frames = np.zeros((2, 8, 8, 3), np.uint8)
    frames[1] = 255
    assert torch.allclose(bernoulli_floor(frames), torch.zeros(2))  # binary pixels: no entropy
    half = torch.full((1, 3, 8, 8), 0.5)
    assert bernoulli_floor(half).item() == pytest.approx(-3 * 64 * math.log(2), rel=1e-6)
    cfg = ModelConfig(height=16, width=16, channel_scale=0.25, z_channels=8)
    ctx = torch.rand(2, 3, 3, 16, 16)
    acts = torch.zeros(2, 4, dtype=torch.long)
    for name, want_enc in (("dSSM-DET", 0), ("RAR", 2 * 3)):  # RAR re-encodes T-1 of its own predictions
        model = build_model(dataclasses.replace(cfg, model=name))
        state = model.initial_state(ctx)
        c = count_pixel_calls(model, lambda: model.imagine(state, acts, decode=False))
        assert c["encoder_frames"] == want_enc
        assert (c["decoder_frames"] == 0) == (name == "dSSM-DET")


def test_lr_warms_up_and_resumes_exactly_inside_the_warm_up(quick_dataset, tmp_path):
    """lr_t = lr min(1, t / warmup) at optimiser step t; a run stopped inside the warm-up and resumed
    draws the same learning rates and ends bit for bit where the straight run does."""
    warm = {"lr": 1e-3, "lr_warmup_steps": 4}
    straight = tmp_path / "straight"
    run(quick_dataset, straight, overrides=warm)
    lrs = [r["lr"] for r in tr.read_metrics(straight) if r["split"] == "train"]
    assert lrs == pytest.approx([1e-3 * min(1.0, t / 4) for t in range(1, 7)])

    broken = tmp_path / "broken"

    def ctrl_c_at_2(step, record):
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    assert run(quick_dataset, broken, overrides=warm, callback=ctrl_c_at_2)["step"] == 2
    assert run(quick_dataset, broken, overrides=warm, resume=True)["step"] == 6
    assert strip(tr.read_metrics(straight)) == strip(tr.read_metrics(broken))
    _, ta = ckpt.load_checkpoint(straight / tr.CHECKPOINT)
    _, tb = ckpt.load_checkpoint(broken / tr.CHECKPOINT)
    assert all(torch.equal(ta[k], tb[k]) for k in ta if k.startswith("model."))


def test_a_compiled_run_compiles_its_test_pass_after_its_first_step(quick_dataset, tmp_path, monkeypatch):
    """A test record right after each process's first step under compile (not at the final record, where its
    compilation made runs told TIME_UP end a minute late); none in an eager run."""
    eager = tmp_path / "eager"
    run(quick_dataset, eager, overrides={"steps": 2, "eval_every": 0})
    assert [r["step"] for r in tr.read_metrics(eager) if r["split"] == "test"] == []

    seen, first_test = [], tr._first_test

    def as_if_compiled(r, step, wall, last_test):
        seen.append(step)
        r.use_compile = True  # the flag alone: compilation itself needs CUDA here
        return first_test(r, step, wall, last_test)

    monkeypatch.setattr(tr, "_first_test", as_if_compiled)
    out = tmp_path / "compiled"
    run(quick_dataset, out, overrides={"steps": 2, "eval_every": 0})
    run(quick_dataset, out, resume=True, overrides={"steps": 4, "eval_every": 0})
    assert seen == [1, 3]
    assert [r["step"] for r in tr.read_metrics(out) if r["split"] == "test"] == [1, 3]
