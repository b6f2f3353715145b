"""The package's shape (issue: redesign): no import cycle, no function too long to read."""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ssmlib"
MAX_FUNCTION_LINES = 110
"""About 100: a loop of ~80 lines over named helpers is the goal; anything longer is split."""


def modules() -> dict[str, Path]:
    out = {}
    for p in PACKAGE.rglob("*.py"):
        name = ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = p
    return out


def import_graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the ssmlib modules it imports, at any level (an import inside a function counts)."""
    graph = {m: set() for m in mods}
    for m, p in mods.items():
        pkg = m if p.name == "__init__.py" else m.rsplit(".", 1)[0]
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, ast.ImportFrom):
                base = pkg.split(".")[:len(pkg.split(".")) - (n.level - 1)] if n.level else []
                mod = ".".join(base + ([n.module] if n.module else [])) if n.level else (n.module or "")
                targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in mods else mod for a in n.names]
            elif isinstance(n, ast.Import):
                targets = [a.name for a in n.names]
            else:
                continue
            for t in targets:
                while t and t not in mods and "." in t:
                    t = t.rsplit(".", 1)[0]
                if t in mods and t != m:
                    graph[m].add(t)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_in_ssmlib():
    found = cycles(import_graph(modules()))
    assert not found, f"import cycles: {found}"


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    mods = modules()
    graph = import_graph(mods)
    assert "ssmlib.evaluate" in graph["ssmlib.train"]  # a known edge, function-level imports included
    graph["ssmlib.evaluate"].add("ssmlib.train")
    assert ["ssmlib.evaluate", "ssmlib.train"] in cycles(graph)


@pytest.mark.parametrize("path", sorted(modules().values()), ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_no_function_over_the_limit(path):
    long = [f"{n.name} ({n.end_lineno - n.lineno + 1} lines, line {n.lineno})"
            for n in ast.walk(ast.parse(path.read_text()))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"split into named helpers: {', '.join(long)}"


STUDIES = ("zoo", "jumpy", "campaign", "zoo_campaign", "scaling", "i2a")
"""The studies: each lives in ``ssmlib/studies/`` (issue #16), none at the top of the package or in ``agents``."""


def test_studies_live_in_the_studies_package():
    mods = modules()
    stray = sorted(set(mods) & ({f"ssmlib.{s}" for s in STUDIES} | {"ssmlib.agents.study"}))
    assert not stray, f"move into ssmlib/studies/: {stray}"
    assert {f"ssmlib.studies.{s}" for s in ("zoo", "jumpy", "zoo_campaign", "scaling", "i2a", "common")} <= set(mods)


def test_no_module_imports_a_study_from_its_old_place():
    """No shim left behind, and nothing (package, tests, notebooks, scripts) imports or runs a study from where it was."""
    old = re.compile(r"ssmlib\.(zoo|jumpy|campaign|scaling|agents\.study)\b|from ssmlib import .*\b(zoo|jumpy|campaign)\b"
                     r"|from \.+(zoo|jumpy|campaign|scaling|study) import|from \.+ import .*\b(zoo|jumpy|campaign|scaling|study)\b")
    root = PACKAGE.parent
    files = [*PACKAGE.rglob("*.py"), *(root / "tests").glob("*.py"), *(root / "notebooks").glob("*.py"),
             *(root / "scripts").glob("*.sh")]
    hits = [f"{p.relative_to(root)}:{i}: {line.strip()}" for p in files if p.name != "test_structure.py"
            for i, line in enumerate(p.read_text().splitlines(), 1)
            if old.search(line) and ("import" in line or "-m ssmlib" in line) and not p.is_relative_to(PACKAGE / "studies")]
    assert not hits, "imports of a study's old place:\n" + "\n".join(hits)
