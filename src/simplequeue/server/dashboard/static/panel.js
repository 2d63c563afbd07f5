// The detail panel: every field of one job, its lease counting down, its result and the error of
// each attempt that ended badly. A job's `leaseId` is never shown: the API leaves it out of every
// answer the page reads, and nothing here would print it if it were there.

import {
  clock,
  attemptsLong,
  duration,
  exact,
  json,
  leaseLeft,
  relative,
  serverNow,
  setBadge,
  setText,
  setTitle,
} from "./format.js";

const $ = (id) => document.getElementById(id);

const FIELDS = [
  "detail-description",
  "detail-queue",
  "detail-priority",
  "detail-due",
  "detail-created",
  "detail-started",
  "detail-finished",
  "detail-attempts",
  "detail-lease",
  "detail-data",
  "detail-result",
];

// The errors list is rebuilt only when the errors themselves change (a new attempt ended), so a
// refresh keeps a selection made in an error's text; the "…ago" times are updated in place.
let shownErrors = null;

function renderErrors(errors, now) {
  const list = $("detail-errors");
  const key = JSON.stringify(errors);
  if (key !== shownErrors) {
    shownErrors = key;
    list.replaceChildren(...errors.map(errorItem));
  }
  errors.forEach((error, i) => {
    const at = list.children[i].querySelector(".error-at");
    setText(at, `${relative(error.at, now)} · ${new Date(error.at).toLocaleString()}`);
  });
  $("detail-errors-section").hidden = errors.length === 0;
}

function errorItem(error) {
  const item = document.createElement("li");
  item.className = "attempt-error";
  const head = document.createElement("p");
  head.className = "error-head";
  const attempt = document.createElement("span");
  attempt.className = "error-attempt";
  attempt.textContent = `Attempt ${error.attempt}`;
  const at = document.createElement("span");
  at.className = "error-at";
  at.setAttribute("title", error.at);
  head.append(attempt, " · ", at);
  // The text is the worker's (a stderr tail, an exception): a block of its own, bidi-isolated
  // (style.css), so no control character in it can reorder the attempt and time above it.
  const text = document.createElement("pre");
  text.className = "error-text";
  text.tabIndex = 0; // it scrolls: the keyboard must reach it
  text.setAttribute("role", "region");
  text.setAttribute("aria-label", `Error of attempt ${error.attempt}`);
  text.textContent = error.error;
  item.append(head, text);
  return item;
}

// submitted → each attempt that ended badly → started (the latest attempt) → finished, with how
// long the job waited before its latest start and how long that attempt ran.
function timeline(job) {
  const at = (iso) => Date.parse(iso);
  const events = [{ at: at(job.createdAt), text: "Submitted" }];
  for (const error of job.errors ?? []) {
    events.push({ at: at(error.at), text: `Attempt ${error.attempt} ended badly` });
  }
  if (job.startedAt) {
    const wait = duration(at(job.startedAt) - at(job.createdAt));
    events.push({
      at: at(job.startedAt),
      text: `Attempt ${job.attempts} started, ${wait} after submit`,
    });
  }
  if (job.finishedAt) {
    const ran = job.startedAt ? `, ran ${duration(at(job.finishedAt) - at(job.startedAt))}` : "";
    events.push({ at: at(job.finishedAt), text: `Finished: ${job.state}${ran}` });
  }
  events.sort((a, b) => a.at - b.at);
  return events;
}

let shownTimeline = null;

function renderTimeline(job) {
  const events = timeline(job);
  const key = JSON.stringify(events);
  if (key === shownTimeline) return;
  shownTimeline = key;
  $("detail-timeline").replaceChildren(
    ...events.map((event) => {
      const item = document.createElement("li");
      const time = document.createElement("time");
      time.dateTime = new Date(event.at).toISOString();
      time.textContent = clock(new Date(event.at).getTime(), true);
      item.append(time, " ", event.text);
      return item;
    }),
  );
}

export function renderDetail(job, missing, selected) {
  const panel = $("detail");
  if (selected === null) {
    panel.hidden = true;
    return;
  }
  panel.hidden = false;
  setText($("detail-id"), selected);
  const note = $("detail-missing");
  note.hidden = !missing;
  setText(note, missing || "");
  // An unknown id: the one message, and no empty labels under it.
  $("detail-body").hidden = !job;
  $("copy-id").hidden = !job;
  if (!job) return;
  const now = serverNow();
  setBadge($("detail-state"), job.state);
  $("detail-retry").hidden = job.state !== "failed";
  $("detail-cancel").hidden = job.state !== "submitted" && job.state !== "running";
  setText($("detail-description"), job.description ?? "—");
  setText($("detail-queue"), job.queue);
  setText($("detail-priority"), String(job.priority));
  const due = job.state === "submitted" ? job.runAt : null;
  const dueIn = due ? Date.parse(due) - now : 0;
  setText(
    $("detail-due"),
    due ? `${dueIn > 0 ? `in ${duration(dueIn)}` : "now"} · ${new Date(due).toLocaleString()}` : "—",
  );
  setTitle($("detail-due"), due || "");
  for (const [key, field] of [
    ["created", "createdAt"],
    ["started", "startedAt"],
    ["finished", "finishedAt"],
  ]) {
    const iso = job[field];
    setText($(`detail-${key}`), iso ? `${relative(iso, now)} · ${new Date(iso).toLocaleString()}` : "—");
    setTitle($(`detail-${key}`), iso || "");
  }
  setText($("detail-attempts"), attemptsLong(job));
  // Only a running job holds a lease; the time left is recomputed on every refresh.
  const lease = job.state === "running" ? job.leaseExpiresAt : null;
  setText($("detail-lease"), leaseLeft(lease, now));
  setTitle($("detail-lease"), exact(lease));
  setText($("detail-data"), json(job.data));
  // A succeeded job always shows its result, `null` when the worker reported none.
  $("detail-result-section").hidden = job.result === null && job.state !== "succeeded";
  setText($("detail-result"), json(job.result));
  renderErrors(job.errors ?? [], now);
  renderTimeline(job);
}

// Empties every field, so nothing of the previous job ever shows under another job's id.
export function clearDetail() {
  for (const id of FIELDS) setText($(id), "");
  setTitle($("detail-lease"), "");
  setBadge($("detail-state"), "");
  $("detail-result-section").hidden = true;
  $("detail-errors").replaceChildren();
  $("detail-errors-section").hidden = true;
  shownErrors = null;
  $("detail-timeline").replaceChildren();
  shownTimeline = null;
  setText($("detail-action-result"), "");
  setText($("copy-id"), "Copy id");
}

export async function copyId(jobId) {
  const button = $("copy-id");
  try {
    await navigator.clipboard.writeText(jobId);
    setText(button, "Copied");
  } catch {
    // No clipboard permission (or an insecure origin): select the id so Ctrl+C copies it.
    const range = document.createRange();
    range.selectNodeContents($("detail-id"));
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    setText(button, "Selected — press Ctrl+C");
  }
}
