// The view in the address bar: filter, order, page and the open job, so a reload keeps them and
// a link can be shared. `history.replaceState`: following the view adds no Back steps.

import { MAX_QUEUE_NAME, QUEUE_NAME } from "./api.js";

const STATES = ["submitted", "running", "succeeded", "failed"];
const SIZES = [10, 25, 50, 100];
const MAX_PAGE = 10_000; // the deepest page a link may name

// The view the address names; whatever it names wrongly is left at its default.
export function readUrl(defaults) {
  const query = new URLSearchParams(location.search);
  const view = {};
  const state = query.get("state");
  if (STATES.includes(state)) view.state = state;
  // A queue the API would refuse (400) would read as a server that does not answer.
  const queue = query.get("queue") || "";
  if (QUEUE_NAME.test(queue) && queue.length <= MAX_QUEUE_NAME) view.queue = queue;
  if (query.get("q")) view.search = query.get("q");
  if (query.get("order") === "asc") view.order = "asc";
  const size = Number(query.get("size"));
  if (SIZES.includes(size)) view.pageSize = size;
  if (query.get("job")) view.selected = query.get("job"); // no job has the empty id
  // A later page is the `Link` URL that led to it; the ones before it are not known.
  const page = Number(query.get("page"));
  const from = query.get("from") || "";
  // Bounded: a crafted link must not make the page build a huge array.
  if (Number.isInteger(page) && page > 1 && page <= MAX_PAGE && from.startsWith("/jobs?")) {
    view.cursors = [...Array(page - 2).fill(null), from];
  } else {
    view.cursors = defaults.cursors;
  }
  return view;
}

// Whether `from` (a page's `Link` URL, from the address) goes on with the list `first` begins:
// the same filter, order and page size, only the place (`before`, `after`) differs. A crafted one
// could ask for 1,000 jobs a second, or for other jobs than the filter the page says it shows.
export function continues(from, first) {
  const key = (url) => {
    const query = new URLSearchParams(url.slice(url.indexOf("?") + 1));
    query.delete("before");
    query.delete("after");
    if (query.get("order") === "asc") query.delete("order"); // the API's default: links omit it
    return [...query].map(([name, value]) => `${name}=${value}`).sort().join("&");
  };
  return key(from) === key(first);
}

export function writeUrl(view) {
  const query = new URLSearchParams();
  if (view.state) query.set("state", view.state);
  if (view.queue) query.set("queue", view.queue);
  if (view.search) query.set("q", view.search);
  if (view.order !== "desc") query.set("order", view.order);
  if (view.pageSize !== 25) query.set("size", String(view.pageSize));
  if (view.cursors.length) {
    query.set("page", String(view.cursors.length + 1));
    query.set("from", view.cursors.at(-1));
  }
  if (view.selected !== null) query.set("job", view.selected);
  const search = query.toString();
  const url = search ? `?${search}` : location.pathname;
  if (url !== (location.search || location.pathname)) history.replaceState(null, "", url);
}
