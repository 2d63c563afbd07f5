"""The dashboard's view of workers (CONTRACT §7): attempts of maxAttempts, a running job's lease
counting down, a succeeded job's result, and the error of every attempt that ended badly.

Every job is put in its state through the real API of a real `sq serve` (submit, next with a
lease, heartbeat, complete with a result or an error, a lease left to expire); the page is then
expected to show what the API says, as text.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.dashboard.pages import api, open_dashboard, row, submit
from tests.servers import ServerProcess

pytestmark = pytest.mark.browser

HOSTILE_HTML = "<img src=x onerror=window.__pwned=1>\nTraceback: </pre><b>bold</b>"
# U+202E RIGHT-TO-LEFT OVERRIDE: shown raw, it would flip the text after it.
HOSTILE_BIDI = "\u202eexe.tset \u2067isolate\u2069 and an LRO \u202dsomething"
RESULT = {"html": "<img src=x onerror=window.__pwned=1>", "rlo": "\u202eabc", "rows": [1, 2.5]}
# Long enough for a lease to lapse and the server to take the job back (within about a second),
# or for a retry's backoff (1 s by default, with jitter) to pass: this only bounds the wait.
WAIT = 15


def take(client: httpx.Client, job_id: str, lease: int, wait: int = 0) -> dict[str, Any]:
    """``GET /jobs/next`` and check it handed out ``job_id``, with a lease."""
    response = client.get("/jobs/next", params={"lease": lease, "wait": wait})
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    assert job["jobId"] == job_id
    assert job["leaseId"]
    return job


def complete(client: httpx.Client, job: dict[str, Any], **fields: object) -> dict[str, Any]:
    body = {"jobId": job["jobId"], "leaseId": job["leaseId"], **fields}
    response = client.post("/jobs/complete", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def lease_ids_absent(page: Page, lease_ids: list[str]) -> None:
    html = page.content()
    shown = page.evaluate("document.body.innerText")
    for lease_id in lease_ids:
        assert lease_id not in html
        assert lease_id not in shown


def test_attempts_of_max_and_a_running_jobs_lease_counting_down(
    page: Page, server: ServerProcess
) -> None:
    with api(server) as client:
        submit(client, "done")
        complete(client, take(client, "done", lease=600), status="succeeded")
        submit(client, "leased", maxAttempts=5)
        leased = take(client, "leased", lease=600)
        submit(client, "waiting", maxAttempts=7)

        open_dashboard(page, server)
        for job_id, attempts in [("done", "1/3"), ("leased", "1/5"), ("waiting", "0/7")]:
            expect(row(page, job_id).locator(".col-attempts")).to_have_text(attempts)
        expect(row(page, "waiting").locator(".col-attempts")).to_have_attribute(
            "title", "0 of 7 attempts used"
        )

        row(page, "leased").click()
        lease = page.locator("#detail-lease")
        expect(page.locator("#detail-attempts")).to_have_text("1 of 5")
        expect(lease).to_have_text(re.compile(r"^ends in (9m [0-5]\ds|10m 00s)$"))
        expect(lease).to_have_attribute("title", re.compile(re.escape(leased["leaseExpiresAt"])))
        # It counts down with the page's refreshes.
        before = lease.text_content() or ""
        expect(lease).not_to_have_text(before)
        expect(lease).to_have_text(re.compile(r"^ends in 9m [0-5]\ds$"))
        expect(page.locator("#detail-result-section")).to_be_hidden()
        expect(page.locator("#detail-errors-section")).to_be_hidden()
        # A heartbeat that renews it for an hour shows at the next refresh.
        renewed = client.post(
            "/jobs/heartbeat",
            json={"jobId": "leased", "leaseId": leased["leaseId"], "leaseSeconds": 3600},
        )
        assert renewed.status_code == 200, renewed.text
        expect(lease).to_have_text(re.compile(r"^ends in (59m [0-5]\ds|1h 00m)$"))
        lease_ids_absent(page, [leased["leaseId"]])

        # Not running: no lease to show.
        row(page, "waiting").click()
        expect(page.locator("#detail-attempts")).to_have_text("0 of 7")
        expect(lease).to_have_text("—")


def test_the_lease_counts_down_on_the_servers_clock_not_the_browsers(
    page: Page, server: ServerProcess
) -> None:
    # This browser's clock runs an hour ahead: by it, the lease would have ended long ago.
    page.add_init_script("{ const real = Date.now; Date.now = () => real() + 3_600_000; }")
    with api(server) as client:
        submit(client, "leased")
        take(client, "leased", lease=600)
    open_dashboard(page, server)
    row(page, "leased").click()
    expect(page.locator("#detail-lease")).to_have_text(
        re.compile(r"^ends in (9m [0-5]\ds|10m 00s)$")
    )
    expect(row(page, "leased").locator(".col-started")).to_have_text("just now")


def test_a_succeeded_jobs_result_is_shown_as_json_text(page: Page, server: ServerProcess) -> None:
    with api(server) as client:
        submit(client, "done")
        done = take(client, "done", lease=600)
        complete(client, done, status="succeeded", result=RESULT)
        submit(client, "no-result")
        complete(client, take(client, "no-result", lease=600), status="succeeded")
    open_dashboard(page, server)
    row(page, "done").click()
    expect(page.locator("#detail-result-section")).to_be_visible()
    expect(page.locator("#detail-result")).to_have_text(
        json.dumps(RESULT, indent=2, ensure_ascii=False)
    )
    expect(page.locator("#detail-lease")).to_have_text("—")
    expect(page.locator("#detail-errors-section")).to_be_hidden()
    # A worker that reported nothing: the result is null, and says so.
    row(page, "no-result").click()
    expect(page.locator("#detail-id")).to_have_text("no-result")
    expect(page.locator("#detail-result")).to_have_text("null")
    bidi = page.locator("#detail-result").evaluate("e => getComputedStyle(e).unicodeBidi")
    assert bidi == "plaintext"
    assert page.locator("img").count() == 0
    assert page.evaluate("window.__pwned") is None
    lease_ids_absent(page, [done["leaseId"]])


def test_every_attempts_error_is_listed_as_text(page: Page, server: ServerProcess) -> None:
    lease_ids: list[str] = []
    with api(server) as client:
        # A lease that lapses, a failure retried, a final failure: three errors.
        submit(client, "retried", maxAttempts=3)
        lease_ids.append(take(client, "retried", lease=1)["leaseId"])
        second = take(client, "retried", lease=600, wait=WAIT)  # back after its lease
        lease_ids.append(second["leaseId"])
        again = complete(client, second, status="failed", error=HOSTILE_HTML, retry=True)
        assert again["state"] == "submitted"
        third = take(client, "retried", lease=600, wait=WAIT)  # due after its backoff
        lease_ids.append(third["leaseId"])
        assert complete(client, third, status="failed", error=HOSTILE_BIDI)["state"] == "failed"
        retried = client.get("/jobs/retried").json()
    assert [e["attempt"] for e in retried["errors"]] == [1, 2, 3]
    assert [e["error"] for e in retried["errors"]][1:] == [HOSTILE_HTML, HOSTILE_BIDI]

    open_dashboard(page, server)
    expect(row(page, "retried").locator(".col-attempts")).to_have_text("3/3")
    row(page, "retried").click()
    expect(page.locator("#detail-attempts")).to_have_text("3 of 3")
    expect(page.locator("#detail-state")).to_have_text("failed")
    # One entry per attempt, oldest first, each error exactly as the API has it.
    items = page.locator("#detail-errors li")
    expect(items.locator(".error-attempt")).to_have_text(["Attempt 1", "Attempt 2", "Attempt 3"])
    expect(items.locator(".error-text")).to_have_text([e["error"] for e in retried["errors"]])
    for n, error in enumerate(retried["errors"]):
        expect(items.nth(n).locator(".error-at")).to_have_attribute("title", error["at"])
    expect(page.locator("#detail-result-section")).to_be_hidden()
    expect(page.locator("#detail-lease")).to_have_text("—")
    # The worker's text is bidi-isolated in a block of its own: the override inside it cannot
    # reach the "Attempt 3 · time" line.
    text = items.nth(2).locator(".error-text")
    assert text.evaluate("e => getComputedStyle(e).unicodeBidi") == "plaintext"
    expect(items.nth(2).locator(".error-head")).not_to_contain_text("\u202e")
    assert page.locator("img, #detail b").count() == 0
    assert page.evaluate("window.__pwned") is None
    lease_ids_absent(page, lease_ids)


def test_a_lease_that_lapses_shows_the_job_back_with_its_error(
    page: Page, server: ServerProcess
) -> None:
    with api(server) as client:
        submit(client, "short")
        open_dashboard(page, server)
        taken = take(client, "short", lease=2)
    row(page, "short").click()
    expect(page.locator("#detail-state")).to_have_text("running")
    expect(page.locator("#detail-lease")).to_have_text(re.compile(r"^ends in [12]s$|^ended"))
    # Taken back by the server, with no request from anyone: the open panel follows.
    expect(page.locator("#detail-state")).to_have_text("submitted", timeout=WAIT * 1000)
    expect(page.locator("#detail-lease")).to_have_text("—")
    expect(page.locator("#detail-attempts")).to_have_text("1 of 3")
    expect(page.locator("#detail-errors .error-attempt")).to_have_text(["Attempt 1"])
    with api(server) as client:
        errors = client.get("/jobs/short").json()["errors"]
    expect(page.locator("#detail-errors .error-text")).to_have_text([errors[0]["error"]])
    assert errors[0]["error"] == "lease expired"
    lease_ids_absent(page, [taken["leaseId"]])
