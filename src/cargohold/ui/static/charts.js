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
