// Turning job fields into text, and writing text into the page without disturbing it.
//
// Everything here produces or writes plain strings: a job's fields reach the page only through
// textContent or an attribute, never as HTML.

// -- the server's clock ------------------------------------------------------------------------

// Lease ends and "2m ago" are differences between a server timestamp and "now"; a browser whose
// clock is off would count a lease down to a wrong end. The server's `Date` header (1-second
// resolution) gives its time; the estimate moves only when it is off by more than this, so the
// countdown never jitters back and forth between two readings.
const CLOCK_SLACK_MS = 1500;
let clockOffset = 0; // server time minus this browser's, in ms

export function learnServerTime(response) {
  const header = response.headers.get("Date");
  const server = header ? Date.parse(header) : NaN;
  if (Number.isNaN(server)) return;
  // The header rounds down to the second: the server's time was, on average, half a second on.
  const estimate = server + 500 - Date.now();
  if (Math.abs(estimate - clockOffset) > CLOCK_SLACK_MS) clockOffset = estimate;
}

export function serverNow() {
  return Date.now() + clockOffset;
}

// -- times and numbers -------------------------------------------------------------------------

export function relative(iso, now) {
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

export function exact(iso) {
  if (!iso) return "";
  return `${new Date(iso).toLocaleString()} (${iso})`;
}

// "1h 05m", "4m 09s", "12s": a lease is at most twelve hours, so hours are the largest unit.
export function duration(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  const pad = (n) => String(n).padStart(2, "0");
  if (hours) return `${hours}h ${pad(minutes)}m`;
  if (minutes) return `${minutes}m ${pad(seconds)}s`;
  return `${seconds}s`;
}

// A running job's lease as the time left on it. Past its end the server takes the job back
// within about a second; until the next refresh shows that, say so rather than a negative time.
export function leaseLeft(iso, now) {
  if (!iso) return "—";
  const left = Date.parse(iso) - now;
  if (left > 0) return `ends in ${duration(left)}`;
  return "ended — the server is taking the job back";
}

export function attemptsShort(job) {
  return `${job.attempts}/${job.maxAttempts}`;
}

export function attemptsLong(job) {
  return `${job.attempts} of ${job.maxAttempts}`;
}

// `result` and `data` as the API sent them, indented; `null` stays visible as `null`.
export function json(value) {
  return JSON.stringify(value === undefined ? null : value, null, 2);
}

export function count(value) {
  return Number(value).toLocaleString();
}

// A queue's failure rate: failed of finished, as a percentage; "—" while nothing finished.
export function failureRate(failed, succeeded) {
  const finished = failed + succeeded;
  if (!finished) return "—";
  const percent = (100 * failed) / finished;
  return `${percent < 10 && percent > 0 ? percent.toFixed(1) : Math.round(percent)}%`;
}

// Seconds as "4m 09s"; "—" for none.
export function age(seconds) {
  return seconds === null || seconds === undefined ? "—" : duration(seconds * 1000);
}

// A chart's time label: the local (or UTC) clock time, to the minute or second.
export function clock(ms, withSeconds) {
  const options = { hour: "2-digit", minute: "2-digit", hour12: false };
  if (withSeconds) options.second = "2-digit";
  return new Date(ms).toLocaleTimeString([], options);
}

export function rate(value) {
  if (value === null) return "–";
  return value < 10 ? value.toFixed(1) : Math.round(value).toLocaleString();
}

// A job's text inside a sentence of the page's, bidi-isolated (FSI … PDI, the plain-text twin of
// <bdi>): a right-to-left override in an id cannot reorder the words around it. The text's own
// embedding, override and isolate controls (U+202A-202E, U+2066-2069) are shown as U+FFFD: a
// PDI inside it would otherwise close the isolate early and let what follows escape it.
const BIDI_CONTROLS = /[\u202a-\u202e\u2066-\u2069]/g;

export function isolate(text) {
  return `\u2068${String(text).replace(BIDI_CONTROLS, "\ufffd")}\u2069`;
}

// -- writing into the page ---------------------------------------------------------------------

// Writes only when the text differs: an unchanged node keeps any selection made in it.
export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

export function setTitle(node, title) {
  if (title) {
    if (node.getAttribute("title") !== title) node.setAttribute("title", title);
  } else if (node.hasAttribute("title")) {
    node.removeAttribute("title");
  }
}

export function setBadge(node, state) {
  setText(node, state);
  const className = `badge badge-${state}`;
  if (node.className !== className) node.className = className;
}
