"""One run folder for every long job (issue #16): ``train`` (environment models) and ``agent train`` (A2C).

A run folder holds a checkpoint (``checkpoint.safetensors`` + ``.json``), JSONL logs (``metrics.jsonl``,
for agents also ``episodes.jsonl``), ``config.json`` and ``summary.json``. :class:`RunFolder` owns the
rules every job follows:

* **create / refuse / overwrite / resume.** A missing or empty folder is created. A non-empty one is
  refused (one line, with the flags that fix it) unless ``resume`` (continue from its checkpoint; with no
  checkpoint there yet, start over) or ``overwrite`` (the run's own files are deleted first; other files
  stay). A path that is a file is refused.
* **what a resume may change.** :func:`refuse_changes` compares the saved config with the requested one
  field by field against a per-config whitelist (the fields that do not alter the trajectory: the number
  of steps, logging and checkpoint intervals, ...) and names every other changed field in one line.
* **logs.** :class:`MetricsLog` appends one strict-JSON object per line (non-finite values as ``null``);
  on a resume every log is cut back to the checkpoint's step (lines written after it by the run that died
  are dropped, and the half-written last line if any), on a new run the logs start empty.
* **config and summary** are written atomically (``ssmlib.io``): a reader sees the old file or the new one.
* **stopping.** :class:`StopRule` turns the first SIGINT (Ctrl-C) or SIGTERM (a scheduler, ``kill``) into a
  flag the loop reads between steps (it then saves and returns cleanly; a second signal aborts at once),
  and adds the time limit (status ``time-limit``; ``--resume`` continues).
* **checkpoint interval.** :class:`SaveClock` says when a periodic checkpoint is due: every N steps or
  every S seconds. The two configs keep their units, so old configs read the same: ``TrainConfig.ckpt_every``
  counts optimiser steps (0: none besides the last), ``AgentConfig.ckpt_every`` seconds of wall time.

Only rank 0 of a data-parallel run writes (``main=False`` turns every write of the folder into a no-op).
"""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterable

from .errors import SsmlibError
from .io import atomic_write, atomic_write_json, read_text

CHECKPOINT = "checkpoint.safetensors"
METRICS = "metrics.jsonl"
CONFIG = "config.json"
SUMMARY = "summary.json"
RUN_FILES = (CHECKPOINT, Path(CHECKPOINT).with_suffix(".json").name, METRICS, CONFIG, SUMMARY)
"""What a run writes in its folder (``overwrite`` deletes these, and nothing else)."""
STOPS = {1: "time-limit", 2: "interrupted"}
"""Why a run stopped before its last step, by :meth:`StopRule.code` (ranks agree on the larger)."""


# --------------------------------------------------------------------------------------------------
# logs


def _clean(v: Any) -> Any:
    if hasattr(v, "item") and not isinstance(v, (int, float, str)):  # a tensor or numpy scalar
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None  # strict JSON: a non-finite value is written as null
    return v


class MetricsLog:
    """A JSONL log: one JSON object per line, appended and flushed as it is written."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def write(self, record: dict) -> None:
        line = json.dumps({k: _clean(v) for k, v in record.items()}, allow_nan=False)
        with open(self.path, "a") as f:
            f.write(line + "\n")

    def truncate_after(self, step: int) -> None:
        """Drop lines of steps after ``step`` (and any half-written line) before a resume."""
        if not self.path.exists():
            return
        keep = []
        for line in self.path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict) and rec.get("step", 0) <= step:
                keep.append(line)
        atomic_write(self.path, lambda f: f.write("".join(s + "\n" for s in keep)), mode="w")


class NoLog:
    """Where ranks other than 0 write their logs: nowhere (rank 0 writes the reduced values)."""

    def write(self, record: dict) -> None:
        pass

    def truncate_after(self, step: int) -> None:
        pass


def read_metrics(path) -> list[dict]:
    """The records of a ``metrics.jsonl`` (or of a run folder's)."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS
    return [json.loads(s) for s in read_text(path).splitlines() if s.strip()]  # read_text: or its .gz sibling


# --------------------------------------------------------------------------------------------------
# the folder


class RunFolder:
    """The folder of one run: ``check`` (refuse early, before any work), ``create`` (clear with overwrite,
    make), ``start_logs`` (cut back on resume, empty on a new run), ``log``, ``write_config``,
    ``read_config``, ``write_summary``. ``files``: the names this kind of run writes; ``logs``: its JSONL logs."""

    def __init__(self, path, *, resume: bool = False, overwrite: bool = False, files: Iterable[str] = RUN_FILES,
                 logs: Iterable[str] = (METRICS,), main: bool = True):
        self.path = Path(path)
        self.resume, self.overwrite, self.main = resume, overwrite, main
        self.files, self.logs = tuple(files), tuple(logs)

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def resuming(self) -> bool:
        """A resume with a checkpoint to resume from (``resume`` with none yet starts over)."""
        return self.resume and self.checkpoint.exists()

    def check(self) -> None:
        """Refuse a path that is a file, or a non-empty folder without resume or overwrite (one line)."""
        if self.path.exists() and not self.path.is_dir():
            raise SsmlibError(f"output path {self.path} is a file, not a folder")
        if self.path.exists() and any(self.path.iterdir()) and not (self.resume or self.overwrite):
            raise SsmlibError(f"output folder {self.path} already exists and is not empty; pass --resume to "
                              f"continue that run or --overwrite to start it again (or choose another --out)")

    def create(self) -> None:
        """Check, then make the folder; with ``overwrite`` (and no resume) delete an earlier run's files."""
        self.check()
        if not self.main:
            return
        if self.path.exists() and self.overwrite and not self.resume:
            for name in self.files:
                (self.path / name).unlink(missing_ok=True)
        self.path.mkdir(parents=True, exist_ok=True)

    def start_logs(self, step: int | None) -> None:
        """A resume from ``step`` cuts every log back to it; a new run (``None``) starts them empty."""
        if not self.main:
            return
        for name in self.logs:
            if step is None:
                (self.path / name).unlink(missing_ok=True)
            else:
                MetricsLog(self.path / name).truncate_after(step)

    def log(self, name: str = METRICS) -> MetricsLog | NoLog:
        return MetricsLog(self.path / name) if self.main else NoLog()

    def read_config(self) -> dict:
        """``config.json`` (``{}`` where there is none, or on ranks other than 0)."""
        path = self.path / CONFIG
        return json.loads(path.read_text()) if self.main and path.exists() else {}

    def write_config(self, config: dict) -> None:
        if self.main:
            atomic_write_json(self.path / CONFIG, config)

    def write_summary(self, summary: dict) -> None:
        if self.main:
            atomic_write_json(self.path / SUMMARY, summary)


def changed_fields(saved, requested, allowed: Iterable[str] = ()) -> list[str]:
    """The fields of two instances of one dataclass that differ, less those in ``allowed``."""
    allowed = set(allowed)
    return [f.name for f in dataclasses.fields(saved)
            if f.name not in allowed and getattr(saved, f.name) != getattr(requested, f.name)]


def refuse_changes(out, pairs: Iterable[tuple[Any, Any, Iterable[str]]]) -> None:
    """A resume of ``out``: for each ``(saved, requested, allowed)`` config pair, every changed field must
    be in that config's whitelist ``allowed``; otherwise one line names them all and what may change."""
    changed, may = [], []
    for saved, requested, allowed in pairs:
        allowed = tuple(allowed)
        changed += changed_fields(saved, requested, allowed)
        may += [a for a in allowed if a not in may]
    if changed:
        raise SsmlibError(f"cannot change {', '.join(changed)} when resuming {out} (only "
                          f"{', '.join(may) if may else 'nothing'} may change; --overwrite starts the run again)")


# --------------------------------------------------------------------------------------------------
# stopping and checkpoint timing


TIME_UP = signal.SIGUSR1
"""The signal a caller sends to say "your time is up": a planned stop, ended as at the time limit
(``studies.common.run_commands``' ``stop_after``: a lease ending before its outer bound)."""


def _c_handler(signum: int) -> int | None:
    """The handler address the C library holds for ``signum`` (``sigaction``'s first field, Linux), or None where
    it cannot be read."""
    import ctypes

    try:
        libc = ctypes.CDLL(None)  # the process's own symbols, the C library's among them (no search, no subprocess)
        action = ctypes.create_string_buffer(512)  # larger than any struct sigaction
        if libc.sigaction(int(signum), None, action) != 0:
            return None
        return int.from_bytes(action.raw[:ctypes.sizeof(ctypes.c_void_p)], sys.byteorder)
    except (OSError, AttributeError):
        return None


class StopRule:
    """Whether a loop should stop before its next step: ``code()`` is 2 after a SIGINT or SIGTERM (the
    handlers are installed by ``with``, in the main thread only; a second signal raises KeyboardInterrupt),
    1 once ``time_limit`` seconds have passed since ``start_clock()`` (0 or less: at once) or after
    ``TIME_UP`` (a planned stop), else 0."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, TIME_UP)

    def __init__(self, time_limit: float | None = None):
        self.time_limit = time_limit
        self.requested: int | None = None  # the interrupting signal received
        self.time_up = False  # TIME_UP received
        self.t0: float | None = None
        self._old: dict = {}
        self.time_up_at_interrupt: dict | None = None  # TIME_UP's state when a SIGTERM came before it

    def time_up_state(self) -> dict:
        """Why a TIME_UP may not have reached this rule: whose handler SIGUSR1 has in Python (``handler``) and in
        the C library (``c_handler``: "Python's" when it is the function Python installed for SIGTERM too, else
        its address: a library that called sigaction itself, which Python's own record cannot show), and whether
        the signal is blocked in this thread or pending (sent, not delivered). Read when a SIGTERM ends a run that
        TIME_UP should have ended first (twice a campaign run trained on past it, 2026-12-03 and 2026-12-05)."""
        handler = signal.getsignal(TIME_UP)
        ours, term = _c_handler(TIME_UP), _c_handler(signal.SIGTERM)
        return {"handler": "this rule's" if handler == self._handler else repr(handler),
                "c_handler": None if ours is None or term is None else "Python's" if ours == term else hex(ours),
                "blocked": TIME_UP in signal.pthread_sigmask(signal.SIG_BLOCK, []),
                "pending": TIME_UP in signal.sigpending()}

    def __enter__(self) -> StopRule:
        if threading.current_thread() is threading.main_thread():
            self._old = {s: signal.signal(s, self._handler) for s in self.SIGNALS}
        return self

    def _handler(self, signum, frame) -> None:
        if signum == TIME_UP:
            self.time_up = True
            return
        if self.requested is not None:
            raise KeyboardInterrupt
        self.requested = signum
        if signum == signal.SIGTERM and not self.time_up:  # a lease's bound, not a user's Ctrl-C
            try:  # a diagnosis must never end the run unsaved (an exception here surfaces mid-step)
                self.time_up_at_interrupt = self.time_up_state()
            except Exception as e:  # noqa: BLE001
                self.time_up_at_interrupt = {"error": repr(e)}

    def __exit__(self, *exc) -> bool:
        for s, old in self._old.items():
            signal.signal(s, old)
        self._old = {}
        return False

    def start_clock(self) -> None:
        """The time limit counts from the first call (later calls change nothing)."""
        if self.t0 is None:
            self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        return 0.0 if self.t0 is None else time.perf_counter() - self.t0

    def code(self) -> int:
        if self.requested is not None:
            return 2
        if self.time_up:
            return 1
        if self.time_limit is not None and (self.time_limit <= 0 or (
                self.t0 is not None and time.perf_counter() - self.t0 > self.time_limit)):
            return 1  # a planned stop (e.g. a GPU lease); resume continues exactly
        return 0


class SaveClock:
    """When a periodic checkpoint is due: ``every_steps`` > 0 at each multiple of it, and/or
    ``every_seconds`` (not None) once that many seconds have passed since the clock started or the last
    ``saved()``. The last step's checkpoint is the loop's business."""

    def __init__(self, every_steps: int = 0, every_seconds: float | None = None):
        self.every_steps, self.every_seconds = every_steps, every_seconds
        self.last = time.perf_counter()

    def due(self, step: int) -> bool:
        if self.every_steps and self.every_steps > 0 and step % self.every_steps == 0:
            return True
        return self.every_seconds is not None and time.perf_counter() - self.last > self.every_seconds

    def saved(self) -> None:
        self.last = time.perf_counter()
