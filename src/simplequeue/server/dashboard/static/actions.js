// What an operator does: cancel and retry one job, the ticked ones, or every job matching the
// filter (after a confirmation that says how many), and submit a job. The server's
// `POST /jobs/cancel` and `/jobs/retry` do the work; the page says what they answered, in one
// line, and the next refresh shows the jobs as they now are.

import {
  MAX_PAGE,
  MAX_QUEUE_NAME,
  Offline,
  QUEUE_NAME,
  getJson,
  postJson,
  problemDetail,
} from "./api.js";
import { count, isolate, setText } from "./format.js";

const $ = (id) => document.getElementById(id);
const MAX_BATCH = 1000; // the most ids one request may name (models.MAX_BATCH)
// Counting a prefix filter's jobs reads pages of them; past this many it says "more than".
const MAX_COUNTED = 10_000;

const VERB = { cancel: "Cancelled", retry: "Retried" };
// The states each action applies to (docs/api.md, "Operations").
export const APPLIES = { cancel: ["submitted", "running"], retry: ["failed"] };

function say(node, text, ok) {
  node.className = `action-result ${ok ? "ok" : "error"}`;
  setText(node, text);
}

async function send(action, body) {
  try {
    const response = await postJson(`/jobs/${action}`, body);
    if (!response.ok) return { error: await problemDetail(response) };
    return { answer: await response.json() };
  } catch (err) {
    if (err instanceof Offline) return { error: "The server does not answer; nothing was changed." };
    throw err;
  }
}

export async function actOnOne(action, jobId) {
  const out = $("detail-action-result");
  const { error, answer } = await send(action, { jobId });
  if (error) return say(out, error, false);
  say(out, `${VERB[action]}: now ${answer.state}.`, true);
}

export async function actOnTicked(action, jobIds) {
  const out = $("action-result");
  let matched = 0;
  let changed = 0;
  for (let i = 0; i < jobIds.length; i += MAX_BATCH) {
    const { error, answer } = await send(action, { jobIds: jobIds.slice(i, i + MAX_BATCH) });
    if (error) return say(out, error, false);
    matched += answer.matched;
    changed += answer.changed;
  }
  const left = jobIds.length - changed;
  say(
    out,
    `${VERB[action]} ${count(changed)} of ${count(jobIds.length)} selected` +
      (left ? ` (${count(left)} not ${APPLIES[action].join(" or ")}` +
        `${matched < jobIds.length ? ", or gone" : ""}).` : "."),
    true,
  );
  return changed;
}

// How many jobs the filter names for `action`: from /stats when it has no prefix (its counts per
// state, per queue), else by reading the matching pages.
export async function countMatching(action, filter, stats) {
  const states = filter.state ? [filter.state] : APPLIES[action];
  if (!filter.prefix) {
    const figures = filter.queue ? stats.queues?.[filter.queue] : stats;
    if (!figures) return { n: 0 };
    return { n: states.reduce((sum, state) => sum + figures[state], 0) };
  }
  const query = new URLSearchParams({ limit: String(MAX_PAGE), prefix: filter.prefix });
  for (const state of states) query.append("state", state);
  if (filter.queue) query.append("queue", filter.queue);
  let url = `/jobs?${query}`;
  let n = 0;
  while (url && n < MAX_COUNTED) {
    const page = await getJson(url);
    if (!page.ok) throw new Offline(`${url} answered ${page.status}`);
    n += page.body.length;
    url = nextUrlOf(page.response);
  }
  return { n, more: Boolean(url) };
}

function nextUrlOf(response) {
  const match = (response.headers.get("Link") || "").match(/<([^>]*)>\s*;\s*rel="next"/);
  return match ? match[1] : null;
}

export function describeFilter(filter) {
  const parts = [];
  if (filter.queue) parts.push(`in queue “${isolate(filter.queue)}”`);
  if (filter.prefix) parts.push(`with an id starting “${isolate(filter.prefix)}”`);
  return parts.join(" ");
}

// Resolves true when the operator confirms. The dialog is modal: focus stays in it, Escape
// answers no, and focus goes back where it was.
export function confirmAction(text, yes) {
  const dialog = $("confirm");
  setText($("confirm-text"), text);
  setText($("confirm-yes"), yes);
  setText($("confirm-title"), yes);
  const back = document.activeElement;
  dialog.returnValue = "";
  dialog.showModal();
  $("confirm-no").focus();
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        back?.focus();
        resolve(dialog.returnValue === "ok");
      },
      { once: true },
    );
  });
}

export async function actOnFilter(action, filter) {
  const { error, answer } = await send(action, { filter });
  const out = $("action-result");
  if (error) return say(out, error, false);
  say(out, `${VERB[action]} ${count(answer.changed)} ${answer.changed === 1 ? "job" : "jobs"}.`, true);
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
    return { error: 'data must be a JSON object, like {"key": "value"}' };
  }
  return { value };
}

// The server's rules for a submit (simplequeue/models.py), checked here so that every bad field
// is named at once in plain words; the server's own detail stays the answer for anything else.
const MAX_JOB_ID_LENGTH = 256;
const RESERVED_JOB_IDS = ["next", "submit", "complete", "heartbeat", "cancel", "retry"];
const CONTROL = /[\u0000-\u001f\u007f]/;
const [MIN_PRIORITY, MAX_PRIORITY] = [-100, 100];
const MAX_DELAY_SECONDS = 31_536_000;

function checkJobId(id) {
  if ([...id].length > MAX_JOB_ID_LENGTH) {
    return `job id may be at most ${count(MAX_JOB_ID_LENGTH)} characters`;
  }
  if (CONTROL.test(id)) return "job id may not hold control characters (tabs, line breaks)";
  if (RESERVED_JOB_IDS.includes(id)) {
    return `job id may not be ${RESERVED_JOB_IDS.slice(0, -1).join(", ")} or retry (reserved)`;
  }
  return null;
}

function checkQueue(queue) {
  if (queue.length > MAX_QUEUE_NAME) return `queue may be at most ${MAX_QUEUE_NAME} characters`;
  if (!QUEUE_NAME.test(queue)) return "queue may hold only A–Z a–z 0–9 . _ : -";
  return null;
}

// A number input's value, `undefined` when left empty, or NaN when it holds no number.
function numberOf(input) {
  if (input.validity.badInput) return NaN;
  return input.value.trim() === "" ? undefined : Number(input.value);
}

// The form's fields as a submit body, or every thing wrong with them (and the first bad field).
function submitBody() {
  const problems = [];
  const bad = (field, text) => problems.push({ field, text });
  const body = {};
  const jobId = $("submit-id").value;
  if (jobId) {
    const problem = checkJobId(jobId);
    if (problem) bad("submit-id", problem);
  }
  body.jobId = jobId || crypto.randomUUID();
  const description = $("submit-description").value;
  if (description) body.description = description;
  const queue = $("submit-queue").value.trim();
  if (queue) {
    const problem = checkQueue(queue);
    if (problem) bad("submit-queue", problem);
    body.queue = queue;
  }
  const priority = numberOf($("submit-priority"));
  if (priority !== undefined) {
    if (!Number.isInteger(priority) || priority < MIN_PRIORITY || priority > MAX_PRIORITY) {
      bad("submit-priority", "priority must be a whole number from −100 to 100");
    }
    body.priority = priority;
  }
  const delay = numberOf($("submit-delay"));
  if (delay !== undefined) {
    if (!Number.isFinite(delay) || delay < 0 || delay > MAX_DELAY_SECONDS) {
      bad("submit-delay", `delay must be from 0 to ${count(MAX_DELAY_SECONDS)} seconds`);
    }
    body.delaySeconds = delay;
  }
  const data = parseData($("submit-data").value);
  if (data.error) bad("submit-data", data.error);
  else if (data.value !== undefined) body.data = data.value;
  for (const id of ["submit-id", "submit-queue", "submit-priority", "submit-delay", "submit-data"]) {
    if (problems.some((p) => p.field === id)) $(id).setAttribute("aria-invalid", "true");
    else $(id).removeAttribute("aria-invalid");
  }
  if (!problems.length) return { body };
  const text = problems.map((p) => p.text).join("; ");
  return { error: text[0].toUpperCase() + text.slice(1) + ".", field: problems[0].field };
}

export async function submitJob(event, refresh) {
  event.preventDefault();
  const result = $("submit-result");
  result.className = "submit-result";
  const { body, error, field } = submitBody();
  if (error) {
    result.classList.add("error");
    setText(result, error);
    $(field).focus();
    return;
  }
  let response;
  try {
    response = await postJson("/jobs/submit", body);
  } catch (err) {
    if (!(err instanceof Offline)) throw err;
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
      ? `Submitted ${isolate(job.jobId)}.`
      : `${isolate(job.jobId)} was already submitted with the same content; nothing changed.`,
  );
  $("submit-panel").reset();
  refresh();
}
