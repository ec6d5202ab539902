// The signed-in user's own account: personal access tokens and web UI sessions.
import { api } from "./api.js";
import { clear, confirmDialog, copyable, h, table, when } from "./dom.js";

// kit: the app's page helpers (page, section, guarded, announce, badge) and the session.
export async function accountPage(kit) {
  const { page, guarded, session } = kit;
  const root = page(`Account of ${session.username}`);
  await guarded(async () => {
    const user = encodeURIComponent(session.username);
    root.appendChild(await tokensSection(kit, `/v1/users/${user}/tokens`));
    root.appendChild(await sessionsSection(kit, `/v1/users/${user}/sessions`));
  });
}

function tokenState(token, badge) {
  if (token.revoked) return badge("revoked", "muted");
  if (token.expires_at && new Date(token.expires_at) <= new Date()) return badge("expired", "muted");
  return badge("active", "ok");
}

async function tokensSection(kit, base) {
  const { section, guarded, announce, badge } = kit;
  const secretBox = h("div", { id: "token-secret" });
  const listBox = h("div", {});

  async function reload() {
    const tokens = await api("GET", base);
    clear(listBox);
    listBox.appendChild(
      tokens.length
        ? table(
            "Personal access tokens",
            ["Name", "Created", "Expires", "State", ""],
            tokens.map((token) =>
              h(
                "tr",
                {},
                h("td", {}, token.name),
                h("td", {}, when(token.created_at)),
                h("td", {}, token.expires_at ? when(token.expires_at) : "never"),
                h("td", {}, tokenState(token, badge)),
                h(
                  "td",
                  { class: "actions" },
                  token.revoked
                    ? null
                    : h(
                        "button",
                        {
                          type: "button",
                          class: "small danger",
                          "aria-label": `Revoke the token ${token.name}`,
                          onclick: () =>
                            guarded(async () => {
                              const question = `Revoke the token ${token.name}? It stops working at once.`;
                              if (!(await confirmDialog("Revoke token", question, "Revoke"))) return;
                              await api("DELETE", `${base}/${encodeURIComponent(token.name)}`);
                              announce(`Token ${token.name} revoked.`, "ok");
                              await reload();
                            }),
                        },
                        "Revoke",
                      ),
                ),
              ),
            ),
            { class: "tokens" },
          )
        : h("p", { class: "muted" }, "No tokens yet."),
    );
  }

  const name = h("input", { id: "token-name", required: true, maxlength: 64, autocomplete: "off" });
  const days = h("input", { id: "token-days", type: "number", min: 1, max: 36500, placeholder: "never" });
  const form = h(
    "form",
    { class: "filters", "aria-label": "New personal access token" },
    h("div", {}, h("label", { for: "token-name" }, "Token name"), name),
    h("div", {}, h("label", { for: "token-days" }, "Expires in days"), days),
    h("button", { type: "submit" }, "Create token"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(async () => {
      const body = { name: name.value.trim() };
      if (days.value.trim()) body.expires_in_days = Number(days.value);
      const made = await api("POST", base, body);
      form.reset();
      clear(secretBox);
      const done = h(
        "button",
        { type: "button", class: "secondary small", onclick: () => clear(secretBox) },
        "I have stored it",
      );
      secretBox.appendChild(
        h(
          "div",
          { class: "notice ok secret", role: "alert" },
          h(
            "p",
            {},
            `Created the token ${made.name}. It is shown only now: store it safely, and use it `
              + "as the password with your user name.",
          ),
          copyable("Token", made.token),
          done,
        ),
      );
      await reload();
      done.focus();
    });
  });
  await reload();
  return section(
    "Personal access tokens",
    h(
      "p",
      { class: "muted" },
      "Tokens sign in docker, podman or scripts as you, instead of your password.",
    ),
    secretBox,
    listBox,
    h("h3", {}, "New token"),
    form,
  );
}

async function sessionsSection(kit, base) {
  const { section, guarded, announce, badge } = kit;
  const listBox = h("div", {});

  async function reload() {
    const sessions = await api("GET", base);
    clear(listBox);
    listBox.appendChild(
      table(
        "Signed-in sessions",
        ["Signed in", "Last used", "From", "Browser", ""],
        sessions.map((s) =>
          h(
            "tr",
            {},
            h("td", {}, when(s.created_at)),
            h("td", {}, when(s.last_seen_at)),
            h("td", {}, s.address || "–"),
            h("td", {}, s.user_agent || "–"),
            h(
              "td",
              { class: "actions" },
              s.current
                ? badge("this session", "ok")
                : h(
                    "button",
                    {
                      type: "button",
                      class: "small danger",
                      "aria-label": `End the session signed in ${s.created_at} from ${s.address || "unknown"}`,
                      onclick: () =>
                        guarded(async () => {
                          const question = "End this session? Whoever uses it is signed out at once.";
                          if (!(await confirmDialog("End session", question, "End session"))) return;
                          await api("DELETE", `${base}/${encodeURIComponent(s.id)}`);
                          announce("Session ended.", "ok");
                          await reload();
                        }),
                    },
                    "End",
                  ),
            ),
          ),
        ),
        { class: "sessions" },
      ),
    );
  }

  const others = h(
    "button",
    {
      type: "button",
      class: "secondary",
      onclick: () =>
        guarded(async () => {
          const question = "Sign out every other session of yours, in every browser?";
          if (!(await confirmDialog("Sign out elsewhere", question, "Sign out elsewhere"))) return;
          const result = await api("DELETE", base);
          announce(`Ended ${result.ended} other session${result.ended === 1 ? "" : "s"}.`, "ok");
          await reload();
        }),
    },
    "Sign out everywhere else",
  );
  await reload();
  return section("Sessions", listBox, others);
}
