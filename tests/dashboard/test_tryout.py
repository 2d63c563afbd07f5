"""What an operator's try-out found, each fixed and held here: the submit form names every bad
field in plain words before sending, the queue-health line never wraps, the first load does not
shift the jobs down, and a long description scrolls in place inside the detail panel. A second
try-out, as a hostile user: a job whose id is `.` or `..` opens from a link, and a link whose
queue or page the server would refuse is read as the plain view, not as a server that is down.

Waiting is on what the page shows (Playwright's `expect`), never on a clock.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, Request, expect

from tests.dashboard.pages import api, open_dashboard, row, submit, wait_for_refresh
from tests.servers import ServerProcess

pytestmark = pytest.mark.browser

QUEUES = ("default", "emails", "reports", "billing")

CLS_FROM_NAVIGATION = """
window.__cls = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    if (!entry.hadRecentInput) window.__cls += entry.value;
  }
}).observe({ type: "layout-shift", buffered: true });
"""


def test_the_submit_form_names_every_bad_field_before_sending(
    page: Page, server: ServerProcess
) -> None:
    open_dashboard(page, server)
    sent: list[Request] = []
    page.on("request", lambda r: sent.append(r) if r.url.endswith("/jobs/submit") else None)
    page.get_by_role("button", name="Submit a job").click()
    form = page.locator("#submit-panel")
    result = page.locator("#submit-result")
    submit_button = form.get_by_role("button", name="Submit", exact=True)

    form.get_by_label("Job id").fill("next")
    form.get_by_label("Queue").fill("bad queue!")
    form.get_by_label("Priority").fill("1.5")
    form.get_by_label("Delay").fill("-1")
    submit_button.click()
    expect(result).to_have_text(
        "Job id may not be next, submit, complete, heartbeat, cancel or retry (reserved); "
        "queue may hold only A\u2013Z a\u2013z 0\u20139 . _ : -; "
        "priority must be a whole number from \u2212100 to 100; "
        "delay must be from 0 to 31,536,000 seconds."
    )
    expect(page.locator("#submit-id")).to_be_focused()
    for field in ("#submit-id", "#submit-queue", "#submit-priority", "#submit-delay"):
        expect(page.locator(field)).to_have_attribute("aria-invalid", "true")

    # One bad field at a time, each in its own words.
    form.get_by_label("Job id").fill("fine")
    # maxlength stops typing, not a value set by a script or an autofill.
    page.evaluate("document.getElementById('submit-queue').value = 'q'.repeat(65)")
    form.get_by_label("Priority").fill("101")
    form.get_by_label("Delay").fill("31536001")
    submit_button.click()
    expect(result).to_have_text(
        "Queue may be at most 64 characters; "
        "priority must be a whole number from \u2212100 to 100; "
        "delay must be from 0 to 31,536,000 seconds."
    )
    expect(page.locator("#submit-id")).not_to_have_attribute("aria-invalid", "true")
    form.get_by_label("Queue").fill("")
    form.get_by_label("Priority").fill("")
    form.get_by_label("Delay").fill("")
    form.get_by_label("Job id").fill("tab\there")
    submit_button.click()
    expect(result).to_have_text("Job id may not hold control characters (tabs, line breaks).")
    page.evaluate("document.getElementById('submit-id').value = 'x'.repeat(257)")
    submit_button.click()
    expect(result).to_have_text("Job id may be at most 256 characters.")
    assert sent == []

    # Good values go through; the limits themselves are allowed.
    form.get_by_label("Job id").fill("edge")
    form.get_by_label("Queue").fill("A.z_0:9-")
    form.get_by_label("Priority").fill("-100")
    form.get_by_label("Delay").fill("31536000")
    submit_button.click()
    expect(result).to_have_text("Submitted \u2068edge\u2069.")
    assert len(sent) == 1


def test_the_health_line_never_wraps_and_nothing_below_moves(
    page: Page, server: ServerProcess
) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})
    with api(server) as client:
        for queue in QUEUES:
            submit(client, f"{queue}-00916", queue=queue)
        assert client.get("/jobs/next", params={"queue": "emails"}).is_success
    open_dashboard(page, server)
    expect(page.locator("#health-longest")).to_have_text("emails-00916")
    before = page.locator(".job-table").bounding_box()
    # What the try-out saw: the running time grows and the line runs out of room.
    shape = page.evaluate(
        """() => {
          const line = document.getElementById("health-line");
          const oneLine = line.getBoundingClientRect().height;
          document.getElementById("health-summary").textContent =
            "4 queues · oldest waiting 12h 34m · failure rate 12.3% · "
            + "longest running 1m 16s: ".repeat(4);
          const id = document.getElementById("health-longest");
          return {
            oneLine, height: line.getBoundingClientRect().height,
            idLines: id.getClientRects().length, whiteSpace: getComputedStyle(line).whiteSpace,
            tableTop: document.querySelector(".job-table").getBoundingClientRect().top,
          };
        }"""
    )
    assert shape["height"] == shape["oneLine"], shape
    assert shape["idLines"] == 1, shape
    assert shape["whiteSpace"] == "nowrap", shape
    assert before is not None
    assert shape["tableTop"] == before["y"], shape


def test_the_first_load_with_four_queues_does_not_shift(page: Page, server: ServerProcess) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})
    with api(server) as client:
        for queue in QUEUES:
            for n in range(3):
                submit(client, f"{queue}-{n}", queue=queue)
    page.add_init_script(CLS_FROM_NAVIGATION)
    open_dashboard(page, server)
    expect(page.locator("#health-rows tr")).to_have_count(4)
    expect(page.locator("#rows tr")).to_have_count(12)
    wait_for_refresh(page, 2)
    cls = page.evaluate("window.__cls")
    assert cls < 0.01, cls


def test_an_empty_server_says_so_inside_the_same_health_block(
    page: Page, server: ServerProcess
) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})
    open_dashboard(page, server)
    expect(page.locator("#health-empty")).to_be_visible()
    empty = page.locator(".health-wrap").bounding_box()
    with api(server) as client:
        submit(client, "first", queue="emails")
    expect(page.locator("#health-rows tr")).to_have_count(1)
    expect(page.locator("#health-empty")).to_be_hidden()
    assert page.locator(".health-wrap").bounding_box() == empty


def test_a_long_description_scrolls_and_the_rest_stays_reachable(
    page: Page, server: ServerProcess
) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})
    with api(server) as client:
        submit(client, "wordy", description="lorem ipsum " * 333)
    open_dashboard(page, server)
    row(page, "wordy").click()
    box = page.locator("#detail .description")
    expect(box).to_have_attribute("tabindex", "0")
    sizes = box.evaluate("b => ({ client: b.clientHeight, scroll: b.scrollHeight })")
    assert sizes["client"] < sizes["scroll"], sizes  # it scrolls rather than grows
    assert sizes["client"] <= 200, sizes
    timeline = page.locator("#detail-timeline")
    timeline.scroll_into_view_if_needed()
    expect(timeline).to_be_in_viewport()
    panel = page.locator("#detail").bounding_box()
    head = page.locator("#detail-timeline-title").bounding_box()
    assert panel is not None
    assert head is not None
    # The timeline is within the first screenful of the panel, not 4,000 characters below it.
    assert head["y"] - panel["y"] < 900 - 2 * 16, (head, panel)


@pytest.mark.parametrize("job_id", [".", ".."])
def test_a_dot_id_opens_from_a_link(page: Page, server: ServerProcess, job_id: str) -> None:
    # Chromium reads %2E as a dot (the WHATWG URL standard), so /jobs/%2E%2E is fetched as `/`:
    # the page got the dashboard's HTML for a job and failed every second, never going live.
    with api(server) as client:
        submit(client, job_id, description="dots")
        submit(client, "other")
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/jobs" in r.url else None)
    page.goto(f"{server.url}/?state=failed&job={quote(job_id, safe='')}")  # not on the page
    expect(page.locator("#live-text")).to_have_text(re.compile(r"^live"))
    expect(page.locator("#detail-id")).to_have_text(job_id)
    expect(page.locator("#detail-state")).to_have_text("submitted")
    expect(page.locator("#detail-description")).to_have_text("dots")
    assert f"{server.url}/" not in asked  # the dashboard itself was never asked for as a job


def test_a_missing_dot_id_says_so_once(page: Page, server: ServerProcess) -> None:
    with api(server) as client:
        submit(client, "..x")  # starts with the id, and is not it
    page.goto(f"{server.url}/?state=failed&job=..")
    expect(page.locator("#detail-missing")).to_contain_text("no job has jobId '..'")
    expect(page.locator("#detail-body")).to_be_hidden()
    expect(page.locator("#live-text")).to_have_text(re.compile(r"^live"))


def test_a_link_naming_a_queue_the_server_refuses_shows_every_queue(
    page: Page, server: ServerProcess
) -> None:
    # The API answers 400 to such a queue; the page took that for a server that is down and
    # said "Disconnected" for as long as the tab was open.
    with api(server) as client:
        submit(client, "only")
    page.goto(f"{server.url}/?queue={quote('<img src=x>')}")
    expect(page.locator("#live-text")).to_have_text(re.compile(r"^live"))
    expect(page.locator("#offline")).to_be_hidden()
    expect(page.locator("#rows tr")).to_have_count(1)
    expect(page.locator("#filter-note")).to_have_text("Showing every job.")
    expect(page.locator("#queue-filter")).to_have_value("")


def test_a_link_whose_page_is_another_view_is_the_first_page(
    page: Page, server: ServerProcess
) -> None:
    # `from` is the Link URL of the page; a crafted one asked for 1,000 rows a second, or for
    # another filter than the one the page says it shows.
    with api(server) as client:
        for n in range(30):
            submit(client, f"job-{n:02d}")
    for other in (
        "/jobs?limit=1000&order=desc&before=job-29",
        "/jobs?limit=25&order=desc&state=running&before=job-29",
        "/jobs?limit=25&order=asc&after=job-00",
    ):
        page.goto(f"{server.url}/?page=2&from={quote(other, safe='')}")
        expect(page.locator("#live-text")).to_have_text(re.compile(r"^live"))
        expect(page.locator("#page-info")).to_have_text("Page 1")
        expect(page.locator("#rows tr")).to_have_count(25)
        expect(page.locator("#rows tr .col-id code").first).to_have_text("job-29")
    # The page's own link still round-trips.
    page.locator("#next-page").click()
    expect(page.locator("#rows tr .col-id code").first).to_have_text("job-04")
    page.reload()
    expect(page.locator("#page-info")).to_have_text("Page 2")
    expect(page.locator("#rows tr .col-id code").first).to_have_text("job-04")


def test_a_phone_shows_the_queue_a_link_filters_by_and_can_clear_it(
    page: Page, server: ServerProcess
) -> None:
    # The phone layout hid the queue menu, so a shared link filtered by queue showed some of the
    # jobs with nothing on the screen saying so, and no way back to all of them.
    with api(server) as client:
        submit(client, "mail", queue="emails")
        submit(client, "bill", queue="billing")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{server.url}/?queue=emails")
    expect(page.locator("#rows tr")).to_have_count(1)
    menu = page.locator("#queue-filter")
    expect(menu).to_be_visible()
    expect(menu).to_have_value("emails")
    menu.select_option("")
    expect(page.locator("#rows tr")).to_have_count(2)
    first = row(page, "bill").bounding_box()
    assert first is not None
    assert first["y"] + first["height"] <= 844  # the jobs are still on the first screen


def test_a_search_the_server_refuses_says_why_and_the_page_stays_live(
    page: Page, server: ServerProcess
) -> None:
    # The API answers 400 to a prefix longer than any id; the page said "Disconnected" and went
    # on asking, backing off, for as long as the search stood.
    with api(server) as client:
        submit(client, "only")
    too_long = "a" * 257
    page.goto(f"{server.url}/?q={too_long}")
    expect(page.locator("#empty")).to_contain_text("`prefix`")
    expect(page.locator("#live-text")).to_have_text(re.compile(r"^live"))
    expect(page.locator("#offline")).to_be_hidden()
    expect(page.locator("#filter-note")).to_contain_text("id starting with")
    page.locator("#search").fill("on")
    expect(page.locator("#rows tr .col-id code")).to_have_text(["only"])


def test_a_link_with_an_empty_job_opens_no_panel(page: Page, server: ServerProcess) -> None:
    with api(server) as client:
        submit(client, "only")
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if r.url.endswith("/jobs/") else None)
    page.goto(f"{server.url}/?job=")
    expect(page.locator("#rows tr")).to_have_count(1)
    wait_for_refresh(page)
    expect(page.locator("#detail")).to_be_hidden()
    assert asked == []


@pytest.mark.parametrize("width", [1280, 800, 390])
def test_a_long_search_and_queue_stay_inside_the_page(
    page: Page, server: ServerProcess, width: int
) -> None:
    # An id may be 256 characters with no space, a queue name 64: the filter's sentence ran off
    # the right edge, and so did the queue menu, and the whole page scrolled sideways.
    queue = "Q" * 64
    with api(server) as client:
        submit(client, "x" * 256, queue=queue)
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(f"{server.url}/?q={'x' * 200}&queue={queue}")
    expect(page.locator("#rows tr")).to_have_count(1)
    widths = page.evaluate(
        "() => ({ page: document.documentElement.scrollWidth, view: innerWidth })"
    )
    assert widths["page"] <= widths["view"], widths


def test_a_phones_first_load_does_not_shift(page: Page, server: ServerProcess) -> None:
    # On a phone the chart and the queue table come after the jobs: they were drawn first and
    # then pushed down by the first page of jobs (CLS 0.35).
    with api(server) as client:
        for n in range(5):
            submit(client, f"job-{n}")
    page.set_viewport_size({"width": 390, "height": 844})
    page.add_init_script(CLS_FROM_NAVIGATION)
    open_dashboard(page, server)
    expect(page.locator("#rows tr")).to_have_count(5)
    expect(page.locator(".rate")).to_be_visible()
    expect(page.locator(".overview .health")).to_be_visible()
    wait_for_refresh(page, 2)
    cls = page.evaluate("window.__cls")
    assert cls < 0.01, cls
