// A minimal live view: counts and the latest jobs, refreshed every second.
// Every job field goes into the page with textContent, never as HTML.
"use strict";

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text ?? "";
  return td;
}

async function refresh() {
  const status = document.getElementById("status");
  try {
    const [stats, jobs] = await Promise.all([
      fetch("/stats").then((r) => r.json()),
      fetch("/jobs?limit=100").then((r) => r.json()),
    ]);
    const counts = document.getElementById("counts");
    counts.replaceChildren(
      ...["submitted", "running", "succeeded", "failed", "total"].map((key) => {
        const span = document.createElement("span");
        span.className = "count " + key;
        span.textContent = `${key}: ${stats[key]}`;
        return span;
      }),
    );
    document.getElementById("jobs").replaceChildren(
      ...jobs.map((job) => {
        const tr = document.createElement("tr");
        tr.append(cell(job.jobId), cell(job.description), cell(job.state),
                  cell(job.createdAt), cell(String(job.attempts)));
        return tr;
      }),
    );
    status.textContent = "live";
  } catch (err) {
    status.textContent = "disconnected";
  }
}

refresh();
setInterval(refresh, 1000);
