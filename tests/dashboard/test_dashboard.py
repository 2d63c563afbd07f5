"""The dashboard in a real Chromium against a real `sq serve`.

Nothing here waits on a clock: Playwright's `expect` polls until the page shows what the API
says, and a refresh is observed through the page itself (the "live · time" line changing).
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Page, Request, Route, expect

from tests.dashboard.pages import api, open_dashboard, row, row_ids, submit, wait_for_refresh
from tests.servers import ServerProcess, totals

pytestmark = pytest.mark.browser

STATES = ("submitted", "running", "succeeded", "failed")
HOSTILE_ID = "<img src=x onerror=window.__pwned=1>"
HOSTILE_DESCRIPTION = "</script><script>window.__pwned=1</script> \"double\" 'single' & <b>"
HOSTILE_DATA = {"html": "<img src=x onerror=window.__pwned=1>", "quote": "\"'</pre>"}


def finish(client: httpx.Client, status: str) -> str:
    job_id: str = client.get("/jobs/next").json()["jobId"]
    assert client.post("/jobs/complete", json={"jobId": job_id, "status": status}).is_success
    return job_id


def test_csp_is_sent_and_every_request_stays_on_the_server(
    page: Page, server: ServerProcess
) -> None:
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    with api(server) as client:
        submit(client, "job-1", data={"a": 1})
    response = page.goto(server.url)
    assert response is not None
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "style-src 'self'" in csp
    expect(row(page, "job-1")).to_be_visible()
    row(page, "job-1").click()
    expect(page.locator("#detail-data")).to_contain_text('"a": 1')
    wait_for_refresh(page)
    assert requests
    outside = [url for url in requests if not url.startswith(f"{server.url}/")]
    assert outside == []


def test_counts_match_stats(page: Page, server: ServerProcess) -> None:
    with api(server) as client:
        for n in range(7):
            submit(client, f"job-{n}")
        client.get("/jobs/next")
        finish(client, "succeeded")
        finish(client, "succeeded")
        finish(client, "failed")
        stats = totals(client.get("/stats").json())
    assert stats == {"submitted": 3, "running": 1, "succeeded": 2, "failed": 1, "total": 7}
    open_dashboard(page, server)
    for key, value in stats.items():
        expect(page.locator(f'[data-stat="{key}"]')).to_have_text(str(value))


def test_a_job_submitted_through_the_api_appears_without_a_reload(
    page: Page, server: ServerProcess
) -> None:
    open_dashboard(page, server)
    page.evaluate("window.__sameDocument = true")
    expect(page.locator("#empty")).to_contain_text("No jobs yet")
    with api(server) as client:
        submit(client, "arrives-live", description="hello")
        expect(row(page, "arrives-live")).to_contain_text("hello")
        expect(page.locator('[data-stat="submitted"]')).to_have_text("1")
        client.get("/jobs/next")
        expect(row(page, "arrives-live").locator(".badge")).to_have_text("running")
    assert page.evaluate("window.__sameDocument") is True


def test_refresh_updates_rows_in_place_keeping_focus_and_selection(
    page: Page, server: ServerProcess
) -> None:
    with api(server) as client:
        for n in range(3):
            submit(client, f"job-{n}")
        open_dashboard(page, server)
        row(page, "job-1").click()
        expect(page.locator("#detail")).to_be_visible()
        # Tag the live nodes: a refresh that rebuilt them would lose the tags.
        page.evaluate(
            """() => {
                for (const tr of document.querySelectorAll('#rows tr')) tr.__kept = true;
                document.getElementById('detail-data').__kept = true;
            }"""
        )
        page.locator("#search").focus()
        page.keyboard.type("job")
        client.get("/jobs/next")  # job-0 changes state; the others stay the same
        expect(row(page, "job-0").locator(".badge")).to_have_text("running")
        wait_for_refresh(page, 2)
    assert page.evaluate(
        "() => [...document.querySelectorAll('#rows tr')].every((tr) => tr.__kept === true)"
    )
    assert page.evaluate("document.getElementById('detail-data').__kept") is True
    assert page.evaluate("document.activeElement.id") == "search"
    expect(page.locator("#search")).to_have_value("job")
    expect(row(page, "job-1")).to_have_attribute("aria-current", "true")
    expect(page.locator("#detail-id")).to_have_text("job-1")


def test_clicking_a_count_filters_by_state(page: Page, server: ServerProcess) -> None:
    with api(server) as client:
        for n in range(8):
            submit(client, f"job-{n}")
        failed = {finish(client, "failed") for _ in range(2)}
        finish(client, "succeeded")
    open_dashboard(page, server)
    expect(page.locator("#rows tr")).to_have_count(8)
    page.get_by_role("button", name=re.compile("Failed")).click()
    expect(page.get_by_role("button", name=re.compile("Failed"))).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(page.locator("#rows tr")).to_have_count(2)
    assert set(row_ids(page)) == failed
    expect(page.locator("#rows .badge")).to_have_text(["failed", "failed"])
    page.get_by_role("button", name=re.compile("Submitted")).click()
    expect(page.locator("#rows tr")).to_have_count(5)
    page.get_by_role("button", name=re.compile("All jobs")).click()
    expect(page.locator("#rows tr")).to_have_count(8)


def test_search_by_prefix_and_open_an_exact_id(page: Page, server: ServerProcess) -> None:
    with api(server) as client:
        for job_id in ["invoice/1", "invoice/2", "email 1", "in"]:
            submit(client, job_id)
    open_dashboard(page, server)
    expect(page.locator("#rows tr")).to_have_count(4)
    page.locator("#search").fill("invoice/")
    expect(page.locator("#rows tr")).to_have_count(2)
    assert sorted(row_ids(page)) == ["invoice/1", "invoice/2"]
    page.locator("#search").fill("nothing-like-this")
    expect(page.locator("#empty")).to_have_text("No jobs match this filter.")
    # Enter looks the id up exactly (percent-encoded: `/` and space survive the trip).
    page.locator("#search").fill("email 1")
    page.locator("#search").press("Enter")
    expect(page.locator("#detail-id")).to_have_text("email 1")
    expect(page.locator("#detail-state")).to_have_text("submitted")
    page.locator("#search").fill("no such job")
    page.locator("#search").press("Enter")
    expect(page.locator("#detail-missing")).to_contain_text("no job has jobId 'no such job'")


def test_paging_through_every_job_both_ways(page: Page, server: ServerProcess) -> None:
    job_ids = [f"job-{n:02d}" for n in range(23)]
    with api(server) as client:
        for job_id in job_ids:
            submit(client, job_id)
    open_dashboard(page, server)
    page.locator("#page-size").select_option("10")
    expect(page.locator("#rows tr")).to_have_count(10)
    seen: list[str] = []
    for page_number in (1, 2, 3):
        expect(page.locator("#page-info")).to_have_text(f"Page {page_number}")
        expected = job_ids[::-1][(page_number - 1) * 10 : page_number * 10]
        expect(page.locator("#rows tr .col-id code")).to_have_text(expected)
        seen += row_ids(page)
        if page_number < 3:
            page.locator("#next-page").click()
    assert seen == job_ids[::-1]
    expect(page.locator("#next-page")).to_be_disabled()
    page.locator("#prev-page").click()
    expect(page.locator("#rows tr .col-id code")).to_have_text(job_ids[::-1][10:20])
    page.locator("#order").select_option("asc")
    expect(page.locator("#page-info")).to_have_text("Page 1")
    expect(page.locator("#rows tr .col-id code")).to_have_text(job_ids[:10])
    page.locator("#next-page").click()
    expect(page.locator("#rows tr .col-id code")).to_have_text(job_ids[10:20])


def test_detail_panel_shows_every_field_and_copies_the_id(
    page: Page, server: ServerProcess
) -> None:
    data = {"to": "ada@example.com", "nested": {"list": [1, 2.5, None, True]}, "empty": {}}
    with api(server) as client:
        submit(client, "job/with spaces", description="Send the report", data=data)
        submit(client, "other")
        client.get("/jobs/next")
        job = client.get("/jobs/job%2Fwith%20spaces").json()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    open_dashboard(page, server)
    row(page, "job/with spaces").click()
    detail = page.locator("#detail")
    expect(detail).to_be_visible()
    expect(page.locator("#detail-id")).to_have_text("job/with spaces")
    expect(page.locator("#detail-state")).to_have_text("running")
    expect(page.locator("#detail-description")).to_have_text("Send the report")
    expect(page.locator("#detail-attempts")).to_have_text("1 of 3")
    expect(page.locator("#detail-finished")).to_have_text("—")
    expect(page.locator("#detail-started")).to_have_attribute("title", job["startedAt"])
    expect(page.locator("#detail-created")).to_have_attribute("title", job["createdAt"])
    expect(page.locator("#detail-data")).to_have_text(json.dumps(data, indent=2))
    page.get_by_role("button", name="Copy id").click()
    expect(page.locator("#copy-id")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == "job/with spaces"
    with api(server) as client:
        client.post("/jobs/complete", json={"jobId": "job/with spaces", "status": "failed"})
    expect(page.locator("#detail-state")).to_have_text("failed")
    page.get_by_role("button", name="Close details").click()
    expect(detail).to_be_hidden()


def test_submit_form_creates_jobs_and_shows_the_apis_refusals(
    page: Page, server: ServerProcess
) -> None:
    open_dashboard(page, server)
    page.get_by_role("button", name="Submit a job").click()
    form = page.locator("#submit-panel")
    form.get_by_label("Job id").fill("from-the-form")
    form.get_by_label("Description").fill("typed in a browser")
    form.get_by_label("Data").fill('{"n": 1}')
    form.get_by_role("button", name="Submit", exact=True).click()
    expect(page.locator("#submit-result")).to_have_text("Submitted \u2068from-the-form\u2069.")
    expect(row(page, "from-the-form")).to_contain_text("typed in a browser")

    # The same id with other content: the API's 409 detail, word for word.
    form.get_by_label("Job id").fill("from-the-form")
    form.get_by_label("Description").fill("something else")
    form.get_by_role("button", name="Submit", exact=True).click()
    with api(server) as client:
        conflict = client.post(
            "/jobs/submit", json={"jobId": "from-the-form", "description": "something else"}
        ).json()["detail"]
    expect(page.locator("#submit-result")).to_have_text(conflict)

    form.get_by_label("Job id").fill("next")
    form.get_by_label("Description").fill("")
    form.get_by_role("button", name="Submit", exact=True).click()
    expect(page.locator("#submit-result")).to_contain_text("reserved")

    # Data is checked before anything is sent.
    form.get_by_label("Job id").fill("never-sent")
    for bad in ["{not json", "[1, 2]", '"text"', "null"]:
        form.get_by_label("Data").fill(bad)
        form.get_by_role("button", name="Submit", exact=True).click()
        expect(page.locator("#submit-result")).to_contain_text(re.compile("^Data "))
        expect(page.locator("#submit-result")).to_have_class(re.compile("error"))

    # No id: the page makes a UUID.
    form.get_by_label("Job id").fill("")
    form.get_by_label("Data").fill("")
    form.get_by_role("button", name="Submit", exact=True).click()
    expect(page.locator("#submit-result")).to_have_text(
        re.compile("^Submitted \u2068[0-9a-f-]{36}\u2069\\.$")
    )
    with api(server) as client:
        ids = [job["jobId"] for job in client.get("/jobs").json()]
    assert len(ids) == 2
    assert ids[0] == "from-the-form"
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", ids[1])


def test_html_in_job_fields_is_shown_as_text_and_never_runs(
    page: Page, server: ServerProcess
) -> None:
    with api(server) as client:
        submit(client, HOSTILE_ID, description=HOSTILE_DESCRIPTION, data=HOSTILE_DATA)
    open_dashboard(page, server)
    hostile = row(page, HOSTILE_ID)
    expect(hostile).to_be_visible()
    expect(hostile.locator(".col-desc")).to_have_text(HOSTILE_DESCRIPTION)
    hostile.click()
    expect(page.locator("#detail-id")).to_have_text(HOSTILE_ID)
    expect(page.locator("#detail-description")).to_have_text(HOSTILE_DESCRIPTION)
    expect(page.locator("#detail-data")).to_have_text(json.dumps(HOSTILE_DATA, indent=2))
    wait_for_refresh(page)
    assert page.locator("img").count() == 0
    assert page.locator("#rows script, #detail script, #rows b").count() == 0
    assert page.evaluate("window.__pwned") is None


def test_disconnected_banner_and_recovery(page: Page, server: ServerProcess) -> None:
    open_dashboard(page, server)
    banner = page.get_by_role("status").filter(has_text="Disconnected")
    expect(banner).to_be_hidden()
    server.stop()
    expect(banner).to_be_visible()
    expect(page.locator("#live-text")).to_have_text("disconnected")
    server.start()  # the same port and database
    with api(server) as client:
        submit(client, "after-restart")
    expect(banner).to_be_hidden()
    expect(row(page, "after-restart")).to_be_visible()
    expect(page.locator("#live-text")).to_have_text(re.compile(r"^live"))


def test_only_the_shown_page_is_fetched(page: Page, server: ServerProcess) -> None:
    with api(server) as client:
        for n in range(60):
            submit(client, f"job-{n}")
    lists: list[Request] = []
    page.on("request", lambda r: lists.append(r) if urlsplit(r.url).path == "/jobs" else None)
    open_dashboard(page, server)
    expect(page.locator("#rows tr")).to_have_count(25)
    wait_for_refresh(page, 2)
    assert len(lists) >= 2
    for request in lists:
        query = parse_qs(urlsplit(request.url).query)
        # Besides the page shown: the first page of running jobs, for the longest-running one.
        expected = ["100"] if query.get("state") == ["running"] else ["25"]
        assert query["limit"] == expected


def test_api_reference_renders_offline(page: Page, server: ServerProcess) -> None:
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{server.url}/schema")
    # Redoc drew the operations from the document, with its script served by the package.
    expect(page.get_by_role("heading", name="Submit a job")).to_be_visible()
    expect(page.get_by_role("heading", name="Take the next job")).to_be_visible()
    # Redoc's own footer logo is the one thing it asks elsewhere for; it hides itself when that
    # fails, as it does offline. Its web worker is a blob: of the page. Nothing else may leave.
    allowed = ("https://cdn.redoc.ly/redoc/logo-mini.svg",)
    outside = [
        url
        for url in requests
        if not url.startswith((f"{server.url}/", f"blob:{server.url}/")) and url not in allowed
    ]
    assert outside == []


def test_a_view_change_aborts_the_request_for_the_old_view(
    page: Page, server: ServerProcess
) -> None:
    with api(server) as client:
        for n in range(3):
            submit(client, f"job-{n}")
        finish(client, "failed")
    open_dashboard(page, server)
    held: list[Route] = []

    # The failed jobs' page is never answered: its request stays in flight until the page
    # gives it up.
    def hold(route: Route) -> None:
        held.append(route)  # Playwright cannot take a builtin method as a handler

    page.route(re.compile(r"/jobs\?.*state=failed"), hold)
    failed: list[str] = []

    def gave_up(request: Request) -> None:
        if "state=failed" in request.url:  # not the /stats beside it, aborted too if in flight
            failed.append(request.failure or "")

    page.on("requestfailed", gave_up)
    with page.expect_request(re.compile(r"state=failed")):
        page.get_by_role("button", name=re.compile("Failed")).click()
    page.get_by_role("button", name=re.compile("All jobs")).click()
    expect(page.locator("#rows tr")).to_have_count(3)
    # Every request for that page (a timer's tick may have sent a second) was given up when the
    # view changed, not later at its deadline (REQUEST_TIMEOUT_MS, 3 s), and not taken for the
    # server failing.
    assert held
    # The browser reports each abort a moment later (on a loaded machine, later still): wait
    # for them, but for less than the requests' own deadline, which would abort them too.
    for _ in range(40):
        if len(failed) >= len(held):
            break
        page.wait_for_timeout(50)
    assert failed == ["net::ERR_ABORTED"] * len(held)
    expect(page.locator("#offline")).to_be_hidden()


def test_a_hidden_tab_asks_the_server_nothing_until_shown(
    page: Page, server: ServerProcess
) -> None:
    open_dashboard(page, server)
    started: list[str] = []
    in_flight: set[Request] = set()

    def track(request: Request) -> None:
        started.append(request.url)
        in_flight.add(request)

    def done(request: Request) -> None:
        in_flight.discard(request)

    page.on("request", track)
    page.on("requestfinished", done)
    page.on("requestfailed", done)
    page.evaluate(
        """() => {
            Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
            document.dispatchEvent(new Event("visibilitychange"));
        }"""
    )
    # A refresh already under way when the tab was hidden may still finish; none starts after.
    for _ in range(200):
        if not in_flight:
            break
        page.wait_for_timeout(50)
    assert not in_flight
    before = len(started)
    page.wait_for_timeout(3000)  # three refresh intervals
    assert started[before:] == []
    with page.expect_request(re.compile(r"/stats$")):
        page.evaluate(
            """() => {
                Object.defineProperty(document, "hidden", { configurable: true, get: () => false });
                document.dispatchEvent(new Event("visibilitychange"));
            }"""
        )
    wait_for_refresh(page, 2)
