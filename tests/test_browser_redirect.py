"""scripts/browser_test.py without a browser: redirect pages (Jupyter Book's index.html) are found from
their meta refresh and checked as redirects whose target is a page of the book; the page list follows
the built book and _toc.yml (a new chapter needs no edit); and the navigation state read from DevTools
events tells a loaded document from one that is navigating away (no script may run on it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# what Jupyter Book 1.x writes as _build/html/index.html when the root is intro.md
JB_INDEX = '<meta http-equiv="Refresh" content="0; url=intro.html" />\n'
PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>Data</title></head>
<body><p>Press refresh; url=elsewhere.html is only text.</p><img src="a.png"></body></html>"""


@pytest.fixture(scope="module")
def bt():
    spec = importlib.util.spec_from_file_location("browser_test_redirect", ROOT / "scripts" / "browser_test.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("text, expected", [
    (JB_INDEX, (0.0, "intro.html")),
    ('<html><head><META HTTP-EQUIV="refresh" CONTENT="0;URL=\'intro.html\'"></head></html>', (0.0, "intro.html")),
    ('<meta content="2; URL = notebooks/01_data.html#top" http-equiv="refresh">', (2.0, "notebooks/01_data.html#top")),
    ('<meta http-equiv=refresh content="0;url=../intro.html">', (0.0, "../intro.html")),
])
def test_meta_refresh_finds_redirects(bt, text, expected):
    assert bt.meta_refresh(text) == expected


@pytest.mark.parametrize("text", [
    PAGE,                                                       # "refresh; url=" in the text, not a meta
    '<meta http-equiv="refresh" content="30">',                 # reloads itself: not a redirect
    '<meta name="viewport" content="0; url=intro.html">',       # another meta
    '<meta http-equiv="content-type" content="text/html; charset=utf-8">',
    "",
])
def test_meta_refresh_ignores_other_pages(bt, text):
    assert bt.meta_refresh(text) is None


def _book(tmp_path: Path, pages: dict[str, str]) -> Path:
    html = tmp_path / "html"
    for rel, text in pages.items():
        (html / rel).parent.mkdir(parents=True, exist_ok=True)
        (html / rel).write_text(text)
    return html


def test_redirect_target_resolves_inside_the_book(bt, tmp_path):
    html = _book(tmp_path, {"index.html": JB_INDEX, "intro.html": PAGE,
                            "notebooks/old.html": '<meta http-equiv="refresh" content="0; url=../intro.html">',
                            "away.html": '<meta http-equiv="refresh" content="0; url=https://example.org/">',
                            "gone.html": '<meta http-equiv="refresh" content="0; url=missing.html">',
                            "self.html": '<meta http-equiv="refresh" content="0; url=self.html">'})
    assert bt.redirect_target(html / "index.html", html) == ((html / "intro.html").resolve(), "intro.html")
    assert bt.redirect_target(html / "notebooks" / "old.html", html)[0] == (html / "intro.html").resolve()
    assert bt.redirect_target(html / "intro.html", html) is None
    assert bt.redirect_target(html / "away.html", html) == (None, "https://example.org/")
    assert bt.redirect_target(html / "gone.html", html) == (None, "missing.html")
    assert bt.redirect_target(html / "self.html", html) is None


def test_book_pages_follow_the_build_and_the_toc(bt, tmp_path):
    html = _book(tmp_path, {"index.html": JB_INDEX, "intro.html": PAGE, "search.html": PAGE, "genindex.html": PAGE,
                            "_static/x.html": PAGE, "vendor/y.html": PAGE,
                            "notebooks/01_data.html": PAGE, "notebooks/12_play.html": PAGE})
    docnames = ["intro", "notebooks/01_data", "notebooks/12_play"]
    pages, problems = bt.book_pages(html, docnames)
    rel = [str(p.relative_to(html.resolve())) for p in pages]
    # a new chapter (12_play) is opened with no edit of the script; asset and search pages are not
    assert rel == ["index.html", "intro.html", "notebooks/01_data.html", "notebooks/12_play.html"]
    assert problems == []
    # a toc entry that was not built, and a redirect that leaves the book, are failures
    (html / "notebooks" / "12_play.html").unlink()
    (html / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=nowhere.html">')
    pages, problems = bt.book_pages(html, docnames)
    assert len(problems) == 2, problems
    assert any("notebooks/12_play" in p and "_toc.yml" in p for p in problems)
    assert any(p.startswith("index.html: redirects to 'nowhere.html'") for p in problems)


def _navigated(frame, loader, url, parent=None):
    f = {"id": frame, "loaderId": loader, "url": url}
    if parent:
        f["parentId"] = parent
    return {"method": "Page.frameNavigated", "params": {"frame": f, "type": "Navigation"}}


def _load(frame, loader, name="load"):
    return {"method": "Page.lifecycleEvent", "params": {"frameId": frame, "loaderId": loader, "name": name}}


def test_frame_state_follows_a_meta_refresh(bt):
    """The events chromium sends for index.html -> intro.html: the first load event is the redirect
    page's, which then navigates away; only the target's own load makes the tab ready."""
    idx, intro = "file:///b/html/index.html", "file:///b/html/intro.html"
    events = [_navigated("F", "L1", idx), _load("F", "L1", "DOMContentLoaded"), _load("F", "L1")]
    st = bt.frame_state(events, "F")
    assert st == {"url": idx, "loader": "L1", "loaded": True, "leaving": None}
    events.append({"method": "Page.frameRequestedNavigation",
                   "params": {"frameId": "F", "reason": "metaTagRefresh", "url": intro, "disposition": "currentTab"}})
    st = bt.frame_state(events, "F")
    assert st["loaded"] and st["leaving"] == intro  # loaded, but navigating: no script may run on it
    events += [{"method": "Page.frameStartedNavigating",
                "params": {"frameId": "F", "url": intro, "loaderId": "L2", "navigationType": "differentDocument"}},
               _navigated("F", "L2", intro), _load("F", "L1")]  # a late load of the old document
    st = bt.frame_state(events, "F")
    assert st["url"] == intro and not st["loaded"] and st["leaving"] is None
    events += [_navigated("C", "L9", "about:blank", parent="F"), _load("C", "L9"), _load("F", "L2")]
    assert bt.frame_state(events, "F") == {"url": intro, "loader": "L2", "loaded": True, "leaving": None}


def test_frame_state_keeps_a_document_through_same_document_navigation(bt):
    lab = "http://127.0.0.1:1/lab/tree/notebooks/11_explorer.ipynb?token=t"
    events = [_navigated("F", "L1", lab), _load("F", "L1"),
              {"method": "Page.navigatedWithinDocument", "params": {"frameId": "F", "url": lab.split("?")[0]}},
              {"method": "Page.frameStartedNavigating",
               "params": {"frameId": "F", "url": lab, "loaderId": "L1", "navigationType": "sameDocument"}},
              {"method": "Page.frameRequestedNavigation",
               "params": {"frameId": "F", "reason": "anchorClick", "url": "http://x/", "disposition": "newTab"}}]
    st = bt.frame_state(events, "F")
    assert st["loaded"] and st["leaving"] is None and st["url"] == lab.split("?")[0]


def test_same_url(bt):
    assert bt.same_url("file:///b/html/intro.html", "file:///b/html/intro.html#top")
    assert bt.same_url("file:///b/html/a%20b.html", "file:///b/html/a b.html")
    assert not bt.same_url("file:///b/html/index.html", "file:///b/html/intro.html")
    assert not bt.same_url(None, "file:///b/html/intro.html")
