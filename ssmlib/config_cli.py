"""``python -m ssmlib config [--profile P] [--section S]``: every setting of a profile, its value and
what it means, generated from the config dataclasses' field docstrings (``ssmlib.config.describe``).
The keys are what ``--set KEY=VALUE`` takes: ``train`` takes data-independent ModelConfig and
TrainConfig fields, ``agent train`` AgentConfig fields."""

from __future__ import annotations

import textwrap

from .agents.config import agent_profile
from .config import PROFILES, describe, get_profile
from .errors import SsmlibError

SECTIONS = ("data", "model", "train", "agent")
"""The config sections, in the order a run uses them."""


def settings(profile: str, sections=SECTIONS) -> dict[str, list[tuple[str, object, str]]]:
    """Per section, ``(field, value, docstring)`` of the profile's config."""
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise SsmlibError(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    prof = get_profile(profile)
    cfgs = {"data": prof.data, "model": prof.model, "train": prof.train, "agent": agent_profile(profile)}
    return {s: describe(cfgs[s]) for s in sections}


def format_settings(table: dict, width: int = 100) -> str:
    lines = []
    for section, rows in table.items():
        lines.append(f"[{section}]")
        for name, value, doc in rows:
            head = f"  {name} = {value!r}"
            lines.append(head)
            lines += textwrap.wrap(doc, width, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(lines)


def _cli(args) -> int:
    sections = SECTIONS if args.section is None else tuple(args.section.split(","))
    print(format_settings(settings(args.profile, sections)))
    return 0


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("config", help="every setting of a profile, with its value and meaning",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="paper", choices=PROFILES)
    p.add_argument("--section", default=None, help=f"comma-separated, from: {', '.join(SECTIONS)} (default: all)")
    p.set_defaults(func=_cli)
