"""``studies.common.run_commands``: the training processes of a study or a campaign lease, and the bound that
stops them in time for the lease to record them (``stop_after``, sending ``runs.TIME_UP``)."""

from __future__ import annotations

import json
import os
import sys
import threading
import time

import pytest

from ssmlib.errors import SsmlibError
from ssmlib.runs import TIME_UP, StopRule
from ssmlib.studies.common import run_commands, train_command

# a process that saves when told its time is up (what train and the agents do), else runs for a minute
SAVES_WHEN_TIME_IS_UP = (
    "import signal, sys, time\n"
    f"signal.signal({int(TIME_UP)}, lambda *a: (open(sys.argv[1], 'w').write('saved'), sys.exit(0)))\n"
    "print('training', flush=True)\n"
    "time.sleep(60)\n")


def test_stop_after_tells_the_runs_still_training_their_time_is_up_and_records_each(tmp_path):
    ended = []
    cmds = {"slow": [sys.executable, "-c", SAVES_WHEN_TIME_IS_UP, str(tmp_path / "slow.saved")],
            "quick": [sys.executable, "-c", "print('done')"]}
    t0 = time.monotonic()
    codes = run_commands(cmds, tmp_path, on_exit=lambda name, code: ended.append((name, code)), stop_after=3.0)
    assert time.monotonic() - t0 < 30  # not the slow process's minute
    assert codes == {"slow": 0, "quick": 0}
    assert ended == [("quick", 0), ("slow", 0)]  # each recorded as it ended
    assert (tmp_path / "slow.saved").read_text() == "saved"  # it was told, and saved


def test_without_stop_after_nothing_is_signalled_and_a_bound_must_be_positive(tmp_path):
    cmds = {"a": [sys.executable, "-c", "import time; time.sleep(1.5); print('finished')"]}
    assert run_commands(cmds, tmp_path) == {"a": 0}
    assert "finished" in (tmp_path / "a.log").read_text()
    with pytest.raises(SsmlibError, match="must be positive"):
        run_commands(cmds, tmp_path, stop_after=0)


def test_time_up_is_a_planned_stop_and_sigterm_an_interruption():
    with StopRule(time_limit=None) as stop:
        assert stop.code() == 0
        os.kill(os.getpid(), TIME_UP)
        assert stop.code() == 1  # as at the time limit: the runs' status "time-limit"
    with StopRule(time_limit=None) as stop:
        os.kill(os.getpid(), 15)  # SIGTERM
        assert stop.code() == 2


def test_a_train_run_whose_time_is_up_ends_as_at_its_time_limit_and_resumes(quick_dataset, tmp_path):
    """The chain a campaign lease relies on: TIME_UP -> train finishes its step, scores, writes its checkpoint
    and a "time-limit" summary (which the lease reads to record the run); a resume continues from it."""
    out = tmp_path / "run"
    tiny = ["channel_scale=0.25", "horizon=3", "batch_size=2", "log_every=1", "eval_every=0", "ckpt_every=100000"]
    cmd = train_command("dSSM-DET", quick_dataset, out, "quick", time_limit=600, device="cpu",
                        sets=tiny + ["steps=100000"])
    codes = run_commands({"run": cmd}, tmp_path, stop_after=40.0)  # long enough for a loaded CI to start
    assert codes == {"run": 0}, (tmp_path / "run.log").read_text()[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "time-limit" and 0 < summary["step"] < 100000
    assert f"final test at step {summary['step']:,}: " in (tmp_path / "run.log").read_text()  # timed in the log
    more = train_command("dSSM-DET", quick_dataset, out, "quick", device="cpu",
                         sets=[f"steps={summary['step'] + 2}"])
    assert run_commands({"resume": more}, tmp_path) == {"resume": 0}, (tmp_path / "resume.log").read_text()[-2000:]
    assert json.loads((out / "summary.json").read_text())["step"] == summary["step"] + 2


# a process that ignores TIME_UP (as two campaign sSSM runs did) and saves on SIGTERM, else runs for a minute
IGNORES_TIME_UP = (
    "import signal, sys, time\n"
    f"signal.signal({int(TIME_UP)}, signal.SIG_IGN)\n"
    "signal.signal(signal.SIGTERM, lambda *a: (open(sys.argv[1], 'w').write('saved'), sys.exit(130)))\n"
    "print('training', flush=True)\n"
    "time.sleep(60)\n")


def test_a_run_still_going_after_its_time_up_grace_is_interrupted_and_recorded(tmp_path, capsys):
    ended = []
    cmds = {"deaf": [sys.executable, "-c", IGNORES_TIME_UP, str(tmp_path / "deaf.saved")],
            "told": [sys.executable, "-c", SAVES_WHEN_TIME_IS_UP, str(tmp_path / "told.saved")]}
    t0 = time.monotonic()
    codes = run_commands(cmds, tmp_path, on_exit=lambda name, code: ended.append((name, code)), stop_after=3.0,
                         interrupt_after=2.0)
    assert time.monotonic() - t0 < 30  # not the deaf process's minute
    assert codes == {"deaf": 130, "told": 0}
    assert ended == [("told", 0), ("deaf", 130)]
    assert (tmp_path / "deaf.saved").read_text() == "saved"
    out = capsys.readouterr().out
    assert "stop: deaf still running 2 s after their TIME_UP: sent SIGTERM" in out


def test_the_stop_signals_come_on_time_while_a_finished_run_is_being_recorded(tmp_path):
    """TIME_UP and the SIGTERM after it are sent from timers: a run that ends first and takes long to record (a
    zoo lease scores it) does not hold them back."""
    stamp = IGNORES_TIME_UP.replace("open(sys.argv[1], 'w').write('saved')",
                                    "open(sys.argv[1], 'w').write(str(time.time()))")
    cmds = {"quick": [sys.executable, "-c", "print('done')"],
            "deaf": [sys.executable, "-c", stamp, str(tmp_path / "deaf.saved")]}
    t0 = time.time()
    codes = run_commands(cmds, tmp_path, on_exit=lambda name, code: time.sleep(8 if name == "quick" else 0),
                         stop_after=2.0, interrupt_after=1.0)
    assert codes == {"quick": 0, "deaf": 130}
    assert float((tmp_path / "deaf.saved").read_text()) - t0 < 6  # SIGTERM at about 3 s, not after the 8 s record


def test_without_interrupt_after_a_run_deaf_to_time_up_is_left_running(tmp_path):
    cmds = {"deaf": [sys.executable, "-c", IGNORES_TIME_UP.replace("time.sleep(60)", "time.sleep(6)"),
                     str(tmp_path / "deaf.saved")]}
    assert run_commands(cmds, tmp_path, stop_after=1.0) == {"deaf": 0}  # it slept its 6 s out
    assert not (tmp_path / "deaf.saved").exists()


def test_an_interruption_before_time_up_records_why_time_up_did_not_stop_the_run():
    import signal

    with StopRule(time_limit=None) as stop:  # the handler in place: TIME_UP simply never came
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.code() == 2
        assert stop.time_up_at_interrupt == {"handler": "this rule's", "c_handler": "Python's", "blocked": False,
                                             "pending": False}
    with StopRule(time_limit=None) as stop:  # TIME_UP blocked in this thread: sent to it, held pending
        signal.pthread_sigmask(signal.SIG_BLOCK, [TIME_UP])
        try:  # to this thread: sent to the process, another thread (torch starts one) would take it
            signal.pthread_kill(threading.get_ident(), TIME_UP)
            os.kill(os.getpid(), signal.SIGTERM)
            assert stop.code() == 2
            state = stop.time_up_at_interrupt
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [TIME_UP])  # delivered now
    assert state == {"handler": "this rule's", "c_handler": "Python's", "blocked": True, "pending": True}
    with StopRule(time_limit=None) as stop:  # something replaced the handler (an ignored signal is discarded)
        signal.signal(TIME_UP, signal.SIG_IGN)
        os.kill(os.getpid(), TIME_UP)
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.code() == 2
        assert stop.time_up_at_interrupt == {"handler": repr(signal.SIG_IGN), "c_handler": hex(1), "blocked": False,
                                             "pending": False}  # SIG_IGN is handler 1 in C too
    with StopRule(time_limit=None) as stop:  # a library replaced it in C, behind Python's back
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.signal.restype = ctypes.c_void_p
        libc.signal(int(TIME_UP), ctypes.c_void_p(1))  # SIG_IGN, set without Python
        try:
            os.kill(os.getpid(), TIME_UP)  # discarded: Python never hears of it
            os.kill(os.getpid(), signal.SIGTERM)
            assert stop.code() == 2
            state = stop.time_up_at_interrupt
        finally:
            signal.signal(TIME_UP, stop._handler)  # Python's C handler back, so __exit__ restores cleanly
    assert state == {"handler": "this rule's", "c_handler": hex(1), "blocked": False, "pending": False}
    with StopRule(time_limit=None) as stop:  # TIME_UP first: a planned stop, nothing to explain
        os.kill(os.getpid(), TIME_UP)
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.code() == 2 and stop.time_up_at_interrupt is None


def test_a_diagnosis_that_fails_does_not_end_the_run(monkeypatch):
    def broken(self):
        raise RuntimeError("no sigaction here")

    monkeypatch.setattr(StopRule, "time_up_state", broken)
    with StopRule(time_limit=None) as stop:
        os.kill(os.getpid(), 15)  # SIGTERM: the handler must still record the interruption
        assert stop.code() == 2
        assert stop.time_up_at_interrupt == {"error": "RuntimeError('no sigaction here')"}
