// The detail panel: every field of one job, its lease counting down, its result and the error of
// each attempt that ended badly. A job's `leaseId` is never shown: the API leaves it out of every
// answer the page reads, and nothing here would print it if it were there.

import { attemptsLong, exact, json, leaseLeft, relative, serverNow, setBadge, setText, setTitle } from "./format.js";

const $ = (id) => document.getElementById(id);

const FIELDS = [
  "detail-description",
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
  text.textContent = error.error;
  item.append(head, text);
  return item;
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
  if (!job) return;
  const now = serverNow();
  setBadge($("detail-state"), job.state);
  setText($("detail-description"), job.description ?? "—");
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
