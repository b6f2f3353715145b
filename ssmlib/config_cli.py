"""``python -m ssmlib config [--profile P] [--section S]``: every setting of a profile, its value and
what it means, generated from the config dataclasses' field docstrings (``ssmlib.config.describe``).
The ``paper`` profile is the dataclasses' defaults; any other profile is a table of overrides
(``ssmlib.config.QUICK``), and each value it sets is marked with the paper's value beside it.
The keys are what ``--set KEY=VALUE`` takes: ``train`` takes data-independent ModelConfig and
TrainConfig fields, ``agent train`` AgentConfig fields."""

from __future__ import annotations

import textwrap

from .config import (PROFILES, SECTIONS, AgentConfig, DataConfig, ModelConfig, TrainConfig, agent_profile, describe,
                     get_profile, profile_sets)
from .errors import SsmlibError

CLASSES = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "agent": AgentConfig}
"""Each section's config dataclass (its defaults: the paper profile)."""


def _check(sections) -> None:
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise SsmlibError(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")


def settings(profile: str, sections=SECTIONS) -> dict[str, list[tuple[str, object, str]]]:
    """Per section, ``(field, value, docstring)`` of the profile's config."""
    _check(sections)
    prof = get_profile(profile)
    cfgs = {"data": prof.data, "model": prof.model, "train": prof.train, "agent": agent_profile(profile)}
    return {s: describe(cfgs[s]) for s in sections}


def overridden(profile: str, sections=SECTIONS) -> dict[str, dict[str, object]]:
    """Per section, the fields profile ``profile``'s table sets, each with the paper's value (its default)."""
    _check(sections)
    return {s: {name: getattr(CLASSES[s](), name) for name in profile_sets(profile, s)} for s in sections}


def format_settings(table: dict, width: int = 100, marks: dict | None = None, profile: str = "quick") -> str:
    """``table`` (``settings``) as text; a field in ``marks`` (``overridden``) is flagged ``[profile; paper: V]``."""
    lines = []
    for section, rows in table.items():
        lines.append(f"[{section}]")
        sets = (marks or {}).get(section, {})
        for name, value, doc in rows:
            head = f"  {name} = {value!r}"
            if name in sets:
                head += f"    [{profile}; paper: {sets[name]!r}]"
            lines.append(head)
            lines += textwrap.wrap(doc, width, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(lines)


def _cli(args) -> int:
    sections = SECTIONS if args.section is None else tuple(args.section.split(","))
    table = settings(args.profile, sections)
    print(format_settings(table, marks=overridden(args.profile, sections), profile=args.profile))
    return 0


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("config", help="every setting of a profile, with its value and meaning",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="paper", choices=PROFILES,
                   help="paper: the defaults; quick: marks each value its override table sets (default: paper)")
    p.add_argument("--section", default=None, help=f"comma-separated, from: {', '.join(SECTIONS)} (default: all)")
    p.set_defaults(func=_cli)
