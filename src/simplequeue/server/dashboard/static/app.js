// The simplequeue dashboard: counts, queue health, throughput, and one page of jobs, refreshed
// every second, with the operator's actions (cancel, retry, submit).
//
// Two rules hold everywhere below. Job fields reach the page only as text (textContent, or
// setAttribute for a title), never as HTML. And a refresh changes only what changed, in place,
// so scroll, focus, selection, the search box and the open detail panel survive every tick.
//
// The modules: api.js (requests, ETags), format.js (text and the server's clock), table.js (the
// job table), panel.js (one job's details), chart.js (throughput), health.js (per queue),
// actions.js (cancel, retry, submit), url.js (the view in the address); this one holds the view,
// the refresh loop and the wiring.

import { Offline, getJob, getJson, isStale, nextLink, problemDetail } from "./api.js";
import {
  APPLIES,
  actOnFilter,
  actOnOne,
  actOnTicked,
  confirmAction,
  countMatching,
  describeFilter,
  submitJob,
} from "./actions.js";
import { addSample, forgetSamples, renderChart, useServerHistory, wireChart, WINDOW_SECONDS } from "./chart.js";
import { clock, count, isolate, serverNow, setText } from "./format.js";
import { longestRunning, renderHealth } from "./health.js";
import { clearDetail, copyId, renderDetail } from "./panel.js";
import { clearTicks, focusRow, moveFocus, renderRows, selectRow, tick as tickRow, tickPage, ticked } from "./table.js";
import { continues, readUrl, writeUrl } from "./url.js";

const REFRESH_MS = 1000;
// While the server does not answer: 1 s, 2 s, 4 s ... at most this.
const MAX_BACKOFF_MS = 30_000;
// The longest-running job needs a page of running jobs: read every few ticks, not every one.
const HEALTH_EVERY = 5;

const $ = (id) => document.getElementById(id);

const view = {
  state: "", // "" = every state
  queue: "", // "" = every queue
  search: "",
  order: "desc",
  pageSize: 25,
  // The `Link` URLs that led to each page after the first; the last one is the current page.
  // `null` for a page reached before a reload: Previous from there goes to the first page.
  cursors: [],
  nextUrl: null,
  selected: null, // the jobId whose details are open
};

let lastJobs = [];
let lastStats = null;
let longest = null;
let ticks = 0;
let failures = 0; // refreshes in a row the server did not answer
let paused = false;
let serverHistory = true; // until /stats/history answers 404
// The id whose lookup answered 404: said once, never asked again until another job is opened.
let missing = null;
let timer = null;
// A view change (filter, order, page) aborts the requests made for the old view, and opening or
// closing a job aborts the request for the one before: their answers are for what is no longer
// shown, and an aborted request stops costing the server anything.
let viewAbort = new AbortController();
let detailAbort = new AbortController();

function restartView() {
  viewAbort.abort();
  viewAbort = new AbortController();
}

function firstPageUrl() {
  const query = new URLSearchParams({ limit: String(view.pageSize), order: view.order });
  if (view.state) query.append("state", view.state);
  if (view.queue) query.append("queue", view.queue);
  if (view.search) query.append("prefix", view.search);
  return `/jobs?${query}`;
}

function filter() {
  const f = {};
  if (view.state) f.state = view.state;
  if (view.queue) f.queue = view.queue;
  if (view.search) f.prefix = view.search;
  return f;
}

// -- the counts, health and chart -------------------------------------------------------------

function renderStats(stats) {
  lastStats = stats;
  for (const node of document.querySelectorAll("[data-stat]")) {
    setText(node, count(stats[node.dataset.stat]));
  }
  document.title = stats.failed ? `(${count(stats.failed)} failed) simplequeue` : "simplequeue";
  renderQueueOptions(Object.keys(stats.queues || {}));
  renderHealth(stats, longest);
  if (!serverHistory) addSample(stats, serverNow());
  renderChart();
  renderBulk();
}

function renderQueueOptions(names) {
  const select = $("queue-filter");
  const wanted = ["", ...new Set([...names, ...(view.queue ? [view.queue] : [])])];
  const have = [...select.options].map((o) => o.value);
  if (have.join("\n") === wanted.join("\n")) return;
  select.replaceChildren(
    ...wanted.map((name) => new Option(name || "All queues", name, false, name === view.queue)),
  );
}

async function refreshHistory(signal) {
  if (!serverHistory) return;
  const answer = await getJson(`/stats/history?seconds=${WINDOW_SECONDS + 5}`, { signal });
  if (answer.status === 404 || answer.status === 405) {
    serverHistory = false; // an older server: the page keeps its own samples
    return;
  }
  if (answer.ok) useServerHistory(answer.body);
}

// -- the table and the detail panel ---------------------------------------------------------

// `refused`: the server's reason for answering the view's own request 400, said where the jobs
// would be.
function showRows(jobs, refused = null) {
  lastJobs = jobs;
  const filtered = view.state || view.search || view.queue;
  let empty = "No jobs yet. Submit one with the button above, or with sq submit.";
  if (refused) empty = `No jobs: the server refuses this filter (${refused}).`;
  else if (filtered) empty = "No jobs match this filter.";
  renderRows(jobs, view.selected, empty);
  // The first answer is in: on a phone, what comes after the jobs may now be drawn.
  document.body.classList.add("rows-shown");
}

function renderPager() {
  const page = view.cursors.length + 1;
  setText($("page-info"), `Page ${page.toLocaleString()}`);
  $("first-page").disabled = page === 1;
  $("prev-page").disabled = page === 1;
  $("next-page").disabled = !view.nextUrl;
  const parts = [];
  if (view.state) parts.push(`state ${view.state}`);
  if (view.queue) parts.push(`queue “${isolate(view.queue)}”`);
  if (view.search) parts.push(`id starting with “${isolate(view.search)}”`);
  setText($("filter-note"), parts.length ? `Showing jobs with ${parts.join(", ")}.` : "Showing every job.");
  writeUrl(view);
}

function renderBulk() {
  const n = ticked.size;
  $("selection-note").hidden = n === 0;
  setText($("selection-note"), n ? `${count(n)} selected` : "");
  for (const id of ["bulk-retry", "bulk-cancel", "bulk-clear"]) $(id).hidden = n === 0;
  // "All matching": only where the filter's state is one the action applies to.
  $("all-retry").hidden = Boolean(view.state) && !APPLIES.retry.includes(view.state);
  $("all-cancel").hidden = Boolean(view.state) && !APPLIES.cancel.includes(view.state);
  // Nothing to act on, by /stats (a prefix is counted only when clicked): say so by disabling.
  for (const action of ["retry", "cancel"]) {
    const figures = view.queue ? lastStats?.queues?.[view.queue] : lastStats;
    const states = view.state ? [view.state] : APPLIES[action];
    const none = !view.search && lastStats && states.every((s) => !figures?.[s]);
    $(`all-${action}`).disabled = Boolean(none);
  }
  const scope = describeFilter(filter());
  setText($("all-retry"), `Retry all ${scope ? "matching " : ""}failed…`);
  setText(
    $("all-cancel"),
    view.state
      ? `Cancel all matching ${view.state}…`
      : `Cancel all ${scope ? "matching " : ""}waiting and running…`,
  );
}

async function refreshDetail() {
  const selected = view.selected;
  if (selected === null) return renderDetail(null, null, null);
  const onPage = lastJobs.find((j) => j.jobId === selected);
  if (onPage) {
    missing = null;
    return renderDetail(onPage, null, selected);
  }
  if (missing === selected) return; // said once; the 404 is not asked again
  const { signal } = detailAbort;
  const answer = await getJob(selected, { signal });
  signal.throwIfAborted(); // another job was opened (or none) while the answer was read
  if (answer.missing !== undefined) missing = selected;
  renderDetail(answer.job ?? null, answer.missing ?? null, selected);
}

function openDetail(jobId) {
  detailAbort.abort();
  detailAbort = new AbortController();
  view.selected = jobId;
  missing = null;
  selectRow(jobId);
  clearDetail();
  renderDetail(null, null, jobId);
  writeUrl(view);
  // Focus follows into the panel; closing it brings focus back to the row.
  $("detail").focus();
  refreshDetail().catch(showFailure);
}

function closeDetail() {
  const jobId = view.selected;
  detailAbort.abort();
  detailAbort = new AbortController();
  view.selected = null;
  missing = null;
  renderDetail(null, null, null);
  selectRow(null);
  writeUrl(view);
  if (lastJobs.some((j) => j.jobId === jobId)) focusRow(jobId);
  else $("search").focus();
}

// -- the refresh loop ------------------------------------------------------------------------

// An aborted request was for a view no longer shown: nothing to say. Anything but the server
// not answering is a bug, and is thrown on.
function showFailure(err) {
  if (isStale(err)) return;
  // A deadline can also pass while an answer's body is being read, after `request` returned.
  const timedOut = err instanceof DOMException && err.name === "TimeoutError";
  if (!(err instanceof Offline || timedOut)) throw err;
  failures += 1;
  $("offline").hidden = false;
  document.body.classList.add("is-offline");
  setText($("live-text"), "disconnected");
  setText($("offline-retry"), `Trying again in ${Math.round(nextDelay() / 1000)} s`);
  forgetSamples();
}

function showOnline() {
  failures = 0;
  $("offline").hidden = true;
  document.body.classList.remove("is-offline");
  setText($("live-text"), `live · ${clock(Date.now(), true)}`);
}

function nextDelay() {
  if (!failures) return REFRESH_MS;
  return Math.min(MAX_BACKOFF_MS, REFRESH_MS * 2 ** (failures - 1));
}

async function refresh() {
  const { signal } = viewAbort;
  const pageUrl = view.cursors.at(-1) || firstPageUrl();
  const wantHealth = ticks++ % HEALTH_EVERY === 0;
  const [stats, page, running] = await Promise.all([
    getJson("/stats", { signal }),
    getJson(pageUrl, { signal }),
    wantHealth ? getJson("/jobs?state=running&order=asc&limit=100", { signal }) : null,
    refreshHistory(signal),
  ]);
  signal.throwIfAborted(); // the view changed while the answers were read
  if (!stats.ok) throw new Offline(`/stats answered ${stats.status}`);
  if (running?.ok) longest = longestRunning(running.body);
  renderStats(stats.body);
  if (page.ok) {
    showRows(page.body);
    view.nextUrl = nextLink(page.response);
  } else if (page.status === 400 && view.cursors.length) {
    // The job a cursor names is gone (another database behind the same URL): start over.
    view.cursors = [];
  } else if (page.status === 400) {
    // The server refuses the filter itself (a search longer than any id). It is answering, so
    // this is said in place of the jobs, not as "Disconnected".
    showRows([], await problemDetail(page.response));
    view.nextUrl = null;
  } else {
    throw new Offline(`/jobs answered ${page.status}`);
  }
  renderPager();
  await refreshDetail();
  showOnline();
}

async function tick() {
  clearTimeout(timer);
  // A hidden tab asks the server nothing: the loop stops here, and the visibilitychange handler
  // starts it again the moment the tab is shown. Paused: the same, until Resume.
  if (document.hidden || paused) return;
  try {
    await refresh();
  } catch (err) {
    showFailure(err);
  } finally {
    // A tick started by a click may overlap the timer's: whichever ends last sets the one timer.
    clearTimeout(timer);
    if (!paused) timer = setTimeout(tick, nextDelay());
  }
}

function changeView(change) {
  change();
  restartView();
  view.cursors = [];
  view.nextUrl = null;
  renderPager();
  renderBulk();
  tick();
}

// -- acting ------------------------------------------------------------------------------------

async function bulkTicked(action) {
  const changed = await actOnTicked(action, [...ticked]);
  if (changed !== undefined) clearTicks();
  renderBulk();
  tick();
}

async function bulkFilter(action) {
  const f = filter();
  // Counted now, from a fresh /stats: the last poll may be old (paused, or a second ago on a
  // busy queue), and the confirmation must state what is there at the moment it is asked.
  let n;
  let more;
  try {
    const stats = await getJson("/stats");
    if (!stats.ok) throw new Offline(`/stats answered ${stats.status}`);
    ({ n, more } = await countMatching(action, f, stats.body));
  } catch {
    setText($("action-result"), "Could not count the matching jobs: the server did not answer.");
    return;
  }
  const states = f.state ? [f.state] : APPLIES[action];
  const scope = describeFilter(f);
  const what = `${more ? "more than " : ""}${count(n)} ${states.join(" or ")} ` +
    `${n === 1 ? "job" : "jobs"}${scope ? ` ${scope}` : ""}`;
  if (n === 0) {
    setText($("action-result"), `No ${states.join(" or ")} jobs${scope ? ` ${scope}` : ""}.`);
    return;
  }
  const verb = action === "retry" ? "Retry" : "Cancel";
  const yes = `${verb} ${more ? "them all" : count(n) + (n === 1 ? " job" : " jobs")}`;
  if (!(await confirmAction(`${verb} all ${what}?`, yes))) return;
  await actOnFilter(action, f);
  tick();
}

// -- wiring ----------------------------------------------------------------------------------

function setStateFilter(state) {
  for (const button of document.querySelectorAll(".count")) {
    button.setAttribute("aria-pressed", String(button.dataset.state === state));
  }
  changeView(() => {
    view.state = state;
  });
}

function typing(target) {
  return target.closest("input, textarea, select, [contenteditable], dialog");
}

function onKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "Escape" && view.selected !== null && !$("confirm").open) {
    closeDetail();
    return;
  }
  if (typing(event.target)) return;
  if (event.key === "/") {
    event.preventDefault();
    $("search").focus();
  } else if (event.key === "j" || event.key === "k") {
    event.preventDefault();
    moveFocus(event.key === "j" ? 1 : -1);
  }
}

let searchTimer = null;

function wire() {
  for (const button of document.querySelectorAll(".count")) {
    button.addEventListener("click", () => {
      const state = button.dataset.state;
      setStateFilter(state === view.state ? "" : state);
    });
  }
  $("search").addEventListener("input", (event) => {
    clearTimeout(searchTimer);
    const value = event.target.value.trim();
    searchTimer = setTimeout(() => {
      if (value !== view.search) changeView(() => { view.search = value; });
    }, 200);
  });
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("search").value;
    if (value) openDetail(value);
  });
  $("queue-filter").addEventListener("change", (event) => changeView(() => {
    view.queue = event.target.value;
  }));
  $("order").addEventListener("change", (event) => changeView(() => { view.order = event.target.value; }));
  $("page-size").addEventListener("change", (event) => changeView(() => {
    view.pageSize = Number(event.target.value);
  }));
  $("next-page").addEventListener("click", () => {
    if (!view.nextUrl) return;
    restartView();
    view.cursors.push(view.nextUrl);
    view.nextUrl = null;
    tick();
  });
  $("prev-page").addEventListener("click", () => {
    restartView();
    view.cursors.pop();
    if (view.cursors.at(-1) === null) view.cursors = []; // reached before a reload: unknown
    tick();
  });
  $("first-page").addEventListener("click", () => changeView(() => {}));
  $("rows").addEventListener("click", (event) => {
    const tr = event.target.closest("tr");
    if (!tr) return;
    if (event.target.classList.contains("tick")) {
      tickRow(tr.dataset.jobId, event.target.checked);
      renderBulk();
      return;
    }
    openDetail(tr.dataset.jobId);
  });
  $("rows").addEventListener("keydown", (event) => {
    const tr = event.target.closest("tr");
    if (tr && event.target === tr && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      openDetail(tr.dataset.jobId);
    }
  });
  $("select-page").addEventListener("change", (event) => {
    tickPage(event.target.checked);
    renderBulk();
  });
  $("bulk-retry").addEventListener("click", () => bulkTicked("retry"));
  $("bulk-cancel").addEventListener("click", () => bulkTicked("cancel"));
  $("bulk-clear").addEventListener("click", () => {
    clearTicks();
    renderBulk();
  });
  $("all-retry").addEventListener("click", () => bulkFilter("retry").catch(showFailure));
  $("all-cancel").addEventListener("click", () => bulkFilter("cancel").catch(showFailure));
  $("detail-retry").addEventListener("click", () => actOnOne("retry", view.selected).then(tick));
  $("detail-cancel").addEventListener("click", () => actOnOne("cancel", view.selected).then(tick));
  $("detail-close").addEventListener("click", closeDetail);
  document.addEventListener("keydown", onKey);
  $("copy-id").addEventListener("click", () => copyId(view.selected));
  $("toggle-submit").addEventListener("click", () => {
    const panel = $("submit-panel");
    panel.hidden = !panel.hidden;
    $("toggle-submit").setAttribute("aria-expanded", String(!panel.hidden));
    if (!panel.hidden) $("submit-id").focus();
  });
  $("submit-panel").addEventListener("submit", (event) => submitJob(event, tick));
  $("pause").addEventListener("click", () => {
    paused = !paused;
    $("pause").setAttribute("aria-pressed", String(paused));
    setText($("pause"), paused ? "Resume" : "Pause");
    document.body.classList.toggle("is-paused", paused);
    if (paused) {
      clearTimeout(timer);
      restartView();
      setText($("live-text"), "paused");
    } else {
      forgetSamples();
      tick();
    }
  });
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) return;
    // The rates start afresh: an average across the hidden minutes would be one flat guess.
    forgetSamples();
    tick();
  });
  wireChart();
}

function restore() {
  Object.assign(view, readUrl(view));
  if (view.cursors.length && !continues(view.cursors.at(-1), firstPageUrl())) view.cursors = [];
  for (const button of document.querySelectorAll(".count")) {
    button.setAttribute("aria-pressed", String(button.dataset.state === view.state));
  }
  $("search").value = view.search;
  $("order").value = view.order;
  $("page-size").value = String(view.pageSize);
  renderQueueOptions([]);
  renderBulk();
  if (view.selected !== null) {
    selectRow(view.selected);
    renderDetail(null, null, view.selected);
  }
}

wire();
restore();
renderChart();
tick();
