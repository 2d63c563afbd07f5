// The job table: one page of jobs, updated in place.

import { attemptsLong, attemptsShort, exact, relative, serverNow, setBadge, setText, setTitle } from "./format.js";

const rowsById = new Map();

function cell(className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  return td;
}

function makeRow(jobId) {
  const tr = document.createElement("tr");
  tr.tabIndex = 0;
  tr.dataset.jobId = jobId;
  const id = cell("col-id");
  const code = document.createElement("code");
  id.append(code);
  const state = cell("col-state");
  state.append(document.createElement("span"));
  tr.append(
    id,
    cell("col-desc"),
    state,
    cell("col-created"),
    cell("col-started"),
    cell("col-finished"),
    cell("col-attempts num"),
  );
  return tr;
}

function fillRow(tr, job, now, selected) {
  const [id, desc, state, created, started, finished, attempts] = tr.children;
  setText(id.firstChild, job.jobId);
  setTitle(id, job.jobId);
  setText(desc, job.description ?? "");
  setTitle(desc, job.description ?? "");
  setBadge(state.firstChild, job.state);
  for (const [td, iso] of [
    [created, job.createdAt],
    [started, job.startedAt],
    [finished, job.finishedAt],
  ]) {
    setText(td, relative(iso, now));
    setTitle(td, exact(iso));
  }
  setText(attempts, attemptsShort(job));
  setTitle(attempts, `${attemptsLong(job)} attempts used`);
  markRow(tr, job.jobId === selected);
}

function markRow(tr, selected) {
  if (tr.classList.contains("selected") !== selected) tr.classList.toggle("selected", selected);
  tr.setAttribute("aria-selected", String(selected));
}

// Keyed by jobId: a job keeps its <tr> from tick to tick, and rows move only when the order
// changed, so the browser repaints nothing that stayed the same.
export function renderRows(jobs, selected, emptyText) {
  const tbody = document.getElementById("rows");
  const now = serverNow();
  const wanted = new Set(jobs.map((j) => j.jobId));
  for (const [jobId, tr] of rowsById) {
    if (!wanted.has(jobId)) {
      tr.remove();
      rowsById.delete(jobId);
    }
  }
  let previous = null;
  for (const job of jobs) {
    let tr = rowsById.get(job.jobId);
    if (!tr) {
      tr = makeRow(job.jobId);
      rowsById.set(job.jobId, tr);
    }
    fillRow(tr, job, now, selected);
    const expected = previous ? previous.nextSibling : tbody.firstChild;
    if (expected !== tr) tbody.insertBefore(tr, expected);
    previous = tr;
  }
  const empty = document.getElementById("empty");
  empty.hidden = jobs.length > 0;
  if (!jobs.length) setText(empty, emptyText);
}

export function selectRow(jobId) {
  for (const [id, tr] of rowsById) markRow(tr, id === jobId);
}

export function focusRow(jobId) {
  rowsById.get(jobId)?.focus();
}
