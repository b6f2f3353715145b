#!/usr/bin/env python
"""The book as a reader sees it: every page of _build/html, and the explorer notebook in JupyterLab,
in a real browser (headless chromium driven through the DevTools protocol).

    .venv/bin/python scripts/browser_test.py [--html _build/html] [--screenshots _build/screenshots]
                                             [--no-lab] [--require] [--install]

1. Book: every page of the built book is opened from file:// with the network cut off. A page passes
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

chromium: Debian's `chromium` (or `chromium-browser`) on PATH. If it is missing, --install tries
`apt-get install chromium` (as root, with apt-get); otherwise the test prints one SKIPPED line and
exits 0 (exit 1 instead with --require). Needs the built book (`make book`).
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
import urllib.request
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


class Page:
    """One tab: navigation, JavaScript, screenshots; collects its console errors and its requests."""

    def __init__(self, browser: Browser, width: int = 1280, height: int = 900):
        self.b = browser
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.target = target
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")
        self.width, self.height = width, height
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        self.mark = len(browser.events)

    def call(self, method, params=None, timeout=60):
        return self.b.call(method, params, self.session, timeout)

    def my_events(self, since: int | None = None):
        return [e for e in self.b.events[self.mark if since is None else since:] if e.get("sessionId") == self.session]

    def navigate(self, url: str, timeout: float = 60) -> None:
        self.mark = len(self.b.events)
        res = self.call("Page.navigate", {"url": url})
        if res.get("errorText"):
            raise CDPError(f"{url}: {res['errorText']}")
        deadline = time.time() + timeout
        while not any(e["method"] == "Page.loadEventFired" for e in self.my_events()):
            if time.time() > deadline:
                raise CDPError(f"{url}: no load event within {timeout:.0f} s")
            self.b.pump(0.2)

    def js(self, expr: str, timeout: float = 60):
        res = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": True},
                        timeout=timeout)
        if "exceptionDetails" in res:
            raise CDPError(f"javascript failed: {res['exceptionDetails'].get('text')} in {expr[:80]!r}")
        return res["result"].get("value")

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


def check_book(browser: Browser, html: Path, shots: Path) -> list[str]:
    pages = sorted(p for p in html.rglob("*.html") if not p.relative_to(html).parts[0].startswith(("_", "vendor"))
                   and p.name not in ("search.html", "genindex.html"))
    failures = []
    log(f"book: {len(pages)} pages from {html.relative_to(ROOT) if html.is_relative_to(ROOT) else html}")
    for path in pages:
        rel, name = path.relative_to(html), page_name(path, html)
        page = Page(browser)
        t0 = time.time()
        try:
            page.navigate(path.as_uri())
            # widgets are rendered asynchronously after load; MathJax typesets after load
            state = page.wait_js(f"(() => {{ const s = {PAGE_STATE}; return (s.filled >= s.views && "
                                 f"(s.math === 0 || s.mjx > 0)) ? s : null; }})()", timeout=40) or page.js(PAGE_STATE)
            page.js("window.scrollTo(0, document.body.scrollHeight)")
            page.b.pump(0.5)
            state = page.wait_js(f"(() => {{ const s = {PAGE_STATE}; return s.broken.length === 0 ? s : null; }})()",
                                 timeout=10) or page.js(PAGE_STATE)
            page.js("window.scrollTo(0, 0)")
            page.b.pump(1.0)  # late console errors
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
            failures += [f"{rel}: {b}" for b in bad]
        except CDPError as e:
            failures.append(f"{rel}: {e}")
            log(f"  FAIL {rel}: {e}")
        finally:
            page.close()
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
          explorer: document.querySelectorAll('.ssm-explorer').length,
          runtime: ((nb.textContent.match(/chapter runtime: \\d+ s/) || [''])[0])};
})()"""


def check_lab(browser: Browser, shots: Path, notebook: Path, timeout: float) -> list[str]:
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
            page.screenshot(shots / "lab-11_explorer-not-ready.png")
            return ["JupyterLab did not open the notebook with a connected kernel within 120 s"]
        log(f"  notebook open, kernel connected ({time.time() - t0:.1f} s); running all cells")
        t_run, state, shown = time.time(), None, 0.0
        page.js("window.jupyterapp.commands.execute('notebook:run-all-cells'); true")  # not awaited
        while time.time() - t_run < timeout:
            page.b.pump(2.0)
            state = page.js(RUN_STATE)
            if os.environ.get("BROWSER_TEST_DEBUG") or time.time() - shown > 15:
                log(f"  ... {time.time() - t_run:4.0f} s: {state}")
                shown = time.time()
            if state and state["cells"] and state["running"] == 0 and state["done"] == state["cells"]:
                break
            if state and state["errors"]:
                break
        log(f"  cells: {state and state['done']}/{state and state['cells']} run in {time.time() - t_run:.1f} s "
            f"({state and state['runtime']}), explorer widgets shown: {state and state['explorer']}")
        if not state or state["done"] != state["cells"]:
            failures.append(f"JupyterLab: not every cell ran within {timeout:.0f} s ({state})")
        if state and state["errors"]:
            failures += [f"JupyterLab: a cell raised: {e}" for e in state["errors"][:3]]
        if state and not state["explorer"]:
            failures.append("JupyterLab: the explorer widget is not shown")
        else:
            failures += lab_interact(page)
        shots.mkdir(parents=True, exist_ok=True)
        # JupyterLab scrolls inside the notebook panel: bring a cell to the top, then shoot the window
        for name, selector in (("lab-11_explorer.png", ".ssm-explorer"), ("lab-11_explorer-timing.png", None)):
            page.js(LAB_SCROLL % json.dumps(selector))
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


LAB_SCROLL = """(() => { const w = window.jupyterapp.shell.currentWidget, sel = %s;
  const cells = w.content.widgets;
  const i = sel ? cells.findIndex(c => c.node.querySelector(sel))
                : cells.findIndex(c => /10-step rollout/.test(c.node.textContent));
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


# ------------------------------------------------------------------------------------------------ main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--html", default=str(ROOT / "_build" / "html"))
    ap.add_argument("--screenshots", default=str(ROOT / "_build" / "screenshots"))
    ap.add_argument("--notebook", default=str(ROOT / "notebooks" / "11_explorer.ipynb"))
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
    log(f"browser-test: {version} ({exe}), headless; screenshots in {shots}")
    shots.mkdir(parents=True, exist_ok=True)
    for old in shots.glob("*.png"):
        old.unlink()
    t0, failures = time.time(), []
    browser = Browser(exe)
    try:
        if not args.no_book:
            failures += check_book(browser, html, shots)
        if not args.no_lab:
            failures += check_lab(browser, shots, Path(args.notebook).resolve(), args.lab_timeout)
    finally:
        browser.close()
    n_shots = len(list(shots.glob("*.png")))
    if failures:
        print(f"browser-test: FAILED ({len(failures)}), {time.time() - t0:.0f} s:", file=sys.stderr)
        for f in failures:
            print(f"  {f}", file=sys.stderr)
        return 1
    log(f"browser-test: passed in {time.time() - t0:.0f} s; {n_shots} screenshots in {shots}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
