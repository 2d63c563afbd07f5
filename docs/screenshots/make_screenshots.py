"""Regenerate the dashboard screenshots in this folder (not a test: it rewrites tracked files).

    .venv/bin/python docs/screenshots/make_screenshots.py

Starts a real `sq serve` on a temporary database, fills it with a few hundred jobs in mixed
states while a small worker keeps jobs flowing (so the throughput chart has a shape), and shoots
Debian's Chromium (never a downloaded browser) at laptop and phone widths, light and dark.
"""

from __future__ import annotations

import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.servers import ServerProcess  # noqa: E402

HERE = Path(__file__).parent
WARMUP_SECONDS = 75
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


def job(rng: random.Random, job_id: str, n: int) -> dict[str, object]:
    return {
        "jobId": job_id,
        "description": rng.choice(DESCRIPTIONS),
        "data": {"tenant": rng.choice(["acme", "globex", "initech"]), "n": n},
    }


def fill(client: httpx.Client, count: int) -> None:
    """``count`` jobs, nearly all of them taken and most finished, a few failed."""
    rng = random.Random(7)
    for n in range(count):
        kind = rng.choice(["email", "invoice", "thumb", "sync", "video"])
        client.post("/jobs/submit", json=job(rng, f"{kind}-{2026_0000 + n}", n))
    for _ in range(count - 6):
        taken = client.get("/jobs/next").json()
        if rng.random() < 0.97:
            status = "failed" if rng.random() < 0.1 else "succeeded"
            client.post("/jobs/complete", json={"jobId": taken["jobId"], "status": status})


def keep_busy(url: str, stop: threading.Event) -> None:
    """Each second, submit a few jobs, take all but a handful, and finish the ones taken the
    second before: the newest jobs are a mix of every state, and the chart has a shape."""
    rng = random.Random(11)
    n, running = 0, []
    with httpx.Client(base_url=url) as client:
        while not stop.is_set():
            pace = 3 + 3 * abs(((n // 30) % 4) - 2)
            for _ in range(rng.randint(max(1, pace - 2), pace + 2)):
                n += 1
                client.post("/jobs/submit", json=job(rng, f"live-{n:05d}", n))
            for job_id in running:
                status = "failed" if rng.random() < 0.1 else "succeeded"
                client.post("/jobs/complete", json={"jobId": job_id, "status": status})
            running = []
            backlog = rng.randint(2, 6)
            while client.get("/stats").json()["submitted"] > backlog:
                running.append(client.get("/jobs/next").json()["jobId"])
            stop.wait(1.0)


def main() -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("needs Debian's chromium: apt-get install chromium")
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(db=str(Path(tmp) / "screens.db")).start()
        stop = threading.Event()
        worker = None
        try:
            with httpx.Client(base_url=server.url) as client:
                fill(client, 320)
            worker = threading.Thread(target=keep_busy, args=(server.url, stop), daemon=True)
            worker.start()
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
                )
                shots = [
                    ("dashboard-light.png", "light", {"width": 1280, "height": 800}, False),
                    ("dashboard-dark.png", "dark", {"width": 1280, "height": 800}, True),
                    ("dashboard-phone.png", "light", {"width": 390, "height": 844}, False),
                    ("dashboard-phone-dark.png", "dark", {"width": 390, "height": 844}, False),
                ]
                pages = []
                for name, scheme, size, detail in shots:
                    page = browser.new_page(viewport=size, color_scheme=scheme)
                    page.goto(server.url)
                    pages.append((page, name, detail))
                time.sleep(WARMUP_SECONDS)  # a script, not a test: the chart needs real seconds
                for page, name, detail in pages:
                    if detail:
                        page.locator("#rows tr").nth(2).click()
                        page.locator("#detail-data").wait_for()
                    page.screenshot(path=str(HERE / name))
                    print("wrote", HERE / name)
                browser.close()
        finally:
            stop.set()
            if worker is not None:
                worker.join()
            server.stop()


if __name__ == "__main__":
    main()
