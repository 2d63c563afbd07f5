// The simplequeue dashboard: counts, throughput, and one page of jobs, refreshed every second.
//
// Two rules hold everywhere below. Job fields reach the page only as text (textContent, or
// setAttribute for a title), never as HTML. And a refresh changes only what changed, in place,
// so scroll, focus, selection, the search box and the open detail panel survive every tick.

const REFRESH_MS = 1000;
const REQUEST_TIMEOUT_MS = 3000;
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

const rowsById = new Map();
let lastJobs = [];
const samples = []; // the last RATE_WINDOW + 1 /stats: {at, submitted, completed}
const history = []; // [{submitted, completed}] per second, oldest first
let timer = null;
let generation = 0; // bumped when the view changes, so a slow answer for an old view is dropped

// -- fetching --------------------------------------------------------------------------------

class Offline extends Error {}

// The id as one path segment. "." and ".." are encoded too: a browser resolves bare dot
// segments away (RFC 3986) and would fetch /jobs or / instead (models.job_path does the same).
function jobPath(jobId) {
  const segment = encodeURIComponent(jobId);
  return "/jobs/" + (segment === "." || segment === ".." ? segment.replaceAll(".", "%2E") : segment);
}

async function request(url, options = {}) {
  let response;
  try {
    response = await fetch(url, {
      ...options,
      cache: "no-store",
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (err) {
    throw new Offline(String(err));
  }
  return response;
}

async function problemDetail(response) {
  try {
    const problem = await response.json();
    if (problem && typeof problem.detail === "string") return problem.detail;
  } catch {
    // not a problem document; fall through to the status line
  }
  return `the server answered ${response.status} ${response.statusText}`.trim();
}

function firstPageUrl() {
  const query = new URLSearchParams({ limit: String(view.pageSize), order: view.order });
  if (view.state) query.append("state", view.state);
  if (view.search) query.append("prefix", view.search);
  return `/jobs?${query}`;
}

function nextLink(response) {
  const header = response.headers.get("Link") || "";
  const match = header.match(/<([^>]*)>\s*;\s*rel="next"/);
  return match ? match[1] : null;
}

// -- formatting ------------------------------------------------------------------------------

function relative(iso, now) {
  if (!iso) return "—";
  const seconds = Math.round((now - Date.parse(iso)) / 1000);
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${seconds}s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h ago`;
  return `${Math.floor(hours / 24)}d ago`;
}

function exact(iso) {
  if (!iso) return "";
  return `${new Date(iso).toLocaleString()} (${iso})`;
}

function rate(value) {
  if (value === null) return "–";
  return value < 10 ? value.toFixed(1) : Math.round(value).toLocaleString();
}

// Writes only when the text differs: an unchanged node keeps any selection made in it.
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function setTitle(node, title) {
  if (title) {
    if (node.getAttribute("title") !== title) node.setAttribute("title", title);
  } else if (node.hasAttribute("title")) {
    node.removeAttribute("title");
  }
}

function setBadge(node, state) {
  setText(node, state);
  const className = `badge badge-${state}`;
  if (node.className !== className) node.className = className;
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

// -- the table ------------------------------------------------------------------------------

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

function fillRow(tr, job, now) {
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
  setText(attempts, String(job.attempts));
  const selected = job.jobId === view.selected;
  if (tr.classList.contains("selected") !== selected) tr.classList.toggle("selected", selected);
  tr.setAttribute("aria-selected", String(selected));
}

// Keyed by jobId: a job keeps its <tr> from tick to tick, and rows move only when the order
// changed, so the browser repaints nothing that stayed the same.
function renderRows(jobs) {
  lastJobs = jobs;
  const tbody = $("rows");
  const now = Date.now();
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
    fillRow(tr, job, now);
    const expected = previous ? previous.nextSibling : tbody.firstChild;
    if (expected !== tr) tbody.insertBefore(tr, expected);
    previous = tr;
  }
  const empty = $("empty");
  empty.hidden = jobs.length > 0;
  if (!jobs.length) {
    const filtered = view.state || view.search;
    setText(empty, filtered ? "No jobs match this filter." : "No jobs yet. Submit one above, or with `sq submit`.");
  }
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

// -- the detail panel ------------------------------------------------------------------------

function renderDetail(job, missing) {
  const panel = $("detail");
  if (view.selected === null) {
    panel.hidden = true;
    return;
  }
  panel.hidden = false;
  setText($("detail-id"), view.selected);
  const note = $("detail-missing");
  note.hidden = !missing;
  setText(note, missing || "");
  const now = Date.now();
  if (!job) return;
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
  setText($("detail-attempts"), String(job.attempts));
  setText($("detail-data"), job.data === null ? "null" : JSON.stringify(job.data, null, 2));
}

async function refreshDetail(seen) {
  if (view.selected === null) return renderDetail(null, null);
  const onPage = lastJobs.find((j) => j.jobId === view.selected);
  if (onPage) return renderDetail(onPage, null);
  const selected = view.selected;
  const response = await request(jobPath(selected));
  if (selected !== view.selected || seen !== generation) return;
  if (response.ok) return renderDetail(await response.json(), null);
  renderDetail(null, await problemDetail(response));
}

function openDetail(jobId) {
  view.selected = jobId;
  for (const [id, tr] of rowsById) {
    tr.classList.toggle("selected", id === jobId);
    tr.setAttribute("aria-selected", String(id === jobId));
  }
  setText($("copy-id"), "Copy id");
  // Clear the previous job's fields so they never show under this job's id.
  for (const id of ["detail-description", "detail-created", "detail-started", "detail-finished", "detail-attempts", "detail-data"]) {
    setText($(id), "");
  }
  setBadge($("detail-state"), "");
  renderDetail(null, null);
  refreshDetail(generation).catch(showOffline);
}

async function copyId() {
  const button = $("copy-id");
  try {
    await navigator.clipboard.writeText(view.selected);
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

// -- the refresh loop ------------------------------------------------------------------------

function showOffline(err) {
  if (!(err instanceof Offline)) throw err;
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
  const seen = generation;
  const pageUrl = view.cursors.at(-1) || firstPageUrl();
  const [statsResponse, pageResponse] = await Promise.all([request("/stats"), request(pageUrl)]);
  if (!statsResponse.ok) throw new Offline(`/stats answered ${statsResponse.status}`);
  const stats = await statsResponse.json();
  renderStats(stats);
  if (seen !== generation) return; // the view changed while this was in flight
  if (pageResponse.ok) {
    renderRows(await pageResponse.json());
    view.nextUrl = nextLink(pageResponse);
  } else if (pageResponse.status === 400 && view.cursors.length) {
    // The job a cursor names is gone (another database behind the same URL): start over.
    view.cursors = [];
  } else {
    throw new Offline(`/jobs answered ${pageResponse.status}`);
  }
  renderPager();
  await refreshDetail(seen);
  showOnline();
}

async function tick() {
  clearTimeout(timer);
  try {
    await refresh();
  } catch (err) {
    showOffline(err);
  } finally {
    // A tick started by a click may overlap the timer's: whichever ends last sets the one timer.
    clearTimeout(timer);
    timer = setTimeout(tick, REFRESH_MS);
  }
}

function changeView(change) {
  change();
  generation += 1;
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
    generation += 1;
    view.cursors.push(view.nextUrl);
    view.nextUrl = null;
    tick();
  });
  $("prev-page").addEventListener("click", () => {
    generation += 1;
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
    view.selected = null;
    renderDetail(null, null);
    renderRows(lastJobs);
    rowsById.get(jobId)?.focus();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && view.selected !== null) $("detail-close").click();
  });
  $("copy-id").addEventListener("click", copyId);
  $("toggle-submit").addEventListener("click", () => {
    const panel = $("submit-panel");
    panel.hidden = !panel.hidden;
    $("toggle-submit").setAttribute("aria-expanded", String(!panel.hidden));
    if (!panel.hidden) $("submit-id").focus();
  });
  $("submit-panel").addEventListener("submit", submitJob);
  $("order").value = view.order;
  $("page-size").value = String(view.pageSize);
}

wire();
renderChart();
tick();
