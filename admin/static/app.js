// webtier status page: reads /api/status every 2 s and draws it; the
// buttons POST to /api/* with the page token (X-Webtier-Token) and, when
// the admin listener has one, the bearer token the operator typed in
// (kept for this tab only, in sessionStorage). Everything from the server
// goes into the page as text, never as HTML.
"use strict";

const pageToken = document.querySelector('meta[name="webtier-token"]').content;
let bearer = sessionStorage.getItem("webtier-admin-token") || "";
let timer = null;

function headers(extra) {
  const h = Object.assign({ "X-Webtier-Token": pageToken }, extra || {});
  if (bearer) h["Authorization"] = "Bearer " + bearer;
  return h;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.includes("-")) e.setAttribute(k, v);
    else if (k === "onclick") e.addEventListener("click", v);
    else e[k] = v;
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function ago(iso, now) {
  if (!iso) return "";
  const s = Math.max(0, (Date.parse(now) - Date.parse(iso)) / 1000);
  if (s < 60) return Math.round(s) + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  if (s < 86400) return (s / 3600).toFixed(1) + " h ago";
  return (s / 86400).toFixed(1) + " d ago";
}

function secs(v) {
  return v >= 100 ? Math.round(v) + " s" : v.toFixed(1) + " s";
}

function say(text, bad) {
  const m = document.getElementById("message");
  m.textContent = text;
  m.className = bad ? "bad" : "good";
}

async function act(path, body) {
  try {
    const r = await fetch("/api/" + path, {
      method: "POST",
      headers: headers({ "Content-Type": "application/json" }),
      body: JSON.stringify(body || {}),
      credentials: "same-origin",
      cache: "no-store",
    });
    const j = await r.json().catch(() => ({}));
    if (r.ok) say(j.message || "done", false);
    else say(path + ": " + (j.error || r.status), true);
  } catch (e) {
    say(path + ": " + e, true);
  }
  refresh();
}

const states = ["running", "recovering", "suspect", "ejected", "draining", "standby"];

function upstreamTable(u, now) {
  const sel = el("select", { class: "balance", "data-upstream": u.name, "aria-label": "balance of " + u.name });
  for (const b of ["least_conn", "round_robin", "random_two", "sticky", "hash"]) {
    sel.append(el("option", { value: b, selected: b === u.balance }, b));
  }
  const head = el("div", { class: "uphead" },
    el("h2", {}, u.name),
    el("span", { class: "muted" }, u.scheme),
    u.panic ? el("span", { class: "state state-ejected" }, "panic: no healthy address") : null,
    el("span", {}, "in flight ", el("b", {}, u.in_flight), ", sent ", el("b", {}, u.total)),
    el("label", {}, "balance ", sel),
    el("button", { onclick: () => act("balance", { upstream: u.name, balance: sel.value }) }, "Apply"));
  const t = el("table", { class: "up", "data-upstream": u.name });
  t.append(el("thead", {}, el("tr", {}, ...["address", "state", "reason", "since", "in flight", "sent", "weight", ""].map((h) => el("th", {}, h)))));
  const tb = el("tbody");
  for (const tg of u.targets || []) {
    const label = tg.host + ":" + tg.port + (tg.backup ? " (backup)" : "") + (tg.literal ? "" : " (DNS)");
    tb.append(el("tr", { class: "target", "data-target": tg.host },
      el("td", { colSpan: 7 }, label, tg.standby ? el("span", { class: "state state-standby" }, "target in standby") : null,
        tg.addresses.length === 0 ? el("span", { class: "muted" }, " no address in the current answer") : null),
      el("td", {}, tg.standby
        ? el("button", { class: "activate", onclick: () => act("activate", { upstream: u.name, target: tg.host }) }, "Activate target")
        : el("button", { class: "standby", onclick: () => act("standby", { upstream: u.name, target: tg.host }) }, "Standby target"))));
    for (const a of tg.addresses) {
      const sb = a.state === "standby";
      tb.append(el("tr", { class: "addr", "data-upstream": u.name, "data-address": a.address },
        el("td", { class: "mono" }, a.address),
        el("td", {}, el("span", { class: "state state-" + (states.includes(a.state) ? a.state : "other") }, a.state)),
        el("td", { class: "reason" }, a.reason),
        el("td", { title: a.since }, ago(a.since, now)),
        el("td", { class: "num" }, a.in_flight),
        el("td", { class: "num" }, a.total),
        el("td", { class: "num" }, a.weight),
        el("td", {}, sb
          ? el("button", { class: "activate", onclick: () => act("activate", { upstream: u.name, address: a.address }) }, "Activate")
          : el("button", { class: "standby", onclick: () => act("standby", { upstream: u.name, address: a.address }) }, "Standby"))));
    }
  }
  t.append(tb);
  return el("section", { class: "upstream" }, head, t);
}

function namesTable(names, now) {
  const t = el("table", { id: "names" });
  t.append(el("thead", {}, el("tr", {}, ...["name", "addresses", "TTL left", "TTL", "answer age", "next refresh", "source", ""].map((h) => el("th", {}, h)))));
  const tb = el("tbody");
  for (const n of names) {
    tb.append(el("tr", { "data-name": n.name },
      el("td", { class: "mono" }, n.name),
      el("td", { class: "mono" }, n.addresses.length ? n.addresses.join(" ") : el("span", { class: "bad" }, n.error || "none"),
        n.stale ? el("span", { class: "state state-suspect" }, "stale") : null),
      el("td", { class: "num ttl-left" }, secs(n.ttl_left_seconds)),
      el("td", { class: "num" }, secs(n.ttl_seconds)),
      el("td", { class: "num" }, n.age_seconds ? secs(n.age_seconds) : ""),
      el("td", {}, n.next_refresh ? "in " + secs(Math.max(0, (Date.parse(n.next_refresh) - Date.parse(now)) / 1000)) : ""),
      el("td", {}, n.source),
      el("td", {}, el("button", { class: "resolve", onclick: () => act("resolve", { name: n.name }) }, "Re-resolve"))));
  }
  t.append(tb);
  return t;
}

function changesTable(changes) {
  const t = el("table", { id: "changes" });
  t.append(el("thead", {}, el("tr", {}, ...["at", "name", "old", "new", "TTL"].map((h) => el("th", {}, h)))));
  const tb = el("tbody");
  for (const c of changes) {
    tb.append(el("tr", {}, el("td", { class: "mono" }, c.at.replace("T", " ").replace(/\.\d+Z$/, "Z")),
      el("td", { class: "mono" }, c.name), el("td", { class: "mono" }, c.old.join(" ") || "none"),
      el("td", { class: "mono" }, c.new.join(" ") || "none"), el("td", { class: "num" }, secs(c.ttl_seconds))));
  }
  t.append(tb);
  return t;
}

function configSection(c) {
  if (!c) return null;
  const ls = el("table", { id: "listeners" }, el("thead", {}, el("tr", {}, el("th", {}, "listener"), el("th", {}, "address"), el("th", {}, "TLS"))));
  const lb = el("tbody");
  for (const l of c.listeners || []) lb.append(el("tr", {}, el("td", {}, l.name), el("td", { class: "mono" }, l.address), el("td", {}, l.tls ? "yes" : "no")));
  ls.append(lb);
  const rs = el("table", { id: "routes" }, el("thead", {}, el("tr", {}, el("th", {}, "host"), el("th", {}, "path"), el("th", {}, "upstream"))));
  const rb = el("tbody");
  for (const r of c.routes || []) rb.append(el("tr", {}, el("td", {}, r.host || "*"), el("td", { class: "mono" }, r.path), el("td", {}, r.upstream)));
  rs.append(rb);
  return el("section", { class: "config" }, el("h2", {}, "Config"),
    el("p", { class: "muted" }, c.file, " · hash ", el("span", { class: "mono", id: "config-hash" }, c.hash), " · loaded ", c.loaded_at),
    el("div", { class: "pair" }, ls, rs));
}

function draw(s) {
  // Keep a control the operator is using (an open select) until done.
  const active = document.activeElement;
  if (active && active.tagName === "SELECT" && document.getElementById("content").contains(active)) return;
  const drain = document.getElementById("drain-state");
  drain.textContent = !s.drain.available ? "not available" : s.drain.draining ? "draining" : "serving";
  drain.className = s.drain.draining ? "state state-draining" : "state state-running";
  document.getElementById("drain").disabled = !s.drain.available || s.drain.draining;
  document.getElementById("undrain").disabled = !s.drain.available || !s.drain.draining;
  if (s.log_level && document.activeElement !== document.getElementById("level")) document.getElementById("level").value = s.log_level;
  let addrs = 0, up = 0;
  for (const u of s.upstreams) for (const t of u.targets || []) for (const a of t.addresses) { addrs++; if (a.state === "running" || a.state === "recovering") up++; }
  document.getElementById("summary").textContent = (s.version ? s.version + " · " : "") + s.upstreams.length + " upstreams · " + up + "/" + addrs + " addresses taking requests";
  document.getElementById("updated").textContent = "updated " + new Date(s.now).toLocaleTimeString();
  const content = document.getElementById("content");
  const parts = [];
  for (const u of s.upstreams) parts.push(upstreamTable(u, s.now));
  parts.push(el("section", {}, el("h2", {}, "DNS names"), namesTable(s.names, s.now)));
  parts.push(el("section", {}, el("h2", {}, "Recent DNS changes"), s.dns_changes.length ? changesTable(s.dns_changes) : el("p", { class: "muted" }, "none since start")));
  parts.push(configSection(s.config));
  content.replaceChildren(...parts.filter((p) => p));
  document.body.dataset.loaded = "1";
}

async function refresh() {
  clearTimeout(timer);
  try {
    const r = await fetch("/api/status", { headers: headers(), cache: "no-store", credentials: "same-origin" });
    if (r.status === 401) {
      document.getElementById("auth").hidden = false;
      document.getElementById("summary").textContent = "token needed";
      return; // no polling until a token is given
    }
    if (!r.ok) throw new Error("HTTP " + r.status);
    document.getElementById("auth").hidden = true;
    draw(await r.json());
  } catch (e) {
    document.getElementById("summary").textContent = "cannot read status: " + e.message;
  }
  timer = setTimeout(refresh, 2000);
}

document.getElementById("auth-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  bearer = document.getElementById("auth-token").value.trim();
  sessionStorage.setItem("webtier-admin-token", bearer);
  refresh();
});
document.getElementById("drain").addEventListener("click", () => {
  if (confirm("Drain this webtier? The health check fails and it stops taking clients.")) act("drain");
});
document.getElementById("undrain").addEventListener("click", () => act("undrain"));
document.getElementById("reload").addEventListener("click", () => act("reload"));
document.getElementById("set-level").addEventListener("click", () => act("log-level", { level: document.getElementById("level").value }));
refresh();
