// Club Pulse pages: the live parts. Every page works without this script; with it, holds count
// down, a facility's week follows other members' holds and releases, notifications arrive on
// every page, and the dashboard shows activity as it happens. One WebSocket per page, to this
// site only, reconnecting with back-off and resuming each channel from its last offset.

const body = document.body;
const words = body.dataset;

// --- Countdowns -------------------------------------------------------------------------------

function pad(n) {
  return String(n).padStart(2, "0");
}

function tickCountdowns() {
  const now = Date.now();
  for (const el of document.querySelectorAll("[data-countdown]")) {
    const until = Date.parse(el.dataset.countdown);
    if (Number.isNaN(until)) continue;
    const left = Math.max(0, Math.round((until - now) / 1000));
    const text = `${pad(Math.floor(left / 60))}:${pad(left % 60)}`;
    if (el.textContent !== text) el.textContent = text;
    if (left === 0 && !el.dataset.expired) {
      el.dataset.expired = "true";
      const note = el.closest("section, li")?.querySelector("[data-expired-note]");
      if (note) note.hidden = false;
    }
  }
}

if (document.querySelector("[data-countdown]")) {
  tickCountdowns();
  setInterval(tickCountdowns, 1000);
}

// --- Local times ------------------------------------------------------------------------------

const timeFormat = new Intl.DateTimeFormat(words.lang || "en", {
  dateStyle: "medium",
  timeStyle: "short",
});
for (const el of document.querySelectorAll("time[data-local-time]")) {
  const at = Date.parse(el.getAttribute("datetime"));
  if (!Number.isNaN(at)) el.textContent = timeFormat.format(at);
}

// --- The week grid ----------------------------------------------------------------------------

const week = document.querySelector("[data-week]");

function setSlotState(li, state) {
  if (li.dataset.state === state) return;
  if (state === "free" && Date.parse(li.dataset.start) <= Date.now()) state = "closed";
  li.dataset.state = state;
  const label = li.querySelector(".state");
  if (label) label.textContent = words[`t${state[0].toUpperCase()}${state.slice(1)}`] || state;
  const button = li.querySelector("button");
  if (!button) return;
  const action = li.querySelector(".sr");
  if (state === "free") {
    button.removeAttribute("formaction");
    if (action) action.textContent = ` · ${words.tHold}`;
  } else if (state === "held" || state === "booked") {
    button.setAttribute("formaction", week.dataset.waitAction);
    if (action) action.textContent = ` · ${words.tWait}`;
  } else {
    button.disabled = true;
  }
}

function applyRange(start, end, state) {
  if (!week) return;
  const from = Date.parse(start);
  const to = Date.parse(end);
  for (const li of week.querySelectorAll("li[data-start]")) {
    const at = Date.parse(li.dataset.start);
    if (at >= from && at < to) setSlotState(li, state);
  }
}

// After a (re)subscription the page may have missed events: the grid is read again from the API
// and every slot set to what it says.
async function refreshWeek() {
  if (!week) return;
  const slots = week.querySelectorAll("li[data-start]");
  if (slots.length === 0) return;
  const from = slots[0].dataset.start;
  const to = slots[slots.length - 1].dataset.end;
  const url = `/api/v1/facilities/${week.dataset.facilityId}/availability?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`;
  try {
    const answer = await fetch(url, { headers: { accept: "application/json" } });
    if (!answer.ok) return;
    const grid = await answer.json();
    for (const slot of grid.slots) applyRange(slot.start, slot.end, slot.state);
  } catch {
    // The next reconnection tries again.
  }
}

// --- Notifications ----------------------------------------------------------------------------

const toasts = document.querySelector("[data-toasts]");
const badge = document.querySelector("[data-unread-count]");

/// An element with its text and attributes (text is always set as text, never as HTML).
function el(tag, text, attributes = {}) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

function showNotification(n) {
  if (badge) badge.textContent = String(Number(badge.textContent || "0") + 1);
  const booking = n.data && n.data.booking_id;
  const href = booking ? `/bookings/${encodeURIComponent(booking)}` : "/me/notifications";
  if (toasts) {
    const toast = el("div", undefined, { class: "toast", "data-toast": n.kind });
    toast.append(el("strong", n.title), el("p", n.body));
    if (booking) toast.append(el("a", "→", { href, "aria-label": n.title }));
    const close = el("button", "×", { type: "button", class: "link", "aria-label": words.tClose || "Close" });
    close.addEventListener("click", () => toast.remove());
    toast.append(close);
    toasts.prepend(toast);
  }
  const inbox = document.querySelector("[data-inbox]");
  if (inbox) {
    const li = el("li", undefined, { class: "unread" });
    li.append(el("a", n.title, { href }));
    inbox.prepend(li);
    while (inbox.children.length > 5) inbox.lastElementChild.remove();
    document.querySelector("[data-inbox-empty]")?.remove();
  }
  const list = document.querySelector("[data-notification-list]");
  if (list) {
    const li = el("li", undefined, { class: "card unread", "data-notification": n.id });
    li.append(el("h2", n.title), el("p", n.body));
    list.prepend(li);
    document.querySelector("[data-notification-empty]")?.remove();
  }
}

// --- The dashboard's activity feed -------------------------------------------------------------

const activity = document.querySelector("[data-activity]");
const facilityNames = new Map();
if (activity) {
  try {
    for (const f of JSON.parse(activity.dataset.activity || "[]")) facilityNames.set(f.id, f.name);
  } catch {
    // No names: ids are shown instead.
  }
}

function logActivity(message) {
  if (!activity) return;
  const li = el("li", undefined, { "data-event": message.event });
  const when = new Intl.DateTimeFormat(words.lang || "en", { timeStyle: "medium" }).format(new Date());
  const state = { "slot.held": words.tHeld, "slot.booked": words.tBooked, "slot.released": words.tFree }[message.event] || message.event;
  const slot = new Intl.DateTimeFormat(words.lang || "en", { dateStyle: "short", timeStyle: "short" }).format(Date.parse(message.start));
  li.textContent = `${when} · ${facilityNames.get(message.facility_id) || message.facility_id} · ${slot} · ${state}`;
  activity.prepend(li);
  while (activity.children.length > 50) activity.lastElementChild.remove();
  document.querySelector("[data-activity-empty]")?.setAttribute("hidden", "");
}

// --- The socket -------------------------------------------------------------------------------

const status = document.querySelector("[data-live-status]");
const channels = new Map(); // channel -> last offset seen (or null before the first)
// The socket's own `user` channel is subscribed at connect; after a reconnection it is asked again
// from its last offset, so notifications sent while the socket was down are not lost.
channels.set("user", null);
if (week) channels.set(`facility:${week.dataset.facilityId}`, null);
for (const id of facilityNames.keys()) channels.set(`facility:${id}`, null);

let socket = null;
let attempts = 0;
// Channels asked for on this socket and not yet confirmed; the page is live (`data-live-ready`)
// once every one is, and the week has been read again.
const pending = new Set();

async function confirmed(channel, refresh) {
  pending.delete(channel);
  if (refresh) await refreshWeek();
  if (pending.size === 0) body.dataset.liveReady = "true";
}

function setStatus(online) {
  if (!status) return;
  status.hidden = online;
  status.textContent = online ? words.tOnline : words.tOffline;
  body.dataset.live = online ? "on" : "off";
}

function onMessage(raw) {
  let message;
  try {
    message = JSON.parse(raw);
  } catch {
    return;
  }
  if (message.type === "subscribed") {
    const before = channels.get(message.channel);
    channels.set(message.channel, message.offset);
    const stale = message.channel.startsWith("facility:") && week && (before === null || !message.recovered);
    confirmed(message.channel, stale);
  } else if (message.type === "event") {
    if (channels.has(message.channel)) channels.set(message.channel, message.offset);
    if (message.event === "notification") {
      showNotification(message.notification);
    } else if (message.event && message.event.startsWith("slot.")) {
      const state = { "slot.held": "held", "slot.booked": "booked", "slot.released": "free" }[message.event];
      if (week && message.facility_id === week.dataset.facilityId) applyRange(message.start, message.end, state);
      logActivity(message);
    }
  }
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/api/v1/ws`);
  socket.addEventListener("open", () => {
    attempts = 0;
    setStatus(true);
    pending.clear();
    for (const [channel, offset] of channels) {
      if (channel === "user" && offset === null) continue;
      const ask = { type: "subscribe", channel };
      if (offset !== null) ask.since = offset;
      pending.add(channel);
      socket.send(JSON.stringify(ask));
    }
    // A page with nothing to watch but its own notifications is live once connected.
    if (pending.size === 0) body.dataset.liveReady = "true";
  });
  socket.addEventListener("message", (e) => onMessage(e.data));
  socket.addEventListener("close", (e) => {
    setStatus(false);
    body.dataset.liveReady = "false";
    // 1008: the session ended or was refused; reconnecting would be refused again.
    if (e.code === 1008 || e.code === 4401) return;
    attempts += 1;
    const delay = Math.min(30000, 500 * 2 ** Math.min(attempts, 6)) * (0.5 + Math.random() / 2);
    setTimeout(connect, delay);
  });
}

if (words.signedIn === "true" && "WebSocket" in window) connect();
