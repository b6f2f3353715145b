"""ssmlib.paper.PAPER_MAP points at real things: each row's Python object, book chapter and test exist.

Fast: nothing is executed but imports; the tests are found by parsing their files with ``ast``.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
from pathlib import Path

import pytest
import yaml

from ssmlib.paper import PAPER_MAP, PaperItem

ROOT = Path(__file__).resolve().parent.parent


def resolve(symbol: str):
    """The object at a dotted path: the longest importable module prefix, then attributes."""
    parts = symbol.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for name in parts[i:]:
            obj = getattr(obj, name)  # AttributeError: a misspelled name
        return obj
    raise ModuleNotFoundError(f"no module in {symbol!r}")


def toc_files() -> set[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    names = set()

    def walk(node):
        for key in ("parts", "chapters", "sections"):
            for child in node.get(key) or []:
                if "file" in child:
                    names.add(str(child["file"]))
                walk(child)

    walk(toc)
    return names


def test_node_exists(node: str) -> bool:
    """Whether a pytest node id ``path::func`` or ``path::Class::method`` (a ``[param]`` suffix allowed)
    names a function defined in that file."""
    path, *names = node.split("::")
    file = ROOT / path
    if not names or not file.is_file():
        return False
    names[-1] = names[-1].split("[")[0]
    scope = ast.parse(file.read_text()).body
    for i, name in enumerate(names):
        last = i == len(names) - 1
        kinds = (ast.FunctionDef, ast.AsyncFunctionDef) if last else (ast.ClassDef,)
        found = next((n for n in scope if isinstance(n, kinds) and n.name == name), None)
        if found is None:
            return False
        scope = found.body
    return True


test_node_exists.__test__ = False  # a helper whose name starts with "test", not a test


ROWS = [pytest.param(row, id=row.item) for row in PAPER_MAP]


def test_the_map_has_rows_of_paper_items():
    assert len(PAPER_MAP) >= 10
    assert all(isinstance(row, PaperItem) for row in PAPER_MAP)
    with pytest.raises(dataclasses.FrozenInstanceError):
        PAPER_MAP[0].item = "changed"


def test_items_are_unique():
    items = [row.item for row in PAPER_MAP]
    dup = sorted({i for i in items if items.count(i) > 1})
    assert not dup, f"PAPER_MAP lists an item twice: {dup}"


@pytest.mark.parametrize("row", ROWS)
def test_every_field_is_filled(row):
    assert all(isinstance(v, str) and v.strip() for v in dataclasses.astuple(row)), row


@pytest.mark.parametrize("row", ROWS)
def test_equation_renders_in_a_markdown_table(row):
    """notebooks/00_paper renders the map as a Markdown table: a bare | would split a cell (write \\mid, \\Vert)."""
    assert "|" not in row.equation, row.equation
    assert row.equation.count("{") == row.equation.count("}"), row.equation


@pytest.mark.parametrize("row", ROWS)
def test_symbol_resolves(row):
    assert row.symbol.startswith("ssmlib."), row.symbol
    assert resolve(row.symbol) is not None


@pytest.mark.parametrize("row", ROWS)
def test_chapter_exists_and_is_in_the_toc(row):
    assert (ROOT / f"{row.chapter}.py").is_file(), f"{row.chapter}.py does not exist"
    assert row.chapter in toc_files(), f"{row.chapter} is not listed in _toc.yml"


@pytest.mark.parametrize("row", ROWS)
def test_test_node_exists(row):
    assert test_node_exists(row.test), f"no test {row.test}"


# ----- the checks can fail --------------------------------------------------------------------------
def test_a_misspelled_symbol_does_not_resolve():
    with pytest.raises(AttributeError):
        resolve("ssmlib.models.state_space.StateSpaceModel._filtre_z")
    with pytest.raises(ModuleNotFoundError):
        resolve("sslmib.models.state_space.StateSpaceModel")
    assert resolve("ssmlib.models.state_space.StateSpaceModel._filter_z") is not None


def test_a_missing_test_node_is_caught():
    assert test_node_exists("tests/test_paper_map.py::test_items_are_unique")
    assert not test_node_exists("tests/test_paper_map.py::test_items_are_unique_")
    assert not test_node_exists("tests/test_no_such_file.py::test_items_are_unique")
    assert not test_node_exists("tests/test_paper_map.py")
    assert not test_node_exists("tests/test_paper_map.py::NoClass::test_items_are_unique")


def test_a_chapter_outside_the_toc_is_caught():
    assert "notebooks/05_sssm" in toc_files()
    assert "notebooks/99_nothing" not in toc_files()


def test_paper_i2a_scores_cover_our_variants():
    from ssmlib.studies.i2a import VARIANTS
    from ssmlib.paper import PUBLISHED, paper_i2a_scores

    scores = paper_i2a_scores()
    assert list(scores) == list(VARIANTS)  # one paper number per variant, in the study's order
    assert set(scores.values()) <= set(PUBLISHED["i2a_mspacman_scores"].value.values())
