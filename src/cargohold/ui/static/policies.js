// Namespace settings for pulls and promotions: the scan pull policy and its allow-list,
// trusted keys and the signature policy, promotion gates; and the webhooks' delivery logs.
// Shown on the settings page, which only namespace admins reach; the API decides anyway.
import { api, ApiError } from "./api.js";
import { clear, dangerButton, h, shortDigest, table, when } from "./dom.js";

const SEVERITIES = ["critical", "high", "medium", "low"];

// kit: the app's helpers (section, guarded, announce, badge).
export async function policySections(kit, root, ns) {
  const base = `/v1/namespaces/${encodeURIComponent(ns)}`;
  const parts = [
    ["Scan pull policy", (box) => scanPolicy(kit, box, base)],
    ["Signatures", (box) => signatures(kit, box, base)],
    ["Promotion gates", (box) => promotionGates(kit, box, base)],
    ["Webhook deliveries", (box) => webhookDeliveries(kit, box, base)],
  ];
  await Promise.all(
    parts.map(async ([title, fill]) => {
      const box = h("div", {}, h("p", { class: "muted" }, "Loading…"));
      root.appendChild(kit.section(title, box));
      await kit.guarded(() => fill(box));
    }),
  );
}

// Replace the box's content (Element.append would print a null as "null").
function fill(box, ...children) {
  clear(box).append(...children.filter((child) => child !== null && child !== undefined));
}

// GET that answers null for 404 (nothing set yet).
async function optional(path) {
  try {
    return await api("GET", path);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
}

function select(id, values, selected) {
  return h(
    "select",
    { id },
    values.map(([value, text]) => {
      const option = h("option", { value }, text);
      option.selected = value === selected;
      return option;
    }),
  );
}

function checkbox(id, label, checked) {
  const input = h("input", { type: "checkbox", id });
  input.checked = Boolean(checked);
  return [input, h("div", { class: "check" }, input, h("label", { for: id }, label))];
}

function form(label, children, onSubmit, guarded) {
  const made = h("form", { class: "filters", "aria-label": label }, ...children);
  made.addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(() => onSubmit(made));
  });
  return made;
}

async function scanPolicy(kit, box, base) {
  const { guarded, announce, badge } = kit;
  const path = `${base}/scan-policy`;
  const reload = () => guarded(() => scanPolicy(kit, box, base));
  const [policy, allow] = await Promise.all([optional(path), api("GET", `${path}/allowlist`)]);
  const severity = select(
    "scan-severity",
    SEVERITIES.map((s) => [s, s]),
    policy ? policy.min_severity : "critical",
  );
  const [unscanned, unscannedRow] = checkbox(
    "scan-unscanned",
    "Let images with no scan yet through",
    policy ? policy.allow_unscanned : true,
  );
  const save = form(
    "Scan pull policy",
    [
      h("div", {}, h("label", { for: "scan-severity" }, "Refuse pulls with findings at or above"), severity),
      unscannedRow,
      h("button", { type: "submit" }, "Save scan policy"),
    ],
    async () => {
      await api("PUT", path, { min_severity: severity.value, allow_unscanned: unscanned.checked });
      announce("Scan policy saved.", "ok");
      await reload();
    },
    guarded,
  );
  const vulnerability = h("input", { id: "allow-vuln", required: true, maxlength: 255, placeholder: "CVE-2024-1234" });
  const until = h("input", { id: "allow-until", type: "date" });
  const reason = h("input", { id: "allow-reason", maxlength: 1000 });
  const except = form(
    "Add an exception",
    [
      h("div", {}, h("label", { for: "allow-vuln" }, "Vulnerability"), vulnerability),
      h("div", {}, h("label", { for: "allow-until" }, "Until (optional)"), until),
      h("div", {}, h("label", { for: "allow-reason" }, "Reason"), reason),
      h("button", { type: "submit" }, "Add exception"),
    ],
    async () => {
      const body = { vulnerability: vulnerability.value.trim(), reason: reason.value.trim() || null };
      if (until.value) body.expires_at = `${until.value}T23:59:59Z`;
      await api("POST", `${path}/allowlist`, body);
      announce(`${body.vulnerability} is excepted.`, "ok");
      await reload();
    },
    guarded,
  );
  fill(box, 
    h(
      "p",
      {},
      policy
        ? `Pulls of images with findings of ${policy.min_severity} severity or worse are refused` +
            (policy.allow_unscanned ? "; images not scanned yet pass." : ", and so are images not scanned yet.")
        : "No scan policy: every pull is allowed.",
    ),
    save,
    policy
      ? dangerButton("Remove", "Remove the scan policy", "Remove the scan policy? Every pull is then allowed.", guarded, async () => {
          await api("DELETE", path);
          announce("Scan policy removed.", "ok");
          await reload();
        })
      : null,
    h("h3", {}, "Allow-list"),
    allow.entries.length
      ? table(
          "Excepted vulnerabilities",
          ["Vulnerability", "Until", "Reason", "Added", ""],
          allow.entries.map((e) =>
            h(
              "tr",
              {},
              h("td", {}, h("code", {}, e.vulnerability), e.expired ? [" ", badge("expired", "muted")] : null),
              h("td", {}, e.expires_at ? when(e.expires_at) : "removed by hand"),
              h("td", {}, e.reason || "–"),
              h("td", {}, when(e.created_at), e.created_by ? ` by ${e.created_by}` : ""),
              h(
                "td",
                {},
                dangerButton("Remove", `Remove the exception ${e.vulnerability}`, `Stop excepting ${e.vulnerability}?`, guarded, async () => {
                  await api("DELETE", `${path}/allowlist/${encodeURIComponent(e.vulnerability)}`);
                  await reload();
                }),
              ),
            ),
          ),
          { class: "allowlist" },
        )
      : h("p", { class: "muted" }, "No exceptions."),
    except,
  );
}

async function signatures(kit, box, base) {
  const { guarded, announce, badge } = kit;
  const reload = () => guarded(() => signatures(kit, box, base));
  const [keys, policy] = await Promise.all([
    api("GET", `${base}/keys`),
    api("GET", `${base}/signature-policy`),
  ]);
  const name = h("input", { id: "key-name", required: true, maxlength: 64, pattern: "[A-Za-z0-9_\\-]+" });
  const pem = h("textarea", { id: "key-pem", required: true, rows: 4, cols: 64, placeholder: "-----BEGIN PUBLIC KEY-----" });
  const add = form(
    "Add a trusted key",
    [
      h("div", {}, h("label", { for: "key-name" }, "Key name"), name),
      h("div", {}, h("label", { for: "key-pem" }, "Public key (PEM, as cosign.pub)"), pem),
      h("button", { type: "submit" }, "Add key"),
    ],
    async () => {
      const made = await api("POST", `${base}/keys`, { name: name.value.trim(), public_key: pem.value });
      announce(`Key ${made.name} is trusted.`, "ok");
      await reload();
    },
    guarded,
  );
  const toggle = h(
    "button",
    {
      type: "button",
      class: policy.required ? "secondary" : "",
      onclick: () =>
        guarded(async () => {
          if (policy.required) await api("DELETE", `${base}/signature-policy`);
          else await api("PUT", `${base}/signature-policy`, {});
          announce(policy.required ? "Signatures are no longer required." : "Pulls now need a signature.", "ok");
          await reload();
        }),
    },
    policy.required ? "Stop requiring signatures" : "Require signatures on pull",
  );
  fill(box, 
    h(
      "p",
      {},
      "Pulls: ",
      policy.required ? badge("signature by a trusted key required", "ok") : badge("no signature needed", "muted"),
      " ",
      toggle,
    ),
    keys.keys.length
      ? table(
          "Trusted keys",
          ["Name", "Fingerprint", "Added", ""],
          keys.keys.map((k) =>
            h(
              "tr",
              {},
              h("td", {}, k.name),
              h("td", {}, h("code", { title: k.fingerprint }, shortDigest(`sha256:${k.fingerprint}`))),
              h("td", {}, when(k.created_at), k.created_by ? ` by ${k.created_by}` : ""),
              h(
                "td",
                {},
                dangerButton("Remove", `Remove the key ${k.name}`, `Stop trusting the key ${k.name}?`, guarded, async () => {
                  await api("DELETE", `${base}/keys/${encodeURIComponent(k.name)}`);
                  await reload();
                }),
              ),
            ),
          ),
          { class: "keys" },
        )
      : h("p", { class: "muted" }, "No trusted keys."),
    add,
  );
}

async function promotionGates(kit, box, base) {
  const { guarded, announce } = kit;
  const path = `${base}/promotion-gates`;
  const reload = () => guarded(() => promotionGates(kit, box, base));
  const gates = await optional(path);
  const severity = select(
    "gate-severity",
    [["", "no scan check"], ...SEVERITIES.map((s) => [s, `${s} or worse`])],
    gates && gates.max_severity ? gates.max_severity : "",
  );
  const [signed, signedRow] = checkbox("gate-signed", "Signed by a trusted key", gates && gates.require_signature);
  const [immutable, immutableRow] = checkbox(
    "gate-immutable",
    "Target tag protected by an immutable-tag rule",
    gates && gates.require_immutable,
  );
  fill(box, 
    h("p", {}, gates ? "Promotions into this namespace must pass these gates." : "No gates: every promotion passes."),
    form(
      "Promotion gates",
      [
        h("div", {}, h("label", { for: "gate-severity" }, "Refuse findings at"), severity),
        signedRow,
        immutableRow,
        h("button", { type: "submit" }, "Save gates"),
      ],
      async () => {
        await api("PUT", path, {
          max_severity: severity.value || null,
          require_signature: signed.checked,
          require_immutable: immutable.checked,
        });
        announce("Promotion gates saved.", "ok");
        await reload();
      },
      guarded,
    ),
    gates
      ? dangerButton("Remove", "Remove the promotion gates", "Remove the gates? Every promotion then passes.", guarded, async () => {
          await api("DELETE", path);
          await reload();
        })
      : null,
  );
}

async function webhookDeliveries(kit, box, base) {
  const { guarded, announce, badge } = kit;
  const reload = () => guarded(() => webhookDeliveries(kit, box, base));
  const hooks = (await api("GET", `${base}/webhooks`)).webhooks;
  if (!hooks.length) {
    fill(box, h("p", { class: "muted" }, "No webhooks."));
    return;
  }
  const logs = await Promise.all(
    hooks.map((w) => api("GET", `${base}/webhooks/${w.id}/deliveries?limit=20`)),
  );
  const stateKind = { delivered: "ok", failed: "sev-high", queued: "muted", sending: "muted" };
  fill(box, 
    ...hooks.map((w, index) =>
      h(
        "div",
        { class: "deliveries" },
        h("h3", {}, "To ", h("code", {}, w.url)),
        logs[index].deliveries.length
          ? table(
              `Deliveries to ${w.url}, newest first`,
              ["Event", "State", "Status", "Attempts", "Created", "Answer", ""],
              logs[index].deliveries.map((d) =>
                h(
                  "tr",
                  {},
                  h("td", {}, d.event_type),
                  h("td", {}, badge(d.state, stateKind[d.state])),
                  h("td", {}, d.last_status_code === null ? d.last_error || "–" : String(d.last_status_code)),
                  h("td", { class: "num" }, String(d.attempts)),
                  h("td", {}, when(d.created_at)),
                  h("td", {}, d.response_excerpt ? h("code", {}, d.response_excerpt.slice(0, 120)) : "–"),
                  h(
                    "td",
                    {},
                    h(
                      "button",
                      {
                        type: "button",
                        class: "small",
                        "aria-label": `Redeliver delivery ${d.id}`,
                        onclick: () =>
                          guarded(async () => {
                            const again = await api(
                              "POST",
                              `${base}/webhooks/${w.id}/deliveries/${d.id}/redeliver`,
                            );
                            announce(`Sent again as delivery ${again.id}: ${again.state}.`, "ok");
                            await reload();
                          }),
                      },
                      "Redeliver",
                    ),
                  ),
                ),
              ),
              { class: "delivery-log" },
            )
          : h("p", { class: "muted" }, "No deliveries yet."),
      ),
    ),
  );
}
