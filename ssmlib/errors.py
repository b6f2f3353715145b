"""One exception type for bad input: the CLI prints its message as one line and exits 2; and one
way to warn (a line on stderr) about something that works but will disappoint later."""

import sys


class SsmlibError(Exception):
    """Bad input or a refused operation; the message is one clear line for the user."""


def warn(message: str) -> None:
    """One ``ssmlib: warning: ...`` line on stderr (not :mod:`warnings`: no file/line noise in the CLI)."""
    print(f"ssmlib: warning: {message}", file=sys.stderr, flush=True)
