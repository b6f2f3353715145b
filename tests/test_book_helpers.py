"""ssmlib.book, the chapters' shared helpers: one colour per model and agent, one quick dataset, one
short training run; and the chapters use them instead of re-typing their own.

Fast: nothing is collected or trained (the wrapped functions' inner calls are monkeypatched).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from ssmlib import book
from ssmlib.studies.i2a import VARIANTS
from ssmlib.config import MODEL_NAMES
from ssmlib.errors import SsmlibError

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted(p for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.py"))


# ------------------------------------------------------------------------------------------ colours
def test_every_model_and_agent_has_a_distinct_colour():
    names = (*MODEL_NAMES, *VARIANTS)
    missing = [n for n in names if n not in book.MODEL_COLOURS]
    assert not missing, f"MODEL_COLOURS lacks {missing}"
    colours = [book.MODEL_COLOURS[n] for n in names]
    assert len(set(colours)) == len(colours), dict(zip(names, colours))


def test_copy_references_and_longer_jumps_have_their_own_colours():
    from ssmlib.studies import jumpy

    longer = [jumpy.run_name(m, k) for m in jumpy.MODELS for k in jumpy.JUMPS if k > 1]
    names = (*MODEL_NAMES, *VARIANTS, *book.COPY_BASELINES, *longer)
    colours = [book.colour(n) for n in names]
    assert len(set(colours)) == len(colours), dict(zip(names, colours))
    for m in jumpy.MODELS:  # k = 1 is the model itself
        assert book.colour(jumpy.run_name(m, 1)) == book.colour(m)


def test_colours_are_matplotlib_colours():
    from matplotlib.colors import is_color_like

    bad = {n: c for n, c in book.MODEL_COLOURS.items() if not is_color_like(c)}
    assert not bad, bad


def test_colour_refuses_an_unknown_name():
    with pytest.raises(SsmlibError, match="no book colour"):
        book.colour("dSSM-XYZ")
    assert book.colour("sSSM") == book.MODEL_COLOURS["sSSM"]


def test_book_reexports_the_package_facts_not_copies():
    import ssmlib.config as config

    assert book.MODEL_NAMES is config.MODEL_NAMES
    assert book.CONTEXT == config.CONTEXT
    assert book.VARIANTS == tuple(VARIANTS)


def test_agent_view_reads_its_colours_from_the_book():
    from ssmlib.viz.agent_view import VARIANT_COLORS

    assert VARIANT_COLORS == {v: book.MODEL_COLOURS[v] for v in VARIANTS}


# ----------------------------------------------------------------------------------------- datasets
@pytest.fixture
def fake_ensure(monkeypatch):
    """ssmlib.data.collect.ensure_dataset replaced by a recorder: (root, cfg, steps) -> a stand-in dataset."""
    import types

    import ssmlib.data.collect as collect

    calls = []

    def ensure(root, cfg, steps, **kwargs):
        calls.append((Path(root), cfg, steps))
        return types.SimpleNamespace(root=Path(root), cfg=cfg, steps=steps)

    monkeypatch.setattr(collect, "ensure_dataset", ensure)
    return calls


def test_quick_dataset_is_the_agents_quick_dataset(fake_ensure):
    from ssmlib.agents import quick

    ours, theirs = book.quick_dataset(), quick.quick_dataset()
    assert ours.root == theirs.root == quick.QUICK_DATASET == book.quick_dataset_path()
    assert ours.cfg == theirs.cfg and ours.steps == theirs.steps == quick.QUICK_DATASET_STEPS
    assert book.book_dataset("quick").root == quick.QUICK_DATASET


def test_book_dataset_at_the_paper_profile(fake_ensure):
    from ssmlib.config import get_profile

    ds = book.book_dataset("paper")
    assert ds.root == book.PAPER_DATASET and ds.steps == book.PAPER_DATASET_STEPS
    assert (ds.cfg.height, ds.cfg.width) == (get_profile("paper").data.height, get_profile("paper").data.width)


def test_demo_dataset_is_pretrained_demo_dataset(fake_ensure, tmp_path, monkeypatch):
    from ssmlib import pretrained

    monkeypatch.setenv("SSMLIB_CACHE", str(tmp_path))
    for game in ("MsPacman", "Bowling"):
        ours, theirs = book.demo_dataset(game), pretrained.demo_dataset(game)
        assert ours.root == theirs.root and ours.root.is_relative_to(tmp_path)
        assert ours.cfg == theirs.cfg and ours.steps == theirs.steps


def test_train_quick_writes_under_runs_book(monkeypatch, tmp_path):
    import types

    import ssmlib.train as train_mod

    seen = {}

    def fake_train(model, data_dir, out_dir, **kwargs):
        seen.update(model=model, data_dir=data_dir, out_dir=out_dir, **kwargs)
        return {"step": kwargs["overrides"]["steps"]}

    monkeypatch.setattr(train_mod, "train", fake_train)
    ds = types.SimpleNamespace(root=tmp_path)
    summary, run_dir = book.train_quick("dSSM-DET", "06_jumpy_speed", ds, run="dSSM-DET-k4", steps=7, jump=4,
                                        eval_windows=5)
    assert summary == {"step": 7}
    assert run_dir == book.BOOK_RUNS / "06_jumpy_speed" / "dSSM-DET-k4" == seen["out_dir"]
    assert seen["data_dir"] == tmp_path and seen["profile"] == "quick" and seen["overwrite"]
    assert seen["overrides"] == {"steps": 7, "jump": 4} and seen["eval_windows"] == 5


# -------------------------------------------------------------------------- chapters use the helpers
_COLOUR_NAME = re.compile(r"\b(colou?rs?|COLOU?RS?|[A-Z_]*COLOU?RS?)\s*=\s*(\{|dict\()")


def own_colour_tables(source: str) -> list[str]:
    """Colour tables for models or agents that a chapter defines itself: an assignment of a dict whose
    string keys include two or more book names (models, agents, copy references, jumpy runs), or any
    ``colors = {...}`` / ``COLORS = dict(...)`` assignment."""
    found = [m.group(0) for m in _COLOUR_NAME.finditer(source)]
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            keys = [k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
            vals = [v for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
            if sum(k in book.MODEL_COLOURS for k in keys) >= 2 and len(vals) == len(node.values):
                found.append(f"line {node.lineno}: {{{', '.join(keys)}}}")
    return found


def test_the_detector_finds_a_colour_table():
    assert own_colour_tables('COLORS = {"AR": "tab:blue", "RAR": "tab:orange"}\n')
    assert own_colour_tables('colors = dict(zip(models, plt.cm.tab10.colors))\n')
    assert own_colour_tables('style = {"i2a-distill": "C0", "i2a-learned": "C1"}\n')
    assert not own_colour_tables('x = {"AR": 1.0, "RAR": 2.0}\nc = colour("AR")\n')


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_chapter_defines_its_own_model_colours(path):
    found = own_colour_tables(path.read_text())
    assert not found, f"{path.name} defines its own colours ({found}); use ssmlib.book.colour"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_chapter_spells_out_the_quick_dataset(path):
    text = path.read_text()
    assert '"MsPacman-quick"' not in text and "ensure_dataset(" not in text, (
        f"{path.name} spells out the quick dataset; use ssmlib.book.quick_dataset")


def test_chapters_exist():
    assert len(CHAPTERS) >= 12
