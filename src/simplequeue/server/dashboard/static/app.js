// The simplequeue dashboard: counts, throughput, and one page of jobs, refreshed every second.
//
// Two rules hold everywhere below. Job fields reach the page only as text (textContent, or
// setAttribute for a title), never as HTML. And a refresh changes only what changed, in place,
// so scroll, focus, selection, the search box and the open detail panel survive every tick.
//
// The modules: api.js (requests), format.js (text and the server's clock), table.js (the job
// table), panel.js (one job's details); this one holds the view, the refresh loop and the wiring.

import { Offline, isStale, jobPath, nextLink, problemDetail, request } from "./api.js";
import { rate, setText } from "./format.js";
import { clearDetail, copyId, renderDetail } from "./panel.js";
import { focusRow, renderRows, selectRow } from "./table.js";

const REFRESH_MS = 1000;
const HISTORY_SECONDS = 120;
// Rates are averaged over this many seconds: a worker that takes jobs in bursts still draws a
// line one can read.
const RATE_WINDOW = 5;

const $ = (id) => document.getElementById(id);

const view = {
  state: "", // "" = every state
  search: "",
  order: "desc",
  pageSize: 25,
  // The `Link` URLs that led to each page after the first; the last one is the current page.
  cursors: [],
  nextUrl: null,
  selected: null, // the jobId whose details are open
};

let lastJobs = [];
const samples = []; // the last RATE_WINDOW + 1 /stats: {at, submitted, completed}
const history = []; // [{submitted, completed}] per second, oldest first
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
  if (view.search) query.append("prefix", view.search);
  return `/jobs?${query}`;
}

// -- the counts and the chart ---------------------------------------------------------------

function renderStats(stats) {
  for (const node of document.querySelectorAll("[data-stat]")) {
    setText(node, Number(stats[node.dataset.stat]).toLocaleString());
  }
  const sample = {
    at: performance.now(),
    submitted: stats.total,
    completed: stats.succeeded + stats.failed,
  };
  const last = samples.at(-1);
  if (last && sample.at - last.at < 800) return; // a click's extra refresh: not a new second
  samples.push(sample);
  if (samples.length > RATE_WINDOW + 1) samples.shift();
  if (samples.length > 1) {
    const first = samples[0];
    const seconds = (sample.at - first.at) / 1000;
    // A server restarted on another database can make the counts shrink; never draw < 0.
    const per = (key) => Math.max(0, (sample[key] - first[key]) / seconds);
    history.push({ submitted: per("submitted"), completed: per("completed") });
    if (history.length > HISTORY_SECONDS) history.shift();
  }
  renderChart();
}

function renderChart() {
  const latest = history.at(-1) || null;
  setText($("rate-submitted"), rate(latest && latest.submitted));
  setText($("rate-completed"), rate(latest && latest.completed));
  const peak = Math.max(1, ...history.map((h) => Math.max(h.submitted, h.completed)));
  setText($("rate-peak"), rate(peak));
  // The newest sample sits at the right edge; the x axis always spans HISTORY_SECONDS.
  const step = 300 / (HISTORY_SECONDS - 1);
  const offset = HISTORY_SECONDS - history.length;
  for (const key of ["submitted", "completed"]) {
    const points = history
      .map((h, i) => `${((offset + i) * step).toFixed(1)},${(58 - (h[key] / peak) * 54).toFixed(1)}`)
      .join(" ");
    $(`line-${key}`).setAttribute("points", points);
  }
}

// -- the table and the detail panel ---------------------------------------------------------

function showRows(jobs) {
  lastJobs = jobs;
  const filtered = view.state || view.search;
  renderRows(
    jobs,
    view.selected,
    filtered ? "No jobs match this filter." : "No jobs yet. Submit one above, or with `sq submit`.",
  );
}

function renderPager() {
  const page = view.cursors.length + 1;
  setText($("page-info"), `Page ${page.toLocaleString()}`);
  $("first-page").disabled = page === 1;
  $("prev-page").disabled = page === 1;
  $("next-page").disabled = !view.nextUrl;
  const note = $("filter-note");
  const parts = [];
  if (view.state) parts.push(`state ${view.state}`);
  if (view.search) parts.push(`id starting with “${view.search}”`);
  note.hidden = parts.length === 0;
  setText(note, parts.length ? `Showing jobs with ${parts.join(" and ")}.` : "");
}

async function refreshDetail() {
  const selected = view.selected;
  if (selected === null) return renderDetail(null, null, null);
  const onPage = lastJobs.find((j) => j.jobId === selected);
  if (onPage) return renderDetail(onPage, null, selected);
  const { signal } = detailAbort;
  const response = await request(jobPath(selected), { signal });
  const job = response.ok ? await response.json() : null;
  const missing = response.ok ? null : await problemDetail(response);
  signal.throwIfAborted(); // another job was opened (or none) while the answer was read
  renderDetail(job, missing, selected);
}

function openDetail(jobId) {
  detailAbort.abort();
  detailAbort = new AbortController();
  view.selected = jobId;
  selectRow(jobId);
  clearDetail();
  renderDetail(null, null, jobId);
  refreshDetail().catch(showFailure);
}

// -- the refresh loop ------------------------------------------------------------------------

// An aborted request was for a view no longer shown: nothing to say. Anything but the server
// not answering is a bug, and is thrown on.
function showFailure(err) {
  if (isStale(err)) return;
  // A deadline can also pass while an answer's body is being read, after `request` returned.
  const timedOut = err instanceof DOMException && err.name === "TimeoutError";
  if (!(err instanceof Offline || timedOut)) throw err;
  $("offline").hidden = false;
  document.body.classList.add("is-offline");
  setText($("live-text"), "disconnected");
}

function showOnline() {
  $("offline").hidden = true;
  document.body.classList.remove("is-offline");
  setText($("live-text"), `live · ${new Date().toLocaleTimeString()}`);
}

async function refresh() {
  const { signal } = viewAbort;
  const pageUrl = view.cursors.at(-1) || firstPageUrl();
  const [statsResponse, pageResponse] = await Promise.all([
    request("/stats", { signal }),
    request(pageUrl, { signal }),
  ]);
  if (!statsResponse.ok) throw new Offline(`/stats answered ${statsResponse.status}`);
  const stats = await statsResponse.json();
  const jobs = pageResponse.ok ? await pageResponse.json() : null;
  signal.throwIfAborted(); // the view changed while the answers were read
  renderStats(stats);
  if (pageResponse.ok) {
    showRows(jobs);
    view.nextUrl = nextLink(pageResponse);
  } else if (pageResponse.status === 400 && view.cursors.length) {
    // The job a cursor names is gone (another database behind the same URL): start over.
    view.cursors = [];
  } else {
    throw new Offline(`/jobs answered ${pageResponse.status}`);
  }
  renderPager();
  await refreshDetail();
  showOnline();
}

async function tick() {
  clearTimeout(timer);
  // A hidden tab asks the server nothing: the loop stops here, and the visibilitychange handler
  // starts it again the moment the tab is shown.
  if (document.hidden) return;
  try {
    await refresh();
  } catch (err) {
    showFailure(err);
  } finally {
    // A tick started by a click may overlap the timer's: whichever ends last sets the one timer.
    clearTimeout(timer);
    timer = setTimeout(tick, REFRESH_MS);
  }
}

function changeView(change) {
  change();
  restartView();
  view.cursors = [];
  view.nextUrl = null;
  renderPager();
  tick();
}

// -- submitting ------------------------------------------------------------------------------

function parseData(text) {
  if (!text.trim()) return { value: undefined };
  let value;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { error: `data is not valid JSON: ${err.message}` };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { error: "data must be a JSON object, like {\"key\": \"value\"}" };
  }
  return { value };
}

async function submitJob(event) {
  event.preventDefault();
  const form = $("submit-panel");
  const result = $("submit-result");
  result.className = "submit-result";
  const data = parseData($("submit-data").value);
  if (data.error) {
    result.classList.add("error");
    setText(result, data.error);
    $("submit-data").focus();
    return;
  }
  const body = { jobId: $("submit-id").value || crypto.randomUUID() };
  const description = $("submit-description").value;
  if (description) body.description = description;
  if (data.value !== undefined) body.data = data.value;
  let response;
  try {
    response = await request("/jobs/submit", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  } catch (err) {
    result.classList.add("error");
    setText(result, "The server does not answer; nothing was submitted.");
    return;
  }
  if (!response.ok) {
    result.classList.add("error");
    setText(result, await problemDetail(response));
    return;
  }
  const job = await response.json();
  result.classList.add("ok");
  setText(
    result,
    response.status === 201
      ? `Submitted ${job.jobId}.`
      : `${job.jobId} was already submitted with the same content; nothing changed.`,
  );
  form.reset();
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
    tick();
  });
  $("first-page").addEventListener("click", () => changeView(() => {}));
  $("rows").addEventListener("click", (event) => {
    const tr = event.target.closest("tr");
    if (tr) openDetail(tr.dataset.jobId);
  });
  $("rows").addEventListener("keydown", (event) => {
    const tr = event.target.closest("tr");
    if (tr && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      openDetail(tr.dataset.jobId);
    }
  });
  $("detail-close").addEventListener("click", () => {
    const jobId = view.selected;
    detailAbort.abort();
    detailAbort = new AbortController();
    view.selected = null;
    renderDetail(null, null, null);
    selectRow(null);
    focusRow(jobId);
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && view.selected !== null) $("detail-close").click();
  });
  $("copy-id").addEventListener("click", () => copyId(view.selected));
  $("toggle-submit").addEventListener("click", () => {
    const panel = $("submit-panel");
    panel.hidden = !panel.hidden;
    $("toggle-submit").setAttribute("aria-expanded", String(!panel.hidden));
    if (!panel.hidden) $("submit-id").focus();
  });
  $("submit-panel").addEventListener("submit", submitJob);
  $("order").value = view.order;
  $("page-size").value = String(view.pageSize);
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) return;
    // The rates start afresh: an average across the hidden minutes would be one flat guess.
    samples.length = 0;
    tick();
  });
}

wire();
renderChart();
tick();
