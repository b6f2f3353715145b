"""The one place where every numeric flag of every command is checked: a table of allowed ranges.

``python -m ssmlib`` calls :func:`check_args` once, after parsing and before dispatching, so a zero
env count, a negative ``--time-limit`` or a NaN learning rate is refused with one ``ssmlib: error:``
line before any command starts (and before anything is written). ``tests/test_cli_validation.py``
walks every subcommand's parser and fails if an int/float flag (or a comma-separated integer list)
has no row here: a new flag must come with its range.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

from .errors import SsmlibError


@dataclass(frozen=True)
class Range:
    """Allowed values of one numeric flag."""

    low: float | None = None
    """Smallest allowed value (None: unbounded below)."""
    high: float | None = None
    """Largest allowed value (None: unbounded above)."""
    low_open: bool = False
    """Refuse ``low`` itself (for quantities that must be strictly positive, such as a time limit)."""
    items: bool = False
    """The flag is a comma-separated list of integers (``--envs 1,4,16``); each item must lie in the range."""

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f"between {_num(self.low)} and {_num(self.high)}"
        if self.low is not None:
            if self.low_open:
                return "positive" if self.low == 0 else f"greater than {_num(self.low)}"
            return f"at least {_num(self.low)}"
        if self.high is not None:
            return f"at most {_num(self.high)}"
        return "a finite number"

    def accepts(self, v: float) -> bool:
        if isinstance(v, float) and not math.isfinite(v):
            return False
        if self.low is not None and (v < self.low or (self.low_open and v == self.low)):
            return False
        return self.high is None or v <= self.high


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


# Shared rows. Counts of things start at 1; seconds and rates must be positive.
COUNT = Range(1)
SECONDS = Range(0, low_open=True)
SEED = Range(0, 2**31 - 1)  # ALE and numpy take 32-bit seeds
COUNTS = Range(1, items=True)

RANGES: dict[str, dict[str, Range]] = {
    "collect": {
        "--steps": COUNT, "--envs": COUNT, "--steps-per-shard": COUNT, "--seed": SEED,
        # the multiple-of-8 rule is checked with the frame size (ssmlib.data.ale.check_frame_size)
        "--height": Range(8, 210), "--width": Range(8, 160),
        "--epsilon": Range(0, 1),
        "--agent-share": Range(0, 1, low_open=True), "--workers": COUNT,
    },
    "train": {
        "--steps": COUNT, "--batch-size": COUNT, "--lr": Range(0, low_open=True), "--time-limit": SECONDS,
        "--data-shards": COUNT,
    },
    "eval": {
        "--samples": COUNT, "--max-windows": COUNT, "--horizon": COUNT, "--batch-size": COUNT, "--seed": SEED,
    },
    "zoo train": {"--time-limit": SECONDS},
    "campaign init": {"--data-steps": COUNT},
    "campaign data": {"--workers": COUNT},
    "campaign lease": {"--seconds": SECONDS, "--max-runs": COUNT, "--stop-after": SECONDS},
    "campaign warm": {"--max-runs": COUNT},
    "campaign add-run": {"--seed": Range(0), "--jump": COUNT},
    "campaign amend-stop": {"--confirmations": Range(2)},  # a stricter rule only (1 is the rule as first written)
    "i2a-campaign init": {"--seeds": COUNT, "--total-steps": COUNT},
    "i2a-campaign power": {"--seeds": COUNT},
    # the state budget is the committed MiB of open runs a lease may hold: no budget admits no run
    "i2a-campaign lease": {"--seconds": SECONDS, "--max-runs": COUNT, "--state-budget-mib": Range(0, low_open=True),
                           "--stop-after": SECONDS, "--refill-s": Range(0)},
    "i2a-campaign run": {"--seconds": SECONDS},
    "i2a-campaign random-floor": {"--env-threads": Range(0)},
    "outlook": {"--state-budget-mib": Range(0, low_open=True)},  # below one run's state it refuses, in one line
    # zoo's --max-windows 0 means all the test windows
    "zoo report": {"--samples": COUNT, "--max-windows": Range(0), "--batch-size": COUNT},
    "zoo rescore": {"--samples": COUNT, "--max-windows": Range(0), "--batch-size": COUNT},
    "bench collect": {"--envs": COUNTS, "--seconds": SECONDS},
    "bench collect-workers": {"--workers": COUNTS, "--shards": COUNT, "--envs": COUNT, "--steps-per-shard": COUNT,
                              "--agent-share": Range(0, 1, low_open=True), "--epsilon": Range(0, 1),
                              "--repeats": COUNT},
    "bench rollout": {"--batches": COUNTS, "--horizon": COUNT, "--repeats": COUNT},
    "bench train": {"--seconds": SECONDS},
    "jumpy train": {"--jumps": COUNTS, "--time-limit": SECONDS},
    "jumpy report": {"--jumps": COUNTS, "--env-steps": COUNTS, "--samples": COUNT, "--max-windows": COUNT,
                     "--batch-size": COUNT},
    "agent train": {"--total-steps": COUNT, "--seed": SEED, "--time-limit": SECONDS},
    "agent eval": {"--episodes": COUNT, "--num-envs": COUNT, "--seed": SEED, "--env-threads": Range(0)},
    "agent bench": {"--seconds": SECONDS},
}


def leaf(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[str, argparse.ArgumentParser]:
    """The subcommand that ``args`` was parsed by: its path (``"agent train"``) and its parser."""
    path: list[str] = []
    while True:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        name = getattr(args, subs[0].dest, None) if subs else None
        if name is None:
            return " ".join(path), parser
        path.append(name)
        parser = subs[0].choices[name]


def _flag(action: argparse.Action) -> str:
    return next((s for s in action.option_strings if s.startswith("--")), action.option_strings[0])


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse (SsmlibError, one line) any numeric flag of ``args`` outside its row of :data:`RANGES`."""
    path, sub = leaf(parser, args)
    table = RANGES.get(path, {})
    for action in sub._actions:
        if not action.option_strings or action.dest not in vars(args):
            continue
        flag = _flag(action)
        spec, value = table.get(flag), getattr(args, action.dest)
        if spec is None or value is None:
            continue
        where = f"{path} {flag}"
        if spec.items:
            try:
                items = [int(x) for x in str(value).split(",")]
            except ValueError:
                raise SsmlibError(f"{where} takes comma-separated integers, got {value!r}") from None
            bad = [x for x in items if not spec.accepts(x)]
            if bad:
                raise SsmlibError(f"{where}: each value must be {spec.describe()}, got {value!r}")
        elif not spec.accepts(value):
            raise SsmlibError(f"{where} must be {spec.describe()}, got {value}")
