// Queue health: per queue its counts, failure rate and latency (how long its oldest due job has
// waited), and across queues the worst latency and the longest-running job, to spot stuck ones.

import {
  age, count, duration, failureRate, isolate, serverNow, setText, setTitle,
} from "./format.js";

const $ = (id) => document.getElementById(id);
const rowsByQueue = new Map();

function makeRow(name) {
  const tr = document.createElement("tr");
  const th = document.createElement("th");
  th.scope = "row";
  const bdi = document.createElement("bdi");
  bdi.textContent = name;
  th.append(bdi);
  tr.append(th);
  for (let i = 0; i < 6; i++) {
    const td = document.createElement("td");
    td.className = "num";
    tr.append(td);
  }
  return tr;
}

export function renderHealth(stats, longest) {
  const queues = stats.queues || {};
  const tbody = $("health-rows");
  for (const [name, tr] of rowsByQueue) {
    if (!(name in queues)) {
      tr.remove();
      rowsByQueue.delete(name);
    }
  }
  let worst = null;
  let previous = null;
  for (const [name, q] of Object.entries(queues)) {
    let tr = rowsByQueue.get(name);
    if (!tr) {
      tr = makeRow(name);
      rowsByQueue.set(name, tr);
    }
    const [, waiting, running, succeeded, failed, failure, latency] = tr.children;
    setText(waiting, count(q.submitted));
    setText(running, count(q.running));
    setText(succeeded, count(q.succeeded));
    setText(failed, count(q.failed));
    setText(failure, failureRate(q.failed, q.succeeded));
    setText(latency, age(q.oldestDueAgeSeconds));
    setTitle(latency, "how long the oldest due job has waited");
    if (q.oldestDueAgeSeconds !== null && (worst === null || q.oldestDueAgeSeconds > worst)) {
      worst = q.oldestDueAgeSeconds;
    }
    const expected = previous ? previous.nextSibling : tbody.firstChild;
    if (expected !== tr) tbody.insertBefore(tr, expected);
    previous = tr;
  }
  const parts = [
    `${count(Object.keys(queues).length)} ${Object.keys(queues).length === 1 ? "queue" : "queues"}`,
    `oldest waiting ${age(worst)}`,
    `failure rate ${failureRate(stats.failed, stats.succeeded)}`,
  ];
  if (longest) {
    const ran = duration(serverNow() - Date.parse(longest.startedAt));
    parts.push(`longest running ${ran}:`);
  } else {
    parts.push("nothing running");
  }
  // One line that never wraps (style.css cuts it with an ellipsis); the whole of it on hover.
  setText($("health-summary"), parts.join(" · "));
  setText($("health-longest"), longest ? longest.jobId : "");
  setTitle($("health-line"), parts.join(" · ") + (longest ? ` ${isolate(longest.jobId)}` : ""));
  $("health-empty").hidden = rowsByQueue.size > 0;
}

// The running job that started first, of the first page of running jobs (100 at most).
export function longestRunning(jobs) {
  let longest = null;
  for (const job of jobs) {
    if (job.startedAt && (!longest || job.startedAt < longest.startedAt)) longest = job;
  }
  return longest;
}
