// The view in the address bar: filter, order, page and the open job, so a reload keeps them and
// a link can be shared. `history.replaceState`: following the view adds no Back steps.

const STATES = ["submitted", "running", "succeeded", "failed"];
const SIZES = [10, 25, 50, 100];
const MAX_PAGE = 10_000; // the deepest page a link may name

// The view the address names; whatever it names wrongly is left at its default.
export function readUrl(defaults) {
  const query = new URLSearchParams(location.search);
  const view = {};
  const state = query.get("state");
  if (STATES.includes(state)) view.state = state;
  if (query.get("queue")) view.queue = query.get("queue");
  if (query.get("q")) view.search = query.get("q");
  if (query.get("order") === "asc") view.order = "asc";
  const size = Number(query.get("size"));
  if (SIZES.includes(size)) view.pageSize = size;
  if (query.has("job")) view.selected = query.get("job");
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
