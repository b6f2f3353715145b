"""One torchrun worker of tests/test_distributed.py: ``python -m ssmlib ARGS``, watched for writes.

An audit hook records every file this rank opens for writing, creates, renames, or deletes under
$SSMLIB_TEST_WATCH (the run folder); the list is left in $SSMLIB_TEST_WATCH.rank<RANK>.json, so the
test can check that rank 0 alone wrote the run.
"""

import json
import os
import sys

WATCH = os.path.abspath(os.environ["SSMLIB_TEST_WATCH"])
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
writes: list[list[str]] = []


def _under(path) -> bool:
    try:
        p = os.path.abspath(os.fsdecode(path))
    except TypeError:  # an open file descriptor
        return False
    return p == WATCH or p.startswith(WATCH + os.sep)


def _hook(event: str, args: tuple) -> None:
    if event == "open" and isinstance(args[2], int) and args[2] & WRITE_FLAGS and _under(args[0]):
        writes.append([event, os.fsdecode(args[0])])
    elif event in ("os.rename", "os.remove", "os.mkdir", "os.rmdir", "shutil.rmtree") and (
            _under(args[0]) or (event == "os.rename" and _under(args[1]))):
        writes.append([event, os.fsdecode(args[0])])


sys.addaudithook(_hook)

if __name__ == "__main__":
    from ssmlib.__main__ import main

    code = 1
    try:
        code = main(sys.argv[1:])
    finally:
        with open(f"{WATCH}.rank{os.environ.get('RANK', '0')}.json", "w") as f:
            json.dump(writes, f)
    sys.exit(code)
