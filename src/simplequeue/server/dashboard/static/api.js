// Talking to the server: requests with a deadline, and reading its answers.

import { learnServerTime } from "./format.js";

const REQUEST_TIMEOUT_MS = 3000;

// The server did not answer (or not usably): the page shows its "Disconnected" banner.
export class Offline extends Error {}

// The id as one path segment. "." and ".." are encoded too: a browser resolves bare dot
// segments away (RFC 3986) and would fetch /jobs or / instead (models.job_path does the same).
export function jobPath(jobId) {
  const segment = encodeURIComponent(jobId);
  return "/jobs/" + (segment === "." || segment === ".." ? segment.replaceAll(".", "%2E") : segment);
}

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
