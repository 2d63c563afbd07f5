"""What the browser tests share: an API client for seeding jobs, and ways to find and wait on
things in the dashboard. Waiting is always on something the page shows, never on a clock."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Locator, Page, expect

from tests.servers import ServerProcess


def api(server: ServerProcess) -> httpx.Client:
    # Long enough for a long-poll (`GET /jobs/next?wait=`) that the tests use to await a job.
    return httpx.Client(base_url=server.url, timeout=30)


def submit(client: httpx.Client, job_id: str, **fields: object) -> None:
    response = client.post("/jobs/submit", json={"jobId": job_id, **fields})
    assert response.status_code == 201, response.text


def row(page: Page, job_id: str) -> Locator:
    return page.locator("#rows tr", has=page.get_by_text(job_id, exact=True))


def row_ids(page: Page) -> list[str]:
    return page.locator("#rows tr .col-id code").all_text_contents()


def wait_for_refresh(page: Page, times: int = 1) -> None:
    """Returns once the page has completed ``times`` more refreshes."""
    for _ in range(times):
        before = page.locator("#live-text").text_content()
        expect(page.locator("#live-text")).not_to_have_text(before or "")


def open_dashboard(page: Page, server: ServerProcess) -> None:
    page.goto(server.url)
    expect(page.locator("#live-text")).to_have_text(re.compile(r"^live"))
