"""One exception type for bad input: the CLI prints its message as one line and exits 2."""


class SsmlibError(Exception):
    """Bad input or a refused operation; the message is one clear line for the user."""
