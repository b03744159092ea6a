"""The Neo4j Browser that the local Neo4j serves applies rootgraph's style and opens its
guide on connect, with only Neo4j running (no `rootgraph serve`).

Drives Debian's headless Chromium through the DevTools protocol (a websocket, via
``websocket-client``): log in on the Browser's own connect form, wait for the guide and
the style, run a ready query and read the colours and captions the Browser drew.
Skipped when Chromium is absent, except in CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from rootgraph.graph.browser import GUIDE_FILE, parse_grass, post_connect_cmd, ready_queries
from rootgraph.graph.local import LocalNeo4j

ROOT = Path(__file__).resolve().parents[1]
GRASS = parse_grass((ROOT / "graph" / "browser.grass").read_text())


def test_readme_shows_exactly_the_ready_queries_of_the_guide() -> None:
    """One source: the README's cypher block is graph/browser_queries.cypher verbatim."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```cypher\n(.*?)```", readme, re.S).group(1)
    assert block == (ROOT / "graph" / "browser_queries.cypher").read_text()
    assert len(ready_queries()) == 7


def test_grass_becomes_the_json_the_browser_parses_and_carries_no_semicolon() -> None:
    grass = """/* a comment { with braces } */
node { diameter: 50px; caption: "{id}"; }
node.Service { color: #4C8EDA; caption: "{name}"; }
relationship.CALLS { caption: "<type>"; shaft-width: 2px }"""
    assert parse_grass(grass) == {
        "node": {"diameter": "50px", "caption": "{id}"},
        "node.Service": {"color": "#4C8EDA", "caption": "{name}"},
        "relationship.CALLS": {"caption": "<type>", "shaft-width": "2px"},
    }
    cmd = post_connect_cmd("http://127.0.0.1:7474/browser/" + GUIDE_FILE)
    style, play = cmd.split(";")  # the Browser's own split: exactly two commands
    assert json.loads(style.removeprefix("style ")) == GRASS
    assert play == f"play http://127.0.0.1:7474/browser/{GUIDE_FILE}"


def test_compose_neo4j_gets_the_same_style_on_connect() -> None:
    """docker-compose.yml carries the style command the local server gets (no guide:
    the image serves its own Browser jar)."""
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = compose["services"]["neo4j"]["environment"]
    assert env["NEO4J_browser_post__connect__cmd"] == post_connect_cmd(None)
    # The image's entrypoint copies the value through the shell and sed: none of the
    # characters those would mangle may be in it.
    assert not set("|&\\$`'!") & set(env["NEO4J_browser_post__connect__cmd"])


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed; .ci/run installs it (apt-get install chromium)")
    pytest.skip("chromium is not installed (apt-get install chromium); CI runs this test")


def _wait(what: str, probe: Callable[[], Any], timeout_s: float = 30.0) -> Any:
    """Poll ``probe`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.1)


def _steady(probe: Callable[[], Any]) -> Callable[[], bool]:
    """A probe that turns true once ``probe()`` answers the same twice running."""
    seen: list[Any] = []

    def check() -> bool:
        seen.append(probe())
        return len(seen) > 1 and seen[-1] == seen[-2]

    return check


class _Page:
    """The one page of a headless Chromium, over the DevTools protocol."""

    def __init__(self, ws_url: str) -> None:
        import websocket

        self._ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self._ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict:
        msg_id = next(self._ids)
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:  # events arrive interleaved with answers; skip them
            msg = json.loads(self._ws.recv())
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg["result"]

    def js(self, expression: str) -> Any:
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                        awaitPromise=True)
        if "exceptionDetails" in res:
            raise AssertionError(f"page script failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    def type_into(self, selector: str, text: str) -> None:
        assert self.js(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                       " if (!e) return false; e.focus(); return true; })()"), selector
        self.call("Input.insertText", text=text)

    def close(self) -> None:
        self._ws.close()


@pytest.fixture()
def page(tmp_path: Path) -> Iterator[_Page]:
    exe = _chromium()
    profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp_path)
    proc = subprocess.Popen(
        [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,900", f"--user-data-dir={profile}", "--remote-debugging-port=0",
         "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        # Chromium prints the port it picked: "DevTools listening on ws://127.0.0.1:<port>/…"
        line = _wait("Chromium's DevTools port",
                     lambda: next((ln for ln in proc.stderr if "DevTools listening" in ln), None))
        port = re.search(r"ws://127\.0\.0\.1:(\d+)/", line).group(1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            target = next(t for t in json.load(r) if t["type"] == "page")
        p = _Page(target["webSocketDebuggerUrl"])
        yield p
        p.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _frames_text(page: _Page) -> str:
    return page.js("Array.from(document.querySelectorAll('[data-testid=frame]'))"
                   ".map(f => f.innerText).join('\\n----\\n')") or ""


@pytest.mark.neo4j
def test_browser_applies_the_style_and_opens_the_guide_on_connect(
    neo4j_driver, neo4j_settings, store, page: _Page, tmp_path: Path  # noqa: ANN001
) -> None:
    local = LocalNeo4j(neo4j_settings)
    with neo4j_driver.session() as s:
        cfg = {r["name"]: r["value"] for r in s.run("CALL dbms.clientConfig()")}
        s.run(
            "CREATE (:Entity:Service {id: $fe, name: 'front-end'})-[:CALLS {calls: 7}]->"
            "(:Entity:Service {id: $orders, name: 'orders'})-[:CALLS {calls: 5}]->"
            "(:Entity:Database {id: $db, name: 'mongodb'})",
            fe="sock-shop/front-end", orders="sock-shop/orders", db="db:mongodb/orders",
        ).consume()
    assert cfg.get("browser.post_connect_cmd") == post_connect_cmd(local.guide_url), (
        "the running test Neo4j was started with another neo4j.conf; stop it so the "
        "session restarts it"
    )

    page.call("Page.enable")
    page.call("Page.navigate", url=f"{local.browser_url}?dbms=bolt://neo4j@127.0.0.1:"
                                   f"{neo4j_settings.local_bolt_port}&preselectAuthMethod=NATIVE")
    _wait("the connect form", lambda: page.js("!!document.querySelector('[data-testid=password]')"))
    page.type_into("[data-testid=password]", local.password().value)
    page.js("document.querySelector('[data-testid=connect]').click()")

    # post_connect_cmd ran: the guide frame shows its first slide...
    guide = _wait("the rootgraph guide frame",
                  lambda: "rootgraph: the graph behind the incidents" in _frames_text(page))
    assert guide
    text = _frames_text(page)
    for q in ready_queries():
        assert q.title in text, f"guide does not list {q.title!r}"
    # ...and every slide after it holds one ready query, runnable, as written.
    shown = []
    for _ in ready_queries():
        page.js("document.querySelector('[data-testid=nextSlide]').click()")
        shown.append(_wait("the next guide slide", lambda: page.js(
            "(() => { const p = document.querySelector('[data-testid=carousel] pre.runnable');"
            f" return p && !{json.dumps(shown)}.includes(p.textContent) ? p.textContent : null;"
            " })()")))
    assert shown == [q.cypher for q in ready_queries()]

    # The style is the Browser's current one: run a ready query (clicked from the guide).
    depends_on = next(q for q in ready_queries() if "depend on" in q.title)
    current = "document.querySelector('[data-testid=carousel] pre.runnable')?.textContent"
    for _ in ready_queries():  # back through the slides to that query's
        if page.js(current) == depends_on.cypher:
            break
        before = page.js(current)
        page.js("document.querySelector('[data-testid=previousSlide]').click()")
        _wait("the previous guide slide", lambda: page.js(current) != before)
    page.js("document.querySelector('[data-testid=carousel] pre.runnable').click()")
    _wait("the clicked query in the editor",
          lambda: "sock-shop/front-end" in (page.js(
              "document.querySelector('[data-testid=activeEditor]').innerText") or ""))
    page.js("document.querySelector('[data-testid=editor-Run]').click()")

    nodes = _wait("three drawn nodes", lambda: (lambda n: n if len(n) == 3 else None)(page.js(
        "Array.from(document.querySelectorAll('svg g.node')).map(g => ({"
        " fill: g.querySelector('circle.b-outline')?.getAttribute('fill'),"
        " r: g.querySelector('circle.b-outline')?.getAttribute('r'),"
        " caption: Array.from(g.querySelectorAll('text')).map(t => t.textContent).join(' ')}))")))
    by_caption = {n["caption"].strip(): n for n in nodes}
    assert set(by_caption) == {"front-end", "orders", "mongodb"}, nodes
    assert by_caption["front-end"]["fill"].upper() == GRASS["node.Service"]["color"]
    assert by_caption["mongodb"]["fill"].upper() == GRASS["node.Database"]["color"]
    assert float(by_caption["mongodb"]["r"]) == float(GRASS["node.Database"]["diameter"][:-2]) / 2

    # A picture once the force layout has settled (positions unchanged between polls).
    page.js("document.querySelector('[data-testid=frame]').scrollIntoView()")
    positions = "Array.from(document.querySelectorAll('svg g.node')).map(g => g.getAttribute('transform')).join()"
    _wait("the graph layout to settle", _steady(lambda: page.js(positions)))
    shot = base64.b64decode(page.call("Page.captureScreenshot", format="png")["data"])
    (tmp_path / "browser-style-applied.png").write_bytes(shot)
    if os.environ.get("ROOTGRAPH_BROWSER_SCREENSHOT"):
        Path(os.environ["ROOTGRAPH_BROWSER_SCREENSHOT"]).write_bytes(shot)
