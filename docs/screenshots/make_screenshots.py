"""Regenerate the dashboard screenshots in this folder (not a test: it rewrites tracked files).

    .venv/bin/python docs/screenshots/make_screenshots.py

Starts real `sq serve`s on temporary databases: one empty, one with 100,000 jobs in several
queues (most finished, some failed with a worker's error text), where a small worker keeps jobs
flowing so the throughput chart has a shape. Shoots Debian's Chromium (never a downloaded
browser) at laptop and phone widths, light and dark; the laptop shots at 100,000 jobs have a
failed job open, showing its errors and timeline.
"""

from __future__ import annotations

import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.servers import ServerProcess  # noqa: E402

HERE = Path(__file__).parent
WARMUP_SECONDS = 45
JOBS = 100_000
BATCH = 1000
QUEUES = ["email", "video", "billing", "default"]
DESCRIPTIONS = [
    "Send welcome email",
    "Resize uploaded avatar to 256px",
    "Generate monthly invoice PDF",
    "Sync CRM contacts",
    "Transcode video to 720p",
    "Rebuild search index for tenant",
    "Charge subscription renewal",
    None,
]
ERRORS = [
    'Traceback (most recent call last):\n  File "worker.py", line 42, in handle\n'
    "    send(message)\nsmtplib.SMTPServerDisconnected: Connection unexpectedly closed",
    "ffmpeg exited with status 1: Invalid data found when processing input",
    "card_declined: insufficient funds (stripe request req_8fK2)",
    "lease expired",
]
SIZES = {"desktop": {"width": 1280, "height": 960}, "phone": {"width": 390, "height": 844}}
# README.md shows these under their first names.
LEGACY = {
    "dashboard-100k-desktop-light.png": "dashboard-light.png",
    "dashboard-100k-desktop-dark.png": "dashboard-dark.png",
    "dashboard-100k-phone-light.png": "dashboard-phone.png",
    "dashboard-100k-phone-dark.png": "dashboard-phone-dark.png",
}


def job(rng: random.Random, job_id: str, n: int) -> dict[str, object]:
    return {
        "jobId": job_id,
        "description": rng.choice(DESCRIPTIONS),
        "queue": rng.choice(QUEUES),
        "priority": rng.choice([0, 0, 0, 5, 10]),
        "data": {"tenant": rng.choice(["acme", "globex", "initech"]), "n": n},
    }


def fill(client: httpx.Client, count: int) -> None:
    """``count`` jobs, nearly all taken and finished, about 3% failed with an error."""
    rng = random.Random(7)
    kinds = ["email", "invoice", "thumb", "sync", "video"]
    for start in range(0, count, BATCH):
        batch = [
            job(rng, f"{rng.choice(kinds)}-{2026_000000 + n}", n)
            for n in range(start, min(count, start + BATCH))
        ]
        client.post("/jobs/submit", json=batch).raise_for_status()
    left = count - 40
    while left > 0:
        taken = client.get("/jobs/next", params={"count": min(100, left)}).json()
        left -= len(taken)
        done: list[dict[str, Any]] = []
        for t in taken:
            if rng.random() < 0.03:
                done.append({"jobId": t["jobId"], "status": "failed", "error": rng.choice(ERRORS)})
            else:
                done.append({"jobId": t["jobId"], "status": "succeeded"})
        client.post("/jobs/complete", json=done).raise_for_status()


def keep_busy(url: str, stop: threading.Event) -> None:
    """Each second, submit a few jobs, take all but a handful, and finish the ones taken the
    second before: the newest jobs are a mix of every state, and the chart has a shape."""
    rng = random.Random(11)
    n, running = 0, []
    with httpx.Client(base_url=url, timeout=30) as client:
        while not stop.is_set():
            pace = 4 + 4 * abs(((n // 40) % 4) - 2)
            for _ in range(rng.randint(max(1, pace - 2), pace + 2)):
                n += 1
                client.post("/jobs/submit", json=job(rng, f"live-{n:05d}", n))
            for job_id in running:
                failed = rng.random() < 0.08
                body: dict[str, Any] = {"jobId": job_id, "status": "succeeded"}
                if failed:
                    body = {"jobId": job_id, "status": "failed", "error": rng.choice(ERRORS)}
                client.post("/jobs/complete", json=body)
            running = []
            backlog = rng.randint(2, 6)
            while client.get("/stats").json()["submitted"] > backlog + 40:
                running.append(client.get("/jobs/next").json()["jobId"])
            stop.wait(1.0)


def failed_with_errors(client: httpx.Client) -> str:
    """A job that failed twice, then for good, with three different errors."""
    client.post(
        "/jobs/submit",
        json={
            "jobId": "invoice-2026-0311",
            "description": "Generate monthly invoice PDF",
            "queue": "billing",
            "maxAttempts": 3,
            "data": {"tenant": "acme", "month": 3},
        },
    )
    for attempt, error in enumerate(ERRORS[:3], 1):
        while True:
            taken = client.get("/jobs/next", params={"queue": "billing", "wait": 5}).json()
            if taken["jobId"] == "invoice-2026-0311":
                break
            client.post("/jobs/complete", json={"jobId": taken["jobId"], "status": "succeeded"})
        client.post(
            "/jobs/complete",
            json={
                "jobId": "invoice-2026-0311",
                "status": "failed",
                "error": error,
                "retry": attempt < 3,
            },
        )
    return "invoice-2026-0311"


def shoot(browser: Browser, url: str, label: str, open_job: str | None) -> None:
    for scheme in ("light", "dark"):
        for size_name, size in SIZES.items():
            page = browser.new_page(viewport=size, color_scheme=scheme)
            target = f"{url}/?job={open_job}" if open_job and size_name == "desktop" else url
            page.goto(target)
            page.locator("#live-text").filter(has_text="live").wait_for()
            if open_job and size_name == "desktop":
                page.locator("#detail-errors li").first.wait_for()
            page.wait_for_timeout(1500)  # two refreshes: the chart and relative times settle
            name = f"dashboard-{label}-{size_name}-{scheme}.png"
            page.screenshot(path=str(HERE / name))
            print("wrote", HERE / name)
            if name in LEGACY:
                shutil.copyfile(HERE / name, HERE / LEGACY[name])
            page.close()


def main() -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("needs Debian's chromium: apt-get install chromium")
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
        )
        empty = ServerProcess(db=str(Path(tmp) / "empty.db")).start()
        try:
            shoot(browser, empty.url, "empty", None)
        finally:
            empty.stop()
        # Filled by one server, shown by another on the same file: the loading burst is not in
        # the new server's rate history, so the chart shows the live load's shape.
        db = str(Path(tmp) / "full.db")
        loader = ServerProcess(db=db, extra_args=("--synchronous", "normal")).start()
        try:
            with httpx.Client(base_url=loader.url, timeout=60) as client:
                fill(client, JOBS)
                failed = failed_with_errors(client)
        finally:
            loader.stop()
        server = ServerProcess(db=db, extra_args=("--synchronous", "normal")).start()
        stop = threading.Event()
        worker = None
        try:
            worker = threading.Thread(target=keep_busy, args=(server.url, stop), daemon=True)
            worker.start()
            time.sleep(WARMUP_SECONDS)  # a script, not a test: the chart needs real seconds
            shoot(browser, server.url, "100k", failed)
        finally:
            stop.set()
            if worker is not None:
                worker.join()
            server.stop()
            browser.close()


if __name__ == "__main__":
    main()
