// Marathon web UI: plain JavaScript, no build step, no external URL. It talks only to this
// server's /v2 REST API (the same one marathon-python and curl use) and redraws every
// REFRESH_MS. Pages (location hash): #/apps, #/apps/<app id>, #/deployments.
"use strict";

const REFRESH_MS = 2000;

// ------------------------------------------------------------------ helpers

function $(id) { return document.getElementById(id); }

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function fmt(n) {
  if (n === undefined || n === null || Number.isNaN(Number(n))) return "";
  return (Math.round(Number(n) * 1000) / 1000).toString();
}

function when(ts) {
  if (!ts) return "";
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? String(ts) : d.toLocaleString();
}

// "/group/app" -> the hash path and the REST path of that app.
function appHash(id) { return "#/apps" + id; }
function appPath(id) { return "/v2/apps" + id.split("/").map(encodeURIComponent).join("/"); }

// An error from the server, with its status and its JSON body (message, details) if any.
class ApiError extends Error {
  constructor(method, path, status, body, text) {
    const msg = body && typeof body === "object" && body.message ? body.message
      : (text && text.trim() ? text.trim().slice(0, 500) : "no message");
    super(`${method} ${path}: HTTP ${status}: ${msg}`);
    this.status = status;
    this.body = body;
  }
}

// One REST call. `body` is sent as is when it is a string (the pasted JSON), else as JSON.
async function api(method, path, body) {
  const opts = { method, headers: { "Accept": "application/json" } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, opts);
  } catch (e) {
    const err = new Error(`${method} ${path}: the server did not answer (${e.message})`);
    err.status = 0;
    throw err;
  }
  const text = await resp.text();
  let json = null;
  if (text) {
    try { json = JSON.parse(text); } catch (_) { json = null; }
  }
  if (!resp.ok) throw new ApiError(method, path, resp.status, json, text);
  return { status: resp.status, json, headers: resp.headers };
}

// ------------------------------------------------------------------ banners

function showError(err, retry) {
  $("error-message").textContent = err && err.message ? err.message : String(err);
  const list = $("error-details");
  list.replaceChildren();
  const details = err && err.body ? err.body.details : undefined;
  if (Array.isArray(details)) {
    for (const d of details) {
      if (d && typeof d === "object") {
        const errors = Array.isArray(d.errors) ? d.errors.join("; ") : JSON.stringify(d.errors);
        list.append(el("li", {}, el("code", { text: d.path || "/" }), " ", errors));
      } else {
        list.append(el("li", { text: String(d) }));
      }
    }
  } else if (details !== undefined && details !== null) {
    list.append(el("li", { text: typeof details === "string" ? details : JSON.stringify(details) }));
  }
  const deps = err && err.body && Array.isArray(err.body.deployments) ? err.body.deployments : [];
  for (const d of deps) {
    if (d && d.id) list.append(el("li", {}, "blocking deployment ", el("a", { href: "#/deployments", text: d.id })));
  }
  const actions = $("error-actions");
  actions.replaceChildren();
  if (retry) {
    actions.append(el("button", { type: "button", id: "force-retry", class: "danger", onclick: () => { hideError(); retry(); } },
      retry.label || "Retry with force=true"));
  }
  $("error").hidden = false;
}

function hideError() { $("error").hidden = true; }

let noticeTimer = null;
function notice(text) {
  const n = $("notice");
  n.textContent = text;
  n.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { n.hidden = true; }, 6000);
}

// Runs a user action; a 409 (locked by a deployment) offers the same action with force=true.
async function act(label, fn) {
  hideError();
  $("action-status").textContent = label + "…";
  try {
    const r = await fn(false);
    $("action-status").textContent = "";
    const dep = r && r.json && r.json.deploymentId ? ` (deployment ${r.json.deploymentId})` : "";
    notice(`${label}: done${dep}`);
    await refresh();
    return r;
  } catch (e) {
    $("action-status").textContent = "";
    let retry = null;
    if (e.status === 409) {
      retry = async () => {
        try {
          const r = await fn(true);
          notice(`${label} (forced): done`);
          await refresh();
          return r;
        } catch (e2) { showError(e2); }
      };
      retry.label = `${label} anyway (force=true)`;
    }
    showError(e, retry);
    return null;
  }
}

// ------------------------------------------------------------------ state and routing

const state = {
  apps: [],
  queue: [],
  deployments: [],
  app: null,        // the app of the app page (GET /v2/apps/<id>)
  versions: [],
  appMissing: null, // why the app page has no app
};

function route() {
  const h = decodeURIComponent(location.hash.replace(/^#/, "")) || "/apps";
  if (h === "/deployments") return { page: "deployments" };
  if (h.startsWith("/apps/") && h.length > "/apps/".length) {
    return { page: "app", id: h.slice("/apps".length).replace(/\/+$/, "") };
  }
  if (h === "/apps" || h === "/" || h === "") return { page: "apps" };
  return { page: "missing" };
}

function show(page) {
  for (const p of ["apps", "app", "deployments", "missing"]) $("page-" + p).hidden = p !== page;
  $("nav-apps").classList.toggle("active", page === "apps" || page === "app");
  $("nav-deployments").classList.toggle("active", page === "deployments");
}

function queueEntry(appId) {
  return state.queue.find((q) => q && q.app && q.app.id === appId) || null;
}

// Marathon-style status of an app, from its counts, deployments and queue entry.
function appStatus(app) {
  const q = queueEntry(app.id);
  if (app.instances === 0 && (app.tasksRunning || 0) === 0 && (app.tasksStaged || 0) === 0) {
    return (app.deployments || []).length ? "Deploying" : "Suspended";
  }
  if (q && q.delay && q.delay.overdue === false && (q.delay.timeLeftSeconds || 0) > 0) return "Delayed";
  if (q && (q.count || 0) > 0 && (app.deployments || []).length === 0) return "Waiting";
  if ((app.deployments || []).length) return q && (q.count || 0) > 0 ? "Waiting" : "Deploying";
  return "Running";
}

function healthText(app) {
  if (!app.healthChecks || app.healthChecks.length === 0) return "no health checks";
  return `${app.tasksHealthy || 0} healthy, ${app.tasksUnhealthy || 0} unhealthy`;
}

// The plain-words sentences our server adds to a queue entry (field names tolerated: the
// server's `reasons`/`reason`/`why`/`explanation`, at the entry or in processedOffersSummary).
function plainReasons(q) {
  const out = [];
  const take = (v) => {
    if (typeof v === "string" && v.trim()) out.push(v.trim());
    else if (Array.isArray(v)) v.forEach(take);
    else if (v && typeof v === "object") take(v.text || v.message || v.reason);
  };
  for (const src of [q, q.processedOffersSummary || {}]) {
    for (const k of ["reasons", "reason", "why", "explanation", "explanations", "waitingReason", "message"]) {
      if (src[k] !== undefined) take(src[k]);
    }
  }
  return [...new Set(out)];
}

// One line for the apps list: the plain reason, else the commonest rejection.
function shortReason(q) {
  if (!q) return "";
  const plain = plainReasons(q);
  if (plain.length) return plain[0];
  if (q.delay && q.delay.overdue === false && q.delay.timeLeftSeconds > 0) {
    return `launch delayed ${fmt(q.delay.timeLeftSeconds)} s (backoff after failures)`;
  }
  const rs = ((q.processedOffersSummary || {}).rejectSummaryLastOffers || []).filter((r) => r.declined > 0);
  if (rs.length) {
    rs.sort((a, b) => b.declined - a.declined);
    return `${rs[0].reason}: ${rs[0].declined} of ${rs[0].processed} offers`;
  }
  return (q.count || 0) > 0 ? `${q.count} waiting for offers` : "";
}

// ------------------------------------------------------------------ data

async function loadCommon() {
  const [apps, queue, deps] = await Promise.all([
    api("GET", "/v2/apps?embed=apps.counts&embed=apps.deployments"),
    api("GET", "/v2/queue").catch(() => ({ json: { queue: [] } })),
    api("GET", "/v2/deployments"),
  ]);
  state.apps = (apps.json && apps.json.apps) || [];
  state.apps.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  state.queue = (queue.json && queue.json.queue) || [];
  state.deployments = Array.isArray(deps.json) ? deps.json : [];
}

async function loadApp(id) {
  try {
    const [app, versions] = await Promise.all([
      api("GET", appPath(id)),
      api("GET", appPath(id) + "/versions").catch(() => ({ json: { versions: [] } })),
    ]);
    state.app = (app.json && app.json.app) || null;
    state.versions = (versions.json && versions.json.versions) || [];
    state.appMissing = state.app ? null : "the server answered without an app";
  } catch (e) {
    state.app = null;
    state.versions = [];
    if (e.status === 404) state.appMissing = (e.body && e.body.message) || `App '${id}' does not exist`;
    else throw e;
  }
}

// ------------------------------------------------------------------ rendering

function renderApps() {
  const filter = $("apps-filter").value.trim().toLowerCase();
  const body = $("apps-table").querySelector("tbody");
  body.replaceChildren();
  const apps = state.apps.filter((a) => !filter || a.id.toLowerCase().includes(filter));
  for (const app of apps) {
    const status = appStatus(app);
    const q = queueEntry(app.id);
    const image = app.container && app.container.docker && app.container.docker.image;
    body.append(el("tr", { "data-app-id": app.id },
      el("td", {}, el("a", { href: appHash(app.id), class: "app-link", text: app.id })),
      el("td", {}, el("span", { class: "status status-" + status, text: status })),
      el("td", { class: "instances", text: `${app.tasksRunning || 0} / ${app.instances}` }),
      el("td", { text: healthText(app) }),
      el("td", { text: fmt(app.cpus) }),
      el("td", { text: fmt(app.mem) }),
      el("td", {}, el("code", { text: image || app.cmd || (app.args || []).join(" ") })),
      el("td", { class: "reason-short", text: status === "Waiting" || status === "Delayed" ? shortReason(q) : "" })));
  }
  $("apps-empty").hidden = apps.length > 0;
}

function taskPorts(task) {
  const host = task.host || "";
  const ports = task.ports || [];
  if (!ports.length) return [document.createTextNode("")];
  const out = [];
  ports.forEach((p, i) => {
    if (i) out.push(document.createTextNode(" "));
    out.push(el("a", { href: `http://${host}:${p}/`, target: "_blank", rel: "noopener", class: "port-link", text: String(p) }));
  });
  return out;
}

function taskHealth(task) {
  const rs = task.healthCheckResults || [];
  if (!rs.length) return "";
  const alive = rs.every((r) => r.alive);
  return el("span", { class: alive ? "healthy" : "unhealthy", text: alive ? "healthy" : "unhealthy" });
}

function renderWaiting(app) {
  const q = queueEntry(app.id);
  const panel = $("app-waiting-panel");
  const box = $("app-waiting");
  box.replaceChildren();
  if (!q || ((q.count || 0) === 0 && !(q.delay && q.delay.overdue === false))) {
    panel.hidden = true;
    return;
  }
  panel.hidden = false;
  box.append(el("div", { text: `${q.count || 0} instance(s) waiting to be launched` +
    (q.since ? ` since ${when(q.since)}` : "") + "." }));
  for (const r of plainReasons(q)) box.append(el("div", { class: "reason", text: r }));
  if (q.delay && q.delay.overdue === false && (q.delay.timeLeftSeconds || 0) > 0) {
    box.append(el("div", { class: "reason",
      text: `Launches are delayed for ${fmt(q.delay.timeLeftSeconds)} more seconds (backoff after failed tasks).` }));
  }
  const s = q.processedOffersSummary || {};
  const rows = (s.rejectSummaryLastOffers || []).filter((r) => (r.declined || 0) > 0);
  if (s.processedOffersCount !== undefined) {
    box.append(el("div", { class: "muted",
      text: `Offers processed: ${s.processedOffersCount}, not used: ${s.unusedOffersCount || 0}` +
        (s.lastUnusedOfferAt ? `, last unused at ${when(s.lastUnusedOfferAt)}` : "") + "." }));
  }
  if (rows.length) {
    const t = el("table", { id: "app-waiting-rejections" },
      el("thead", {}, el("tr", {}, el("th", { text: "Rejected because" }), el("th", { text: "declined" }), el("th", { text: "of processed" }))));
    const tb = el("tbody");
    for (const r of rows) tb.append(el("tr", {}, el("td", { text: r.reason }), el("td", { text: r.declined }), el("td", { text: r.processed })));
    t.append(tb);
    box.append(t);
  } else if (!plainReasons(q).length) {
    box.append(el("div", { class: "muted", text: "No offer has been rejected yet: waiting for offers from the master." }));
  }
}

function renderApp(id) {
  const app = state.app;
  $("app-title").textContent = id;
  if (!app) {
    $("app-status").textContent = "";
    show("missing");
    $("missing-text").textContent = state.appMissing || `App '${id}' does not exist`;
    return;
  }
  const status = appStatus(app);
  $("app-status").textContent = status;
  $("app-status").className = "status status-" + status;
  $("app-instances").textContent = `${app.tasksRunning || 0} running / ${app.instances} wanted` +
    ((app.tasksStaged || 0) ? `, ${app.tasksStaged} staged` : "");
  $("app-health").textContent = healthText(app);
  $("app-cpus").textContent = fmt(app.cpus);
  $("app-mem").textContent = fmt(app.mem);
  $("app-version").textContent = app.version || "";
  const sp = (app.portDefinitions || []).map((p) => p.port)
    .concat(((app.container || {}).portMappings || (((app.container || {}).docker || {}).portMappings) || []).map((p) => p.servicePort));
  $("app-service-ports").textContent = [...new Set(sp.filter((p) => p !== undefined))].join(", ") || "none";
  const input = $("scale-input");
  if (document.activeElement !== input && input.dataset.app !== app.id) {
    input.value = app.instances;
    input.dataset.app = app.id;
  }

  renderWaiting(app);

  const deps = app.deployments || [];
  $("app-deployments-panel").hidden = deps.length === 0;
  const dl = $("app-deployments");
  dl.replaceChildren();
  for (const d of deps) {
    const full = state.deployments.find((x) => x.id === d.id);
    const what = full ? (full.currentActions || []).map((a) => a.action).join(", ") : "";
    dl.append(el("li", {}, el("a", { href: "#/deployments", text: d.id }), what ? ` (${what})` : ""));
  }

  const f = app.lastTaskFailure;
  $("app-last-failure-panel").hidden = !f;
  if (f) {
    $("app-last-failure").textContent = `${f.state || ""} ${f.taskId || ""} on ${f.host || "?"} at ${when(f.timestamp)}: ${f.message || "(no message)"}`;
  }

  const body = $("app-tasks").querySelector("tbody");
  body.replaceChildren();
  const tasks = (app.tasks || []).slice().sort((a, b) => (a.id < b.id ? -1 : 1));
  for (const t of tasks) {
    body.append(el("tr", { "data-task-id": t.id },
      el("td", {}, el("code", { text: t.id })),
      el("td", { class: "state-" + t.state, text: t.state }),
      el("td", { text: t.host || "" }),
      el("td", {}, ...taskPorts(t)),
      el("td", {}, taskHealth(t)),
      el("td", { text: when(t.stagedAt) }),
      el("td", { text: when(t.startedAt) }),
      el("td", {}, el("code", { text: t.version || "" })),
      el("td", {},
        el("button", { type: "button", class: "small kill-task", "data-task-id": t.id, title: "Kill; Marathon starts a replacement",
          onclick: () => act(`kill ${t.id}`, () => api("DELETE", appPath(app.id) + "/tasks/" + encodeURIComponent(t.id))) }, "Kill"),
        " ",
        el("button", { type: "button", class: "small kill-scale-task", "data-task-id": t.id, title: "Kill and scale down by one",
          onclick: () => act(`kill and scale ${t.id}`, () => api("DELETE", appPath(app.id) + "/tasks/" + encodeURIComponent(t.id) + "?scale=true")) }, "Kill & scale"))));
  }
  $("app-tasks-empty").hidden = tasks.length > 0;

  const vl = $("app-versions");
  vl.replaceChildren();
  for (const v of state.versions) {
    vl.append(el("li", {}, v, v === app.version ? el("span", { class: "muted", text: " (current)" }) : ""));
  }

  const config = Object.assign({}, app);
  for (const k of ["tasks", "deployments", "tasksStaged", "tasksRunning", "tasksHealthy", "tasksUnhealthy", "lastTaskFailure", "taskStats", "readinessCheckResults"]) delete config[k];
  $("app-config").textContent = JSON.stringify(config, null, 2);
}

function renderDeployments() {
  const body = $("deployments-table").querySelector("tbody");
  body.replaceChildren();
  for (const d of state.deployments) {
    const apps = (d.affectedApps || []).map((a) => el("a", { href: appHash(a), text: a }));
    const appCell = el("td");
    apps.forEach((a, i) => { if (i) appCell.append(", "); appCell.append(a); });
    const actions = (d.currentActions || []).map((a) => `${a.action} ${a.app || a.pod || ""}`.trim()).join(", ");
    body.append(el("tr", { "data-deployment-id": d.id },
      el("td", {}, el("code", { text: d.id })),
      appCell,
      el("td", { text: `${d.currentStep || 0} / ${d.totalSteps || (d.steps || []).length}` }),
      el("td", { text: actions }),
      el("td", {}, el("code", { text: d.version || "" })),
      el("td", {},
        el("button", { type: "button", class: "small rollback-deployment", title: "Cancel and roll back (a new deployment)",
          onclick: () => act(`roll back ${d.id}`, () => api("DELETE", "/v2/deployments/" + encodeURIComponent(d.id))) }, "Roll back"),
        " ",
        el("button", { type: "button", class: "small danger stop-deployment", title: "Stop it where it is (force=true, no rollback)",
          onclick: () => act(`stop ${d.id}`, () => api("DELETE", "/v2/deployments/" + encodeURIComponent(d.id) + "?force=true")) }, "Stop"))));
  }
  $("deployments-empty").hidden = state.deployments.length > 0;
  $("deployments-count").textContent = state.deployments.length ? String(state.deployments.length) : "";
}

// ------------------------------------------------------------------ refresh loop

let refreshing = null;
let lastRefreshError = null;

async function refreshOnce() {
  const r = route();
  await loadCommon();
  if (r.page === "app") await loadApp(r.id);
  // The hash may have changed while loading: draw what is asked for now.
  const now = route();
  show(now.page);
  renderDeployments();
  if (now.page === "apps") renderApps();
  else if (now.page === "app" && r.page === "app" && now.id === r.id) renderApp(now.id);
  else if (now.page === "missing") $("missing-text").textContent = `There is no page ${location.hash}.`;
  document.body.dataset.loaded = "1";
}

async function refresh() {
  if (refreshing) return refreshing;
  refreshing = (async () => {
    try {
      await refreshOnce();
      $("refresh-state").textContent = "updated " + new Date().toLocaleTimeString();
      if (lastRefreshError) { lastRefreshError = null; hideError(); }
    } catch (e) {
      $("refresh-state").textContent = "update failed";
      lastRefreshError = e;
      showError(e);
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

async function loadInfo() {
  try {
    const r = await api("GET", "/v2/info");
    const i = r.json || {};
    const master = (i.marathon_config || {}).master;
    $("server-info").textContent = `${i.name || "marathon"} ${i.version || ""}` + (master ? ` · master ${master}` : "");
  } catch (_) { /* the header line is decoration */ }
}

// ------------------------------------------------------------------ actions

function currentAppId() {
  const r = route();
  return r.page === "app" ? r.id : null;
}

function wire() {
  $("error-close").addEventListener("click", hideError);
  $("apps-filter").addEventListener("input", renderApps);
  $("create-open").addEventListener("click", () => {
    $("create-panel").hidden = false;
    $("create-json").focus();
  });
  $("create-cancel").addEventListener("click", () => { $("create-panel").hidden = true; });
  $("create-submit").addEventListener("click", async () => {
    hideError();
    const text = $("create-json").value;
    if (!text.trim()) {
      showError(new Error("Paste an app definition (JSON) first."));
      return;
    }
    $("create-status").textContent = "creating…";
    $("create-submit").disabled = true;
    try {
      const r = await api("POST", "/v2/apps", text);
      const id = (r.json && r.json.id) || null;
      $("create-panel").hidden = true;
      $("create-json").value = "";
      notice(`Created ${id || "the app"}` + (r.headers.get("Marathon-Deployment-Id") ? ` (deployment ${r.headers.get("Marathon-Deployment-Id")})` : ""));
      if (id) location.hash = appHash(id);
      await refresh();
    } catch (e) {
      showError(e);
    } finally {
      $("create-status").textContent = "";
      $("create-submit").disabled = false;
    }
  });
  $("scale-submit").addEventListener("click", () => {
    const id = currentAppId();
    const raw = $("scale-input").value.trim();
    const n = Number(raw);
    if (!id) return;
    if (raw === "" || !Number.isInteger(n) || n < 0) {
      showError(new Error(`Instances must be a whole number >= 0, not '${raw}'.`));
      return;
    }
    $("scale-input").dataset.app = "";
    act(`scale ${id} to ${n}`, (force) => api("PUT", appPath(id) + (force ? "?force=true" : ""), { instances: n }));
  });
  $("scale-input").addEventListener("keydown", (e) => { if (e.key === "Enter") $("scale-submit").click(); });
  $("restart-button").addEventListener("click", () => {
    const id = currentAppId();
    if (id) act(`restart ${id}`, (force) => api("POST", appPath(id) + "/restart" + (force ? "?force=true" : "")));
  });
  $("suspend-button").addEventListener("click", () => {
    const id = currentAppId();
    if (!id) return;
    $("scale-input").dataset.app = "";
    act(`suspend ${id}`, (force) => api("PUT", appPath(id) + (force ? "?force=true" : ""), { instances: 0 }));
  });
  $("delete-button").addEventListener("click", () => { $("delete-confirm-box").hidden = false; });
  $("delete-cancel").addEventListener("click", () => { $("delete-confirm-box").hidden = true; });
  $("delete-confirm").addEventListener("click", async () => {
    const id = currentAppId();
    $("delete-confirm-box").hidden = true;
    if (!id) return;
    const r = await act(`delete ${id}`, (force) => api("DELETE", appPath(id) + (force ? "?force=true" : "")));
    if (r) {
      location.hash = "#/apps";
      await refresh();
    }
  });
  window.addEventListener("hashchange", () => {
    hideError();
    $("delete-confirm-box").hidden = true;
    $("scale-input").dataset.app = "";
    refresh();
  });
}

wire();
loadInfo();
refresh();
setInterval(refresh, REFRESH_MS);
