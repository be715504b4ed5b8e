// @ts-check
/**
 * The console page (gateway/templates/gateway/console.html), built only on client.js.
 * Initial data comes from the `console-config` JSON script (Django's json_script):
 *   {websocket_url, principal: {subject, issuer, username?, groups, roles, expires_at},
 *    channels: [{channel, operations: ["subscribe" | "publish" | "presence"]}], logout_url?}
 * (`channels` as in the welcome frame, docs/protocol.md); `welcome` and `channels` frames update it live.
 * Everything from the network is written with textContent, never as HTML.
 */

import { ConnectionClosedError, GatewayClient } from "./client.js";

/** @typedef {import("./client").ChannelGrant} ChannelGrant */

const config = JSON.parse(/** @type {HTMLElement} */ (document.getElementById("console-config")).textContent ?? "{}");

/** @param {string} id @returns {any} */
const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

/** @param {string} tag @param {Record<string, string>} [attrs] @param {...(Node|string)} children */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

/** @param {HTMLElement} list @param {HTMLElement} item @param {number} [max] */
function prepend(list, item, max = 200) {
  list.prepend(item);
  while (list.children.length > max) list.lastElementChild?.remove();
}

const time = (/** @type {number} */ epoch) => new Date(epoch * 1000).toLocaleTimeString();

const client = new GatewayClient({ url: config.websocket_url });

/** @type {ChannelGrant[]} */
let grants = config.channels ?? [];
/** @type {Map<string, Set<string>>} channel -> "issuer subject" */
const presence = new Map();
let expiresAt = config.principal?.expires_at ?? null;

// --- principal ------------------------------------------------------------------------

/** @param {{subject: string, issuer: string, username?: string, groups?: string[], roles?: string[], expires_at?: number}} principal */
function showPrincipal(principal) {
  $("principal-subject").textContent = principal.username || principal.subject;
  $("principal-subject").title = principal.subject;
  $("principal-issuer").textContent = principal.issuer;
  $("principal-groups").textContent = (principal.groups ?? []).join(", ") || "none";
  $("principal-roles").textContent = (principal.roles ?? []).join(", ") || "none";
  if (principal.expires_at) expiresAt = principal.expires_at;
  tick();
}

function tick() {
  const node = $("expiry-countdown");
  if (!expiresAt) { node.textContent = "unknown"; return; }
  const left = Math.max(0, Math.round(expiresAt - Date.now() / 1000));
  const minutes = Math.floor(left / 60);
  node.textContent = `in ${minutes}:${String(left % 60).padStart(2, "0")} (${time(expiresAt)})`;
  node.dataset.seconds = String(left);
}

// --- channels -------------------------------------------------------------------------

/** @param {string} channel @param {string} op */
function allows(channel, op) {
  return grants.some((g) => /** @type {string[]} */ (g.operations).includes(op) && (g.channel === channel
    || (g.channel.endsWith(".*") && channel.startsWith(g.channel.slice(0, -1)))));
}

/** The rows: every concrete grant target, plus every channel subscribed (e.g. under a pattern). */
function renderChannels() {
  const list = $("channel-list");
  const names = new Set(grants.filter((g) => !g.channel.endsWith(".*")).map((g) => g.channel));
  for (const c of client.channels) names.add(c);
  const patterns = grants.filter((g) => g.channel.endsWith(".*"));
  list.replaceChildren(
    ...[...names].sort().map(channelRow),
    ...patterns.map((g) => el("li", { "data-testid": "channel-pattern", "data-channel": g.channel },
      el("span", { class: "name" }, el("code", {}, g.channel), " ", ops(g.operations)))),
  );
  if (!list.children.length) list.append(el("li", { class: "muted" }, "No grant allows you any channel."));
  const publishable = grants.filter((g) => g.operations.includes("publish"));
  $("publish-panel").hidden = publishable.length === 0;
  document.getElementById("publishable")?.replaceChildren(
    ...publishable.map((g) => el("option", { value: g.channel.endsWith(".*") ? g.channel.slice(0, -1) : g.channel })));
}

/** @param {string[]} operations */
function ops(operations) {
  return el("span", { class: "ops" }, ...operations.map((op) => el("span", { class: `op op-${op}` }, op)));
}

/** @param {string} channel */
function channelRow(channel) {
  const subscribed = client.channels.has(channel);
  const operations = ["subscribe", "publish", "presence"].filter((op) => allows(channel, op));
  const button = subscribed
    ? el("button", { type: "button", "data-testid": "unsubscribe-button", "data-channel": channel }, "Unsubscribe")
    : el("button", { type: "button", "data-testid": "subscribe-button", "data-channel": channel }, "Subscribe");
  button.addEventListener("click", () => (subscribed ? unsubscribe(channel) : subscribe(channel)));
  return el("li", { "data-testid": "channel-item", "data-channel": channel, "data-subscribed": String(subscribed) },
    el("span", { class: "name" }, el("code", {}, channel), " ", ops(operations)), button);
}

/** @param {string} text */
function showError(text) {
  prepend($("errors"), el("li", { "data-testid": "error" }, `${new Date().toLocaleTimeString()} ${text}`), 20);
}

/** @param {string} channel */
async function subscribe(channel) {
  try {
    await client.subscribe(channel);
  } catch (err) {
    showError(`subscribe ${channel}: ${describe(err)}`);
  }
  renderChannels();
}

/** @param {string} channel */
async function unsubscribe(channel) {
  presence.delete(channel);
  renderPresence();
  renderChannels();
  await client.unsubscribe(channel).catch((err) => showError(`unsubscribe ${channel}: ${describe(err)}`));
}

/** @param {unknown} err */
function describe(err) {
  const e = /** @type {{code?: string, detail?: string, message?: string}} */ (err);
  return e.code ? `${e.code}${e.detail ? ` (${e.detail})` : ""}` : String(e.message ?? err);
}

// --- presence -------------------------------------------------------------------------

/** @param {{issuer: string, subject: string}} m */
const memberKey = (m) => `${m.subject} (${m.issuer})`;

/** @param {string} channel */
async function refreshPresence(channel) {
  const members = await client.presence(channel);
  presence.set(channel, new Set(members.map(memberKey)));
  renderPresence();
}

function renderPresence() {
  const root = $("presence-list");
  if (presence.size === 0) {
    root.replaceChildren(el("p", { class: "muted" }, "Subscribe to a channel you hold presence on."));
    return;
  }
  root.replaceChildren(...[...presence].sort().map(([channel, members]) =>
    el("div", { "data-testid": "presence-channel", "data-channel": channel }, el("h3", {}, el("code", {}, channel)),
      el("ul", {}, ...[...members].sort().map((m) => el("li", { "data-testid": "presence-member" }, m))))));
}

// --- log ------------------------------------------------------------------------------

/** @param {string} text @param {string} [kind] */
function logEvent(text, kind = "info") {
  prepend($("event-log"), el("li", { class: `event-${kind}` }, `${new Date().toLocaleTimeString()} ${text}`));
}

client.on("message", (m) => {
  prepend($("message-log"), el("li", { "data-testid": "message", "data-channel": m.channel, "data-mid": m.mid },
    el("time", {}, time(m.ts)), " ", el("code", {}, m.channel), " ", el("pre", {}, JSON.stringify(m.payload, null, 2))));
});

client.on("unsubscribed", ({ channel, reason }) => {
  presence.delete(channel);
  renderPresence();
  renderChannels();
  showError(`unsubscribed from ${channel}: ${reason}`);
  logEvent(`unsubscribed from ${channel}: ${reason}`, "warn");
});

// Every acknowledged subscribe, first or after a reconnect, reads presence afresh: joins and
// leaves while the socket was down were missed. A read cut short by a close is read again
// on the resubscribe, so only other failures are shown.
client.on("subscribed", ({ channel }) => {
  renderChannels();
  if (!allows(channel, "presence")) return;
  refreshPresence(channel).catch((err) => {
    if (!(err instanceof ConnectionClosedError)) showError(`presence ${channel}: ${describe(err)}`);
  });
});

client.on("presence", ({ type, channel, member }) => {
  const members = presence.get(channel) ?? new Set();
  if (type === "join") members.add(memberKey(member));
  else members.delete(memberKey(member));
  presence.set(channel, members);
  renderPresence();
});

// The welcome's principal has no display name: keep the page's.
client.on("welcome", (frame) => {
  showPrincipal({ ...frame.principal, username: config.principal?.username });
  logEvent(`welcome: ${frame.principal?.credential ?? "signed"} socket of ${frame.principal?.subject}`);
});

client.on("channels", ({ channels }) => {
  const changed = JSON.stringify(channels) !== JSON.stringify(grants);
  grants = channels;
  renderChannels();
  if (changed) logEvent("the channels your grants allow changed");
});

client.on("auth", (a) => {
  if (a.expiresAt) { expiresAt = a.expiresAt; tick(); }
  logEvent(`auth ${a.type}${a.expiresAt ? `: valid until ${time(a.expiresAt)}` : ""}`, a.type === "failed" ? "warn" : "info");
});

client.on("state", ({ state }) => {
  const node = $("connection-state");
  node.textContent = state;
  node.dataset.state = state;
  $("reconnect-count").textContent = String(client.reconnects);
  $("reconnect-button").hidden = state !== "closed";
  if (state === "open") $("close-reason").hidden = true;
  logEvent(`state: ${state}`);
});

client.on("reconnecting", ({ attempt, delayMs }) => logEvent(`reconnecting in ${(delayMs / 1000).toFixed(1)} s (attempt ${attempt})`, "warn"));

client.on("close", (close) => {
  const node = $("close-reason");
  const why = close.detail ? ` Reason given: ${close.detail}` : "";
  node.textContent = `Socket closed: ${close.code} ${close.reason || close.kind}. ${close.explanation}${why}`;
  node.dataset.code = String(close.code);
  node.dataset.reason = close.reason;
  node.dataset.detail = close.detail;
  node.hidden = false;
  logEvent(`closed ${close.code} ${close.reason}`, "warn");
});

client.on("disconnect", ({ detail }) => logEvent(`disconnected by an administrator: ${detail}`, "warn"));

client.on("error", (frame) => showError(`${frame.error}: ${frame.detail ?? ""}`));

// --- forms ----------------------------------------------------------------------------

$("channel-form").addEventListener("submit", (/** @type {SubmitEvent} */ event) => {
  event.preventDefault();
  const input = $("channel-input");
  const channel = input.value.trim();
  if (channel) subscribe(channel).then(() => { input.value = ""; });
});

$("publish-form").addEventListener("submit", async (/** @type {SubmitEvent} */ event) => {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.target);
  const channel = form.elements.namedItem("channel");
  const payload = form.elements.namedItem("payload");
  let value;
  try {
    value = JSON.parse(/** @type {HTMLTextAreaElement} */ (payload).value);
  } catch {
    showError("publish: the payload is not valid JSON");
    return;
  }
  const name = /** @type {HTMLInputElement} */ (channel).value.trim();
  try {
    const ack = await client.publish(name, value);
    logEvent(`published to ${name} (${ack.mid})`);
  } catch (err) {
    showError(`publish ${name}: ${describe(err)}`);
  }
});

$("reconnect-button").addEventListener("click", () => client.connect());

// --- start ----------------------------------------------------------------------------

if (config.principal) showPrincipal(config.principal);
renderChannels();
renderPresence();
setInterval(tick, 1000);
client.connect();
