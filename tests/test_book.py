"""The book: its table of contents, the notebook pairs, the vendored assets, and (after `make book`)
that the built HTML loads nothing from the network.

Fast (no notebook is executed). The checks on _build/html are skipped when the book is not built;
the browser check is skipped without chromium.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
HTML = ROOT / "_build" / "html"
VENDOR = ROOT / "book" / "extra" / "vendor"
PAIR_NAME = re.compile(r"^\d\d_[A-Za-z0-9_]+$")


def toc_docnames() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    names = [toc["root"]]

    def walk(node):
        for key in ("parts", "chapters", "sections"):
            for child in node.get(key) or []:
                if "file" in child:
                    names.append(str(child["file"]))
                walk(child)

    walk(toc)
    return names


def notebook_stems() -> list[str]:
    """Stems of notebooks/NN_name.{ipynb,py}."""
    if not NOTEBOOKS.is_dir():
        return []
    return sorted({p.stem for p in NOTEBOOKS.glob("*") if p.suffix in (".py", ".ipynb") and PAIR_NAME.match(p.stem)})


# ------------------------------------------------------------------------------------------ (a) toc
def test_toc_lists_only_existing_files():
    missing = [
        name for name in toc_docnames()
        if not any((ROOT / f"{name}{ext}").exists() for ext in ("", ".md", ".ipynb"))
    ]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"


def test_toc_has_no_duplicates():
    names = toc_docnames()
    assert len(names) == len(set(names)), f"_toc.yml lists a file twice: {names}"


def test_every_paired_notebook_is_in_the_toc():
    listed = {re.sub(r"\.(md|ipynb|py)$", "", n) for n in toc_docnames()}
    paired = [s for s in notebook_stems() if (NOTEBOOKS / f"{s}.py").exists() and (NOTEBOOKS / f"{s}.ipynb").exists()]
    absent = [f"notebooks/{s}" for s in paired if f"notebooks/{s}" not in listed]
    assert not absent, f"paired notebooks missing from _toc.yml (add `- file: ...` lines): {absent}"


def test_intro_links_every_chapter_and_marks_only_the_others_coming():
    """intro.md's chapter table (rows whose first cell is `NN_name`): a toc chapter is a {doc}
    link there, never 'coming'."""
    intro = (ROOT / "intro.md").read_text()
    rows = [line for line in intro.splitlines() if line.startswith("|") and line.count("|") >= 3]
    for name in toc_docnames()[1:]:
        stem = Path(name).name
        mine = [r for r in rows if r.split("|")[1].strip().strip("`") == stem]
        assert mine, f"intro.md's roadmap has no row for {name}"
        assert any(f"{{doc}}`{name}`" in r for r in mine), f"intro.md's row for {name} should link it: {{doc}}`{name}`"
        assert not any("coming" in r.lower() for r in mine), f"intro.md still marks {name} as coming"


# ----------------------------------------------------------------------------------- (b) the pairs
def _cells(path: Path):
    import jupytext

    nb = jupytext.read(path)
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", ()))) for c in nb.cells]


@pytest.mark.parametrize("stem", notebook_stems() or [pytest.param(None, marks=pytest.mark.skip("no notebooks yet"))])
def test_pair_halves_hold_the_same_cells(stem):
    py, ipynb = NOTEBOOKS / f"{stem}.py", NOTEBOOKS / f"{stem}.ipynb"
    assert py.exists() and ipynb.exists(), (
        f"notebooks/{stem}: both halves must be committed (.py and .ipynb); run `make book` or "
        f"`jupytext --sync notebooks/{stem}.py`"
    )
    a, b = _cells(py), _cells(ipynb)
    if a != b:
        diff = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        pytest.fail(
            f"notebooks/{stem}.py and .ipynb differ ({len(a)} vs {len(b)} cells; first difference at cell "
            f"{diff + 1}): run `jupytext --sync notebooks/{stem}.py` (the newer half wins)"
        )


@pytest.mark.parametrize("stem", notebook_stems() or [pytest.param(None, marks=pytest.mark.skip("no notebooks yet"))])
def test_committed_ipynb_is_output_free(stem):
    import nbformat

    ipynb = NOTEBOOKS / f"{stem}.ipynb"
    if not ipynb.exists():
        pytest.skip("no .ipynb half (test_pair_halves_hold_the_same_cells reports it)")
    nb = nbformat.read(ipynb, as_version=4)
    dirty = [i + 1 for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not dirty, (
        f"{ipynb.relative_to(ROOT)}: cells {dirty} hold outputs; clear them "
        f"(`jupyter nbconvert --clear-output --inplace {ipynb.relative_to(ROOT)}`): the book executes its own copy"
    )
    assert "widgets" not in nb.metadata, f"{ipynb.relative_to(ROOT)} holds saved widget state: clear it"


# ---------------------------------------------------------------------------- (d) vendored assets
VENDORED = [
    "requirejs/require.js",
    "html-manager/local-paths.js",
    "html-manager/embed-amd.js",
    "mathjax/tex-chtml.js",
    "mathjax/output/chtml/fonts/woff-v2/MathJax_Main-Regular.woff",
    "mathjax/input/tex/extensions/boldsymbol.js",
    "VERSIONS.txt",
]


@pytest.fixture(scope="module", autouse=True)
def unpacked_vendor():
    """The largest vendored scripts are tracked as book/vendor-gz/*.gz: unpack them first, exactly as
    `make book` does (book/vendor_gz.py; a no-op when they are there and match VERSIONS.txt)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_ssmlib_vendor_gz", ROOT / "book" / "vendor_gz.py")
    vendor_gz = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(vendor_gz)
    vendor_gz.unpack()


@pytest.mark.parametrize("rel", VENDORED)
def test_vendored_asset_exists(rel):
    path = VENDOR / rel
    assert path.is_file() and path.stat().st_size > 0, (
        f"{path.relative_to(ROOT)} missing: run scripts/vendor_assets.sh, then book/vendor_gz.py --pack")


def test_vendored_html_manager_has_its_fonts():
    """Every font file embed-amd.js names in its woff2 @font-face sources is vendored."""
    js = (VENDOR / "html-manager" / "embed-amd.js").read_text(errors="replace")
    names = set(re.findall(r"([0-9a-f]{20}\.woff2)", js))
    assert names, "embed-amd.js names no woff2 font: has the package changed?"
    missing = sorted(n for n in names if not (VENDOR / "html-manager" / n).exists())
    assert not missing, f"fonts of embed-amd.js not vendored: {missing}"


def test_config_points_at_the_vendored_files():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]["config"]
    assert cfg["html_extra_path"] == ["book/extra"]
    # Sphinx prefixes these with _static/; ../ brings them back to the HTML root's vendor/.
    for url in [cfg["mathjax_path"], *cfg["nb_ipywidgets_js"]]:
        assert url.startswith("../vendor/") and "://" not in url, url
        assert (VENDOR / url.removeprefix("../vendor/")).is_file(), url
    embed = cfg["nb_ipywidgets_js"]["../vendor/html-manager/embed-amd.js"]
    assert "://" not in embed["data-jupyter-widgets-cdn"], "widget modules must not come from a CDN"
    assert "sphinx_thebe" not in cfg["extensions"], "sphinx_thebe writes an unpkg.com URL into every page"


# ------------------------------------------------------------------------------ (c) the built book
needs_build = pytest.mark.skipif(not (HTML / "index.html").exists(), reason="book not built (make book)")

REMOTE = re.compile(r"^\s*(https?:)?//", re.I)
CDN = re.compile(
    r"(https?:)?//[^\s\"'`)]*(cdn\.|cdnjs|unpkg\.com|jsdelivr|googleapis|gstatic|mathjax\.org|"
    r"polyfill\.io|code\.jquery|bootstrapcdn|use\.fontawesome|kit\.fontawesome|mybinder|plausible|googletagmanager)",
    re.I,
)
# CDN strings inside vendored code that never load anything here (each checked by a test below or
# in scripts/vendor_assets.sh): html-manager's default widget-module CDN (overridden by the
# data-jupyter-widgets-cdn attribute the book sets), a commented-out Google Fonts @import in its CSS;
# MathJax's speech-rule-engine / IE locations (only for the a11y explorer, off, not vendored) and
# its "about" link to www.mathjax.org.
ALLOWED = {
    "vendor/html-manager/embed-amd.js": {"https://cdn.jsdelivr.net/npm/", "https://fonts.googleapis.com/css"},
    "vendor/mathjax/tex-chtml.js": {
        "https://cdn.jsdelivr.net/npm/sre-mathmaps-ie@", "https://cdn.jsdelivr.net/npm/speech-rule-engine@",
        "https://cdn.jsdelivr.net/npm/wicked-good-xpath@1.3.0/dist/wgxpath.install.js", "https://www.mathjax.org",
    },
}
TAG = re.compile(r"<(script|link|img|iframe|source|audio|video|embed|object|track|input)\b([^>]*)>", re.I | re.S)
ATTR = re.compile(r"\b(src|href|data|srcset|poster)\s*=\s*([\"'])(.*?)\2", re.I | re.S)
NOT_A_LOAD = {"canonical", "alternate", "author", "license", "help", "next", "prev", "search", "index"}


def _files(*suffixes):
    return [p for p in HTML.rglob("*") if p.is_file() and p.suffix in suffixes]


@needs_build
def test_html_loads_nothing_remote():
    """No <script src>, <link href> (stylesheet, preload, icon), <img src>... points off the book."""
    bad = []
    for page in _files(".html"):
        text = page.read_text(errors="replace")
        for tag, attrs in TAG.findall(text):
            rel = re.search(r"\brel\s*=\s*[\"']([^\"']*)", attrs, re.I)
            if tag.lower() == "link" and rel and set(rel.group(1).lower().split()) <= NOT_A_LOAD:
                continue
            for name, _, value in ATTR.findall(attrs):
                urls = [u.strip().split(" ")[0] for u in value.split(",")] if name.lower() == "srcset" else [value]
                bad += [f"{page.relative_to(HTML)}: <{tag} {name}={u}>" for u in urls if REMOTE.match(u)]
        for block in re.findall(r"<style\b[^>]*>(.*?)</style>", text, re.I | re.S):
            bad += [f"{page.relative_to(HTML)}: <style> {m}" for m in re.findall(r"(?:@import|url\()\s*[\"']?((?:https?:)?//[^\"')\s]+)", block)]
    assert not bad, "built HTML loads from the network:\n" + "\n".join(sorted(set(bad))[:40])


# Base64 data (images inline in the pages and in saved widget state): a long run of these characters
# is no address, and by chance it can spell a CDN name ("CdnjS" was found in a PNG of the explorer). Saved
# widget state wraps it in lines of 76 characters, each ending in a backslash and a newline (inside a JSON
# string), so a run may span such line ends ("ccdnjss" in a frame of the play chapter, 2026-12-04).
BASE64_RUN = re.compile(r"(?:[A-Za-z0-9+/]{16,}(?:\\?\n|\\n)){2,}[A-Za-z0-9+/]*={0,2}|[A-Za-z0-9+/]{100,}={0,2}")


def test_the_base64_filter_spans_wrapped_lines_and_keeps_every_address():
    """What test_no_cdn_anywhere_in_html_js_css blanks out: base64 data, whole or wrapped at 76 characters with
    a backslash and newline (saved widget state), even where it spells a CDN name; never an address."""
    wrapped = "\\\n".join(["PVbCmxudnonl9VysvvrqHHrooXzqU5/iv//7v9lwww0B2HLLLd3WRIceeihz585dLuMlJCQkJCR0",
                            "QorxeovjhGsB5553//PHssccetFot7rnnntccdnjssccCdHwu47HS/p0JK/KZ+MEPfsB5553H",
                            "rFmz+NGPfsB5553H=="])
    assert CDN.search(wrapped) and not CDN.search(BASE64_RUN.sub(" ", wrapped))
    for address in ('<script src="https://cdn.jsdelivr.net/npm/x.js"></script>',
                    wrapped + '\\\n"https://cdnjs.cloudflare.com/ajax/libs/x.js"', "//unpkg.com/x@1/dist/x.js"):
        assert CDN.search(BASE64_RUN.sub(" ", address)), address


@needs_build
def test_no_cdn_anywhere_in_html_js_css():
    """No CDN address in any built .html/.js/.css, except the inert ones of vendored code above."""
    bad = []
    for path in _files(".html", ".js", ".css"):
        rel = path.relative_to(HTML).as_posix()
        text = BASE64_RUN.sub(" ", path.read_text(errors="replace"))
        for m in CDN.finditer(text):
            url = re.match(r"[^\s\"'`)\\]*", text[m.start():]).group(0)
            if not any(url.startswith(a) for a in ALLOWED.get(rel, ())):
                bad.append(f"{rel}: {url}")
    assert not bad, "CDN references in the built book:\n" + "\n".join(sorted(set(bad))[:40])


@needs_build
def test_widget_pages_use_the_vendored_embedder():
    pages = [p for p in _files(".html") if "application/vnd.jupyter.widget-state+json" in p.read_text(errors="replace")]
    if not pages:
        pytest.skip("no page of the book holds widgets")
    for page in pages:
        text = page.read_text(errors="replace")
        srcs = re.findall(r"<script\b[^>]*\bsrc=\"([^\"]+)\"", text)
        order = [next((i for i, s in enumerate(srcs) if f"vendor/{name}" in s), None)
                 for name in ("requirejs/require.js", "html-manager/local-paths.js", "html-manager/embed-amd.js")]
        assert None not in order and order == sorted(order), f"{page.name}: scripts {srcs}"
        assert text.count("embed-amd.js") == 1, f"{page.name} loads the embedder more than once"
        cdn = re.search(r"data-jupyter-widgets-cdn=\"([^\"]*)\"", text)
        assert cdn and "://" not in cdn.group(1), f"{page.name}: widget modules would come from {cdn and cdn.group(1)}"


@needs_build
def test_vendored_assets_are_in_the_html():
    for rel in VENDORED:
        assert (HTML / "vendor" / rel).is_file(), f"_build/html/vendor/{rel} missing"
    assert not (HTML / "_static" / "vendor" / "html-manager").exists(), "vendored JS must not sit in _static"


# ------------------------------------------------------------------- the page in a browser, offline
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@needs_build
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_widgets_and_math_render_offline_in_chromium():
    """Headless chromium, file:// and no network: widget views and MathJax output appear."""
    pages = [p for p in _files(".html") if "application/vnd.jupyter.widget-state+json" in p.read_text(errors="replace")]
    math_pages = [p for p in _files(".html") if 'class="math' in p.read_text(errors="replace")]
    if not pages and not math_pages:
        pytest.skip("no page with widgets or math")
    with tempfile.TemporaryDirectory() as profile:
        def dom(page: Path) -> str:
            cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                   f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND",
                   "--virtual-time-budget=8000", "--dump-dom", page.as_uri()]
            return subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout

        for page in pages[:3]:
            html = dom(page)
            # a rendered view is an element of class "lm-Widget ... jupyter-widgets" (the raw page only
            # holds the JSON state, where "@jupyter-widgets/..." names appear as strings)
            assert re.search(r'class="[^"]*\blm-Widget\b[^"]*\bjupyter-widgets\b', html), f"{page.name}: no widget rendered"
        for page in math_pages[:3]:
            assert "<mjx-container" in dom(page), f"{page.name}: MathJax did not typeset"


def _browser_test_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("browser_test", ROOT / "scripts" / "browser_test.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_browser_test_skips_in_one_line_without_chromium(monkeypatch, capsys):
    """`make browser-test` on a machine without chromium (a CI image): one SKIPPED line, exit 0
    (exit 1 with --require); nothing is installed unless --install is given."""
    bt = _browser_test_module()
    monkeypatch.setattr(bt.shutil, "which", lambda name: None)
    assert bt.main(["--html", str(ROOT / "no-such-folder")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("browser-test: SKIPPED: chromium is not installed"), lines
    assert bt.main(["--require"]) == 1
