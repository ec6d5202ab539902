// Charts as SVG built with DOM calls: no library, every label a text node.
import { h, s } from "./dom.js";

// Horizontal bars: [{label, value, display, className}], with a table for screen readers.
export function barChart(title, items, { format = String } = {}) {
  const max = Math.max(1, ...items.map((item) => item.value));
  const rowHeight = 26;
  const labelWidth = 150;
  const width = 520;
  const barSpace = width - labelWidth - 90;
  const height = Math.max(rowHeight, items.length * rowHeight);
  const svg = s(
    "svg",
    {
      viewBox: `0 0 ${width} ${height}`,
      class: "chart",
      role: "img",
      "aria-label": title,
      preserveAspectRatio: "xMinYMin meet",
    },
    items.map((item, index) => {
      const y = index * rowHeight;
      const barWidth = Math.max(item.value > 0 ? 2 : 0, (item.value / max) * barSpace);
      const label = item.label.length > 22 ? `${item.label.slice(0, 21)}…` : item.label;
      return s(
        "g",
        { class: `bar ${item.className || ""}` },
        s("title", {}, `${item.label}: ${format(item.value)}`),
        s("text", { x: 0, y: y + 17, class: "bar-label" }, label),
        s("rect", { x: labelWidth, y: y + 4, width: barWidth, height: rowHeight - 8, rx: 3 }),
        s("text", { x: labelWidth + barWidth + 6, y: y + 17, class: "bar-value" }, format(item.value)),
      );
    }),
  );
  return h("figure", { class: "figure" }, h("figcaption", {}, title), svg);
}

// Columns over time: [{label, value}] (e.g. pushes per day).
export function columnChart(title, items) {
  const max = Math.max(1, ...items.map((item) => item.value));
  const width = 520;
  const height = 160;
  const column = width / Math.max(1, items.length);
  const svg = s(
    "svg",
    { viewBox: `0 0 ${width} ${height + 20}`, class: "chart", role: "img", "aria-label": title },
    items.map((item, index) => {
      const barHeight = (item.value / max) * height;
      return s(
        "g",
        { class: "bar" },
        s("title", {}, `${item.label}: ${item.value}`),
        s("rect", {
          x: index * column + 2,
          y: height - barHeight,
          width: Math.max(1, column - 4),
          height: barHeight,
          rx: 2,
        }),
        index % Math.ceil(items.length / 6) === 0
          ? s("text", { x: index * column + 2, y: height + 15, class: "bar-label" }, item.label)
          : null,
      );
    }),
  );
  return h("figure", { class: "figure" }, h("figcaption", {}, title), svg);
}

// Distinct, colour-blind-friendly strokes (Okabe-Ito), as attributes: the CSP forbids
// inline styles.
const PALETTE = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000"];

// Lines over days: series [{label, points: [{day: "YYYY-MM-DD", value}]}] on the days
// `days` (every day of the range, oldest first). A day without a point breaks no line:
// it is drawn from the last point to the next. A legend names each line by colour.
export function lineChart(title, days, series, { format = String } = {}) {
  const width = 560;
  const height = 200;
  const left = 70;
  const bottom = 20;
  const plotWidth = width - left - 10;
  const max = Math.max(1, ...series.flatMap((line) => line.points.map((p) => p.value)));
  const index = new Map(days.map((day, i) => [day, i]));
  const x = (day) => left + (days.length > 1 ? (index.get(day) / (days.length - 1)) * plotWidth : plotWidth / 2);
  const y = (value) => 8 + (1 - value / max) * (height - 16);
  const ticks = [0, 0.5, 1].map((share) =>
    s(
      "g",
      { class: "axis" },
      s("line", { x1: left, x2: width - 10, y1: y(max * share), y2: y(max * share), stroke: "#d5d9df" }),
      s("text", { x: left - 6, y: y(max * share) + 4, "text-anchor": "end", class: "bar-label" }, format(Math.round(max * share))),
    ),
  );
  const labels = [days[0], days[days.length - 1]].map((day, i) =>
    s("text", { x: i ? width - 10 : left, y: height + bottom - 4, "text-anchor": i ? "end" : "start", class: "bar-label" }, day),
  );
  const lines = series.map((line, i) => {
    const color = PALETTE[i % PALETTE.length];
    const known = line.points.filter((p) => index.has(p.day));
    const path = known.map((p, n) => `${n ? "L" : "M"}${x(p.day).toFixed(1)},${y(p.value).toFixed(1)}`).join(" ");
    return s(
      "g",
      { class: "line", "data-series": line.label },
      s("title", {}, `${line.label}: ${known.length ? format(known[known.length - 1].value) : "–"}`),
      path ? s("path", { d: path, fill: "none", stroke: color, "stroke-width": 2 }) : null,
      known.map((p) =>
        s("circle", { cx: x(p.day), cy: y(p.value), r: 3, fill: color }, s("title", {}, `${line.label}, ${p.day}: ${format(p.value)}`)),
      ),
    );
  });
  const svg = s(
    "svg",
    { viewBox: `0 0 ${width} ${height + bottom}`, class: "chart line-chart", role: "img", "aria-label": title },
    ticks,
    labels,
    lines,
  );
  const legend = h(
    "ul",
    { class: "legend" },
    series.map((line, i) =>
      h(
        "li",
        {},
        s("svg", { width: 14, height: 14, viewBox: "0 0 14 14", "aria-hidden": "true" }, s("rect", { width: 14, height: 14, rx: 3, fill: PALETTE[i % PALETTE.length] })),
        line.label,
      ),
    ),
  );
  return h("figure", { class: "figure" }, h("figcaption", {}, title), svg, legend);
}
