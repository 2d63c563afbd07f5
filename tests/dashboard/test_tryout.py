"""What an operator's try-out found, each fixed and held here: the submit form names every bad
field in plain words before sending, the queue-health line never wraps, the first load does not
shift the jobs down, and a long description scrolls in place inside the detail panel.

Waiting is on what the page shows (Playwright's `expect`), never on a clock.
"""

from __future__ import annotations

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
