"use strict";
// omniretail console: talks only to the public REST API with the signed-in user's token.
const state = { token: sessionStorage.getItem("omni.token"), role: null, locations: [], channels: [], cursor: null };
const $ = (sel, root = document) => root.querySelector(sel);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

async function api(path, options = {}) {
  const headers = { "content-type": "application/json", ...(options.headers || {}) };
  if (state.token) headers.authorization = `Bearer ${state.token}`;
  const res = await fetch(path, { ...options, headers });
  const body = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) {
    if (res.status === 401 && state.token) signOut();
    const err = body && body.error ? body.error : { code: "http_error", message: res.statusText };
    throw Object.assign(new Error(err.message), err);
  }
  return body;
}

function show(view) {
  for (const s of document.querySelectorAll("main > section")) s.hidden = s.id !== `${view}-view`;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.view === view);
}

function signOut() {
  sessionStorage.removeItem("omni.token");
  state.token = null;
  $("#nav").hidden = true; $("#logout").hidden = true; $("#who").textContent = "";
  show("login");
}

async function start() {
  try {
    const me = await api("/api/v1/auth/me");
    state.role = me.role;
    $("#who").textContent = `${me.role}`;
    $("#nav").hidden = false; $("#logout").hidden = false;
    await loadReferenceData();
    route();
  } catch (e) { signOut(); }
}

async function loadReferenceData() {
  const [locations, channels] = await Promise.all([
    api("/api/v1/locations").catch(() => []),
    api("/api/v1/channels").catch(() => ({ items: [] })),
  ]);
  state.locations = Array.isArray(locations) ? locations : (locations.items || []);
  state.channels = channels.items || channels || [];
  const locOptions = state.locations.map((l) => `<option value="${esc(l.id)}">${esc(l.name)} (${esc(l.type)})</option>`).join("");
  $("#stock-form select").innerHTML = locOptions;
  $("#store-form select").innerHTML = state.locations.filter((l) => l.type === "store").map((l) => `<option value="${esc(l.id)}">${esc(l.name)}</option>`).join("");
  const floor = state.locations.filter((l) => ["store", "warehouse", "dark_store", "locker"].includes(l.type));
  $("#picking-form select").innerHTML = floor.map((l) => `<option value="${esc(l.id)}">${esc(l.name)}</option>`).join("");
  $("#price-form select").innerHTML = state.channels.map((c) => `<option value="${esc(c.code)}">${esc(c.name)} (${esc(c.currency)})</option>`).join("");
}

function route() {
  const view = (location.hash || "#products").slice(1);
  show(view);
  if (view === "products" && !$("#product-table tbody").children.length) searchProducts(false);
  if (view === "picking") loadPicking();
}

async function searchProducts(more) {
  const form = new FormData($("#product-search"));
  const params = new URLSearchParams({ limit: "25" });
  if (form.get("q")) params.set("q", form.get("q"));
  if (form.get("category")) params.set("category", form.get("category"));
  if (more && state.cursor) params.set("cursor", state.cursor);
  const page = await api(`/api/v1/products?${params}`);
  const tbody = $("#product-table tbody");
  if (!more) tbody.innerHTML = "";
  for (const p of page.items) {
    const tr = document.createElement("tr");
    tr.dataset.id = p.id;
    tr.innerHTML = `<td>${esc(p.title)}</td><td>${p.variants.map((v) => `<span class="pill">${esc(v.sku)}</span>`).join("")}</td><td>${esc(p.status)}</td><td>${esc(p.categories.join(", "))}</td>`;
    tr.addEventListener("click", () => productDetail(p));
    tbody.appendChild(tr);
  }
  state.cursor = page.next_cursor;
  $("#product-more").hidden = !page.next_cursor;
}

async function productDetail(p) {
  const box = $("#product-detail");
  box.hidden = false;
  const skus = p.variants.map((v) => v.sku);
  let rows = "";
  try {
    const av = await api(`/api/v1/availability?skus=${encodeURIComponent(skus.join(","))}`);
    const byLoc = Object.fromEntries(state.locations.map((l) => [l.id, l.name]));
    rows = av.items.map((i) => `<tr><td>${esc(i.sku)}</td><td class="num">${i.available}</td><td>${Object.entries(i.locations).map(([id, qty]) => `${esc(byLoc[id] || id)}: ${qty}`).join(", ")}</td></tr>`).join("");
  } catch (e) { rows = `<tr><td colspan="3" class="error">${esc(e.message)}</td></tr>`; }
  box.innerHTML = `<div class="card"><h2>${esc(p.title)}</h2><p>${esc(p.description)}</p>
    <table><thead><tr><th>SKU</th><th class="num">Available</th><th>By location</th></tr></thead><tbody>${rows}</tbody></table></div>`;
}

async function showStock(ev) {
  ev.preventDefault();
  const form = new FormData(ev.target);
  const params = new URLSearchParams({ location_id: form.get("location_id") });
  if (form.get("sku")) params.set("sku", form.get("sku"));
  const tbody = $("#stock-table tbody");
  try {
    const rows = await api(`/api/v1/stock?${params}`);
    tbody.innerHTML = rows.map((r) => `<tr><td>${esc(r.sku)}</td><td class="num">${r.on_hand}</td><td class="num">${r.reserved}</td><td class="num">${r.safety_stock}</td><td class="num">${r.incoming}</td><td class="num">${r.available}</td></tr>`).join("") || `<tr><td colspan="6">No stock here.</td></tr>`;
  } catch (e) { tbody.innerHTML = `<tr><td colspan="6" class="error">${esc(e.message)}</td></tr>`; }
}

async function resolvePrice(ev) {
  ev.preventDefault();
  const form = new FormData(ev.target);
  const params = new URLSearchParams();
  for (const [k, v] of form.entries()) if (v) params.set(k, v);
  try { $("#price-result").textContent = JSON.stringify(await api(`/api/v1/prices/resolve?${params}`), null, 2); }
  catch (e) { $("#price-result").textContent = `${e.code}: ${e.message}`; }
}

async function runAudit() {
  const tbody = $("#audit-table tbody");
  try {
    const report = await api("/api/v1/pricing/consistency");
    const all = report.findings || [];
    const onlyUnintended = $("#audit-unintended").checked;
    const items = all.filter((f) => !onlyUnintended || !f.intended)
      .sort((a, b) => Number(a.intended) - Number(b.intended) || String(a.sku).localeCompare(b.sku));
    $("#audit-summary").textContent = `${report.skus_compared} SKUs compared: ${report.unintended} unintended and ${report.intended} intended differences.`;
    tbody.innerHTML = items.slice(0, 500).map((f) => `<tr class="${f.intended ? "" : "bad"}"><td>${esc(f.sku || "(whole cart)")}</td><td>${esc(f.aspect)}</td><td>${esc((f.channels || []).map((c) => `${c.channel}${c.amount != null ? " " + (c.amount / 100).toFixed(2) : ""}`).join(", "))}</td><td>${f.intended ? "yes" : "no"}</td></tr>`).join("") || `<tr><td colspan="4">No differences.</td></tr>`;
  } catch (e) { tbody.innerHTML = `<tr><td colspan="4" class="error">${esc(e.message)}</td></tr>`; }
}

async function storeLookup(ev) {
  ev.preventDefault();
  const form = new FormData(ev.target);
  const code = String(form.get("code")).trim();
  const out = $("#store-result");
  try {
    const found = /^\d{8,14}$/.test(code) ? await api(`/api/v1/variants?barcode=${encodeURIComponent(code)}`) : { items: [await api(`/api/v1/variants/${encodeURIComponent(code)}`)] };
    const v = found.items[0];
    if (!v) { out.innerHTML = `<p class="error">Nothing found for ${esc(code)}.</p>`; return; }
    const here = state.locations.find((l) => l.id === form.get("location_id"));
    const params = new URLSearchParams({ skus: v.sku });
    if (here && here.latitude != null) { params.set("lat", here.latitude); params.set("lon", here.longitude); params.set("radius_km", "50"); }
    const av = await api(`/api/v1/availability?${params}`);
    const item = av.items[0];
    const hereQty = item.locations[form.get("location_id")] ?? 0;
    const nearby = (av.pickup || []).filter((p) => p.location_id !== form.get("location_id")).map((p) => `<tr><td>${esc(p.name)}</td><td class="num">${p.distance_km.toFixed(1)} km</td><td class="num">${p.available[v.sku] ?? 0}</td></tr>`).join("");
    out.innerHTML = `<div class="card"><h2>${esc(v.product.title)} <span class="pill">${esc(v.sku)}</span></h2>
      <p id="here-qty">Here: <strong>${hereQty}</strong> available · all channels: ${item.available}</p>
      <table><thead><tr><th>Nearby store</th><th class="num">Distance</th><th class="num">Available</th></tr></thead><tbody>${nearby || `<tr><td colspan="3">No other store nearby.</td></tr>`}</tbody></table></div>`;
  } catch (e) { out.innerHTML = `<p class="error">${esc(e.message)}</p>`; }
}

// Picking: a location's pick list and task queue, with the next step of each task.
const STEP_LABEL = { picking: "Start picking", picked: "Confirm pick", packed: "Packed", ready: "Ready for pickup", handed_over: "Handed over" };

async function loadPicking() {
  const location = $("#picking-form select").value;
  if (!location) return;
  $("#picking-error").textContent = "";
  try {
    const [list, tasks] = await Promise.all([
      api(`/api/v1/locations/${encodeURIComponent(location)}/pick-list`),
      api(`/api/v1/fulfillment/tasks?location=${encodeURIComponent(location)}&open=true`),
    ]);
    $("#picking-summary").textContent = `${list.units} units to pick for ${list.tasks} tasks; ${tasks.length} open tasks.`;
    $("#pick-list tbody").innerHTML = list.lines.map((l) => `<tr><td>${esc(l.sku)}</td><td>${esc(l.title)}</td><td class="num">${l.quantity}</td><td>${l.tasks.map((t) => esc(t.order_id)).join(", ")}</td></tr>`).join("") || `<tr><td colspan="4">Nothing to pick.</td></tr>`;
    const tbody = $("#task-table tbody");
    tbody.innerHTML = "";
    for (const t of tasks) tbody.appendChild(taskRow(t));
    if (!tasks.length) tbody.innerHTML = `<tr><td colspan="6">No open tasks.</td></tr>`;
  } catch (e) { $("#picking-error").textContent = e.message; }
}

function taskRow(t) {
  const tr = document.createElement("tr");
  tr.dataset.task = t.id;
  const picking = t.state === "picking";
  const lines = t.lines.map((l) => picking
    ? `<label class="inline">${esc(l.sku)} <input type="number" min="0" max="${l.quantity}" value="${l.quantity}" data-sku="${esc(l.sku)}" aria-label="Found ${esc(l.sku)}"> / ${l.quantity}</label>`
    : `${l.quantity} × ${esc(l.sku)}`).join("<br>");
  const next = t.next_step === "handed_over" && (t.kind === "ship" || t.kind === "transfer") ? "ship" : t.next_step;
  const label = next === "ship" ? "Ship" : STEP_LABEL[next] || "";
  tr.innerHTML = `<td>${esc(t.order_id)}</td><td>${esc(t.kind)} <span class="pill">${esc(t.method)}</span></td><td class="state">${esc(t.state)}</td><td class="${t.overdue ? "error" : ""}">${esc(t.due_at.slice(0, 16).replace("T", " "))}${t.overdue ? " late" : ""}</td><td>${lines}</td><td>${label ? `<button type="button">${esc(label)}</button>` : ""}</td>`;
  const button = tr.querySelector("button");
  if (button) button.addEventListener("click", () => advanceTask(t, next, tr));
  return tr;
}

async function advanceTask(t, next, tr) {
  const path = { picking: "start", picked: "pick", packed: "pack", ready: "ready", handed_over: "hand-over", ship: "ship" }[next];
  let body = null;
  if (next === "picked") body = { lines: [...tr.querySelectorAll("input[data-sku]")].map((i) => ({ sku: i.dataset.sku, picked: Number(i.value) })) };
  if (next === "ship") body = { carrier: "manual" };
  try {
    await api(`/api/v1/fulfillment/tasks/${encodeURIComponent(t.id)}/${path}`, { method: "POST", body: body ? JSON.stringify(body) : undefined, headers: { "idempotency-key": `${t.id}:${path}:${t.updated_at}` } });
    await loadPicking();
  } catch (e) { $("#picking-error").textContent = `${e.code}: ${e.message}`; }
}

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = new FormData(ev.target);
  $("#login-error").textContent = "";
  try {
    const res = await api("/api/v1/auth/token", { method: "POST", body: JSON.stringify({ email: form.get("email"), password: form.get("password") }) });
    state.token = res.access_token;
    sessionStorage.setItem("omni.token", state.token);
    if (!location.hash) location.hash = "#products";
    await start();
  } catch (e) { $("#login-error").textContent = e.message; }
});
$("#logout").addEventListener("click", signOut);
$("#product-search").addEventListener("submit", (ev) => { ev.preventDefault(); searchProducts(false); });
$("#product-more").addEventListener("click", () => searchProducts(true));
$("#stock-form").addEventListener("submit", showStock);
$("#price-form").addEventListener("submit", resolvePrice);
$("#audit-run").addEventListener("click", runAudit);
$("#store-form").addEventListener("submit", storeLookup);
$("#picking-form").addEventListener("submit", (ev) => { ev.preventDefault(); loadPicking(); });
window.addEventListener("hashchange", () => state.token && route());
if (state.token) start(); else show("login");
