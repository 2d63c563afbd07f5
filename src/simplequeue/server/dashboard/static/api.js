// Talking to the server: requests with a deadline, and reading its answers.

import { learnServerTime } from "./format.js";

const REQUEST_TIMEOUT_MS = 3000;
// The most jobs one `GET /jobs` answers (queue.MAX_PAGE).
export const MAX_PAGE = 1000;
// The API's rule for a queue name (models.QUEUE_NAME_RULE).
export const MAX_QUEUE_NAME = 64;
export const QUEUE_NAME = /^[A-Za-z0-9._:-]+$/;
// Ids a browser cannot put in a path: it resolves them as dot segments, and the URL standard
// reads %2E as a dot too, so /jobs/%2E%2E is fetched as / and /jobs/%2E as /jobs/.
const DOT_SEGMENTS = [".", ".."];

// The server did not answer (or not usably): the page shows its "Disconnected" banner.
export class Offline extends Error {}

// An error from a request the page aborted itself (`options.signal`): its answer was no longer
// wanted. A timeout is not one of these; it means the server is not answering.
export function isStale(err) {
  return err instanceof DOMException && err.name === "AbortError";
}

export async function request(url, options = {}) {
  const deadline = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
  const { signal } = options;
  let response;
  try {
    response = await fetch(url, {
      ...options,
      cache: "no-store",
      signal: signal ? AbortSignal.any([signal, deadline]) : deadline,
    });
  } catch (err) {
    if (isStale(err)) throw err;
    throw new Offline(String(err));
  }
  learnServerTime(response);
  return response;
}

// One job, by `GET /jobs/{id}`: `{job}`, or `{missing}` with the reason it is not there. A dot
// id is looked for in the list instead (the first page of ids starting with it).
export async function getJob(jobId, options = {}) {
  const byList = DOT_SEGMENTS.includes(jobId);
  const url = byList
    ? `/jobs?${new URLSearchParams({ prefix: jobId, limit: String(MAX_PAGE) })}`
    : `/jobs/${encodeURIComponent(jobId)}`;
  const answer = await getJson(url, options);
  if (answer.status === 404 || answer.status === 410) {
    return { missing: await problemDetail(answer.response) };
  }
  if (!answer.ok) throw new Offline(`${url} answered ${answer.status}`);
  if (!byList) return { job: answer.body };
  const job = answer.body.find((j) => j.jobId === jobId);
  return job ? { job } : { missing: `no job has jobId '${jobId}'` };
}

export async function problemDetail(response) {
  try {
    const problem = await response.json();
    // One line: a detail that spans lines (a validation message) must not push the page about.
    if (problem && typeof problem.detail === "string") return problem.detail.replace(/\s+/g, " ");
  } catch {
    // not a problem document; fall through to the status line
  }
  return `the server answered ${response.status} ${response.statusText}`.trim();
}

export function nextLink(response) {
  const header = response.headers.get("Link") || "";
  const match = header.match(/<([^>]*)>\s*;\s*rel="next"/);
  return match ? match[1] : null;
}

// -- conditional GETs ---------------------------------------------------------------------------

// The last answer to each URL polled, with its ETag: an unchanged /stats or page then costs the
// server and the network headers only (304, no body). Bounded: paging leaves old URLs behind.
const MAX_CACHED = 32;
const cached = new Map(); // url -> {etag, body}

// GETs `url` as JSON, sending `If-None-Match` when an earlier answer carried an ETag. Answers
// `{response, ok, status, body}`: on a 304, `body` is the one the ETag named, and `ok` is true.
export async function getJson(url, options = {}) {
  const known = cached.get(url);
  const headers = known ? { "If-None-Match": known.etag } : {};
  const response = await request(url, { ...options, headers });
  if (response.status === 304 && known) {
    return { response, ok: true, status: 200, body: known.body };
  }
  if (!response.ok) return { response, ok: false, status: response.status, body: null };
  const body = await response.json();
  const etag = response.headers.get("ETag");
  cached.delete(url);
  if (etag) {
    cached.set(url, { etag, body });
    if (cached.size > MAX_CACHED) cached.delete(cached.keys().next().value);
  }
  return { response, ok: true, status: response.status, body };
}

export async function postJson(url, body) {
  return request(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}
