"""axe-core (bundled by axe-playwright-python; nothing fetched) finds nothing in every state the
operator meets: empty, full with a failed job's errors open, the submit form, the bulk
confirmation, disconnected, in light and dark, on a desktop and a phone."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.dashboard.pages import api, open_dashboard, row, submit
from tests.servers import ServerProcess

axe_playwright = pytest.importorskip("axe_playwright_python.sync_playwright")

pytestmark = pytest.mark.browser


def violations(page: Page) -> list[str]:
    results: Any = axe_playwright.Axe().run(page)
    return [
        f"{v['id']}: {[node['target'] for node in v['nodes']]}"
        for v in results.response["violations"]
    ]


def seed(server: ServerProcess) -> None:
    with api(server) as client:
        submit(
            client, "broken\u202eexe.txt", description="\u202eRLO in a description", maxAttempts=1
        )
        job = client.get("/jobs/next").json()
        body = {
            "jobId": job["jobId"],
            "leaseId": job["leaseId"],
            "status": "failed",
            "error": "Traceback (most recent call last):\n  ValueError: boom",
        }
        assert client.post("/jobs/complete", json=body).is_success
        for n in range(5):
            submit(client, f"job-{n}", queue="mail" if n % 2 else "default")
        client.get("/jobs/next")


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [1280, 390])
def test_axe_finds_nothing_in_any_state(
    page: Page, server: ServerProcess, scheme: str, width: int
) -> None:
    page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
    page.set_viewport_size({"width": width, "height": 860})
    open_dashboard(page, server)
    expect(page.locator("#empty")).to_be_visible()
    assert violations(page) == [], "empty"
    seed(server)
    expect(page.locator("#rows tr")).to_have_count(6)
    row(page, "broken\u202eexe.txt").click()
    expect(page.locator("#detail-errors li")).to_have_count(1)
    assert violations(page) == [], "a failed job open"
    page.locator("#detail-close").click()
    page.get_by_role("button", name="Submit a job").click()
    assert violations(page) == [], "the submit form"
    if width > 720:
        page.locator("#select-page").check()
        assert violations(page) == [], "rows ticked"
        page.locator("#all-cancel").click()
        expect(page.locator("#confirm")).to_be_visible()
        assert violations(page) == [], "the confirmation"
        page.locator("#confirm-no").click()
    server.stop()
    expect(page.locator("#live-text")).to_have_text("disconnected")
    assert violations(page) == [], "disconnected"
    server.start()
    expect(page.locator("#live-text")).to_have_text(re.compile("^live"))
