#!/usr/bin/env python
"""Build the ssmlib book, offline: sync notebook pairs, execute the chapters, render with Jupyter Book.

    .venv/bin/python scripts/build_book.py [--profile quick|paper] [--timeout SECONDS] [--no-sync]

1. Sync: every notebooks/NN_name.ipynb / notebooks/NN_name.py pair (pairing declared in jupytext.toml,
   formats "ipynb,py:percent") is brought up to date with `jupytext --sync` (the more recently
   modified half wins, as in Jupyter). Only inputs move; the tracked notebooks stay output-free.
2. Execute: every notebook chapter of _toc.yml runs top to bottom with nbclient (kernel python3, cwd
   notebooks/, SSMLIB_PROFILE=<profile>, widget state stored so widgets render in the static book)
   into a copy under _build/book_src/ (minus known CDN links that libraries put in HTML outputs:
   OUTPUT_CDN_LINKS). The tracked notebooks are never written. A cell that raises
   stops the build with one line naming the notebook and the cell; the traceback and the partly
   executed notebook are left in _build/logs/.
3. Render: Jupyter Book 1.x (Sphinx) builds _build/book_src with warnings as errors (-W) and
   execution off, into _build/html. The page needs no network (see _config.yml, book/extra/vendor/).

Exit status: 0 on success, 1 on any failure (the last line of stderr says which).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ssmlib.config import PROFILES

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
BUILD = ROOT / "_build"
STAGE = BUILD / "book_src"  # what Sphinx reads: symlinks to the repo + executed notebook copies
LOGS = BUILD / "logs"
HTML = BUILD / "html"
PAIR_NAME = re.compile(r"^\d\d_[A-Za-z0-9_]+\.(py|ipynb)$")  # notebooks/NN_name.{py,ipynb}
# Top-level entries of the repository that the Sphinx source tree never needs (dot-entries are never
# staged either). tests/ stays out so that a bare `pytest` cannot collect it twice through _build/.
NOT_STAGED = {"_build", "notebooks", "tests", "runs", "__pycache__"}


class BuildError(Exception):
    """A failure that ends the build; its message is the one line printed."""


def log(msg: str) -> None:
    print(msg, flush=True)


# ----------------------------------------------------------------------------------------------- toc
def toc_docnames(toc_path: Path = ROOT / "_toc.yml") -> list[str]:
    """Every `root`/`file` entry of the toc, in reading order (docnames: no extension)."""
    import yaml

    toc = yaml.safe_load(toc_path.read_text())
    names: list[str] = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                names.append(str(node["file"]))
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key) or []:
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk({k: v for k, v in toc.items() if k in ("parts", "chapters", "sections")})
    return [re.sub(r"\.(md|ipynb|py)$", "", n) for n in names]


def notebook_chapters(docnames: list[str]) -> list[Path]:
    """The toc entries that are paired notebooks, as paths of their .ipynb half."""
    out = []
    for name in docnames:
        ipynb, py = ROOT / f"{name}.ipynb", ROOT / f"{name}.py"
        if ipynb.exists() or py.exists():
            out.append(ipynb)
        elif not (ROOT / f"{name}.md").exists():
            raise BuildError(f"_toc.yml lists {name}, but none of {name}.ipynb/.py/.md exists")
    return out


# ---------------------------------------------------------------------------------------------- sync
def sync_pairs() -> list[str]:
    """`jupytext --sync` every notebooks/NN_name pair; returns the files it changed."""
    files = sorted(p for p in NOTEBOOKS.iterdir() if PAIR_NAME.match(p.name))
    if not files:
        return []
    if not (ROOT / "jupytext.toml").exists():
        raise BuildError('jupytext.toml (formats = "ipynb,py:percent") is missing: notebooks are not paired')
    # One file per stem (the .py if present): jupytext opens the other half through the pairing.
    stems: dict[str, Path] = {}
    for p in files:
        if p.stem not in stems or p.suffix == ".py":
            stems[p.stem] = p
    before = {p: p.read_bytes() for p in files}
    cmd = [sys.executable, "-m", "jupytext", "--sync", "--quiet", *map(str, stems.values())]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise BuildError(f"jupytext --sync failed: {last}")
    after = sorted(p for p in NOTEBOOKS.iterdir() if PAIR_NAME.match(p.name))
    return [str(p.relative_to(ROOT)) for p in after if before.get(p) != p.read_bytes()]


# ------------------------------------------------------------------------------------------- execute
def _first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return line.strip()[:60]
    return source.strip().splitlines()[0][:60] if source.strip() else "(empty)"


def _py_line(py: Path, index: int, n_cells: int) -> str | None:
    """'notebooks/NN_name.py:LINE' of cell `index` in the py:percent half, if the markers line up."""
    if not py.exists():
        return None
    markers = [k + 1 for k, line in enumerate(py.read_text().splitlines()) if line.startswith("# %%")]
    if len(markers) != n_cells:
        return None
    return f"{py.relative_to(ROOT)}:{markers[index]}"


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# Known CDN links that libraries write into their HTML outputs, removed from the executed copies.
# matplotlib's FuncAnimation.to_jshtml() links FontAwesome 4.4 from maxcdn.bootstrapcdn.com for the
# player's buttons (<i class="fa fa-play">); the book theme ships FontAwesome (_static/vendor/
# fontawesome), which draws those icons offline. tests/test_book.py fails on any other remote load.
OUTPUT_CDN_LINKS = [
    re.compile(r'<link rel="stylesheet"\s+href="https://maxcdn\.bootstrapcdn\.com/font-awesome/[^"]*"\s*/?>\s*'),
]


def strip_cdn_links(nb) -> int:
    """Remove OUTPUT_CDN_LINKS from every text/html output; returns how many were removed."""
    removed = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            html = output.get("data", {}).get("text/html")
            if html is None:
                continue
            text = "".join(html) if isinstance(html, list) else html
            for pattern in OUTPUT_CDN_LINKS:
                text, n = pattern.subn("", text)
                removed += n
            output["data"]["text/html"] = text
    return removed


def execute(ipynb: Path, out: Path, *, timeout: int) -> tuple[float, tuple[int, float]]:
    """Run one notebook into `out`. Returns (seconds, (slowest cell number, its seconds))."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellControlSignal, CellExecutionError, CellTimeoutError, DeadKernelError

    rel = ipynb.relative_to(ROOT)
    nb = nbformat.read(ipynb, as_version=4)
    for cell in nb.cells:  # the tracked copy should hold none; never render stale outputs
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None

    current: dict = {"index": None, "t0": 0.0}
    durations: dict[int, float] = {}

    def on_cell_execute(cell, cell_index, **_):
        current.update(index=cell_index, t0=time.perf_counter())

    def on_cell_executed(cell, cell_index, **_):
        durations[cell_index] = time.perf_counter() - current["t0"]

    import zmq
    from traitlets.config import Config

    # Encrypted kernel transport where pyzmq supports it (ipykernel otherwise warns on stderr).
    config = Config({"KernelManager": {"transport_encryption": "auto"}}) if zmq.has("curve") else Config()
    client = NotebookClient(
        nb,
        config=config,
        timeout=timeout,
        kernel_name="python3",
        store_widget_state=True,
        allow_errors=False,  # cells tagged raises-exception are still allowed to raise
        resources={"metadata": {"path": str(ipynb.parent)}},  # cwd of the kernel: notebooks/
        on_cell_execute=on_cell_execute,
        on_cell_executed=on_cell_executed,
    )
    t0 = time.perf_counter()
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError, CellControlSignal) as exc:
        i = current["index"]
        LOGS.mkdir(parents=True, exist_ok=True)
        trace_path = LOGS / f"{ipynb.stem}.traceback.txt"
        trace_path.write_text(_ANSI.sub("", str(exc)))
        nbformat.write(nb, LOGS / f"{ipynb.stem}.failed.ipynb")
        if isinstance(exc, CellExecutionError):
            what = f"{exc.ename}: {(exc.evalue or '').strip().splitlines()[0] if exc.evalue else ''}"
        elif isinstance(exc, CellTimeoutError):
            what = f"no result within the {timeout} s cell timeout (--timeout)"
        else:
            what = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        if i is None:
            where = f"{rel} (before the first cell)"
        else:
            where = f"{rel} cell {i + 1} of {len(nb.cells)} ({_first_line(nb.cells[i].source)!r}"
            line = _py_line(ipynb.with_suffix(".py"), i, len(nb.cells))
            where += f", {line})" if line else ")"
        raise BuildError(f"{where} raised {what[:300]} [traceback: {trace_path.relative_to(ROOT)}]") from None
    seconds = time.perf_counter() - t0
    strip_cdn_links(nb)
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    slowest = max(durations.items(), key=lambda kv: kv[1], default=(-1, 0.0))
    return seconds, (slowest[0] + 1, slowest[1])


# -------------------------------------------------------------------------------------------- render
def stage() -> None:
    """_build/book_src: the repository through symlinks, with notebooks/ replaced by real copies.

    Sphinx resolves relative links and images exactly as in the repository; the toc's notebooks are
    the executed copies written by `execute`; other files of notebooks/ (figures) are linked.
    """
    if STAGE.exists():
        shutil.rmtree(STAGE)
    STAGE.mkdir(parents=True)
    for item in ROOT.iterdir():
        if item.name not in NOT_STAGED and not item.name.startswith("."):
            (STAGE / item.name).symlink_to(item)
    (STAGE / "notebooks").mkdir()
    if NOTEBOOKS.is_dir():
        for item in NOTEBOOKS.iterdir():
            if PAIR_NAME.match(item.name) or item.name in (".ipynb_checkpoints", "__pycache__"):
                continue
            (STAGE / "notebooks" / item.name).symlink_to(item)


def render(verbose: bool) -> None:
    for stale in (HTML, BUILD / ".doctrees"):
        if stale.exists():
            shutil.rmtree(stale)
    cmd = [
        sys.executable, "-c", "from jupyter_book.cli.main import main; main()",
        "build", str(STAGE), "--path-output", str(ROOT), "--builder", "html",
        "-W", "--keep-going", "--all",
    ]
    if not verbose:
        cmd.append("--quiet")
    res = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # Sphinx names the staged copies (_build/book_src/X); name the repository's files instead.
    output = res.stdout.replace(f"{STAGE}/", "")
    if res.returncode != 0 or verbose:
        print(output.rstrip(), flush=True)
    if res.returncode != 0:
        raise BuildError("Sphinx reported warnings or errors (treated as errors, -W): see the lines above")


# ---------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", choices=PROFILES, default=os.environ.get("SSMLIB_PROFILE") or "quick",
                    help="SSMLIB_PROFILE for the notebooks (default: $SSMLIB_PROFILE, else quick): quick = CPU "
                         "live cells; paper = figures and tables of the GPU runs read from results/")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell (default 1800)")
    ap.add_argument("--no-sync", action="store_true", help="do not run jupytext --sync first")
    ap.add_argument("-v", "--verbose", action="store_true", help="show Sphinx's full output")
    args = ap.parse_args(argv)

    # The kernel inherits this environment.
    os.environ["SSMLIB_PROFILE"] = args.profile
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # silences a debugpy warning

    t_start = time.perf_counter()
    shutil.rmtree(LOGS, ignore_errors=True)
    try:
        docnames = toc_docnames()
        if not args.no_sync:
            t0 = time.perf_counter()
            changed = sync_pairs()
            log(f"sync   {time.perf_counter() - t0:6.1f} s  "
                + (f"updated: {', '.join(changed)}" if changed else "all notebook pairs in sync"))
        chapters = notebook_chapters(docnames)

        stage()
        timings = []
        log(f"execute {len(chapters)} notebook(s), profile {args.profile}, kernel python3 ({sys.executable})")
        for ipynb in chapters:
            if not ipynb.exists():
                raise BuildError(f"{ipynb.relative_to(ROOT)} is missing (run without --no-sync to pair it)")
            out = STAGE / ipynb.relative_to(ROOT)
            seconds, (cell, cell_s) = execute(ipynb, out, timeout=args.timeout)
            timings.append((ipynb.relative_to(ROOT), seconds))
            log(f"  {str(ipynb.relative_to(ROOT)):40s} {seconds:7.1f} s   (slowest: cell {cell}, {cell_s:.1f} s)")

        t0 = time.perf_counter()
        log("render jupyter-book build -W (execution off) ...")
        render(args.verbose)
        t_render = time.perf_counter() - t0
    except BuildError as exc:
        print(f"book build FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    t_exec = sum(s for _, s in timings)
    log(f"book built in {time.perf_counter() - t_start:.1f} s (execute {t_exec:.1f} s, render {t_render:.1f} s): "
        f"{(HTML / 'index.html').relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
