"""ssmlib.runs: the one run-folder framework of ``train`` and ``agent train`` (issue #16).

Refuse / overwrite / resume rules, the per-config whitelist of what a resume may change, the metrics
log cut back on resume, atomic config writes, and graceful stops (SIGINT, SIGTERM, time limit) that save.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal

import pytest

from ssmlib import runs
from ssmlib.errors import SsmlibError


def _fill(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_text("x")


# --------------------------------------------------------------------------------------------------
# create / refuse / overwrite / resume


def test_a_new_or_empty_folder_is_created(tmp_path):
    for path in (tmp_path / "a" / "b", tmp_path / "empty"):
        if path.name == "empty":
            path.mkdir()
        folder = runs.RunFolder(path)
        folder.create()
        assert path.is_dir() and not folder.resuming


def test_a_non_empty_folder_is_refused_in_one_line_naming_both_flags(tmp_path):
    out = tmp_path / "taken"
    _fill(out, "notes.txt")
    with pytest.raises(SsmlibError) as e:
        runs.RunFolder(out).create()
    msg = str(e.value)
    assert "\n" not in msg and str(out) in msg
    assert "already exists and is not empty" in msg and "--resume" in msg and "--overwrite" in msg
    assert (out / "notes.txt").read_text() == "x"  # nothing touched
    (tmp_path / "file").write_text("x")
    with pytest.raises(SsmlibError, match="is a file, not a folder"):
        runs.RunFolder(tmp_path / "file", overwrite=True).check()


def test_the_advice_works_resume_and_overwrite_are_accepted(tmp_path):
    out = tmp_path / "taken"
    _fill(out, "notes.txt", runs.METRICS)
    runs.RunFolder(out, resume=True).create()  # the refusal's advice: both flags open the folder
    runs.RunFolder(out, overwrite=True).create()


def test_overwrite_deletes_the_runs_files_and_nothing_else(tmp_path):
    out = tmp_path / "run"
    _fill(out, *runs.RUN_FILES, "episodes.jsonl", "notes.txt")
    runs.RunFolder(out, overwrite=True, files=runs.RUN_FILES + ("episodes.jsonl",)).create()
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_resume_keeps_the_files_and_resumes_only_with_a_checkpoint(tmp_path):
    out = tmp_path / "run"
    _fill(out, runs.METRICS, runs.CONFIG)
    folder = runs.RunFolder(out, resume=True, overwrite=True)  # resume wins: nothing is deleted
    assert not folder.resuming  # no checkpoint yet: the run starts over
    folder.create()
    assert {p.name for p in out.iterdir()} == {runs.METRICS, runs.CONFIG}
    (out / runs.CHECKPOINT).write_text("x")
    assert folder.resuming and not runs.RunFolder(out).resuming  # only with resume


def test_ranks_other_than_0_write_nothing(tmp_path):
    folder = runs.RunFolder(tmp_path / "run", main=False)
    folder.create()
    folder.write_config({"a": 1})
    folder.write_summary({"a": 1})
    folder.log().write({"step": 1})
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------------------------------
# what a resume may change


@dataclasses.dataclass
class _Cfg:
    lr: float = 1e-3
    horizon: int = 10
    steps: int = 100
    log_every: int = 10


def test_a_whitelisted_change_passes_and_another_is_refused_in_one_clear_line(tmp_path):
    saved = _Cfg()
    runs.refuse_changes(tmp_path, [(saved, _Cfg(steps=200, log_every=5), ("steps", "log_every"))])
    with pytest.raises(SsmlibError) as e:
        runs.refuse_changes(tmp_path, [(saved, _Cfg(steps=200, horizon=4, lr=1.0), ("steps", "log_every"))])
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"cannot change lr, horizon when resuming {tmp_path}")
    assert "only steps, log_every may change" in msg and "--overwrite" in msg


def test_the_whitelist_is_per_config(tmp_path):
    """A field name whitelisted for one config is not whitelisted for another."""
    with pytest.raises(SsmlibError, match="cannot change steps when"):
        runs.refuse_changes(tmp_path, [(_Cfg(), _Cfg(), ("steps",)), (_Cfg(), _Cfg(steps=5), ())])


def test_train_refuses_a_changed_model_field_on_resume(quick_dataset, tmp_path):
    from ssmlib.train import train

    out = tmp_path / "run"
    sets = {"channel_scale": 0.25, "horizon": 3, "batch_size": 2, "steps": 2, "log_every": 1, "eval_every": 0}
    train("dSSM-DET", quick_dataset, out, overrides=sets, progress=False, device="cpu")
    with pytest.raises(SsmlibError, match=r"cannot change channel_scale when resuming .*only steps, log_every"):
        train(None, quick_dataset, out, overrides={"channel_scale": 0.5}, resume=True, progress=False, device="cpu")
    assert train(None, quick_dataset, out, overrides={"steps": 3}, resume=True, progress=False,
                 device="cpu")["step"] == 3


# --------------------------------------------------------------------------------------------------
# logs, config, summary


def test_metrics_are_cut_back_to_the_resumed_step_and_emptied_for_a_new_run(tmp_path):
    out = tmp_path / "run"
    folder = runs.RunFolder(out, logs=(runs.METRICS, "episodes.jsonl"))
    folder.create()
    for name in folder.logs:
        log = folder.log(name)
        for s in range(1, 6):
            log.write({"step": s, "loss": float("nan") if s == 2 else 1.0 * s})
        with open(out / name, "a") as f:
            f.write('{"step": 6, "lo')  # a line half written when the run was killed
    folder.start_logs(3)
    for name in folder.logs:
        recs = runs.read_metrics(out / name)
        assert [r["step"] for r in recs] == [1, 2, 3] and recs[1]["loss"] is None  # NaN -> null, strict JSON
    folder.start_logs(None)
    assert not any((out / n).exists() for n in folder.logs)


def test_config_writes_are_atomic(tmp_path):
    folder = runs.RunFolder(tmp_path / "run")
    folder.create()
    folder.write_config({"a": 1})
    assert folder.read_config() == {"a": 1}
    with pytest.raises(TypeError):
        folder.write_config({"b": 2, "z": object()})  # fails half-way through the JSON
    assert folder.read_config() == {"a": 1}  # the old file, whole
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [runs.CONFIG]  # no temp file left
    folder.write_summary({"status": "done"})
    assert json.loads((tmp_path / "run" / runs.SUMMARY).read_text()) == {"status": "done"}


# --------------------------------------------------------------------------------------------------
# stopping and checkpoint timing


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_the_first_signal_asks_to_stop_the_second_aborts(sig):
    before = signal.getsignal(sig)
    with runs.StopRule() as stop:
        assert stop.code() == 0
        os.kill(os.getpid(), sig)
        assert stop.code() == 2 and runs.STOPS[stop.code()] == "interrupted"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), sig)
    assert signal.getsignal(sig) == before  # restored


def test_time_limit_counts_from_the_clock_start():
    assert runs.StopRule(0.0).code() == 1  # 0: stop before the first step
    late = runs.StopRule(1e-9)
    assert late.code() == 0  # the clock has not started (e.g. compilation of the first step)
    late.start_clock()
    import time

    time.sleep(0.01)
    assert late.code() == 1 and runs.STOPS[1] == "time-limit"
    assert runs.StopRule(None).code() == 0


def test_save_clock_in_steps_or_seconds():
    steps = runs.SaveClock(every_steps=3)
    assert [s for s in range(1, 10) if steps.due(s)] == [3, 6, 9]
    assert not any(runs.SaveClock(every_steps=0).due(s) for s in range(1, 10))  # 0: none
    assert runs.SaveClock(every_seconds=0.0).due(1)  # the agent's ckpt_every=0: every update
    never = runs.SaveClock(every_seconds=1e9)
    assert not never.due(1)
    never.saved()
    assert not never.due(2)


def test_sigterm_stops_training_cleanly_with_a_checkpoint_and_resume_continues(quick_dataset, tmp_path):
    from ssmlib import checkpoint as ckpt
    from ssmlib.train import train

    out = tmp_path / "run"
    sets = {"channel_scale": 0.25, "horizon": 3, "batch_size": 2, "steps": 5, "log_every": 1, "eval_every": 0,
            "ckpt_every": 0}

    def term_at_2(step, record):
        if step == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # a scheduler's stop: finish the step, save, return

    s = train("dSSM-DET", quick_dataset, out, overrides=sets, progress=False, device="cpu", callback=term_at_2)
    assert s["status"] == "interrupted" and s["step"] == 2
    assert ckpt.read_meta(out / runs.CHECKPOINT)["step"] == 2
    assert json.loads((out / runs.SUMMARY).read_text())["status"] == "interrupted"
    assert train(None, quick_dataset, out, resume=True, progress=False, device="cpu")["step"] == 5


def test_agent_training_stops_on_a_signal_saves_and_resumes(tmp_path, monkeypatch):
    from ssmlib.agents import a2c
    from ssmlib.config import agent_profile
    from ssmlib.agents.checkpoint import KIND
    from ssmlib.checkpoint import read_meta

    cfg = dataclasses.replace(agent_profile("quick"), agent="model-free", num_envs=2, num_steps=3, total_steps=30,
                              env_threads=1, log_every=1)
    real_learn, calls = a2c._Learner.learn, {"n": 0}

    def learn(self, *a):
        calls["n"] += 1
        if calls["n"] == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives inside the second update: it is finished first
        return real_learn(self, *a)

    monkeypatch.setattr(a2c._Learner, "learn", learn)
    out = tmp_path / "agent"
    s = a2c.train_agent(cfg, out, progress=False)
    assert s["status"] == "interrupted" and s["step"] == 12 and s["update"] == 2
    assert read_meta(out / runs.CHECKPOINT, kind=KIND)["step"] == 12
    assert [r["update"] for r in runs.read_metrics(out)] == [1, 2]
    with pytest.raises(SsmlibError, match="already exists and is not empty; pass --resume"):
        a2c.train_agent(cfg, out, progress=False)
    with pytest.raises(SsmlibError, match=r"cannot change lr when resuming .*only total_steps, log_every, ckpt_every"):
        a2c.train_agent(dataclasses.replace(cfg, lr=1.0), out, resume=True, progress=False)
    s = a2c.train_agent(cfg, out, resume=True, progress=False)
    assert s["status"] == "done" and s["step"] == 30 and s["update"] == 5
    assert [r["update"] for r in runs.read_metrics(out)] == [1, 2, 3, 4, 5]
