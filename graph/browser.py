"""Neo4j Browser assets: rootgraph's style applied on connect, and a guide of the ready queries.

Read from the Browser that ``graph/local.py`` serves (``neo4j-browser`` 5.24.0, its
``app-*.js``) and the settings Neo4j 5.26 declares (``ServerSettings``):

* ``browser.post_connect_cmd`` (string) is run by the Browser after every successful
  connect: it splits the value on ``;`` outside quotes and backticks and dispatches each
  part as ``:<part>`` (``extractPostConnectCommandsFromServerConfig``).
* ``:style <text>`` applies ``text`` as the stylesheet: ``JSON.parse`` first, the GraSS
  parser second. GraSS separates properties with ``;``, which the split above would cut,
  so the stylesheet travels as JSON (the same ``{selector: {property: value}}`` object
  the GraSS parser builds). No server is needed for the style.
* ``:play <http(s) url>`` fetches an HTML guide, only from a host listed in
  ``browser.remote_content_hostname_whitelist`` (default ``guides.neo4j.com,localhost``).
* Neo4j serves ``/browser/`` from the first ``browser/`` folder on its classpath and has
  no other static route (an unmanaged extension would be Java code for one file). So the
  guide goes into a copy of the Browser jar, with ``browser/rootgraph-guide.html`` added,
  that ``graph/local.py`` puts on the classpath ahead of ``lib/``: the Browser then reads
  the guide from the very server that serves it, with only Neo4j running.

The stylesheet (``browser.grass``) and the ready queries (``browser_queries.cypher``) are
the single sources: the README shows the same queries (``tests/test_browser.py`` checks).
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = [
    "GUIDE_FILE",
    "ReadyQuery",
    "browser_jar_with_guide",
    "guide_html",
    "parse_grass",
    "post_connect_cmd",
    "ready_queries",
    "style_command",
]

#: Where the guide sits inside the Browser's ``browser/`` folder (so at ``/browser/<it>``).
GUIDE_FILE = "rootgraph-guide.html"


@dataclass(frozen=True)
class ReadyQuery:
    title: str
    cypher: str


def _asset(name: str) -> str:
    return resources.files("rootgraph.graph").joinpath(name).read_text(encoding="utf-8")


def parse_grass(text: str) -> dict[str, dict[str, str]]:
    """GraSS → ``{selector: {property: value}}``, as the Browser's own parser reads it
    (quotes around a value are dropped: ``caption: "{name}"`` becomes ``{name}``)."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    rules: dict[str, dict[str, str]] = {}
    for selector, body in re.findall(r"([^{}]+)\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}", text):
        props: dict[str, str] = {}
        for decl in body.split(";"):
            if ":" not in decl:
                continue
            key, value = decl.split(":", 1)
            props[key.strip()] = value.strip().strip("\"'")
        rules[selector.strip()] = props
    return rules


def style_command(grass: str | None = None) -> str:
    """The ``style {…}`` Browser command that applies ``grass`` (default: browser.grass)."""
    rules = parse_grass(_asset("browser.grass") if grass is None else grass)
    body = json.dumps(rules, separators=(",", ":"))
    # A ';' would split the command in post_connect_cmd; '#' and '$' mean something to
    # some config readers. Colours are written as #RRGGBB, which Neo4j's reader keeps.
    if ";" in body:
        raise ValueError("browser.grass: a value contains ';', which post_connect_cmd cannot carry")
    return "style " + body


def ready_queries() -> list[ReadyQuery]:
    """The README's ready queries: blocks separated by a blank line, each opened by a
    ``// title`` comment line."""
    out = []
    for block in re.split(r"\n\s*\n", _asset("browser_queries.cypher").strip()):
        first, _, cypher = block.strip().partition("\n")
        if not first.startswith("//") or not cypher.strip():
            raise ValueError(f"browser_queries.cypher: each block needs a // title line, got {block!r}")
        out.append(ReadyQuery(first[2:].strip(), cypher.strip()))
    return out


def guide_html(queries: list[ReadyQuery] | None = None) -> str:
    """A Neo4j Browser guide (``<article class="guide">`` of ``<slide>``s) with one slide
    per ready query; a click on a query puts it into the editor."""
    queries = ready_queries() if queries is None else queries
    slides = [
        "<slide class=\"row-fluid\">\n  <div class=\"col-sm-12\">\n"
        "    <h3>rootgraph: the graph behind the incidents</h3>\n"
        "    <p class=\"lead\">Ready queries over the graph rootgraph keeps. The ids are the"
        " demo's (<code>make demo</code>); click a query to put it in the editor.</p>\n"
        "    <ol>\n"
        + "".join(f"      <li>{html.escape(q.title)}</li>\n" for q in queries)
        + "    </ol>\n  </div>\n</slide>\n"
    ]
    for q in queries:
        slides.append(
            "<slide class=\"row-fluid\">\n  <div class=\"col-sm-12\">\n"
            f"    <h3>{html.escape(q.title)}</h3>\n"
            "    <figure>\n      <pre mode=\"cypher\" class=\"pre-scrollable code runnable\">"
            f"{html.escape(q.cypher)}</pre>\n    </figure>\n  </div>\n</slide>\n"
        )
    return (
        "<article class=\"guide\">\n<carousel class=\"deck container-fluid\">\n"
        + "".join(slides)
        + "</carousel>\n</article>\n"
    )


def post_connect_cmd(guide_url: str | None) -> str:
    """The ``browser.post_connect_cmd`` value: apply the style, then open the guide."""
    return style_command() + (f";play {guide_url}" if guide_url else "")


def browser_jar_with_guide(browser_jar: Path, out_dir: Path) -> Path:
    """A copy of ``browser_jar`` with the guide added as ``browser/<GUIDE_FILE>``.

    Named by a hash of the original jar's name and the guide, so a changed guide or
    Browser makes a new jar and an unchanged one is reused (written once, atomically).
    ``out_dir`` belongs to one stopped instance, so older copies in it can go.
    """
    guide = guide_html().encode("utf-8")
    digest = hashlib.sha256(browser_jar.name.encode() + b"\0" + guide).hexdigest()[:16]
    target = out_dir / f"{browser_jar.stem}-rootgraph-{digest}.jar"
    if target.exists():
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    with zipfile.ZipFile(browser_jar) as src, zipfile.ZipFile(tmp, "w") as dst:
        for item in src.infolist():
            if item.filename != f"browser/{GUIDE_FILE}":
                dst.writestr(item, src.read(item.filename), compress_type=item.compress_type)
        dst.writestr(f"browser/{GUIDE_FILE}", guide, compress_type=zipfile.ZIP_DEFLATED)
    for old in out_dir.glob(f"{browser_jar.stem}-rootgraph-*.jar"):
        old.unlink(missing_ok=True)
    tmp.rename(target)
    return target
