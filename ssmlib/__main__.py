"""One CLI: ``python -m ssmlib collect | train | eval | bench ...``.

Bad input ends with one line on stderr (``ssmlib: error: ...``) and exit code 2; nothing is lost.
Every numeric flag is checked against its range (``ssmlib/cliargs.py``) before a command starts.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from .cliargs import check_args
from .errors import SsmlibError

# Modules that register subcommands through ``add_cli(subparsers)``, in help order.
COMMAND_MODULES = ("ssmlib.data.cli", "ssmlib.train", "ssmlib.evaluate", "ssmlib.studies.zoo", "ssmlib.pretrained",
                   "ssmlib.studies.speed", "ssmlib.studies.jumpy", "ssmlib.studies.zoo_campaign", "ssmlib.agents",
                   "ssmlib.studies.i2a_campaign", "ssmlib.studies.campaign_outlook",
                   "ssmlib.studies.lease_files", "ssmlib.config_cli")


class OneLineParser(argparse.ArgumentParser):
    """argparse's own refusals (a missing flag, ``--envs abc``) as one ``ssmlib: error:`` line, exit 2,
    like every other refusal; its subcommand parsers are of this class too (argparse copies the class)."""

    def error(self, message: str):
        if os.environ.get("RANK", "0") == "0":
            where = self.prog.removeprefix("python -m ssmlib").strip()
            print(f"ssmlib: error: {where + ': ' if where else ''}{message} (see: {self.prog} --help)",
                  file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m ssmlib", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:  # a real missing dependency, not a command that does not exist yet
                raise
            continue
        module.add_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_args(parser, args)
        code = args.func(args) or 0
    except SsmlibError as e:
        if os.environ.get("RANK", "0") == "0":  # under torchrun every rank fails alike: one line, from rank 0
            print(f"ssmlib: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ssmlib: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
