#!/usr/bin/env python
"""The book as a reader sees it: every page of _build/html, and the explorer and play notebooks in JupyterLab,
in a real browser (headless chromium driven through the DevTools protocol).

    .venv/bin/python scripts/browser_test.py [--html _build/html] [--screenshots _build/screenshots]
                                             [--no-lab] [--require] [--install]

1. Book: every page of the built book (every .html under _build/html but its search/index pages and
   asset folders, so a new chapter of _toc.yml is checked with no edit here; a toc entry with no built
   page fails) is opened from file:// with the network cut off. A redirect page (a <meta
   http-equiv="refresh" content="0; url=..."> such as Jupyter Book's index.html) is checked as a
   redirect: its target must be a page of the book (which is itself checked as a page), and the browser
   must land on it and load it; no script is run on the redirecting document. Every navigation waits
   for the document's load event (DevTools lifecycle events of that very document), not for a time,
   and no script is run on a document that is navigating away. A page passes
   when it loads, every <img> on it has loaded (after a scroll to the bottom, for lazy images), every
   saved widget view is rendered exactly once (the html-manager puts each view in a div.widget-subarea;
   an earlier setup rendered each one three times), MathJax has typeset any math, no console error or
   uncaught exception was logged, no resource failed to load and nothing was requested from the
   network. A screenshot of the top of each page, and one of its first widget, goes to
   _build/screenshots/book-<page>.png (-widget.png). On the explorer's page, Play is pressed and the
   shown picture must change (the timeline works without a kernel).
2. JupyterLab: a server on 127.0.0.1 with a random token and temporary config/runtime/workspace
   folders opens a temporary copy of notebooks/11_explorer.ipynb (the tracked one stays output-free),
   runs all cells, waits for them, checks that no cell raised, clicks "repeat one action" in the
   explorer and waits for the kernel to answer, and saves _build/screenshots/lab-11_explorer*.png.
   Then the same for notebooks/12_play.ipynb: two clicks on the play widget's LEFT button and two
   arrow keys (real key events), each answered by the kernel, the notebook's active cell unmoved;
   _build/screenshots/lab-12_play.png.

chromium: Debian's `chromium` (or `chromium-browser`) on PATH. If it is missing, --install tries
`apt-get install chromium` (as root, with apt-get); otherwise the test prints one SKIPPED line and
exits 0 (exit 1 instead with --require). Needs the built book (`make book`). The chromium version
(its --version line and the browser's own DevTools product string) is printed first and in the
summary line.
Exit status: 0 passed or skipped, 1 failed (the failures are listed, one per line).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VIEW_TAG = "application/vnd.jupyter.widget-view+json"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions",
    "--no-first-run", "--no-default-browser-check", "--disable-dev-shm-usage", "--hide-scrollbars",
    "--mute-audio", "--disable-quic", "--window-size=1280,900",
    # no name resolves except the local server's: nothing can be fetched from the network
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]


def log(msg: str) -> None:
    print(msg, flush=True)


# ------------------------------------------------------------------------------------------ chromium
def find_chromium(install: bool) -> tuple[str | None, str]:
    """(path, note): chromium on PATH, or installed with apt-get when ``install`` and possible."""
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name), ""
    if not install:
        return None, "chromium is not installed (Debian: apt-get install chromium; or run with --install)"
    if not shutil.which("apt-get"):
        return None, "chromium is not installed and apt-get is not available to install it"
    if os.geteuid() != 0:
        return None, "chromium is not installed, and installing it with apt-get needs root"
    log("installing chromium with apt-get (Debian's package) ...")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"]):
        try:
            res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            return None, f"chromium could not be installed: {' '.join(cmd)} timed out"
        if res.returncode != 0:
            last = (res.stderr.strip().splitlines() or ["(no message)"])[-1]
            return None, f"chromium could not be installed: {' '.join(cmd)} failed: {last}"
    path = shutil.which("chromium")
    return path, "" if path else "apt-get installed chromium, but it is not on PATH"


class CDPError(Exception):
    pass


class Browser:
    """Headless chromium and one DevTools websocket (flattened sessions, one per page)."""

    def __init__(self, exe: str):
        import websocket  # websocket-client (comes with jupyter_server)

        self.profile = tempfile.mkdtemp(prefix="ssmlib-chromium-")
        self.proc = subprocess.Popen([exe, *CHROMIUM_FLAGS, "--remote-debugging-port=0",
                                      f"--user-data-dir={self.profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.time() + 60
        while not (port_file.exists() and len(port_file.read_text().split()) >= 2):
            if self.proc.poll() is not None or time.time() > deadline:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.poll() is not None else ""
                self.close()
                raise CDPError(f"chromium did not start: {err.strip().splitlines()[-1:] or 'timeout'}")
            time.sleep(0.1)
        port, path = port_file.read_text().split()[:2]
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{port}{path}", timeout=60, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        deadline = time.time() + timeout
        while True:
            reply = self._recv(deadline - time.time())
            if reply is None:
                raise CDPError(f"{method}: no answer within {timeout:.0f} s")
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise CDPError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})

    def _recv(self, timeout: float):
        import websocket

        self.ws.settimeout(max(0.01, timeout))
        try:
            msg = json.loads(self.ws.recv())
        except websocket.WebSocketTimeoutException:
            return None
        if "method" in msg:
            self.events.append(msg)
        return msg

    def pump(self, seconds: float) -> None:
        """Collect events for ``seconds``."""
        deadline = time.time() + seconds
        while time.time() < deadline:
            self._recv(deadline - time.time())

    def drain(self) -> None:
        """Collect the events already sent (no waiting beyond a few milliseconds)."""
        for _ in range(10000):
            if self._recv(0.01) is None:
                return

    def version(self) -> str:
        """The browser's own product string (e.g. HeadlessChrome/156.0.8078.114)."""
        try:
            return self.call("Browser.getVersion", timeout=20).get("product", "?")
        except CDPError as e:
            return f"? ({e})"

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


# --------------------------------------------------------------------------------- navigation state
# Events that announce that a frame is about to leave its document (a meta refresh, a script setting
# location, a link): renderer-requested (frameRequestedNavigation, with a reason such as
# "metaTagRefresh"), scheduled (frameScheduledNavigation, older chromium), or started
# (frameStartedNavigating, newer chromium; same-document ones do not leave the document).
LEAVING = ("Page.frameRequestedNavigation", "Page.frameScheduledNavigation", "Page.frameStartedNavigating")


def same_url(a: str | None, b: str | None) -> bool:
    """Two URLs name the same document (the fragment and percent-encoding aside)."""
    if a is None or b is None:
        return False
    norm = [urllib.parse.unquote(urllib.parse.urldefrag(u)[0]).rstrip("/") for u in (a, b)]
    return norm[0] == norm[1]


def frame_state(events: list[dict], frame_id: str) -> dict:
    """The document of frame ``frame_id`` after the DevTools ``events`` (in order): its ``url``, its
    ``loader`` (loaderId), whether its own load event fired (``loaded``, from Page.lifecycleEvent of
    that loader) and, when it is navigating away, the URL it is leaving for (``leaving``, else None).
    A new document (Page.frameNavigated of the frame) starts afresh; a same-document navigation
    (history.pushState, a fragment) only changes the URL."""
    st = {"url": None, "loader": None, "loaded": False, "leaving": None}
    for e in events:
        m, p = e.get("method"), e.get("params", {})
        if m == "Page.frameNavigated":
            f = p.get("frame", {})
            if f.get("id") == frame_id and not f.get("parentId"):
                st = {"url": f.get("url", "") + f.get("urlFragment", ""), "loader": f.get("loaderId"),
                      "loaded": False, "leaving": None}
        elif p.get("frameId") != frame_id:
            continue
        elif m == "Page.lifecycleEvent":
            if p.get("name") == "load" and st["loader"] is not None and p.get("loaderId") == st["loader"]:
                st["loaded"] = True
        elif m == "Page.navigatedWithinDocument":
            st["url"] = p.get("url", st["url"])
        elif m in LEAVING and st["loader"] is not None:
            if p.get("disposition", "currentTab") != "currentTab":
                continue  # a new tab or window: this document stays
            if "samedocument" in str(p.get("navigationType", "")).lower():
                continue
            st["leaving"] = p.get("url") or "(unknown URL)"
        elif m == "Page.frameClearedScheduledNavigation":
            st["leaving"] = None
    return st


class Page:
    """One tab: navigation, JavaScript, screenshots; collects its console errors and its requests."""

    def __init__(self, browser: Browser, width: int = 1280, height: int = 900):
        self.b = browser
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.target = target
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")
        # load states per document (Page.lifecycleEvent with its loaderId): the load of *this* document,
        # not the last load event of whatever the tab showed before
        self.call("Page.setLifecycleEventsEnabled", {"enabled": True})
        self.frame = self.call("Page.getFrameTree")["frameTree"]["frame"]["id"]
        self.width, self.height = width, height
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        self.mark = len(browser.events)

    def call(self, method, params=None, timeout=60):
        return self.b.call(method, params, self.session, timeout)

    def my_events(self, since: int | None = None):
        return [e for e in self.b.events[self.mark if since is None else since:] if e.get("sessionId") == self.session]

    def state(self) -> dict:
        """The tab's current document (see frame_state), from the events since the last navigate."""
        return frame_state(self.my_events(), self.frame)

    def navigate(self, url: str, timeout: float = 60, land_on: str | None = None) -> dict:
        """Open ``url`` and wait until a document has loaded (its own load event) and is not navigating
        away; with ``land_on``, until that document is ``land_on`` (a redirect's target). No script is
        run meanwhile. Returns the document's state (frame_state)."""
        self.mark = len(self.b.events)
        res = self.call("Page.navigate", {"url": url})
        if res.get("errorText"):
            raise CDPError(f"{url}: {res['errorText']}")
        self.frame = res.get("frameId", self.frame)
        deadline = time.time() + timeout
        while True:
            st = self.state()
            if st["loaded"] and not st["leaving"] and (land_on is None or same_url(st["url"], land_on)):
                return st
            if time.time() > deadline:
                where = (f"the tab is at {st['url']} (loaded: {st['loaded']}"
                         f"{', navigating to ' + st['leaving'] if st['leaving'] else ''})")
                goal = f"{land_on} did not load" if land_on else "no document loaded"
                raise CDPError(f"{url}: {goal} within {timeout:.0f} s; {where}")
            self.b.pump(0.1)

    def js(self, expr: str, timeout: float = 60):
        """Evaluate ``expr`` in the current document; refused (CDPError) while the document is not
        loaded or is navigating away, where a page script would run on a document being replaced."""
        self.b.drain()  # take in the events already sent
        st = self.state()
        if st["url"] is not None and (st["leaving"] or not st["loaded"]):
            what = f"navigating to {st['leaving']}" if st["leaving"] else "not loaded"
            raise CDPError(f"no script run on {st['url']}: the document is {what} (in {expr[:60]!r})")
        res = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": True},
                        timeout=timeout)
        if "exceptionDetails" in res:
            d = res["exceptionDetails"]
            desc = (d.get("exception") or {}).get("description", "").splitlines()[:1]
            raise CDPError(f"javascript failed: {d.get('text')}{': ' + desc[0] if desc else ''} in {expr[:80]!r}")
        return res["result"].get("value")

    def settle(self, quiet: float = 0.5, most: float = 3.0) -> None:
        """Collect this tab's events until none came for ``quiet`` s (at most ``most`` s): late console
        errors and requests, without a fixed wait."""
        deadline, last = time.time() + most, len(self.my_events())
        quiet_until = time.time() + quiet
        while time.time() < min(deadline, quiet_until):
            self.b.pump(0.1)
            n = len(self.my_events())
            if n != last:
                last, quiet_until = n, time.time() + quiet

    def wait_js(self, expr: str, timeout: float, every: float = 0.5):
        """Poll ``expr`` until it is truthy; returns its last value (falsy on timeout)."""
        deadline = time.time() + timeout
        while True:
            value = self.js(expr)
            if value or time.time() > deadline:
                return value
            self.b.pump(every)

    def screenshot(self, path: Path, scroll_to: str | None = None) -> bool:
        """A PNG of the window; with ``scroll_to``, of the window made tall enough for that element
        and scrolled to it (just below the theme's sticky header). False if the element is missing."""
        size = None
        if scroll_to:
            h = self.js(f"""(() => {{ const e = document.querySelector({json.dumps(scroll_to)});
                return e ? e.getBoundingClientRect().height : null; }})()""")
            if not h:
                return False
            size = (self.width, int(min(max(self.height, h + 160), 3200)))
            self.call("Emulation.setDeviceMetricsOverride",
                      {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": False})
            self.js(f"""(() => {{ document.querySelector({json.dumps(scroll_to)}).scrollIntoView({{block: 'start'}});
                window.scrollBy(0, -90); }})()""")
            self.b.pump(0.8)
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        if size:
            self.call("Emulation.setDeviceMetricsOverride",
                      {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False})
        return True

    def problems(self, allow_hosts=()) -> list[str]:
        """Console errors, uncaught exceptions, failed loads, and requests that left the machine."""
        out = []
        for e in self.my_events():
            m, p = e["method"], e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
                out.append(f"console.{p['type']}: {text[:300]}")
            elif m == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                out.append(f"uncaught exception: {(d.get('exception') or {}).get('description', d.get('text'))[:300]}")
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                entry = p["entry"]
                out.append(f"log error: {entry.get('text', '')[:200]} {entry.get('url', '')}")
            elif m == "Network.loadingFailed" and not p.get("canceled"):
                out.append(f"failed to load ({p.get('errorText')}): request {p.get('requestId')}")
            elif m == "Network.requestWillBeSent":
                url = p.get("request", {}).get("url", "")
                host = re.match(r"^(?:https?|wss?)://([^/:]+)", url)
                if host and host.group(1) not in ("127.0.0.1", "localhost", *allow_hosts):
                    out.append(f"network request: {url[:200]}")
        return sorted(set(out))

    def close(self) -> None:
        try:
            self.b.call("Target.closeTarget", {"targetId": self.target})
        except CDPError:
            pass


# ------------------------------------------------------------------------------------------- the book
PAGE_STATE = """(() => {
  const views = document.querySelectorAll('script[type="%s"]').length;
  const rendered = document.querySelectorAll('div.widget-subarea').length;
  const filled = Array.from(document.querySelectorAll('div.widget-subarea')).filter(d => d.querySelector('.lm-Widget')).length;
  const math = document.querySelectorAll('.math, div.math, span.math').length;
  const mjx = document.querySelectorAll('mjx-container').length;
  const imgs = Array.from(document.images);
  const broken = imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => (i.currentSrc || i.src).slice(0, 120));
  return {ready: document.readyState, views, rendered, filled, math, mjx, images: imgs.length, broken,
          title: document.title};
})()""" % VIEW_TAG


def page_name(path: Path, html: Path) -> str:
    return str(path.relative_to(html).with_suffix("")).replace("/", "_")


class _MetaRefresh(HTMLParser):
    """The content of the first <meta http-equiv="refresh"> of a document."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.content: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "meta" and self.content is None:
            a = {k.lower(): (v or "") for k, v in attrs}
            if a.get("http-equiv", "").strip().lower() == "refresh":
                self.content = a.get("content", "")

    handle_startendtag = handle_starttag


def meta_refresh(text: str) -> tuple[float, str] | None:
    """(delay in seconds, URL) of a page that redirects with <meta http-equiv="refresh"
    content="DELAY; url=URL">, as Jupyter Book's index.html does; None for any other page (including
    a refresh without a URL, which only reloads the page itself, and an unparsable content)."""
    parser = _MetaRefresh()
    parser.feed(text)
    parser.close()
    if parser.content is None:
        return None
    m = re.match(r"""\s*(\d+(?:\.\d*)?)?\s*[;,]?\s*(?:url\s*=\s*)?(?P<q>["']?)(?P<url>[^"']*)(?P=q)\s*$""",
                 parser.content, re.IGNORECASE)
    if not m or not m.group("url").strip():
        return None
    return float(m.group(1) or 0), m.group("url").strip()


def redirect_target(path: Path, html: Path) -> tuple[Path | None, str] | None:
    """For a redirect page ``path`` of the book in ``html``: (the file of the book it sends the reader
    to, or None when it points outside the book or to a missing file; the URL as written). None for a
    page that is not a redirect."""
    refresh = meta_refresh(path.read_text(errors="replace"))
    if refresh is None:
        return None
    url = refresh[1]
    parts = urllib.parse.urlsplit(url)
    if parts.scheme or parts.netloc:
        return None, url  # http://..., file://..., //host/...: not a page of this book
    if not parts.path:
        return None  # "0; url=#top" or "?x": the page reloads itself, it does not send the reader away
    target = (path.parent / urllib.parse.unquote(parts.path)).resolve()
    if target.is_dir():
        target = target / "index.html"
    if target == path.resolve():
        return None
    if not target.is_relative_to(html.resolve()) or not target.is_file():
        return None, url
    return target, url


def book_pages(html: Path, docnames: list[str] | None = None) -> tuple[list[Path], list[str]]:
    """The pages of the built book to open, and the problems found without a browser.

    The pages are every .html under ``html`` but the asset folders (``_static``, ``_sources``, ...,
    ``vendor``) and Sphinx's search.html and genindex.html, sorted: a chapter added to _toc.yml is
    opened once it is built, with no edit here. Problems: an entry of the toc (``docnames``, e.g.
    ``notebooks/12_play``) with no built page, and a redirect page whose target is not a page of the
    book. A redirect's target is always among the pages (so it is checked as a page itself)."""
    html = html.resolve()
    pages = {p for p in html.rglob("*.html")
             if not p.relative_to(html).parts[0].startswith(("_", "vendor"))
             and p.name not in ("search.html", "genindex.html")}
    problems = []
    for name in docnames or []:
        built = html / f"{name}.html"
        if not built.is_file():
            problems.append(f"{name}: listed in _toc.yml, but the book has no page {built.relative_to(html)}")
        else:
            pages.add(built)
    for page in sorted(pages):
        red = redirect_target(page, html)
        if red is None:
            continue
        target, url = red
        if target is None:
            problems.append(f"{page.relative_to(html)}: redirects to {url!r}, which is not a page of the book")
        else:
            pages.add(target)
    return sorted(pages), problems


def toc_docnames() -> list[str]:
    """The book's _toc.yml entries (scripts/build_book.py reads it the same way for the build)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_ssmlib_build_book", ROOT / "scripts" / "build_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.toc_docnames(ROOT / "_toc.yml")


def check_redirect(browser: Browser, html: Path, path: Path, target: Path, url: str) -> list[str]:
    """A redirect page: the browser must land on its target and load it. No script runs on the
    redirecting document; the target is checked as a page of its own."""
    rel = path.relative_to(html)
    page = Page(browser)
    t0 = time.time()
    try:
        delay = meta_refresh(path.read_text(errors="replace"))[0]
        page.navigate(path.as_uri(), timeout=30 + delay, land_on=target.as_uri())
        page.settle()
        bad = page.problems()
        status = "ok" if not bad else "FAIL"
        log(f"  {status:4} {str(rel):40s} {time.time() - t0:5.1f} s  redirect ({url!r}): landed on "
            f"{target.relative_to(html)} and loaded it (checked as its own page)")
        return [f"{rel}: {b}" for b in bad]
    except CDPError as e:
        log(f"  FAIL {rel}: redirect to {url}: {e}")
        return [f"{rel}: redirect to {url}: {e}"]
    finally:
        page.close()


SCROLL_BOTTOM = "window.scrollTo(0, (document.scrollingElement || document.documentElement).scrollHeight)"


def check_page(browser: Browser, html: Path, path: Path, shots: Path) -> list[str]:
    rel, name = path.relative_to(html), page_name(path, html)
    page = Page(browser)
    t0 = time.time()
    try:
        page.navigate(path.as_uri(), land_on=path.as_uri())
        # widgets are rendered asynchronously after load; MathJax typesets after load
        state = page.wait_js(f"(() => {{ const s = {PAGE_STATE}; return (s.ready === 'complete' && "
                             f"s.filled >= s.views && (s.math === 0 || s.mjx > 0)) ? s : null; }})()",
                             timeout=40) or page.js(PAGE_STATE)
        page.js(SCROLL_BOTTOM)  # lazy images load once scrolled to
        state = page.wait_js(f"(() => {{ const s = {PAGE_STATE}; return s.broken.length === 0 ? s : null; }})()",
                             timeout=10) or page.js(PAGE_STATE)
        page.js("window.scrollTo(0, 0)")
        page.settle()  # late console errors
        bad = []
        if state["views"] != state["rendered"] or state["filled"] != state["views"]:
            bad.append(f"{state['views']} saved widget views, {state['rendered']} rendered "
                       f"({state['filled']} with content)")
        if state["math"] and not state["mjx"]:
            bad.append("math on the page, but MathJax typeset nothing")
        if state["broken"]:
            bad.append(f"{len(state['broken'])} of {state['images']} images did not load: {state['broken'][:3]}")
        if name == "notebooks_11_explorer" and state["views"]:
            bad += check_play(page)
        bad += page.problems()
        page.screenshot(shots / f"book-{name}.png")
        if state["views"]:
            page.screenshot(shots / f"book-{name}-widget.png", scroll_to="div.widget-subarea")
        page.screenshot(shots / f"book-{name}-player.png", scroll_to="div.animation")  # to_jshtml
        status = "ok" if not bad else "FAIL"
        log(f"  {status:4} {str(rel):40s} {time.time() - t0:5.1f} s  images {state['images']}, widget views "
            f"{state['filled']}/{state['views']}, math {state['mjx']}/{state['math']}")
        return [f"{rel}: {b}" for b in bad]
    except CDPError as e:
        log(f"  FAIL {rel}: {e}")
        return [f"{rel}: {e}"]
    finally:
        page.close()


def check_book(browser: Browser, html: Path, shots: Path) -> list[str]:
    html = html.resolve()
    pages, failures = book_pages(html, toc_docnames())
    redirects = {p: redirect_target(p, html) for p in pages}
    n_red = sum(1 for r in redirects.values() if r)
    log(f"book: {len(pages)} pages ({n_red} of them redirects) from "
        f"{html.relative_to(ROOT) if html.is_relative_to(ROOT) else html}")
    for f in failures:
        log(f"  FAIL {f}")
    for path in pages:
        red = redirects[path]
        if red is None:
            failures += check_page(browser, html, path, shots)
        elif red[0] is not None:  # a redirect out of the book is already a failure
            failures += check_redirect(browser, html, path, *red)
    return failures


VISIBLE_STEP = """(() => { const box = document.querySelector('.ssm-explorer'); if (!box) return null;
  const imgs = Array.from(box.querySelectorAll('img')).filter(i => i.offsetParent !== null);
  return imgs.map(i => i.src).join(' '); })()"""


def check_play(page: Page) -> list[str]:
    """On the static explorer page, Play must step the timeline: the shown picture changes."""
    before = page.js(VISIBLE_STEP)
    if before is None:
        return ["the explorer (.ssm-explorer) is not on its page"]
    clicked = page.js("""(() => { const b = document.querySelector('.ssm-explorer .widget-play button');
        if (!b) return false; b.click(); return true; })()""")
    if not clicked:
        return ["the explorer has no Play button"]
    after = page.wait_js(f"(() => {{ const s = {VISIBLE_STEP}; return s !== {json.dumps(before)} ? s : null; }})()",
                         timeout=5, every=0.3)
    page.js("""(() => { const b = document.querySelector('.ssm-explorer .widget-play button'); if (b) b.click(); })()""")
    return [] if after else ["Play did not change the explorer's picture on the static page"]


# ----------------------------------------------------------------------------------------- JupyterLab
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


RUN_STATE = """(() => {
  const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
  if (!nb) return null;
  const prompts = Array.from(nb.querySelectorAll('.jp-CodeCell .jp-InputPrompt')).map(p => p.textContent.trim());
  const errors = Array.from(nb.querySelectorAll('.jp-OutputArea-output')).filter(o =>
      /Traceback|Error:/.test(o.textContent) && o.getAttribute('data-mime-type') === 'application/vnd.jupyter.stderr');
  return {cells: prompts.length, running: prompts.filter(p => p.includes('*')).length,
          done: prompts.filter(p => /\\[\\d+\\]/.test(p)).length, errors: errors.map(e => e.textContent.slice(0, 300)),
          widgets: document.querySelectorAll(__WIDGET__).length,
          runtime: ((nb.textContent.match(/chapter runtime: \\d+ s/) || [''])[0])};
})()"""


def check_lab(browser: Browser, shots: Path, notebook: Path, timeout: float) -> list[str]:
    """Run ``notebook`` in JupyterLab; drive its widget (``LAB_RUNS`` by the notebook's name); screenshots."""
    widget, interact, screens = LAB_RUNS.get(notebook.stem, (None, None, ()))
    run_state = RUN_STATE.replace("__WIDGET__", json.dumps(widget or ".ssm-none"))
    work = Path(tempfile.mkdtemp(prefix="ssmlib-lab-"))
    (work / "notebooks").mkdir()
    shutil.copy(notebook, work / "notebooks" / notebook.name)  # the tracked notebook stays output-free
    for sub in ("config", "runtime", "workspaces", "settings"):
        (work / sub).mkdir()
    # no "Would you like to get notified about official Jupyter news?" toast over the screenshots,
    # and no requests to jupyter.org for news or updates
    notif = work / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notif.parent.mkdir(parents=True)
    notif.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    token, port = secrets.token_hex(16), free_port()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(work / "config"), JUPYTER_RUNTIME_DIR=str(work / "runtime"),
               SSMLIB_PROFILE=os.environ.get("SSMLIB_PROFILE", "quick"), PYDEVD_DISABLE_FILE_VALIDATION="1")
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
           f"--LabApp.workspaces_dir={work / 'workspaces'}", f"--LabApp.user_settings_dir={work / 'settings'}",
           "--LabApp.expose_app_in_browser=True",
           "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    server_log = open(work / "server.log", "w")
    server = subprocess.Popen(cmd, cwd=work, env=env, stdout=server_log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    failures, page = [], None
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.time() > deadline:
                tail = (work / "server.log").read_text(errors="replace").strip().splitlines()[-3:]
                return [f"JupyterLab did not start on {base}: {' | '.join(tail)}"]
            time.sleep(0.5)
        log(f"lab: JupyterLab on {base} (token kept, temporary config in {work})")
        t0 = time.time()
        page = Page(browser, 1400, 1800)
        page.navigate(f"{base}/lab/tree/notebooks/{notebook.name}?token={token}", timeout=120)
        ready = page.wait_js("""(() => { const app = window.jupyterapp; const w = app && app.shell.currentWidget;
            return !!(w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel &&
                      w.sessionContext.session.kernel.connectionStatus === 'connected' &&
                      document.querySelectorAll('.jp-Notebook .jp-CodeCell').length > 0); })()""", timeout=120)
        if not ready:
            page.screenshot(shots / f"lab-{notebook.stem}-not-ready.png")
            return ["JupyterLab did not open the notebook with a connected kernel within 120 s"]
        log(f"  notebook open, kernel connected ({time.time() - t0:.1f} s); running all cells")
        t_run, state, shown = time.time(), None, 0.0
        page.js("window.jupyterapp.commands.execute('notebook:run-all-cells'); true")  # not awaited
        while time.time() - t_run < timeout:
            page.b.pump(2.0)
            state = page.js(run_state)
            if os.environ.get("BROWSER_TEST_DEBUG") or time.time() - shown > 15:
                log(f"  ... {time.time() - t_run:4.0f} s: {state}")
                shown = time.time()
            if state and state["cells"] and state["running"] == 0 and state["done"] == state["cells"]:
                break
            if state and state["errors"]:
                break
        log(f"  cells: {state and state['done']}/{state and state['cells']} run in {time.time() - t_run:.1f} s "
            f"({state and state['runtime']}), {widget} widgets shown: {state and state['widgets']}")
        if not state or state["done"] != state["cells"]:
            failures.append(f"JupyterLab: not every cell ran within {timeout:.0f} s ({state})")
        if state and state["errors"]:
            failures += [f"JupyterLab: a cell raised: {e}" for e in state["errors"][:3]]
        if widget and state and not state["widgets"]:
            failures.append(f"JupyterLab: the widget {widget} of {notebook.name} is not shown")
        elif interact:
            failures += interact(page)
        shots.mkdir(parents=True, exist_ok=True)
        # JupyterLab scrolls inside the notebook panel: bring a cell to the top, then shoot the window
        for suffix, selector, text in screens:
            name = f"lab-{notebook.stem}{suffix}.png"
            page.js(LAB_SCROLL % (json.dumps(selector), json.dumps(text)))
            page.b.pump(1.5)
            page.screenshot(shots / name)
        failures += [f"JupyterLab: {p}" for p in page.problems()]
    except CDPError as e:
        failures.append(f"JupyterLab: {e}")
    finally:
        if page is not None:
            page.close()
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        server_log.close()
        shutil.rmtree(work, ignore_errors=True)
    return failures


LAB_SCROLL = """(() => { const w = window.jupyterapp.shell.currentWidget, sel = %s, text = %s;
  const cells = w.content.widgets;
  const i = sel ? cells.findIndex(c => c.node.querySelector(sel))
                : cells.findIndex(c => c.node.textContent.includes(text));
  if (i < 0) return false;
  w.content.activeCellIndex = i;
  (sel ? cells[i].node.querySelector(sel) : cells[i].node).scrollIntoView({block: 'start'}); return true; })()"""

STATUS = """(() => { const box = document.querySelector('.ssm-explorer');
  const h = Array.from(box.querySelectorAll('.widget-html-content')).map(e => e.textContent).find(t => t.includes('rollouts computed'));
  return h || ''; })()"""


def lab_interact(page: Page) -> list[str]:
    """Click "repeat one action" in the explorer: the kernel recomputes and the status line says so."""
    page.js("""document.querySelector('.ssm-explorer').scrollIntoView({block: 'start'})""")
    before = page.js(STATUS)
    clicked = page.js("""(() => { const b = Array.from(document.querySelectorAll('.ssm-explorer button'))
        .find(b => b.textContent.trim() === 'repeat one action'); if (!b) return false; b.click(); return true; })()""")
    if not clicked:
        return ["JupyterLab: no 'repeat one action' button in the explorer"]
    after = page.wait_js(f"(() => {{ const s = {STATUS}; return s.includes('repeat NOOP') ? s : null; }})()", timeout=60)
    log(f"  explorer: status before: {before[:90]!r}; after 'repeat one action': {(after or '')[:90]!r}")
    return [] if after else ["JupyterLab: the explorer did not answer 'repeat one action' (kernel callback)"]


PLAY_STATUS = """(() => { const box = document.querySelector('.ssm-play'); if (!box) return '';
  const h = Array.from(box.querySelectorAll('.widget-html-content')).map(e => e.textContent)
      .find(t => t.includes(' env steps'));
  return h || ''; })()"""


def play_interact(page: Page) -> list[str]:
    """The play widget (chapter 12): click LEFT twice, then press ArrowUp and ArrowRight with the focus
    in the widget (real key events): after each, the kernel answers with one more press in the status
    line; the arrow keys must not move JupyterLab's active cell."""
    page.js("""document.querySelector('.ssm-play').scrollIntoView({block: 'start'})""")
    before = page.js(PLAY_STATUS)

    def wait_presses(n: int):
        return page.wait_js(f"(() => {{ const s = {PLAY_STATUS}; return s.includes(' {n} press') ? s : null; }})()",
                            timeout=60)

    for n in (1, 2):
        clicked = page.js("""(() => { const b = document.querySelector('.ssm-play button.ssm-act-LEFT');
            if (!b) return false; b.click(); b.focus(); return true; })()""")
        if not clicked:
            return ["JupyterLab: no LEFT button (.ssm-act-LEFT) in the play widget"]
        if not wait_presses(n):
            return [f"JupyterLab: the play widget did not answer the click {n} on LEFT (kernel callback)"]
    cell = page.js("window.jupyterapp.shell.currentWidget.content.activeCellIndex")
    failures, after = [], ""
    for n, (key, code) in enumerate((("ArrowUp", 38), ("ArrowRight", 39)), start=3):
        for kind in ("keyDown", "keyUp"):
            page.call("Input.dispatchKeyEvent", {"type": kind, "key": key, "code": key,
                                                 "windowsVirtualKeyCode": code, "nativeVirtualKeyCode": code})
        after = wait_presses(n)
        if not after:
            failures.append(f"JupyterLab: the key {key} in the play widget did not press an action")
            break
    if page.js("window.jupyterapp.shell.currentWidget.content.activeCellIndex") != cell:
        failures.append("JupyterLab: the arrow keys in the play widget also moved the notebook's active cell")
    log(f"  play: status before: {before[:70]!r}; after 2 clicks and 2 arrow keys: {(after or '')[:70]!r}")
    return failures


LAB_RUNS = {
    "11_explorer": (".ssm-explorer", lab_interact, (("", ".ssm-explorer", None), ("-timing", None, "10-step rollout"))),
    "12_play": (".ssm-play", play_interact, (("", ".ssm-play", None),)),
}
"""JupyterLab runs by notebook name: the widget that must be shown, how to drive it, and the screenshots
(file suffix, and the cell to scroll to: the one holding a selector, or else a text)."""
LAB_NOTEBOOKS = ("11_explorer", "12_play")


# ------------------------------------------------------------------------------------------------ main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--html", default=str(ROOT / "_build" / "html"))
    ap.add_argument("--screenshots", default=str(ROOT / "_build" / "screenshots"))
    ap.add_argument("--notebook", action="append",
                    help=f"a notebook to run in JupyterLab (repeatable; default: {', '.join(LAB_NOTEBOOKS)})")
    ap.add_argument("--no-book", action="store_true", help="skip the pages of the built book")
    ap.add_argument("--no-lab", action="store_true", help="skip the JupyterLab part")
    ap.add_argument("--install", action="store_true", help="apt-get install chromium if it is missing")
    ap.add_argument("--require", action="store_true", help="fail (exit 1) instead of skipping without chromium")
    ap.add_argument("--lab-timeout", type=float, default=300, help="seconds for the notebook's cells (default 300)")
    args = ap.parse_args(argv)

    html, shots = Path(args.html).resolve(), Path(args.screenshots).resolve()
    exe, note = find_chromium(args.install)
    if exe is None:
        log(f"browser-test: SKIPPED: {note}")
        return 1 if args.require else 0
    if not args.no_book and not (html / "index.html").exists():
        print(f"browser-test: FAILED: {html}/index.html not found; build the book first (make book)", file=sys.stderr)
        return 1
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
    shots.mkdir(parents=True, exist_ok=True)
    for old in shots.glob("*.png"):
        old.unlink()
    t0, failures = time.time(), []
    browser = Browser(exe)
    version = f"{version or '?'}; DevTools: {browser.version()}"
    log(f"browser-test: {version} ({exe}), headless; screenshots in {shots}")
    try:
        if not args.no_book:
            failures += check_book(browser, html, shots)
        if not args.no_lab:
            for nb in args.notebook or [ROOT / "notebooks" / f"{n}.ipynb" for n in LAB_NOTEBOOKS]:
                failures += check_lab(browser, shots, Path(nb).resolve(), args.lab_timeout)
    finally:
        browser.close()
    n_shots = len(list(shots.glob("*.png")))
    if failures:
        print(f"browser-test: FAILED ({len(failures)}), {time.time() - t0:.0f} s, with {version}:", file=sys.stderr)
        for f in failures:
            print(f"  {f}", file=sys.stderr)
        return 1
    log(f"browser-test: passed in {time.time() - t0:.0f} s with {version}; {n_shots} screenshots in {shots}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
