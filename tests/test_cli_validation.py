"""Every numeric flag of every command has a range (ssmlib/cliargs.py) and is refused outside it with
one ``ssmlib: error:`` line, before the command runs or writes anything."""

from __future__ import annotations

import argparse
import math
import re

import pytest

from ssmlib.__main__ import build_parser, main
from ssmlib.cliargs import RANGES, Range, check_args

INT_LIST = re.compile(r"^\d+(,\d+)+$")  # a default such as "1,4,16,64": a comma-separated integer flag


def leaves(parser: argparse.ArgumentParser, path=()):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(path), parser
        return
    for name, p in subs[0].choices.items():
        yield from leaves(p, (*path, name))


def numeric_flags(parser):
    for a in parser._actions:
        if not a.option_strings:
            continue
        flag = next(s for s in a.option_strings if s.startswith("--"))
        if a.type in (int, float) or (isinstance(a.default, str) and INT_LIST.match(a.default)):
            yield flag, a


PARSER = build_parser()
LEAVES = dict(leaves(PARSER))


def test_every_numeric_flag_of_every_command_has_a_range():
    missing = [f"{path} {flag}" for path, p in LEAVES.items() for flag, _ in numeric_flags(p)
               if flag not in RANGES.get(path, {})]
    assert not missing, f"numeric flags without a row in ssmlib.cliargs.RANGES: {missing}"
    # and no row names a flag or a command that does not exist (a renamed flag would go unchecked)
    stale = [f"{path} {flag}" for path, rows in RANGES.items() for flag in rows
             if path not in LEAVES or flag not in {f for a in LEAVES[path]._actions for f in a.option_strings}]
    assert not stale, f"rows of RANGES for no flag: {stale}"
    assert sum(len(r) for r in RANGES.values()) >= 40  # the walk found the commands (not an empty parser)


def _required(parser, tmp_path) -> list[str]:
    """The command's required flags, paths under ``tmp_path`` (a required number, such as
    ``i2a-campaign run --seconds``, gets 1: the flag under test, given after, overrides it)."""
    out = []
    for a in parser._actions:
        if a.required and a.option_strings:
            out += [a.option_strings[0], "1" if a.type in (int, float) else str(tmp_path / a.dest)]
    return out


def bad_values(spec: Range, is_int: bool) -> list[str]:
    vals = []
    if spec.low is not None:
        vals.append(str(int(spec.low) if spec.low_open else int(spec.low) - 1) if is_int or spec.items
                    else str(spec.low if spec.low_open else spec.low - 0.5))
    if spec.high is not None:
        vals.append(str(int(spec.high) + 1) if is_int else str(spec.high + 0.5))
    if spec.items:
        vals = [f"4,{v}" for v in vals] + ["4,x"]
    elif not is_int:
        vals += ["nan", "inf"]
    return vals


CASES = [(path, flag, v) for path, p in LEAVES.items() for flag, a in numeric_flags(p)
         if flag in RANGES.get(path, {})  # (a flag without a row fails the test above)
         for v in bad_values(RANGES[path][flag], a.type is int)]


@pytest.mark.parametrize("path,flag,value", CASES, ids=[f"{p}{f}={v}" for p, f, v in CASES])
def test_out_of_range_values_are_refused_in_one_line_before_anything_runs(path, flag, value, tmp_path, capsys):
    argv = [*path.split(), *_required(LEAVES[path], tmp_path), f"{flag}={value}"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"ssmlib: error: {path} {flag}"), err
    assert value in err[0]
    assert not list(tmp_path.iterdir())  # nothing written: the check ran before the command


def test_boundary_values_are_accepted():
    # each row's own bounds pass (parsing only: the command is not run)
    for path, rows in RANGES.items():
        for flag, spec in rows.items():
            a = next(a for a in LEAVES[path]._actions if flag in a.option_strings)
            if spec.items:
                good = [str(int(spec.low))]
            elif a.type is int:
                good = [str(int(spec.low if not spec.low_open else spec.low + 1))] + \
                       ([str(int(spec.high))] if spec.high is not None else [])
            else:
                good = [str(spec.low if not spec.low_open else spec.low + 0.25)] + \
                       ([str(spec.high)] if spec.high is not None else [])
            for v in good:
                argv = [*path.split(), *_required(LEAVES[path], __import__("pathlib").Path("/nonexistent")),
                        f"{flag}={v}"]
                check_args(PARSER, PARSER.parse_args(argv))


@pytest.mark.parametrize("argv,message", [
    (["collect", "--envs", "0", "--steps", "10", "--out", "X"], "collect --envs must be at least 1, got 0"),
    (["collect", "--steps-per-shard", "0", "--steps", "10", "--out", "X"], "must be at least 1, got 0"),
    (["collect", "--epsilon", "1.5", "--steps", "10", "--out", "X"], "must be between 0 and 1, got 1.5"),
    (["eval", "--checkpoint", "c", "--data", "d", "--batch-size", "0"], "eval --batch-size must be at least 1"),
    (["eval", "--checkpoint", "c", "--data", "d", "--max-windows", "0"], "eval --max-windows must be at least 1"),
    (["eval", "--checkpoint", "c", "--data", "d", "--horizon", "0"], "eval --horizon must be at least 1"),
    (["train", "--data", "d", "--time-limit", "-5"], "train --time-limit must be positive, got -5.0"),
    (["train", "--data", "d", "--lr", "nan"], "train --lr must be positive, got nan"),
    (["agent", "train", "--out", "o", "--time-limit", "0"], "agent train --time-limit must be positive"),
    (["agent", "eval", "--checkpoint", "c", "--num-envs", "0"], "agent eval --num-envs must be at least 1"),
    (["bench", "collect", "--envs", "1,0"], "bench collect --envs: each value must be at least 1, got '1,0'"),
    (["jumpy", "report", "--data", "d", "--runs", "r", "--jumps", "a"], "takes comma-separated integers"),
])
def test_the_issues_examples(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not list(tmp_path.iterdir())


def test_argparse_refusals_are_one_line_too(capsys):
    with pytest.raises(SystemExit) as e:
        main(["collect", "--envs", "abc", "--out", "x"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["ssmlib: error: collect: argument --envs: invalid int value: 'abc' "
                   "(see: python -m ssmlib collect --help)"]
    with pytest.raises(SystemExit):
        main(["agent", "eval"])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "agent eval: the following arguments are required: --checkpoint" in err[0]


def test_range_descriptions():
    assert Range(1).describe() == "at least 1" and Range(0, low_open=True).describe() == "positive"
    assert Range(0, 1).describe() == "between 0 and 1"
    assert not Range(0, low_open=True).accepts(0.0) and Range(0, low_open=True).accepts(1e-9)
    assert not Range(0, 1).accepts(math.nan) and not Range().accepts(math.inf) and Range().accepts(-3.0)
