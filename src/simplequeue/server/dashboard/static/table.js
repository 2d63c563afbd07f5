// The job table: one page of jobs, updated in place, with a checkbox per row for bulk actions.

import {
  attemptsLong,
  attemptsShort,
  exact,
  relative,
  serverNow,
  setBadge,
  setText,
  setTitle,
} from "./format.js";

const rowsById = new Map();
// The ids ticked for a bulk action. They survive paging and refreshes; a job no longer listed
// stays ticked until the action runs or the selection is cleared.
export const ticked = new Set();

function cell(className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  return td;
}

function makeRow(jobId) {
  const tr = document.createElement("tr");
  tr.tabIndex = -1;
  tr.dataset.jobId = jobId;
  const select = cell("col-select");
  const box = document.createElement("input");
  box.type = "checkbox";
  box.className = "tick";
  box.setAttribute("aria-label", `Select \u2068${jobId}\u2069`);
  select.append(box);
  const id = cell("col-id");
  const code = document.createElement("code");
  id.append(code);
  const desc = cell("col-desc");
  desc.append(document.createElement("bdi"));
  const queue = cell("col-queue");
  queue.append(document.createElement("bdi"));
  const state = cell("col-state");
  state.append(document.createElement("span"));
  tr.append(
    select,
    id,
    desc,
    state,
    queue,
    cell("col-created"),
    cell("col-started"),
    cell("col-finished"),
    cell("col-attempts num"),
  );
  return tr;
}

function fillRow(tr, job, now, selected) {
  const [select, id, desc, state, queue, created, started, finished, attempts] = tr.children;
  const box = select.firstChild;
  if (box.checked !== ticked.has(job.jobId)) box.checked = ticked.has(job.jobId);
  setText(id.firstChild, job.jobId);
  setTitle(id, job.jobId);
  setText(desc.firstChild, job.description ?? "");
  setTitle(desc, job.description ?? "");
  setBadge(state.firstChild, job.state);
  setText(queue.firstChild, job.queue);
  setTitle(queue, `priority ${job.priority}`);
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
  if (selected) tr.setAttribute("aria-current", "true");
  else tr.removeAttribute("aria-current");
}

// Keyed by jobId: a job keeps its <tr> from tick to tick, and rows move only when the order
// changed, so the browser repaints nothing that stayed the same. One row at a time is in the
// tab order (the open one, else the first): Tab reaches the table once, j/k move within it.
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
  // Shown with the first page of jobs: before it, the rows arriving would push it down.
  document.getElementById("pager").hidden = false;
  setText(empty, jobs.length ? "" : emptyText);
  updateTabStop();
  updatePageBox();
}

function updateTabStop() {
  const rows = [...rowsById.values()];
  const current = rows.find((tr) => tr.tabIndex === 0 && tr.isConnected);
  const stop = current || rows.find((tr) => tr.classList.contains("selected")) || rows[0];
  for (const tr of rows) {
    const index = tr === stop ? 0 : -1;
    if (tr.tabIndex !== index) tr.tabIndex = index;
  }
}

function updatePageBox() {
  const box = document.getElementById("select-page");
  const ids = [...rowsById.keys()];
  const on = ids.filter((id) => ticked.has(id)).length;
  box.checked = ids.length > 0 && on === ids.length;
  box.indeterminate = on > 0 && on < ids.length;
}

export function tick(jobId, on) {
  if (on) ticked.add(jobId);
  else ticked.delete(jobId);
  const tr = rowsById.get(jobId);
  if (tr) tr.querySelector(".tick").checked = on;
  updatePageBox();
}

export function tickPage(on) {
  for (const jobId of rowsById.keys()) tick(jobId, on);
}

export function clearTicks() {
  for (const jobId of [...ticked]) tick(jobId, false);
}

export function selectRow(jobId) {
  for (const [id, tr] of rowsById) markRow(tr, id === jobId);
}

export function focusRow(jobId) {
  const tr = rowsById.get(jobId);
  if (!tr) return;
  for (const other of rowsById.values()) other.tabIndex = other === tr ? 0 : -1;
  tr.focus();
}

// j/k: the row after or before the focused one (or the first, when none is focused).
export function moveFocus(step) {
  const rows = [...document.querySelectorAll("#rows tr")];
  if (!rows.length) return;
  const at = rows.indexOf(document.activeElement?.closest("#rows tr"));
  const next = at < 0 ? 0 : Math.min(rows.length - 1, Math.max(0, at + step));
  focusRow(rows[next].dataset.jobId);
}
