// The invitebus console: one page per hash (#overview, #streams, …), data from /console/api.
// Everything shown is set with textContent: nothing from the bus is ever parsed as HTML.
"use strict";

const state = { csrf: null, statuses: [], live: null, tailSource: null, tailPaused: false, records: { page: 1, pages: 1 } };
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

async function api(method, path, body) {
  const headers = { "content-type": "application/json" };
  if (method !== "GET" && state.csrf) headers["x-invitebus-csrf"] = state.csrf;
  const res = await fetch(path, { method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
  const json = await res.json().catch(() => ({ ok: false, error: { code: "internal", message: "not JSON" } }));
  if (!json.ok) throw new Error((json.error && (json.error.code + ": " + json.error.message)) || "error " + res.status);
  return json.data;
}

function show(page) {
  for (const s of document.querySelectorAll("main > section")) s.hidden = s.id !== "page-" + page;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.getAttribute("href") === "#" + page);
  if (state.live) { state.live.close(); state.live = null; }
  if (page !== "tail" && state.tailSource) { state.tailSource.close(); state.tailSource = null; }
  if (page === "overview") overview();
  if (page === "tail") tail();
  if (page === "records") records(state.records.page);
}

function route() {
  if (!state.csrf) return show("signin");
  show((location.hash || "#overview").slice(1) || "overview");
}

async function signedIn(data) {
  state.csrf = data.csrf;
  state.statuses = data.statuses || [];
  $("who").textContent = data.user;
  $("nav").hidden = false;
  $("sign-out").hidden = false;
  const select = document.querySelector("#records-form select[name=status]");
  if (select.options.length === 1) for (const s of state.statuses) select.append(el("option", { value: s, text: s }));
  route();
}

// Overview: health every second, commands per second over five minutes.
function overview() {
  const source = new EventSource("/console/api/overview");
  state.live = source;
  source.onerror = () => {
    $("health-state").textContent = "the console lost its live connection; it retries (sign in again if your token expired)";
    $("health-state").className = "bad";
  };
  source.onmessage = (m) => {
    const f = JSON.parse(m.data);
    const h = f.health || {};
    $("head-position").textContent = h.head ?? "?";
    $("health-state").textContent = f.ok ? "healthy" : "unhealthy: " + ((f.error && f.error.message) || "no answer");
    $("health-state").className = f.ok ? "ok" : "bad";
    const rows = new Map();
    for (const [name, position] of Object.entries(h.projections || {})) rows.set(name, { position });
    for (const [name, s] of Object.entries(h.status || {})) rows.set(name, Object.assign(rows.get(name) || {}, s));
    const body = $("projections");
    body.replaceChildren();
    for (const [name, s] of [...rows.entries()].sort()) {
      body.append(el("tr", { "data-testid": "projection-" + name },
        el("td", { text: name }), el("td", { text: String(s.position ?? "") }), el("td", { text: String(s.lag ?? "") }),
        el("td", { text: s.state ?? "", class: s.state === "stalled" || s.state === "missing" || s.state === "fenced" ? "bad" : "" }),
        el("td", { text: String(s.stalls ?? "") }), el("td", { text: s.last_progress_at ?? "" })));
    }
    drawRates(f.rates || []);
  };
}

function drawRates(rates) {
  const svg = $("rates");
  const max = Math.max(1, ...rates); // the chart's scale: at least one command per second
  svg.replaceChildren();
  rates.forEach((r, i) => {
    const h = (r / max) * 58;
    const rect = document.createElementNS("http://www.w3.org/2000/svg", "rect");
    rect.setAttribute("x", i); rect.setAttribute("width", 0.9); rect.setAttribute("y", 60 - h); rect.setAttribute("height", h);
    svg.append(rect);
  });
  $("commands-total").textContent = String(rates.reduce((a, b) => a + b, 0));
  const last = rates.slice(-10);
  $("rate-now").textContent = "(now " + (last.reduce((a, b) => a + b, 0) / Math.max(1, last.length)).toFixed(1) + "/s, peak " + max + "/s)";
}

// Streams: a stream's events, whether each one's hash holds, and its state as of a moment.
async function lookUp(e) {
  e.preventDefault();
  $("stream-error").textContent = "";
  const id = $("stream-search").value.trim();
  const asOf = $("stream-as-of").value.trim();
  try {
    const data = await api("GET", "/console/api/streams/" + encodeURIComponent(id) + (asOf ? "?as_of=" + encodeURIComponent(asOf) : ""));
    const broken = new Set(data.broken || []);
    const out = $("stream-events");
    out.replaceChildren();
    for (const ev of data.items || []) {
      const holds = !broken.has(ev.position);
      out.append(el("div", { class: "event", "data-testid": "event-row" },
        el("strong", { text: "#" + ev.position + " " + ev.type }), " v" + ev.version + " · " + ev.recorded_at + " · by " + ev.actor + " · hash ",
        el("code", { text: String(ev.hash).slice(0, 16) + "…" }), " ",
        el("span", { class: holds ? "ok" : "bad", text: holds ? "hash holds" : "HASH DOES NOT HOLD (altered)" }),
        el("button", { type: "button", text: "state as of here", onclick: () => { $("stream-as-of").value = ev.position; lookUp(new Event("submit")); } }),
        el("pre", { text: JSON.stringify(ev.data, null, 2) })));
    }
    $("stream-state").textContent = JSON.stringify(data.state, null, 2);
  } catch (err) { $("stream-error").textContent = err.message; }
}

// Tail: live events, filtered, with pause and resume.
function tail(e) {
  if (e) e.preventDefault();
  $("tail-error").textContent = "";
  if (state.tailSource) state.tailSource.close();
  const q = new URLSearchParams();
  if ($("tail-type").value.trim()) q.set("type", $("tail-type").value.trim());
  if ($("tail-stream").value.trim()) q.set("stream", $("tail-stream").value.trim());
  const source = new EventSource("/console/api/tail?" + q);
  state.tailSource = source;
  source.onerror = () => { if (source.readyState === EventSource.CLOSED) $("tail-error").textContent = "the tail stopped (check the filter)"; };
  source.onmessage = (m) => {
    if (state.tailPaused) return;
    const ev = JSON.parse(m.data);
    const rows = $("tail-rows");
    rows.prepend(el("tr", { "data-testid": "tail-row" }, el("td", { text: String(ev.position) }), el("td", { text: ev.type }),
      el("td", { text: ev.stream_id }), el("td", { text: ev.actor }), el("td", { text: ev.recorded_at })));
    while (rows.children.length > 200) rows.lastChild.remove();
  };
}

function togglePause() {
  state.tailPaused = !state.tailPaused;
  $("tail-pause").textContent = state.tailPaused ? "Resume" : "Pause";
}

// Trace: events, notifications and exports of one correlation id.
async function trace(e) {
  e.preventDefault();
  $("trace-error").textContent = "";
  try {
    const data = await api("GET", "/console/api/trace/" + encodeURIComponent($("trace-id").value.trim()));
    const out = $("trace-out");
    out.replaceChildren(el("p", { text: data.events.length + " events, " + data.notifications.length + " notifications, " + data.exports.length + " exports (among the last " + data.window + " messages)" }));
    if (!data.complete) out.append(el("p", { class: "bad", text: "incomplete: the scan was cut short (too long, or too many matches)" }));
    for (const ev of data.events) out.append(el("div", { class: "event", "data-testid": "trace-event" }, el("strong", { text: "#" + ev.position + " " + ev.type + " " + ev.stream_id }), el("pre", { text: JSON.stringify(ev.data, null, 2) })));
    for (const n of data.notifications) out.append(el("div", { class: "event" }, el("strong", { text: "notification to " + n.user_id + ": " }), n.text));
    for (const x of data.exports) out.append(el("div", { class: "event" }, el("strong", { text: "export " + x.export_id + ": " }), x.type));
  } catch (err) { $("trace-error").textContent = err.message; }
}

// Records: the admin view with seed 004's filters, approve and deny.
function filters() {
  const f = {};
  for (const input of $("records-form").querySelectorAll("input, select")) if (input.value.trim()) f[input.name] = input.value.trim();
  return f;
}

async function records(page) {
  $("records-error").textContent = "";
  const q = new URLSearchParams(Object.assign(filters(), { page: String(page), per_page: "20" }));
  try {
    const data = await api("GET", "/console/api/records?" + q);
    state.records = { page: data.current_page || page, pages: data.total_pages || 1 };
    $("records-page").textContent = state.records.page;
    $("records-pages").textContent = state.records.pages;
    $("records-total").textContent = data.total_count;
    const rows = $("record-rows");
    rows.replaceChildren();
    for (const m of data.models || []) {
      const description = el("input", { placeholder: "description", value: m.approve_description || "" });
      const id = m.invite_id + "." + m.invitee;
      const decide = (d) => async () => {
        try { await api("POST", "/console/api/records/" + encodeURIComponent(id) + "/" + d, { description: description.value }); records(state.records.page); }
        catch (err) { $("records-error").textContent = err.message; }
      };
      rows.append(el("tr", { "data-testid": "record-row", "data-record": id },
        el("td", { text: m.invite_id }), el("td", { text: m.invitee + (m.user && m.user.name ? " (" + m.user.name + ")" : "") }),
        el("td", { text: (m.resource && m.resource.name) || "" }), el("td", { text: m.created_at }),
        el("td", { text: m.status, "data-testid": "record-status" }), el("td", {}, description),
        el("td", {}, el("button", { text: "Approve", "data-testid": "record-approve", onclick: decide("approve") }),
          el("button", { text: "Deny", "data-testid": "record-deny", onclick: decide("deny") }))));
    }
  } catch (err) { $("records-error").textContent = err.message; }
}

// Exports: start one, watch its progress, download the file.
async function startExport() {
  $("export-error").textContent = "";
  $("export-download").hidden = true;
  setProgress(0, "requested");
  try {
    const filtersNow = filters();
    delete filtersNow.page;
    const data = await api("POST", "/console/api/exports", { format: $("export-format").value, filters: filtersNow });
    const source = new EventSource("/console/api/exports/" + encodeURIComponent(data.export_id) + "/progress");
    source.onerror = () => { if (source.readyState === EventSource.CLOSED) $("export-error").textContent = "the progress stream stopped"; };
    source.onmessage = (m) => {
      const p = JSON.parse(m.data);
      setProgress(p.progress || 0, p.status + (p.count != null ? " · " + p.count + " rows" : ""));
      if (p.status === "failed" || p.status === "upload_failure") $("export-error").textContent = "the export " + p.status;
      if (p.status === "success") {
        const a = $("export-download");
        a.href = "/console/api/exports/" + encodeURIComponent(data.export_id) + "/file";
        a.textContent = "Download " + data.export_id;
        a.hidden = false;
      }
      if (["success", "failed", "upload_failure"].includes(p.status)) source.close();
    };
  } catch (err) { $("export-error").textContent = err.message; }
}

function setProgress(value, text) {
  $("export-progress").setAttribute("aria-valuenow", String(value));
  $("export-fill").style.width = value + "%";
  $("export-status").textContent = text;
}

document.addEventListener("DOMContentLoaded", async () => {
  $("signin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("signin-error").textContent = "";
    try { await signedIn(await api("POST", "/console/session", { token: $("signin-token").value.trim() })); $("signin-token").value = ""; }
    catch (err) { $("signin-error").textContent = err.message; }
  });
  $("sign-out").addEventListener("click", async () => { await api("DELETE", "/console/session").catch(() => {}); location.reload(); });
  $("stream-form").addEventListener("submit", lookUp);
  $("tail-form").addEventListener("submit", tail);
  $("tail-pause").addEventListener("click", togglePause);
  $("trace-form").addEventListener("submit", trace);
  $("records-form").addEventListener("submit", (e) => { e.preventDefault(); records(1); });
  $("records-prev").addEventListener("click", () => records(Math.max(1, state.records.page - 1)));
  $("records-next").addEventListener("click", () => records(Math.min(state.records.pages, state.records.page + 1)));
  $("export-start").addEventListener("click", startExport);
  window.addEventListener("hashchange", route);
  try { await signedIn(await api("GET", "/console/api/me")); } catch (_) { route(); }
});
