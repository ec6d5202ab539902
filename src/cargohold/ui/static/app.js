// The cargohold web UI: a single-page app over the admin API (/api/v1/...).
import { api, ApiError, basicAuth, query, repoPath, setCsrf, settled } from "./api.js";
import { accountPage } from "./account.js";
import { barChart, columnChart, lineChart } from "./charts.js";
import { policySections } from "./policies.js";
import {
  bytes,
  clear,
  confirmDialog,
  dangerButton,
  copyable,
  h,
  link,
  shortDigest,
  table,
  when,
} from "./dom.js";

const SEVERITIES = ["critical", "high", "medium", "low", "unknown"];
const TAG_PAGE = 50;
const main = () => document.getElementById("main");
let session = null;

// -- navigation
function navigate(href, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", href);
  else history.pushState(null, "", href);
  render();
}

document.addEventListener("click", (event) => {
  const anchor = event.target.closest && event.target.closest("a[data-nav]");
  if (!anchor || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  navigate(anchor.getAttribute("href"));
});
window.addEventListener("popstate", () => render());

function params() {
  return new URLSearchParams(location.search);
}

function announce(message, kind = "info") {
  const status = document.getElementById("status");
  clear(status);
  if (message) status.appendChild(h("p", { class: `notice ${kind}` }, message));
}

function page(title, ...children) {
  document.title = `${title} · cargohold`;
  const root = clear(main());
  root.appendChild(h("h1", {}, title));
  for (const child of children) if (child) root.appendChild(child);
  return root;
}

function section(title, ...children) {
  return h("section", { "aria-label": title }, h("h2", {}, title), ...children);
}

function badge(text, kind) {
  return h("span", { class: `badge ${kind || ""}` }, text);
}

function errorBox(error) {
  if (error instanceof ApiError && error.status === 403) {
    return h("p", { class: "notice error", role: "alert" }, `Not allowed: ${error.message}`);
  }
  return h("p", { class: "notice error", role: "alert" }, error.message || String(error));
}

async function guarded(work) {
  try {
    await work();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      session = null;
      const next = location.pathname + location.search;
      navigate(`/ui/login${query({ next })}`, { replace: true });
      return;
    }
    main().appendChild(errorBox(error));
  }
}

function renderNav() {
  const nav = clear(document.getElementById("nav"));
  if (!session) return;
  nav.appendChild(
    h(
      "ul",
      {},
      h("li", {}, link("/ui/", "Repositories")),
      h("li", {}, link("/ui/namespaces", "Namespaces")),
      h("li", {}, link("/ui/usage", "Usage")),
      h("li", {}, link("/ui/audit", "Audit log")),
      session.is_admin ? h("li", {}, link("/ui/replication", "Replication")) : null,
      h("li", {}, link("/ui/account", "Account")),
      h(
        "li",
        { class: "who" },
        h("span", {}, session.username),
        h("button", { type: "button", class: "secondary small", onclick: signOut }, "Sign out"),
      ),
    ),
  );
}

async function signOut() {
  await settled(); // no answer to an earlier request may renew the cookie afterwards
  try {
    await api("DELETE", "/v1/session");
  } catch {
    // signed out already
  }
  session = null;
  setCsrf(null);
  renderNav();
  navigate("/ui/login", { replace: true });
}

// -- pages
const ROUTES = {
  "/": repositoriesPage,
  "/ui": repositoriesPage,
  "/ui/": repositoriesPage,
  "/ui/repositories": repositoriesPage,
  "/ui/login": loginPage,
  "/ui/repository": repositoryPage,
  "/ui/manifest": manifestPage,
  "/ui/vulnerabilities": vulnerabilitiesPage,
  "/ui/history": historyPage,
  "/ui/sbom": sbomPage,
  "/ui/namespaces": namespacesPage,
  "/ui/namespace": namespacePage,
  "/ui/audit": auditPage,
  "/ui/usage": usagePage,
  "/ui/replication": replicationPage,
  "/ui/account": () => accountPage({ page, section, guarded, announce, badge, session }),
};

let renders = 0;

async function render() {
  const token = ++renders;
  announce("");
  const view = ROUTES[location.pathname] || notFoundPage;
  if (view !== loginPage && !session) {
    try {
      session = await api("GET", "/v1/session");
      setCsrf(session.csrf_token);
      if (token !== renders) return; // navigated again meanwhile
    } catch {
      if (token !== renders) return;
      session = null;
      const next = location.pathname + location.search;
      history.replaceState(null, "", `/ui/login${query({ next })}`);
      renderNav();
      loginPage();
      return;
    }
  }
  renderNav();
  await view();
  // Keyboard and screen-reader users land on the new page, unless it focused a field.
  if (!main().contains(document.activeElement)) main().focus();
}

function notFoundPage() {
  page("Page not found", h("p", {}, link("/ui/", "Back to the repositories")));
}

// Where to go after signing in: a page of this UI only (never another origin).
function safeNext(next) {
  if (!next) return "/ui/";
  try {
    const url = new URL(next, location.origin);
    if (url.origin === location.origin && (url.pathname === "/" || url.pathname.startsWith("/ui"))) {
      return url.pathname + url.search;
    }
  } catch {
    // not a URL
  }
  return "/ui/";
}

function loginPage() {
  const error = h("div", { role: "alert" });
  const username = h("input", {
    id: "username",
    name: "username",
    autocomplete: "username",
    required: true,
  });
  const password = h("input", {
    id: "password",
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const form = h(
    "form",
    { class: "login", "aria-label": "Sign in" },
    h("label", { for: "username" }, "User name"),
    username,
    h("label", { for: "password" }, "Password"),
    password,
    h("button", { type: "submit" }, "Sign in"),
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(error);
    try {
      session = await api(
        "POST",
        "/v1/session",
        undefined,
        basicAuth(username.value, password.value),
      );
      setCsrf(session.csrf_token);
      navigate(safeNext(params().get("next")), { replace: true });
    } catch (failure) {
      error.appendChild(h("p", { class: "notice error" }, failure.message));
    }
  });
  page("Sign in", form);
  username.focus();
}

// Repositories: search, filters, sort, pages.
async function repositoriesPage() {
  const current = params();
  const search = h("input", {
    id: "q",
    type: "search",
    value: current.get("q") || "",
    placeholder: "name contains…",
  });
  const namespace = h(
    "select",
    { id: "namespace" },
    h("option", { value: "" }, "All namespaces"),
    current.get("namespace") ? h("option", { value: current.get("namespace") }, current.get("namespace")) : null,
  );
  namespace.value = current.get("namespace") || "";
  const visibility = h(
    "select",
    { id: "visibility" },
    h("option", { value: "" }, "Any visibility"),
    h("option", { value: "public" }, "Public"),
    h("option", { value: "private" }, "Private"),
  );
  visibility.value = current.get("visibility") || "";
  const sort = h(
    "select",
    { id: "sort" },
    h("option", { value: "name" }, "Name"),
    h("option", { value: "pushed" }, "Last push"),
    h("option", { value: "size" }, "Size"),
  );
  sort.value = current.get("sort") || "name";
  const pushed = h(
    "select",
    { id: "pushed" },
    h("option", { value: "" }, "Any time"),
    [
      ["1", "Last day"],
      ["7", "Last 7 days"],
      ["30", "Last 30 days"],
      ["365", "Last year"],
    ].map(([value, text]) => h("option", { value }, text)),
  );
  pushed.value = current.get("pushed_within_days") || "";
  const size = h(
    "select",
    { id: "size" },
    h("option", { value: "" }, "Any size"),
    [
      [String(1024 ** 2), "1 MiB or more"],
      [String(100 * 1024 ** 2), "100 MiB or more"],
      [String(1024 ** 3), "1 GiB or more"],
    ].map(([value, text]) => h("option", { value }, text)),
  );
  size.value = current.get("min_bytes") || "";
  const results = h("div", { id: "results" });
  const filters = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Search repositories" },
    h("div", {}, h("label", { for: "q" }, "Search"), search),
    h("div", {}, h("label", { for: "namespace" }, "Namespace"), namespace),
    h("div", {}, h("label", { for: "visibility" }, "Visibility"), visibility),
    h("div", {}, h("label", { for: "pushed" }, "Last push"), pushed),
    h("div", {}, h("label", { for: "size" }, "Size"), size),
    h("div", {}, h("label", { for: "sort" }, "Sort by"), sort),
  );
  // The page first, at once: a view must not replace another that was rendered meanwhile.
  page("Repositories", filters, results);
  api("GET", "/v1/namespaces")
    .then((namespaces) => {
      for (const ns of namespaces) {
        if (ns.name !== current.get("namespace")) namespace.appendChild(h("option", { value: ns.name }, ns.name));
      }
    })
    .catch(() => {});

  const load = async (after) => {
    if (!results.isConnected) return; // another page is shown now
    const state = {
      q: search.value.trim(),
      namespace: namespace.value,
      visibility: visibility.value,
      pushed_within_days: pushed.value,
      min_bytes: size.value,
      sort: sort.value === "name" ? "" : sort.value,
    };
    history.replaceState(null, "", `/ui/${query(state)}`);
    const data = await api(
      "GET",
      `/v1/repositories${query({ ...state, sort: sort.value, limit: 25, after })}`,
    );
    if (!results.isConnected) return;
    clear(results);
    const rows = data.repositories.map((repo) =>
      h(
        "tr",
        {},
        h("td", {}, link(`/ui/repository${query({ name: repo.name })}`, repo.name)),
        h("td", {}, badge(repo.public ? "public" : "private", repo.public ? "ok" : "")),
        h("td", { class: "num" }, bytes(repo.stored_bytes)),
        h("td", { class: "num" }, String(repo.manifests)),
        h("td", {}, when(repo.last_push_at), repo.last_push_by ? ` by ${repo.last_push_by}` : ""),
      ),
    );
    results.appendChild(
      h("p", { class: "muted" }, `${data.total} repositor${data.total === 1 ? "y" : "ies"}`),
    );
    if (rows.length) {
      results.appendChild(
        table(
          "Repositories",
          ["Name", "Visibility", "Stored", "Manifests", "Last tag change"],
          rows,
          { class: "repos" },
        ),
      );
      results.appendChild(
        barChart(
          "Storage by repository (this page)",
          data.repositories.map((repo) => ({ label: repo.name, value: repo.stored_bytes })),
          { format: bytes },
        ),
      );
    } else {
      results.appendChild(h("p", {}, "No repositories match."));
    }
    if (data.next) {
      results.appendChild(
        h("button", { type: "button", onclick: () => guarded(() => load(data.next)) }, "Next page"),
      );
    }
  };
  let timer = null;
  const reload = () => guarded(() => load());
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(reload, 250);
  });
  for (const control of [namespace, visibility, pushed, size, sort]) control.addEventListener("change", reload);
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    reload();
  });
  await guarded(() => load());
}

function scanBadge(scan) {
  if (!scan) return badge("not scanned", "muted");
  if (scan.status !== "scanned") return badge(scan.status, "muted");
  const counts = scan.severity_counts || {};
  const found = SEVERITIES.filter((severity) => counts[severity]);
  if (!found.length) return badge("no findings", "ok");
  return h(
    "span",
    { class: "severities" },
    found.map((severity) => badge(`${counts[severity]} ${severity}`, `sev-${severity}`)),
  );
}

async function repositoryAccess(name) {
  return api("GET", `/v1/repositories/${repoPath(name)}/access`);
}

async function repositoryPage() {
  const name = params().get("name") || "";
  const root = page(name);
  await guarded(async () => {
    const access = await repositoryAccess(name);
    const canDelete = access.actions.includes("delete");
    const host = location.host;
    const namespace = name.split("/")[0];
    root.appendChild(
      h(
        "p",
        { class: "muted" },
        `You may: ${access.actions.join(", ")}. `,
        access.namespace_admin
          ? link(`/ui/namespace${query({ ns: namespace })}`, `Settings of ${namespace}`)
          : null,
      ),
    );
    if (access.namespace_admin) root.appendChild(repositoryVisibility(name, access));
    const tagsBox = h("div", { id: "tags" });
    root.appendChild(section("Tags", tagsBox));
    const activity = h("div");
    root.appendChild(section("Push activity", activity));
    let cursors = [null];
    const tagSearch = h("input", { id: "tag-q", type: "search", placeholder: "tag contains…" });
    const tagFilter = h(
      "form",
      { class: "filters", role: "search", "aria-label": "Search tags" },
      h("div", {}, h("label", { for: "tag-q" }, "Search tags"), tagSearch),
    );
    tagFilter.addEventListener("submit", (event) => event.preventDefault());
    let searchTimer = null;
    tagSearch.addEventListener("input", () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => {
        cursors = [null];
        guarded(() => loadTags(0));
      }, 250);
    });
    tagsBox.before(tagFilter);

    const loadTags = async (index) => {
      const last = cursors[index];
      const q = tagSearch.value.trim();
      const data = await api(
        "GET",
        `/v1/repositories/${repoPath(name)}/tag-details${query({ n: TAG_PAGE, last, q })}`,
      );
      if (q !== tagSearch.value.trim()) return; // a newer search is on its way
      cursors[index + 1] = data.next;
      clear(tagsBox);
      if (!data.tags.length) {
        tagsBox.appendChild(h("p", {}, q ? "No tags match." : "No tags."));
        return;
      }
      tagsBox.appendChild(copyable("Pull", `docker pull ${host}/${name}:${data.tags[0].name}`));
      const rows = data.tags.map((tag) => {
        const manifestHref = `/ui/manifest${query({ name, ref: tag.name })}`;
        const actions = h(
          "td",
          { class: "actions" },
          link(`/ui/history${query({ name, tag: tag.name })}`, "History"),
          " ",
          link(`/ui/vulnerabilities${query({ name, ref: tag.name })}`, "Vulnerabilities"),
          " ",
          h(
            "button",
            {
              type: "button",
              class: "small secondary",
              "aria-label": `Copy pull command for ${tag.name}`,
              onclick: (event) => {
                navigator.clipboard
                  .writeText(`docker pull ${host}/${name}:${tag.name}`)
                  .then(() => (event.target.textContent = "Copied"))
                  .catch(() => (event.target.textContent = "Copy failed"));
              },
            },
            "Copy pull",
          ),
          canDelete
            ? h(
                "button",
                {
                  type: "button",
                  class: "small danger",
                  "aria-label": `Delete tag ${tag.name}`,
                  onclick: () =>
                    guarded(async () => {
                      const ok = await confirmDialog(
                        "Delete tag",
                        `Delete the tag ${tag.name} of ${name}? The manifest stays; the ` +
                          "tag's history keeps the change, so it can be rolled back.",
                        "Delete tag",
                      );
                      if (!ok) return;
                      await api(
                        "DELETE",
                        `/v1/repositories/${repoPath(name)}/tags/${encodeURIComponent(tag.name)}`,
                      );
                      announce(`Deleted the tag ${tag.name}.`, "ok");
                      await loadTags(index);
                    }),
                },
                "Delete",
              )
            : null,
        );
        return h(
          "tr",
          {},
          h("th", { scope: "row" }, link(manifestHref, tag.name)),
          h("td", { title: tag.digest }, h("code", {}, shortDigest(tag.digest))),
          h("td", {}, tag.platforms.length ? tag.platforms.join(", ") : mediaLabel(tag.media_type)),
          h("td", { class: "num" }, bytes(tag.total_size === null ? tag.manifest_size : tag.total_size)),
          h("td", {}, when(tag.pushed_at), tag.pushed_by ? h("div", { class: "muted" }, `by ${tag.pushed_by}`) : null),
          h("td", {}, tag.pulled_at ? when(tag.pulled_at) : "–"),
          h("td", {}, scanBadge(tag.scan)),
          actions,
        );
      });
      tagsBox.appendChild(
        table(
          `Tags of ${name}, page ${index + 1}`,
          ["Tag", "Digest", "Platforms", "Size", "Pushed", "Last pull", "Scan", "Actions"],
          rows,
          { class: "tags" },
        ),
      );
      const pager = h("div", { class: "pager" });
      if (index > 0) {
        pager.appendChild(
          h(
            "button",
            { type: "button", class: "secondary", onclick: () => guarded(() => loadTags(index - 1)) },
            "Previous page",
          ),
        );
      }
      if (data.next) {
        pager.appendChild(
          h(
            "button",
            { type: "button", onclick: () => guarded(() => loadTags(index + 1)) },
            "Next page",
          ),
        );
      }
      tagsBox.appendChild(pager);
    };
    await loadTags(0);

    const recent = await api("GET", `/v1/repositories/${repoPath(name)}/history${query({ limit: 500 })}`);
    activity.appendChild(pushActivity(recent.events));
  });
}

function repositoryVisibility(name, access) {
  const choice = h(
    "select",
    { id: "repo-visibility" },
    h("option", { value: "inherit" }, "Inherit the namespace's"),
    h("option", { value: "public" }, "Public"),
    h("option", { value: "private" }, "Private"),
  );
  choice.value = access.visibility;
  const state = h("span", { class: "muted" }, access.public ? " Public now." : " Private now.");
  const form = h(
    "form",
    { class: "filters", "aria-label": "Repository visibility" },
    h("div", {}, h("label", { for: "repo-visibility" }, "Visibility"), choice),
    h("button", { type: "submit" }, "Save visibility"),
    state,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(async () => {
      const value = choice.value === "inherit" ? null : choice.value === "public";
      const saved = await api("PUT", `/v1/repositories/${repoPath(name)}/visibility`, { public: value });
      state.textContent = saved.effective ? " Public now." : " Private now.";
      announce(`${name} is ${saved.effective ? "public" : "private"} now.`, "ok");
    });
  });
  return form;
}

function pushActivity(events) {
  const days = [];
  const today = new Date();
  for (let back = 29; back >= 0; back -= 1) {
    const day = new Date(today.getTime() - back * 86400000).toISOString().slice(0, 10);
    days.push({ label: day.slice(5), key: day, value: 0 });
  }
  const byKey = new Map(days.map((day) => [day.key, day]));
  for (const event of events) {
    const day = byKey.get(String(event.at).slice(0, 10));
    if (day && event.action !== "deleted") day.value += 1;
  }
  return columnChart("Tag changes per day, last 30 days", days);
}

function mediaLabel(mediaType) {
  if (!mediaType) return "–";
  if (mediaType.includes("index") || mediaType.includes("list")) return "index";
  if (mediaType.includes("manifest")) return "image";
  return mediaType;
}

function dl(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs
      .filter(([, value]) => value !== null && value !== undefined && value !== "")
      .map(([key, value]) => [h("dt", {}, key), h("dd", {}, value)]),
  );
}

function annotationsTable(caption, annotations) {
  const entries = Object.entries(annotations || {});
  if (!entries.length) return h("p", { class: "muted" }, "None.");
  return table(
    caption,
    ["Key", "Value"],
    entries.map(([key, value]) => h("tr", {}, h("td", {}, h("code", {}, key)), h("td", {}, value))),
    { class: "annotations" },
  );
}

async function manifestPage() {
  const name = params().get("name") || "";
  const ref = params().get("ref") || "";
  const root = page(`${name}${ref.includes(":") ? "@" : ":"}${ref}`);
  await guarded(async () => {
    const m = await api(
      "GET",
      `/v1/repositories/${repoPath(name)}/manifests/${encodeURIComponent(ref)}`,
    );
    const host = location.host;
    root.appendChild(
      h(
        "nav",
        { class: "crumbs", "aria-label": "Breadcrumbs" },
        link(`/ui/repository${query({ name })}`, name),
        " · ",
        link(`/ui/vulnerabilities${query({ name, ref })}`, "Vulnerabilities"),
        " · ",
        link(`/ui/sbom${query({ name, ref })}`, "Packages (SBOM)"),
        ref.includes(":") ? null : [" · ", link(`/ui/history${query({ name, tag: ref })}`, "Tag history")],
      ),
    );
    const access = await repositoryAccess(name);
    if (access.actions.includes("delete")) {
      root.appendChild(
        h(
          "button",
          {
            type: "button",
            class: "danger",
            onclick: () =>
              guarded(async () => {
                const ok = await confirmDialog(
                  "Delete manifest",
                  `Delete ${shortDigest(m.digest)} from ${name}, and every tag that names it? ` +
                    "The tags' history keeps the change.",
                  "Delete manifest",
                );
                if (!ok) return;
                await api("DELETE", `/v1/repositories/${repoPath(name)}/manifests/${encodeURIComponent(m.digest)}`);
                navigate(`/ui/repository${query({ name })}`);
                announce(`Deleted the manifest ${shortDigest(m.digest)}.`, "ok");
              }),
          },
          "Delete manifest",
        ),
      );
    }
    const pulls = h("div", { class: "pulls" });
    if (!ref.includes(":")) pulls.appendChild(copyable("Pull by tag", `docker pull ${host}/${name}:${ref}`));
    pulls.appendChild(copyable("Pull by digest", `docker pull ${host}/${name}@${m.digest}`));
    root.appendChild(pulls);
    root.appendChild(
      section(
        "Manifest",
        dl([
          ["Digest", h("code", {}, m.digest)],
          ["Media type", m.media_type],
          ["Artifact type", m.artifact_type],
          ["Subject", m.subject ? h("code", {}, m.subject) : null],
          ["Manifest size", bytes(m.size)],
          ["Total size", m.is_index ? null : bytes(m.total_size)],
        ]),
      ),
    );
    if (m.is_index) {
      root.appendChild(
        section(
          "Platforms",
          table(
            "Manifests of the index",
            ["Platform", "Digest", "Size"],
            m.manifests.map((child) =>
              h(
                "tr",
                {},
                h("td", {}, platformLabel(child.platform)),
                h(
                  "td",
                  {},
                  link(`/ui/manifest${query({ name, ref: child.digest })}`, h("code", {}, shortDigest(child.digest))),
                ),
                h("td", { class: "num" }, bytes(child.size)),
              ),
            ),
          ),
        ),
      );
    }
    if (m.config_summary) {
      const c = m.config_summary;
      root.appendChild(
        section(
          "Config",
          dl([
            ["Platform", [c.os, c.architecture, c.variant].filter(Boolean).join("/")],
            ["Created", c.created],
            ["Author", c.author],
            ["Entrypoint", c.entrypoint ? c.entrypoint.join(" ") : null],
            ["Command", c.cmd ? c.cmd.join(" ") : null],
            ["Working directory", c.working_dir],
            ["User", c.user],
            ["Exposed ports", c.exposed_ports.join(", ")],
            ["Environment", c.env && c.env.length ? h("ul", {}, c.env.map((v) => h("li", {}, h("code", {}, v)))) : null],
            ["Build steps", c.history ? String(c.history) : null],
            ["Config digest", m.config ? h("code", {}, m.config.digest) : null],
          ]),
          Object.keys(c.labels).length ? annotationsTable("Labels", c.labels) : null,
        ),
      );
    }
    if (!m.is_index) {
      root.appendChild(
        section(
          "Layers",
          table(
            `${m.layers.length} layers`,
            ["#", "Digest", "Media type", "Size"],
            m.layers.map((layer, index) =>
              h(
                "tr",
                {},
                h("td", { class: "num" }, String(index + 1)),
                h("td", { title: layer.digest || "" }, h("code", {}, shortDigest(layer.digest))),
                h("td", {}, layer.media_type || "–"),
                h("td", { class: "num" }, bytes(layer.size)),
              ),
            ),
            { class: "layers" },
          ),
        ),
      );
    }
    root.appendChild(section("Annotations", annotationsTable("Annotations of the manifest", m.annotations)));
    root.appendChild(
      section(
        "Referrers",
        m.referrers.length
          ? table(
              "Signatures, SBOMs and other artifacts about this manifest",
              ["Artifact type", "Digest", "Size", "Annotations"],
              m.referrers.map((r) =>
                h(
                  "tr",
                  {},
                  h("td", {}, referrerKind(r.artifact_type || r.media_type)),
                  h("td", {}, link(`/ui/manifest${query({ name, ref: r.digest })}`, h("code", {}, shortDigest(r.digest)))),
                  h("td", { class: "num" }, bytes(r.size)),
                  h(
                    "td",
                    {},
                    Object.entries(r.annotations).map(([k, v]) => h("div", {}, h("code", {}, k), " = ", v)),
                  ),
                ),
              ),
              { class: "referrers" },
            )
          : h("p", { class: "muted" }, "No referrers."),
      ),
    );
  });
}

function platformLabel(platform) {
  if (!platform) return "–";
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join("/");
}

function referrerKind(type) {
  const text = String(type || "");
  if (text.includes("cyclonedx") || text.includes("spdx")) return `SBOM (${text})`;
  if (text.includes("signature") || text.includes("cosign") || text.includes("notary")) {
    return `Signature (${text})`;
  }
  return text || "–";
}

async function vulnerabilitiesPage() {
  const name = params().get("name") || "";
  const ref = params().get("ref") || "";
  const root = page(`Vulnerabilities of ${name}${ref.includes(":") ? "@" : ":"}${ref}`);
  root.appendChild(
    h(
      "nav",
      { class: "crumbs", "aria-label": "Breadcrumbs" },
      link(`/ui/repository${query({ name })}`, name),
      " · ",
      link(`/ui/manifest${query({ name, ref })}`, "Manifest"),
      " · ",
      link(`/ui/sbom${query({ name, ref })}`, "Packages (SBOM)"),
    ),
  );
  await guarded(async () => {
    let report;
    try {
      report = await api(
        "GET",
        `/v1/repositories/${repoPath(name)}/scans/${encodeURIComponent(ref)}`,
      );
    } catch (error) {
      if (error instanceof ApiError && error.code === "SCAN_UNKNOWN") {
        root.appendChild(h("p", { class: "notice" }, "Not scanned yet: ", error.message));
        return;
      }
      throw error;
    }
    const counts = report.severity_counts || {};
    root.appendChild(
      dl([
        ["Status", report.status],
        ["Scanned", when(report.scanned_at)],
        ["Digest", h("code", {}, report.digest)],
        ["Advisories", report.advisory_db ? `import ${report.advisory_db.import_id}` : "none imported"],
        ["Rescan queued", report.pending ? "yes" : null],
      ]),
    );
    root.appendChild(
      barChart(
        "Findings by severity",
        SEVERITIES.map((severity) => ({
          label: severity,
          value: counts[severity] || 0,
          className: `sev-${severity}`,
        })),
      ),
    );
    const findings = [];
    const multi = (report.images || []).length > 1; // an index: say which platform
    for (const image of report.images || []) {
      for (const finding of image.findings || []) findings.push({ ...finding, platform: image.platform });
    }
    const severity = h(
      "select",
      { id: "severity" },
      h("option", { value: "" }, "Any severity"),
      SEVERITIES.map((value) => h("option", { value }, value)),
    );
    const text = h("input", { id: "finding-q", type: "search", placeholder: "package or advisory" });
    const fixable = h("input", { id: "fixable", type: "checkbox" });
    const filters = h(
      "form",
      { class: "filters", "aria-label": "Filter findings" },
      h("div", {}, h("label", { for: "severity" }, "Severity"), severity),
      h("div", {}, h("label", { for: "finding-q" }, "Search"), text),
      h("div", { class: "check" }, fixable, h("label", { for: "fixable" }, "Only with a fix")),
    );
    filters.addEventListener("submit", (event) => event.preventDefault());
    const box = h("div");
    const show = () => {
      const needle = text.value.trim().toLowerCase();
      const rows = findings
        .filter((f) => !severity.value || f.severity === severity.value)
        .filter((f) => !fixable.checked || (f.fixed_versions && f.fixed_versions.length))
        .filter(
          (f) =>
            !needle ||
            [f.advisory, f.package, ...(f.aliases || [])].some((v) => String(v).toLowerCase().includes(needle)),
        )
        .map((f) =>
          h(
            "tr",
            {},
            h("td", {}, badge(f.severity, `sev-${f.severity}`)),
            h("td", {}, safeLink(f.link, f.advisory), f.aliases && f.aliases.length ? h("div", { class: "muted" }, f.aliases.join(", ")) : null),
            h("td", {}, f.package),
            h("td", {}, f.installed_version),
            h("td", {}, (f.fixed_versions || []).join(", ") || "–"),
            h("td", {}, f.ecosystem),
            multi ? h("td", {}, f.platform || "–") : null,
            h("td", {}, f.summary || ""),
          ),
        );
      clear(box);
      box.appendChild(h("p", { class: "muted" }, `${rows.length} of ${findings.length} findings`));
      if (rows.length) {
        box.appendChild(
          table(
            "Findings",
            ["Severity", "Advisory", "Package", "Installed", "Fixed in", "Ecosystem", ...(multi ? ["Platform"] : []), "Summary"],
            rows,
            { class: "findings" },
          ),
        );
      }
    };
    for (const control of [severity, fixable]) control.addEventListener("change", show);
    text.addEventListener("input", show);
    root.appendChild(section("Findings", filters, box));
    show();
  });
}

async function sbomPage() {
  const name = params().get("name") || "";
  const ref = params().get("ref") || "";
  const root = page(`Packages of ${name}${ref.includes(":") ? "@" : ":"}${ref}`);
  root.appendChild(
    h(
      "nav",
      { class: "crumbs", "aria-label": "Breadcrumbs" },
      link(`/ui/repository${query({ name })}`, name),
      " · ",
      link(`/ui/manifest${query({ name, ref })}`, "Manifest"),
      " · ",
      link(`/ui/vulnerabilities${query({ name, ref })}`, "Vulnerabilities"),
    ),
  );
  await guarded(async () => {
    let sbom;
    try {
      sbom = await api("GET", `/v1/repositories/${repoPath(name)}/sbom/${encodeURIComponent(ref)}`);
    } catch (error) {
      if (error instanceof ApiError && error.code === "SBOM_UNKNOWN") {
        root.appendChild(h("p", { class: "notice" }, "No SBOM: ", error.message));
        return;
      }
      throw error;
    }
    root.appendChild(
      dl([
        ["Format", sbom.format],
        ["Created", sbom.created ? when(sbom.created) : null],
        ["SBOM", link(`/ui/manifest${query({ name, ref: sbom.sbom_digest })}`, h("code", {}, shortDigest(sbom.sbom_digest)))],
      ]),
    );
    const ecosystems = [...new Set(sbom.packages.map((p) => p.ecosystem || p.type || "other"))].sort();
    const ecosystem = h(
      "select",
      { id: "ecosystem" },
      h("option", { value: "" }, "Every ecosystem"),
      ecosystems.map((value) => h("option", { value }, value)),
    );
    const text = h("input", { id: "package-q", type: "search", placeholder: "name or purl" });
    const filters = h(
      "form",
      { class: "filters", "aria-label": "Filter packages" },
      h("div", {}, h("label", { for: "ecosystem" }, "Ecosystem"), ecosystem),
      h("div", {}, h("label", { for: "package-q" }, "Search"), text),
    );
    filters.addEventListener("submit", (event) => event.preventDefault());
    const box = h("div");
    const show = () => {
      const needle = text.value.trim().toLowerCase();
      const rows = sbom.packages
        .filter((p) => !ecosystem.value || (p.ecosystem || p.type || "other") === ecosystem.value)
        .filter((p) => !needle || `${p.name} ${p.purl || ""}`.toLowerCase().includes(needle))
        .map((p) =>
          h(
            "tr",
            {},
            h("td", {}, p.name),
            h("td", {}, p.version || "–"),
            h("td", {}, p.ecosystem || p.type || "–"),
            h("td", {}, p.purl ? h("code", {}, p.purl) : "–"),
          ),
        );
      clear(box);
      box.appendChild(h("p", { class: "muted" }, `${rows.length} of ${sbom.packages.length} packages`));
      if (rows.length) {
        box.appendChild(table("Packages", ["Name", "Version", "Ecosystem", "Package URL"], rows, { class: "packages" }));
      }
    };
    ecosystem.addEventListener("change", show);
    text.addEventListener("input", show);
    root.appendChild(section("Packages", filters, box));
    show();
  });
}

// Only http(s) links from advisories become links; anything else stays text.
function safeLink(href, text) {
  try {
    const url = new URL(String(href));
    if (url.protocol === "https:" || url.protocol === "http:") {
      return h("a", { href: url.href, rel: "noopener noreferrer" }, text);
    }
  } catch {
    // not a URL
  }
  return text;
}

async function historyPage() {
  const name = params().get("name") || "";
  const tag = params().get("tag") || "";
  const root = page(`History of ${name}:${tag}`);
  root.appendChild(
    h(
      "nav",
      { class: "crumbs", "aria-label": "Breadcrumbs" },
      link(`/ui/repository${query({ name })}`, name),
      " · ",
      link(`/ui/manifest${query({ name, ref: tag })}`, "Manifest"),
    ),
  );
  const box = h("div");
  root.appendChild(box);
  const base = `/v1/repositories/${repoPath(name)}/tags/${encodeURIComponent(tag)}`;
  const rollback = async (to, label) => {
    const ok = await confirmDialog(
      "Roll back tag",
      `Point ${name}:${tag} at ${label}? Pulls of the tag get that manifest at once.`,
      "Roll back",
    );
    if (!ok) return;
    const change = await api("POST", `${base}/rollback`, to === null ? {} : { to });
    announce(
      change.changed ? `${tag} now names ${shortDigest(change.digest)}.` : `${tag} named that already.`,
      "ok",
    );
    await load();
  };
  const load = async () => {
    const [access, data] = await Promise.all([
      repositoryAccess(name),
      api("GET", `${base}/history${query({ limit: 100 })}`),
    ]);
    const canPush = access.actions.includes("push");
    clear(box);
    if (canPush && data.events.length) {
      box.appendChild(
        h(
          "button",
          { type: "button", onclick: () => guarded(() => rollback(null, "the manifest it named before its latest change")) },
          "Roll back to previous",
        ),
      );
    }
    const current = data.events.length ? data.events[0].new_digest : null;
    box.appendChild(
      table(
        `Changes of ${tag}, newest first`,
        ["#", "Change", "From", "To", "Via", "By", "When", ""],
        data.events.map((event) =>
          h(
            "tr",
            {},
            h("td", { class: "num" }, String(event.id)),
            h("td", {}, event.action),
            h("td", { title: event.old_digest || "" }, h("code", {}, shortDigest(event.old_digest))),
            h("td", { title: event.new_digest || "" }, h("code", {}, shortDigest(event.new_digest))),
            h("td", {}, event.via),
            h("td", {}, event.actor || "–"),
            h("td", {}, when(event.at)),
            h(
              "td",
              {},
              canPush && event.new_digest && event.new_digest !== current
                ? h(
                    "button",
                    {
                      type: "button",
                      class: "small",
                      "aria-label": `Roll back to ${shortDigest(event.new_digest)} (entry ${event.id})`,
                      onclick: () => guarded(() => rollback(event.new_digest, shortDigest(event.new_digest))),
                    },
                    "Roll back to this",
                  )
                : null,
            ),
          ),
        ),
        { class: "history" },
      ),
    );
  };
  await guarded(load);
}

async function namespacesPage() {
  const root = page("Namespaces");
  await guarded(async () => {
    const namespaces = await api("GET", "/v1/namespaces");
    root.appendChild(
      table(
        "Namespaces you can see",
        ["Name", "Kind", "Visibility", ""],
        namespaces.map((ns) =>
          h(
            "tr",
            {},
            h("td", {}, link(`/ui/${query({ namespace: ns.name })}`, ns.name)),
            h("td", {}, ns.kind),
            h("td", {}, badge(ns.public ? "public" : "private", ns.public ? "ok" : "")),
            h("td", {}, ns.admin
                ? h(
                    "a",
                    {
                      href: `/ui/namespace${query({ ns: ns.name })}`,
                      "data-nav": "1",
                      "aria-label": `Settings of ${ns.name}`,
                    },
                    "Settings",
                  )
                : ""),
          ),
        ),
      ),
    );
  });
}

async function namespacePage() {
  const ns = params().get("ns") || "";
  const root = page(`Settings of ${ns}`);
  await guarded(async () => {
    const info = await api("GET", `/v1/namespaces/${encodeURIComponent(ns)}`);
    const robots = await api("GET", `/v1/namespaces/${encodeURIComponent(ns)}/robots`);

    // Visibility
    const publicRadio = h("input", { type: "radio", name: "visibility", id: "vis-public", value: "public" });
    const privateRadio = h("input", { type: "radio", name: "visibility", id: "vis-private", value: "private" });
    publicRadio.checked = Boolean(info.public);
    privateRadio.checked = !info.public;
    const visibility = h(
      "form",
      { class: "stack", "aria-label": "Visibility" },
      h(
        "fieldset",
        {},
        h("legend", {}, "Who may pull"),
        h("div", { class: "check" }, publicRadio, h("label", { for: "vis-public" }, "Public: anyone may pull")),
        h("div", { class: "check" }, privateRadio, h("label", { for: "vis-private" }, "Private: members only")),
      ),
      h("button", { type: "submit" }, "Save visibility"),
    );
    visibility.addEventListener("submit", (event) => {
      event.preventDefault();
      guarded(async () => {
        const saved = await api("PUT", `/v1/namespaces/${encodeURIComponent(ns)}/visibility`, {
          public: publicRadio.checked,
        });
        announce(`${ns} is now ${saved.public ? "public" : "private"}.`, "ok");
      });
    });
    root.appendChild(section("Visibility", visibility));

    // Robot accounts
    const robotBox = h("div");
    const secretBox = h("div", { id: "robot-secret" });
    const showRobots = (list) => {
      clear(robotBox);
      if (!list.length) {
        robotBox.appendChild(h("p", { class: "muted" }, "No robot accounts."));
        return;
      }
      robotBox.appendChild(
        table(
          "Robot accounts",
          ["User name", "Actions", "Repositories", "Expires", "State", ""],
          list.map((robot) =>
            h(
              "tr",
              {},
              h("td", {}, h("code", {}, robot.username)),
              h("td", {}, robot.actions.join(", ")),
              h("td", {}, robot.repositories.length ? robot.repositories.join(", ") : "all"),
              h("td", {}, robot.expires_at ? when(robot.expires_at) : "never"),
              h("td", {}, robot.revoked ? badge("revoked", "") : badge("active", "ok")),
              h(
                "td",
                {},
                robot.revoked
                  ? null
                  : h(
                      "button",
                      {
                        type: "button",
                        class: "small danger",
                        "aria-label": `Revoke ${robot.username}`,
                        onclick: () =>
                          guarded(async () => {
                            const ok = await confirmDialog(
                              "Revoke robot",
                              `Revoke ${robot.username}? Its secret stops working at once.`,
                              "Revoke",
                            );
                            if (!ok) return;
                            await api(
                              "DELETE",
                              `/v1/namespaces/${encodeURIComponent(ns)}/robots/${encodeURIComponent(robot.name)}`,
                            );
                            showRobots(await api("GET", `/v1/namespaces/${encodeURIComponent(ns)}/robots`));
                          }),
                      },
                      "Revoke",
                    ),
              ),
            ),
          ),
          { class: "robots" },
        ),
      );
    };
    showRobots(robots);
    const robotName = h("input", { id: "robot-name", required: true, maxlength: 64 });
    const actionBoxes = ["pull", "push", "delete"].map((action) => ({
      action,
      input: h("input", { type: "checkbox", id: `robot-${action}`, checked: action === "pull" }),
    }));
    const repositories = h("input", { id: "robot-repos", placeholder: `${ns}/app, ${ns}/web` });
    const days = h("input", { id: "robot-days", type: "number", min: 1, max: 36500 });
    const create = h(
      "form",
      { class: "stack", "aria-label": "New robot account" },
      h("label", { for: "robot-name" }, "Robot name"),
      robotName,
      h(
        "fieldset",
        {},
        h("legend", {}, "Actions"),
        actionBoxes.map(({ action, input }) =>
          h("div", { class: "check" }, input, h("label", { for: `robot-${action}` }, action)),
        ),
      ),
      h("label", { for: "robot-repos" }, "Repositories (comma-separated; empty: all)"),
      repositories,
      h("label", { for: "robot-days" }, "Expires in days (empty: never)"),
      days,
      h("button", { type: "submit" }, "Create robot account"),
    );
    create.addEventListener("submit", (event) => {
      event.preventDefault();
      guarded(async () => {
        const made = await api("POST", `/v1/namespaces/${encodeURIComponent(ns)}/robots`, {
          name: robotName.value.trim(),
          actions: actionBoxes.filter((box) => box.input.checked).map((box) => box.action),
          repositories: repositories.value
            .split(",")
            .map((value) => value.trim())
            .filter(Boolean),
          expires_in_days: days.value ? Number(days.value) : null,
        });
        clear(secretBox);
        secretBox.appendChild(
          h(
            "div",
            { class: "notice ok secret", role: "alert" },
            h("p", {}, `Created ${made.username}. Its secret is shown only now: store it safely.`),
            copyable("User name", made.username),
            copyable("Secret", made.secret),
            h(
              "button",
              { type: "button", class: "secondary small", onclick: () => clear(secretBox) },
              "I have stored it",
            ),
          ),
        );
        create.reset();
        showRobots(await api("GET", `/v1/namespaces/${encodeURIComponent(ns)}/robots`));
      });
    });
    root.appendChild(section("Robot accounts", secretBox, robotBox, h("h3", {}, "New robot account"), create));
    await namespaceOverview(root, ns);
    await policySections({ section, guarded, announce, badge }, root, ns);
  });
}

// A small form: labelled fields in a row and a submit button; `submit` gets the values.
function miniForm(label, fields, button, submit) {
  const inputs = {};
  const form = h(
    "form",
    { class: "filters", "aria-label": label },
    fields.map((field) => {
      const id = field.id;
      inputs[field.key] = field.options
        ? h(
            "select",
            { id },
            field.options.map((value) => h("option", { value }, value)),
          )
        : h("input", {
            id,
            type: field.type || "text",
            required: field.required,
            placeholder: field.placeholder,
            min: field.min,
          });
      return h("div", {}, h("label", { for: id }, field.label), inputs[field.key]);
    }),
    h("button", { type: "submit" }, button),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const values = {};
    for (const [key, input] of Object.entries(inputs)) values[key] = input.value.trim();
    guarded(async () => {
      await submit(values);
      form.reset();
    });
  });
  return form;
}

function removeButton(label, question, work) {
  return dangerButton("Remove", label, question, guarded, work);
}

// Read-only sections of the namespace settings; each loads on its own, so one refusal
// (e.g. the quota, for members only) leaves the others.
async function namespaceOverview(root, ns) {
  const base = `/v1/namespaces/${encodeURIComponent(ns)}`;
  const sections = [
    [
      "Members and roles",
      `${base}/members`,
      (grants, reload) => {
        const rows = grants.map((g) => {
          const who = g.user ? `user ${g.user}` : `team ${g.team}`;
          const target = g.user
            ? `${base}/members/users/${encodeURIComponent(g.user)}`
            : `${base}/members/teams/${encodeURIComponent(g.team)}`;
          return h(
            "tr",
            {},
            h("td", {}, who),
            h("td", {}, g.role),
            h("td", {}, g.repository || "the whole namespace"),
            h(
              "td",
              {},
              h(
                "button",
                {
                  type: "button",
                  class: "small danger",
                  "aria-label": `Remove the role of ${who}${g.repository ? ` on ${g.repository}` : ""}`,
                  onclick: () =>
                    guarded(async () => {
                      const ok = await confirmDialog("Remove role", `Remove the ${g.role} role of ${who}?`, "Remove");
                      if (!ok) return;
                      await api("DELETE", `${target}${query({ repository: g.repository })}`);
                      announce(`Removed the role of ${who}.`, "ok");
                      await reload();
                    }),
                },
                "Remove",
              ),
            ),
          );
        });
        const kind = h("select", { id: "grant-kind" }, h("option", { value: "user" }, "User"), h("option", { value: "team" }, "Team"));
        const who = h("input", { id: "grant-name", required: true, maxlength: 64 });
        const role = h(
          "select",
          { id: "grant-role" },
          ["reader", "writer", "maintainer", "admin"].map((value) => h("option", { value }, value)),
        );
        const repository = h("input", { id: "grant-repo", placeholder: `${ns}/app` });
        const form = h(
          "form",
          { class: "filters", "aria-label": "Grant a role" },
          h("div", {}, h("label", { for: "grant-kind" }, "Grant to"), kind),
          h("div", {}, h("label", { for: "grant-name" }, "User or team name"), who),
          h("div", {}, h("label", { for: "grant-role" }, "Role"), role),
          h("div", {}, h("label", { for: "grant-repo" }, "Only this repository (optional)"), repository),
          h("button", { type: "submit" }, "Grant role"),
        );
        form.addEventListener("submit", (event) => {
          event.preventDefault();
          guarded(async () => {
            await api("POST", `${base}/members`, {
              [kind.value]: who.value.trim(),
              role: role.value,
              repository: repository.value.trim() || null,
            });
            announce(`Granted ${role.value} to ${kind.value} ${who.value.trim()}.`, "ok");
            await reload();
          });
        });
        return h(
          "div",
          {},
          grants.length
            ? table("Roles granted", ["Who", "Role", "Scope", ""], rows, { class: "members" })
            : h("p", { class: "muted" }, "No roles granted."),
          form,
        );
      },
    ],
    [
      "Teams",
      `${base}/teams`,
      (teams, reload) =>
        h(
          "div",
          {},
          teams.length
            ? table(
                "Teams",
                ["Team", "Members"],
                teams.map((t) => h("tr", {}, h("td", {}, t.name), h("td", {}, t.members.join(", ") || "–"))),
                { class: "teams" },
              )
            : h("p", { class: "muted" }, "No teams."),
          miniForm(
            "Add a team",
            [{ key: "name", id: "team-name", label: "New team", required: true }],
            "Add team",
            async ({ name }) => {
              await api("POST", `${base}/teams`, { name });
              announce(`Added the team ${name}.`, "ok");
              await reload();
            },
          ),
          teams.length
            ? miniForm(
                "Add a team member",
                [
                  { key: "team", id: "member-team", label: "Team", options: teams.map((t) => t.name) },
                  { key: "user", id: "member-user", label: "User", required: true },
                ],
                "Add to team",
                async ({ team, user }) => {
                  await api("POST", `${base}/teams/${encodeURIComponent(team)}/members`, { user });
                  announce(`Added ${user} to ${team}.`, "ok");
                  await reload();
                },
              )
            : null,
        ),
    ],
    [
      "Storage",
      `${base}/usage`,
      (usage, reload) =>
        h(
          "div",
          {},
          dl([
            ["Stored", bytes(usage.stored_bytes)],
            ["Logical", bytes(usage.logical_bytes)],
            ["Repositories", String(usage.repository_count)],
            ["Quota", usage.quota_bytes ? `${bytes(usage.quota_bytes)} (${usage.quota_used_percent}% used)` : "none"],
          ]),
          session.is_admin
            ? miniForm(
                "Quota",
                [{ key: "limit", id: "quota-limit", label: "Quota (e.g. 10GiB)", required: true }],
                "Set quota",
                async ({ limit }) => {
                  await api("PUT", `${base}/quota`, { limit_bytes: /^[0-9]+$/.test(limit) ? Number(limit) : limit });
                  announce(`The quota of ${ns} is ${limit}.`, "ok");
                  await reload();
                },
              )
            : null,
          session.is_admin && usage.quota_bytes
            ? removeButton("Remove the quota", `Remove the quota of ${ns}?`, async () => {
                await api("DELETE", `${base}/quota`);
                await reload();
              })
            : null,
          usage.repositories.length
            ? barChart(
                "Storage by repository",
                usage.repositories.map((r) => ({ label: r.repository, value: r.stored_bytes })),
                { format: bytes },
              )
            : null,
        ),
    ],
    ["Storage over time", `/v1/usage/history${query({ namespace: ns, days: 90 })}`, (history) => usageHistory(history)],
    [
      "Immutable tags",
      `${base}/immutable-tag-rules`,
      (data, reload) => {
        const pattern = h("input", { id: "rule-pattern", required: true, placeholder: "v*" });
        const repository = h("input", { id: "rule-repo", placeholder: `${ns}/app` });
        const form = h(
          "form",
          { class: "filters", "aria-label": "Add an immutable-tag rule" },
          h("div", {}, h("label", { for: "rule-pattern" }, "Tag pattern"), pattern),
          h("div", {}, h("label", { for: "rule-repo" }, "Only this repository (optional)"), repository),
          h("button", { type: "submit" }, "Add rule"),
        );
        form.addEventListener("submit", (event) => {
          event.preventDefault();
          guarded(async () => {
            await api("POST", `${base}/immutable-tag-rules`, {
              pattern: pattern.value.trim(),
              repository: repository.value.trim() || null,
            });
            announce(`Tags matching ${pattern.value.trim()} can no longer move.`, "ok");
            await reload();
          });
        });
        return h(
          "div",
          {},
          data.rules.length
            ? table(
                "Tags that never move",
                ["Pattern", "Repository", "Added by", ""],
                data.rules.map((r) =>
                  h(
                    "tr",
                    {},
                    h("td", {}, h("code", {}, r.pattern)),
                    h("td", {}, r.repository || "all"),
                    h("td", {}, r.created_by || "–"),
                    h(
                      "td",
                      {},
                      h(
                        "button",
                        {
                          type: "button",
                          class: "small danger",
                          "aria-label": `Remove the rule ${r.pattern}`,
                          onclick: () =>
                            guarded(async () => {
                              const ok = await confirmDialog("Remove rule", `Let tags matching ${r.pattern} move again?`, "Remove");
                              if (!ok) return;
                              await api("DELETE", `${base}/immutable-tag-rules/${r.id}`);
                              await reload();
                            }),
                        },
                        "Remove",
                      ),
                    ),
                  ),
                ),
                { class: "rules" },
              )
            : h("p", { class: "muted" }, "No rules."),
          form,
        );
      },
    ],
    [
      "Retention",
      `${base}/retention-policies`,
      (data, reload) =>
        h(
          "div",
          {},
          data.policies.length
            ? table(
                "Retention policies",
                ["Tags", "Repository", "Keep last", "Keep days", ""],
                data.policies.map((p) =>
                  h(
                    "tr",
                    {},
                    h("td", {}, h("code", {}, p.tag_pattern)),
                    h("td", {}, p.repository || "all"),
                    h("td", {}, p.keep_last === null ? "–" : String(p.keep_last)),
                    h("td", {}, p.keep_days === null ? "–" : String(p.keep_days)),
                    h(
                      "td",
                      {},
                      removeButton(`Remove the policy ${p.tag_pattern}`, `Remove the policy for ${p.tag_pattern}?`, async () => {
                        await api("DELETE", `${base}/retention-policies/${p.id}`);
                        await reload();
                      }),
                    ),
                  ),
                ),
                { class: "retention" },
              )
            : h("p", { class: "muted" }, "No policies."),
          miniForm(
            "Add a retention policy",
            [
              { key: "pattern", id: "ret-pattern", label: "Tags to clean up", required: true, placeholder: "pr-*" },
              { key: "repository", id: "ret-repo", label: "Repository (optional)", placeholder: `${ns}/app` },
              { key: "last", id: "ret-last", label: "Keep last", type: "number", min: 0 },
              { key: "days", id: "ret-days", label: "Keep days", type: "number", min: 0 },
            ],
            "Add policy",
            async ({ pattern, repository, last, days }) => {
              await api("POST", `${base}/retention-policies`, {
                tag_pattern: pattern,
                repository: repository || null,
                keep_last: last === "" ? null : Number(last),
                keep_days: days === "" ? null : Number(days),
              });
              announce(`Added a retention policy for ${pattern}.`, "ok");
              await reload();
            },
          ),
        ),
    ],
    [
      "Webhooks",
      `${base}/webhooks`,
      (data, reload) => {
        const secretBox = h("div", { id: "webhook-secret" });
        return h(
          "div",
          {},
          secretBox,
          data.webhooks.length
            ? table(
                "Webhooks",
                ["URL", "Events", "Enabled", ""],
                data.webhooks.map((w) =>
                  h(
                    "tr",
                    {},
                    h("td", {}, h("code", {}, w.url)),
                    h("td", {}, w.events.join(", ")),
                    h("td", {}, w.enabled ? "yes" : "no"),
                    h(
                      "td",
                      {},
                      removeButton(`Remove the webhook ${w.url}`, `Remove the webhook to ${w.url}?`, async () => {
                        await api("DELETE", `${base}/webhooks/${w.id}`);
                        await reload();
                      }),
                    ),
                  ),
                ),
                { class: "webhooks" },
              )
            : h("p", { class: "muted" }, "No webhooks."),
          miniForm(
            "Add a webhook",
            [{ key: "url", id: "hook-url", label: "Receiver URL", type: "url", required: true, placeholder: "https://ci.example/hook" }],
            "Add webhook",
            async ({ url }) => {
              const made = await api("POST", `${base}/webhooks`, { url });
              await reload();
              if (made.secret) {
                const box = document.getElementById("webhook-secret");
                clear(box).appendChild(
                  h(
                    "div",
                    { class: "notice ok secret", role: "alert" },
                    h("p", {}, "The webhook's signing secret is shown only now: store it safely."),
                    copyable("Secret", made.secret),
                  ),
                );
              }
            },
          ),
        );
      },
    ],
  ];
  const boxes = sections.map(([title]) => {
    const box = h("div", {}, h("p", { class: "muted" }, "Loading…"));
    root.appendChild(section(title, box));
    return box;
  });
  await Promise.all(
    sections.map(async ([, path, show], index) => {
      const box = boxes[index];
      const reload = async () => {
        try {
          const data = await api("GET", path);
          clear(box).appendChild(show(data, reload));
        } catch (error) {
          if (error instanceof ApiError && error.status === 401) throw error;
          clear(box).appendChild(h("p", { class: "muted" }, error.message));
        }
      };
      await guarded(reload);
    }),
  );
}

async function auditPage() {
  const current = params();
  const fields = [
    ["actor", "Actor", "text"],
    ["action", "Action", "text"],
    ["target", "Namespace or repository", "text"],
    ["since", "Since", "date"],
  ];
  const inputs = {};
  const form = h(
    "form",
    { class: "filters", "aria-label": "Filter the audit log" },
    fields.map(([key, label, type]) => {
      inputs[key] = h("input", { id: `audit-${key}`, type, value: current.get(key) || "" });
      return h("div", {}, h("label", { for: `audit-${key}` }, label), inputs[key]);
    }),
    h("button", { type: "submit" }, "Filter"),
  );
  const box = h("div");
  const root = page("Audit log", form, box);
  const load = async () => {
    if (!box.isConnected) return; // another page is shown now
    const state = {};
    for (const [key] of fields) state[key] = inputs[key].value.trim();
    history.replaceState(null, "", `/ui/audit${query(state)}`);
    const events = await api("GET", `/v1/audit${query({ ...state, limit: 200 })}`);
    clear(box);
    box.appendChild(h("p", { class: "muted" }, `${events.length} events, newest first`));
    box.appendChild(
      table(
        "Audit events",
        ["When", "Actor", "Action", "Target", "Outcome", "Address"],
        events.map((event) =>
          h(
            "tr",
            {},
            h("td", {}, when(event.at)),
            h("td", {}, event.actor),
            h("td", {}, event.action),
            h("td", {}, event.target),
            h("td", {}, event.outcome === "ok" ? event.outcome : badge(event.outcome, "sev-high")),
            h("td", {}, event.address || "–"),
          ),
        ),
        { class: "audit" },
      ),
    );
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(load);
  });
  if (!session.is_admin && !inputs.target.value) {
    box.appendChild(
      h("p", { class: "notice" }, "Registry admins see the whole log; namespace admins give a namespace."),
    );
    return root;
  }
  await guarded(load);
  return root;
}

async function replicationPage() {
  const root = page("Replication");
  const executions = h("div", { id: "executions", "aria-live": "polite" });
  await guarded(async () => {
    const [endpoints, rules] = await Promise.all([
      api("GET", "/v1/replication/endpoints"),
      api("GET", "/v1/replication/rules"),
    ]);
    root.appendChild(
      section(
        "Remote registries",
        endpoints.endpoints.length
          ? table(
              "Endpoints",
              ["Name", "URL", "User", "TLS", ""],
              endpoints.endpoints.map((e) =>
                h(
                  "tr",
                  {},
                  h("td", {}, e.name),
                  h("td", {}, h("code", {}, e.url)),
                  h("td", {}, e.username || "–"),
                  h("td", {}, e.insecure ? "not verified" : "verified"),
                  h(
                    "td",
                    {},
                    removeButton(`Remove the endpoint ${e.name}`, `Remove the endpoint ${e.name}?`, async () => {
                      await api("DELETE", `/v1/replication/endpoints/${encodeURIComponent(e.name)}`);
                      await render();
                    }),
                  ),
                ),
              ),
              { class: "endpoints" },
            )
          : h("p", { class: "muted" }, "No endpoints."),
        h("h3", {}, "New endpoint"),
        miniForm(
          "New replication endpoint",
          [
            { key: "name", id: "endpoint-name", label: "Endpoint name", required: true, placeholder: "dr-site" },
            { key: "url", id: "endpoint-url", label: "Registry URL", type: "url", required: true, placeholder: "https://registry.dr.example" },
            { key: "username", id: "endpoint-user", label: "User (optional)" },
            { key: "secret", id: "endpoint-secret", label: "Password or token (optional)", type: "password" },
          ],
          "Add endpoint",
          async (v) => {
            await api("POST", "/v1/replication/endpoints", {
              name: v.name,
              url: v.url,
              username: v.username || null,
              secret: v.secret || null,
            });
            await render();
            announce(`Endpoint ${v.name} added.`, "ok");
          },
        ),
      ),
    );
    root.appendChild(
      section(
        "Rules",
        rules.rules.length
          ? table(
              "Replication rules",
              ["Name", "Direction", "Endpoint", "Repositories", "Tags", "Trigger", "Last run", ""],
              rules.rules.map((r) =>
                h(
                  "tr",
                  {},
                  h("td", {}, r.name, r.enabled ? null : h("div", { class: "muted" }, "disabled")),
                  h("td", {}, r.direction),
                  h("td", {}, r.endpoint),
                  h("td", {}, h("code", {}, r.source)),
                  h("td", {}, h("code", {}, r.tags)),
                  h("td", {}, r.trigger === "schedule" ? `every ${r.interval_minutes} min` : r.trigger),
                  h("td", {}, r.last_run_at ? [when(r.last_run_at), ` (${r.last_status || "?"})`] : "never"),
                  h(
                    "td",
                    {},
                    h(
                      "button",
                      {
                        type: "button",
                        class: "small",
                        "aria-label": `Run the rule ${r.name} now`,
                        onclick: () =>
                          guarded(async () => {
                            const run = await api("POST", `/v1/replication/rules/${r.id}/run`);
                            announce(`Queued execution ${run.id} of ${r.name}.`, "ok");
                            await showExecutions(executions, r);
                          }),
                      },
                      "Run now",
                    ),
                    " ",
                    h(
                      "button",
                      {
                        type: "button",
                        class: "small secondary",
                        "aria-label": `Show the executions of ${r.name}`,
                        onclick: () => guarded(() => showExecutions(executions, r)),
                      },
                      "Executions",
                    ),
                    " ",
                    removeButton(`Remove the rule ${r.name}`, `Remove the replication rule ${r.name}?`, async () => {
                      await api("DELETE", `/v1/replication/rules/${r.id}`);
                      await render();
                    }),
                  ),
                ),
              ),
              { class: "rules" },
            )
          : h("p", { class: "muted" }, "No rules."),
        executions,
        h("h3", {}, "New rule"),
        endpoints.endpoints.length
          ? miniForm(
              "New replication rule",
              [
                { key: "name", id: "rule-name", label: "Rule name", required: true, placeholder: "to-dr" },
                { key: "endpoint", id: "rule-endpoint", label: "Endpoint", options: endpoints.endpoints.map((e) => e.name) },
                { key: "direction", id: "rule-direction", label: "Direction", options: ["push", "pull"] },
                { key: "source", id: "rule-source", label: "Repositories", required: true, placeholder: "team/*" },
                { key: "tags", id: "rule-tags", label: "Tags", placeholder: "*" },
                { key: "trigger", id: "rule-trigger", label: "Trigger", options: ["manual", "event", "schedule"] },
                { key: "interval", id: "rule-interval", label: "Every N minutes (schedule)", type: "number", min: 1 },
              ],
              "Add rule",
              async (v) => {
                const body = { name: v.name, endpoint: v.endpoint, direction: v.direction, source: v.source, trigger: v.trigger };
                if (v.tags) body.tags = v.tags;
                if (v.interval) body.interval_minutes = Number(v.interval);
                await api("POST", "/v1/replication/rules", body);
                await render();
                announce(`Rule ${v.name} added.`, "ok");
              },
            )
          : h("p", { class: "muted" }, "Add an endpoint first."),
      ),
    );
  });
}

// A rule's executions, newest first, in `box`.
async function showExecutions(box, rule) {
  const found = await api("GET", `/v1/replication/rules/${rule.id}/executions?limit=20`);
  clear(box).append(
    h("h3", {}, `Executions of ${rule.name}`),
    found.executions.length
      ? table(
          `Executions of ${rule.name}, newest first`,
          ["#", "Trigger", "State", "Started", "Finished", "Images", "Copied", "Error"],
          found.executions.map((x) =>
            h(
              "tr",
              {},
              h("td", { class: "num" }, String(x.id)),
              h("td", {}, x.trigger),
              h("td", {}, badge(x.state, x.state === "succeeded" ? "ok" : "")),
              h("td", {}, x.started_at ? when(x.started_at) : "–"),
              h("td", {}, x.finished_at ? when(x.finished_at) : "–"),
              h("td", { class: "num" }, String(x.images)),
              h("td", { class: "num" }, `${x.blobs_copied} blobs, ${bytes(x.bytes)}`),
              h("td", {}, x.error || "–"),
            ),
          ),
          { class: "executions" },
        )
      : h("p", { class: "muted" }, "No executions yet."),
  );
}

// Stored bytes of the largest repositories over the days of `history`, a line each.
const HISTORY_LINES = 8;
function usageHistory(history) {
  const latest = (series) => series.samples[series.samples.length - 1].stored_bytes;
  const largest = history.repositories
    .filter((series) => series.samples.length)
    .sort((a, b) => latest(b) - latest(a))
    .slice(0, HISTORY_LINES);
  if (!largest.length) {
    return h("p", { class: "muted", id: "usage-history" }, "No usage samples yet: the registry records each repository's storage once a day.");
  }
  // From the first sample on (ISO days sort as text), not from an empty start of the range.
  const first = largest.map((series) => series.samples[0].day).sort()[0];
  const days = [];
  for (let day = new Date(`${first}T00:00:00Z`); day <= new Date(`${history.until}T00:00:00Z`); day.setUTCDate(day.getUTCDate() + 1)) {
    days.push(day.toISOString().slice(0, 10));
  }
  const title = history.repositories.length > HISTORY_LINES
    ? `Storage over time: the ${HISTORY_LINES} largest repositories`
    : "Storage by repository over time";
  const chart = lineChart(
    title,
    days,
    largest.map((series) => ({
      label: series.repository,
      points: series.samples.map((sample) => ({ day: sample.day, value: sample.stored_bytes })),
    })),
    { format: bytes },
  );
  chart.id = "usage-history";
  return chart;
}

async function usagePage() {
  const root = page("Storage usage");
  await guarded(async () => {
    if (!session.is_admin) {
      root.appendChild(
        h("p", {}, "The storage of each namespace is on its ", link("/ui/namespaces", "settings page"), "."),
      );
      return;
    }
    const usage = await api("GET", "/v1/usage");
    root.appendChild(
      dl([
        ["Stored", bytes(usage.stored_bytes)],
        ["Logical (as pulled)", bytes(usage.logical_bytes)],
        ["Shared", bytes(usage.shared_bytes)],
        ["Repositories", String(usage.repository_count)],
      ]),
    );
    root.appendChild(
      barChart(
        "Storage by namespace",
        usage.namespaces.map((ns) => ({ label: ns.namespace, value: ns.stored_bytes })),
        { format: bytes },
      ),
    );
    root.appendChild(usageHistory(await api("GET", "/v1/usage/history?days=90")));
    root.appendChild(
      table(
        "Namespaces",
        ["Namespace", "Stored", "Repositories", "Quota"],
        usage.namespaces.map((ns) =>
          h(
            "tr",
            {},
            h("td", {}, link(`/ui/${query({ namespace: ns.namespace })}`, ns.namespace)),
            h("td", { class: "num" }, bytes(ns.stored_bytes)),
            h("td", { class: "num" }, String(ns.repository_count)),
            h("td", {}, ns.quota_bytes ? `${bytes(ns.quota_bytes)} (${ns.quota_used_percent}%)` : "none"),
          ),
        ),
      ),
    );
  });
}

render();
