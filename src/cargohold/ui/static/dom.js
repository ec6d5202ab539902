// DOM helpers. Every value is put on the page as a text node or an attribute value,
// never parsed as HTML: tag names, annotations and labels are attacker-controlled.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "checked") {
      el.checked = true; // and the default, which form.reset() restores
      el.defaultChecked = true;
    } else if (key === "value") {
      el.value = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

const SVG = "http://www.w3.org/2000/svg";

export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

export function whenText(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

// A time as a <time> element: minutes shown, seconds in its title.
export function when(iso) {
  const full = whenText(iso);
  if (!iso || full === String(iso)) return full;
  return h("time", { datetime: String(iso), title: full }, `${full.slice(0, 16)} UTC`);
}

export function shortDigest(digest) {
  if (!digest) return "–";
  const [algorithm, hex] = String(digest).split(":");
  return hex ? `${algorithm}:${hex.slice(0, 12)}` : String(digest);
}

// A link inside the app: navigates without reloading.
export function link(href, ...children) {
  return h("a", { href, "data-nav": "1" }, ...children);
}

export function table(caption, headers, rows, extra = {}) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      extra,
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, headers.map((text) => h("th", { scope: "col" }, text)))),
      h("tbody", {}, rows),
    ),
  );
}

// A <pre> with a Copy button: pull commands.
export function copyable(label, text) {
  const code = h("code", {}, text);
  const button = h(
    "button",
    {
      type: "button",
      class: "small",
      "aria-label": `Copy ${label}`,
      onclick: async () => {
        try {
          await navigator.clipboard.writeText(text);
          button.textContent = "Copied";
        } catch {
          const range = document.createRange();
          range.selectNodeContents(code);
          const selection = window.getSelection();
          selection.removeAllRanges();
          selection.addRange(range);
          button.textContent = "Selected: press Ctrl+C";
        }
        setTimeout(() => (button.textContent = "Copy"), 2000);
      },
    },
    "Copy",
  );
  return h("div", { class: "copy" }, h("span", { class: "copy-label" }, label), code, button);
}

// A modal confirmation: resolves true when confirmed.
export function confirmDialog(title, message, action) {
  return new Promise((resolve) => {
    const dialog = h(
      "dialog",
      { "aria-labelledby": "dialog-title", class: "dialog" },
      h("h2", { id: "dialog-title" }, title),
      h("p", {}, message),
      h(
        "form",
        { method: "dialog", class: "actions" },
        h("button", { value: "cancel", type: "submit", class: "secondary" }, "Cancel"),
        h("button", { value: "ok", type: "submit", class: "danger" }, action),
      ),
    );
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "ok");
      dialog.remove();
    });
    document.body.appendChild(dialog);
    dialog.showModal();
  });
}

// A button for a destructive action: asks first, then runs `work` through `guarded`
// (the page's error reporting).
export function dangerButton(text, label, question, guarded, work) {
  return h(
    "button",
    {
      type: "button",
      class: "small danger",
      "aria-label": label,
      onclick: () =>
        guarded(async () => {
          if (await confirmDialog("Confirm", question, text)) await work();
        }),
    },
    text,
  );
}
