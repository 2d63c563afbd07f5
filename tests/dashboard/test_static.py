"""Checks of the dashboard's files that need no browser: every module is served as a script under
the CSP, every element the scripts look up exists, and no script has a way to write HTML."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from simplequeue.server.app import create_app
from simplequeue.server.dashboard import CSP
from simplequeue.store import MemoryStore
from tests.servers import APP_URL

DASHBOARD = Path(__file__).parents[2] / "src" / "simplequeue" / "server" / "dashboard"
STATIC = DASHBOARD / "static"
SCRIPTS = sorted(STATIC.glob("*.js"))
IMPORT = re.compile(r'^import [^;]*? from "\./([\w-]+\.js)";$', re.MULTILINE)
LOOKUP = re.compile(r'(?:\$|getElementById)\(\s*"([\w-]+)"\s*\)')
# Everything in the DOM API that parses a string as HTML or script.
HTML_SINKS = re.compile(
    r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|createContextualFragment"
    r"|setHTML|parseFromString|\beval\(|new Function\("
)


@pytest.fixture
def client() -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(store=MemoryStore()), base_url=APP_URL) as test_client:
        yield test_client


def source(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_every_module_is_imported_and_served_as_a_script_under_the_csp(
    client: TestClient[Litestar],
) -> None:
    page = client.get("/")
    entry = re.findall(r'<script src="/static/([\w-]+\.js)" type="module">', page.text)
    assert entry == ["app.js"]
    imported = {name for script in SCRIPTS for name in IMPORT.findall(source(script))}
    # Every file is reachable from app.js, and every import names a file that exists.
    assert imported | {"app.js"} == {script.name for script in SCRIPTS}
    for script in SCRIPTS:
        response = client.get(f"/static/{script.name}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/javascript")
        assert response.headers["content-security-policy"] == CSP
        assert response.text == source(script)


def test_every_element_a_script_looks_up_is_in_the_page() -> None:
    html = source(DASHBOARD / "index.html")
    ids = set(re.findall(r'\bid="([\w-]+)"', html))
    looked_up = {name for script in SCRIPTS for name in LOOKUP.findall(source(script))}
    # The lease, result and errors of the detail panel are among them.
    assert {"detail-lease", "detail-result", "detail-errors", "detail-attempts"} <= looked_up
    assert looked_up - ids == set()


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_no_script_can_write_html(script: Path) -> None:
    assert HTML_SINKS.findall(source(script)) == []


def test_no_script_reads_a_lease_id() -> None:
    # The API never puts leaseId in what the page reads; the page never looks for one either.
    for script in SCRIPTS:
        assert re.findall(r"\.leaseId|\[\s*[\"']leaseId[\"']\s*\]", source(script)) == []


def test_job_text_is_bidi_isolated() -> None:
    css = source(STATIC / "style.css")
    for selector in (".col-id code", ".col-desc", "#detail-id", "#detail-description"):
        assert re.search(
            rf"(^|[,\s]){re.escape(selector)}[^{{]*\{{[^}}]*unicode-bidi: isolate", css, re.M
        )
    assert re.search(r"\.data, \.error-text \{ unicode-bidi: plaintext; \}", css)
