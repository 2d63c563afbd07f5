// The throughput chart: jobs submitted and completed per second, with axes, time labels and a
// tooltip. Its history comes from the server (`GET /stats/history`, so it survives a reload)
// when the server keeps one, else from the page's own /stats samples since it was opened.

import { clock, rate, setText } from "./format.js";

export const WINDOW_SECONDS = 300;
const MIN_SPAN_SECONDS = 120;
// Rates are averaged over this many seconds: a worker that takes jobs in bursts still draws a
// line one can read.
const SMOOTH = 5;
const W = 400;
const H = 110;
const PAD = { left: 30, right: 6, top: 6, bottom: 16 };
const SVG = "http://www.w3.org/2000/svg";

const $ = (id) => document.getElementById(id);

// Per-second counts, oldest first, the last at `end` (ms since the epoch, the server's clock).
let series = { end: 0, submitted: [], completed: [] };
const samples = []; // the page's own: [{at, submitted, completed}] cumulative, one a second

export function useServerHistory(history) {
  series = {
    end: Date.parse(history.end),
    submitted: history.submitted.slice(),
    completed: history.completed.slice(),
  };
}

// From /stats alone: the cumulative counters (`submittedEver`, `completedEver` when the server
// has them, else what the counts allow), differenced second by second.
export function addSample(stats, now) {
  const sample = {
    at: now,
    submitted: stats.submittedEver ?? stats.total,
    completed: stats.completedEver ?? stats.succeeded + stats.failed,
  };
  const last = samples.at(-1);
  if (last && now - last.at < 800) return; // a click's extra refresh: not a new second
  samples.push(sample);
  if (samples.length > WINDOW_SECONDS + SMOOTH + 1) samples.shift();
  const per = (key) =>
    samples.slice(1).map((s, i) => {
      const seconds = Math.max(1, Math.round((s.at - samples[i].at) / 1000));
      // A server restarted on another database can make the counts shrink; never draw < 0.
      return Math.max(0, (s[key] - samples[i][key]) / seconds);
    });
  series = { end: now, submitted: per("submitted"), completed: per("completed") };
}

// A hidden tab or a reconnect: an average across the gap would be one flat guess.
export function forgetSamples() {
  samples.length = 0;
}

function smoothed(counts) {
  return counts.map((_, i) => {
    const from = Math.max(0, i - SMOOTH + 1);
    const part = counts.slice(from, i + 1);
    return part.reduce((a, b) => a + b, 0) / part.length;
  });
}

// 1, 2, 5, 10, 20, 50, ...: the smallest at or above `peak`, so the axis reads in round steps.
function niceMax(peak) {
  let step = 1;
  for (;;) {
    for (const m of [1, 2, 5]) if (m * step >= peak) return m * step;
    step *= 10;
  }
}

// "0", "0.5", "20", "5k": short enough for the axis's margin.
function axisLabel(value) {
  if (value >= 1000) return `${value / 1000}k`;
  return String(value);
}

function svgNode(name, attributes, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

let points = []; // [{at, submitted, completed}] as drawn, for the tooltip

export function renderChart() {
  const submitted = smoothed(series.submitted).slice(-WINDOW_SECONDS);
  const completed = smoothed(series.completed).slice(-WINDOW_SECONDS);
  const n = submitted.length;
  const has = n > 0;
  setText($("rate-submitted"), rate(has ? submitted[n - 1] : null));
  setText($("rate-completed"), rate(has ? completed[n - 1] : null));
  const top = niceMax(Math.max(0, ...submitted, ...completed));
  // The x axis spans what there is, two minutes at least: a server up for a minute does not
  // leave four fifths of the chart empty.
  const span = Math.max(MIN_SPAN_SECONDS, n);
  setText($("rate-span"), `last ${Math.round(span / 60)} min`);
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const x = (i) => PAD.left + ((span - n + i) / (span - 1)) * plotW;
  const y = (v) => PAD.top + plotH - (v / top) * plotH;
  const end = series.end || Date.now();
  points = submitted.map((s, i) => ({
    x: x(i),
    at: end - (n - 1 - i) * 1000,
    submitted: s,
    completed: completed[i],
  }));
  const grid = $("chart-grid");
  const nodes = [];
  for (const value of [0, top / 2, top]) {
    nodes.push(
      svgNode("line", { x1: PAD.left, x2: W - PAD.right, y1: y(value), y2: y(value) }),
      svgNode("text", { x: PAD.left - 4, y: y(value) + 3, class: "y-label" }, axisLabel(value)),
    );
  }
  // A label a minute, at the minute, across the window.
  const start = end - (span - 1) * 1000;
  for (let t = Math.ceil(start / 60000) * 60000; t <= end; t += 60000) {
    const tx = PAD.left + ((t - start) / ((span - 1) * 1000)) * plotW;
    nodes.push(
      svgNode("line", { x1: tx, x2: tx, y1: PAD.top + plotH, y2: PAD.top + plotH + 3 }),
      svgNode("text", { x: tx, y: H - 3, class: "x-label" }, clock(t, false)),
    );
  }
  grid.replaceChildren(...nodes);
  // Nothing done in the window: the axes alone say so, without a stub of a line at zero.
  const idle = !submitted.some((v) => v > 0) && !completed.some((v) => v > 0);
  for (const [key, values] of [
    ["submitted", submitted],
    ["completed", completed],
  ]) {
    // One point is no line: nothing is drawn until there are two.
    const line =
      n < 2 || idle
        ? ""
        : values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    $(`line-${key}`).setAttribute("points", line);
  }
  $("chart").setAttribute(
    "aria-label",
    has
      ? `Jobs per second over the last ${Math.round(span / 60)} minutes: now ` +
          `${rate(submitted[n - 1])} submitted, ${rate(completed[n - 1])} completed`
      : "Jobs per second: no data yet",
  );
}

function showTip(event) {
  const svg = $("chart");
  const box = svg.getBoundingClientRect();
  const vx = ((event.clientX - box.left) / box.width) * W;
  if (!points.length || vx < PAD.left) return hideTip();
  let best = points[0];
  for (const p of points) if (Math.abs(p.x - vx) < Math.abs(best.x - vx)) best = p;
  const cursor = $("chart-cursor");
  for (const [k, v] of [
    ["x1", best.x],
    ["x2", best.x],
    ["y1", PAD.top],
    ["y2", H - PAD.bottom],
  ]) {
    cursor.setAttribute(k, String(v));
  }
  cursor.setAttribute("visibility", "visible");
  const tip = $("chart-tip");
  setText(
    tip,
    `${clock(best.at, true)} · submitted ${rate(best.submitted)}/s · ` +
      `completed ${rate(best.completed)}/s`,
  );
  tip.hidden = false;
  const left = (best.x / W) * box.width;
  tip.style.left = `${Math.min(Math.max(left, 0), box.width - tip.offsetWidth)}px`;
}

function hideTip() {
  $("chart-tip").hidden = true;
  $("chart-cursor").setAttribute("visibility", "hidden");
}

export function wireChart() {
  $("chart").addEventListener("pointermove", showTip);
  $("chart").addEventListener("pointerleave", hideTip);
}
