"""``studies.common.run_commands``: the training processes of a study or a campaign lease, and the bound that
stops them in time for the lease to record them (``stop_after``)."""

from __future__ import annotations

import json
import sys
import time

from ssmlib.studies.common import run_commands, train_command

# a process that saves when asked to stop (what train and the agents do on SIGTERM), else runs for a minute
SAVES_ON_SIGTERM = ("import signal, sys, time\n"
                    "signal.signal(signal.SIGTERM, lambda *a: (open(sys.argv[1], 'w').write('saved'), sys.exit(0)))\n"
                    "print('training', flush=True)\n"
                    "time.sleep(60)\n")


def test_stop_after_sends_sigterm_to_the_runs_still_training_and_records_each(tmp_path):
    ended = []
    cmds = {"slow": [sys.executable, "-c", SAVES_ON_SIGTERM, str(tmp_path / "slow.saved")],
            "quick": [sys.executable, "-c", "print('done')"]}
    t0 = time.monotonic()
    codes = run_commands(cmds, tmp_path, on_exit=lambda name, code: ended.append((name, code)), stop_after=2.0)
    assert time.monotonic() - t0 < 30  # not the slow process's minute
    assert codes == {"slow": 0, "quick": 0}
    assert ended == [("quick", 0), ("slow", 0)]  # each recorded as it ended
    assert (tmp_path / "slow.saved").read_text() == "saved"  # it was asked, and saved


def test_without_stop_after_nothing_is_signalled(tmp_path):
    cmds = {"a": [sys.executable, "-c", "import time; time.sleep(1.5); print('finished')"]}
    assert run_commands(cmds, tmp_path) == {"a": 0}
    assert "finished" in (tmp_path / "a.log").read_text()


def test_a_train_run_stopped_by_stop_after_saves_a_resumable_checkpoint(quick_dataset, tmp_path):
    """The chain a campaign lease relies on: SIGTERM -> train finishes its step, writes its checkpoint and a
    summary (which the lease reads to record the run)."""
    out = tmp_path / "run"
    cmd = train_command("dSSM-DET", quick_dataset, out, "quick", time_limit=600, device="cpu",
                        sets=["channel_scale=0.25", "horizon=3", "batch_size=2", "steps=100000", "log_every=1",
                              "eval_every=0", "ckpt_every=100000"])
    codes = run_commands({"run": cmd}, tmp_path, stop_after=25.0)
    assert codes == {"run": 130}, (tmp_path / "run.log").read_text()[-2000:]  # train's exit code when stopped
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert 0 < summary["step"] < 100000
    assert (out / "checkpoint.safetensors").exists()
