// @ts-check
/**
 * Browser and Node client for the gateway's pub/sub protocol, version 1
 * (docs/protocol.md, close codes in docs/errors.md). An ES module with no
 * dependencies and no build step; types in client.d.ts.
 *
 * Error tree:
 *
 *     GatewayError
 *      +-- RequestError           the gateway answered a request with an `error` frame
 *      +-- RequestTimeoutError    no `ack` or `error` within the request's timeout
 *      +-- ConnectionClosedError  the socket closed before the answer came
 *      +-- NotConnectedError      the client is closed (close(), or a close it will not retry)
 *      +-- TicketError            POST /ws/ticket refused (status, code)
 *
 * Credentials never travel in the URL: a ticket or token rides in a subprotocol
 * name beside the fixed `gateway.v1` (gateway/handshake/credentials.py); without
 * one, the browser's session cookie authenticates the socket (same origin only).
 */

export const PROTOCOL_VERSION = 1;
export const SUBPROTOCOL = "gateway.v1";
export const TICKET_PREFIX = "gateway.ticket.";
export const BEARER_PREFIX = "gateway.bearer.";

// --- close reasons ------------------------------------------------------------------

/** @typedef {import("./client").CloseAction} CloseAction */
/** @typedef {import("./client").CloseKind} CloseKind */
/** @typedef {import("./client").CloseReason} CloseReason */

/** @type {Record<number, [CloseKind, CloseAction, string]>} */
const CLOSE_CODES = {
  1000: ["normal", "none", "Closed normally."],
  1001: ["going_away", "reconnect", "The server is going away (restart or deploy)."],
  1005: ["no_status", "reconnect", "Closed without a status code."],
  1006: ["abnormal", "reconnect", "The connection was lost (no close frame)."],
  1008: ["policy_violation", "fix_client", "The client broke the protocol; do not retry unchanged."],
  1009: ["message_too_big", "fix_client", "A frame exceeded the maximum size."],
  1011: ["internal_error", "reconnect", "Server error or message bus lost; reconnect with backoff."],
  1012: ["service_restart", "reconnect", "The server is restarting."],
  1013: ["try_again_later", "reconnect", "Keys, discovery or the bus unavailable, or the client read too slowly; reconnect with backoff."],
  4400: ["bad_request", "fix_client", "The credential could not be parsed."],
  4401: ["unauthenticated", "reauthenticate", "Not authenticated, or no longer; get a fresh credential."],
  4403: ["forbidden", "reauthenticate", "Authenticated but not allowed; do not retry unchanged."],
  4404: ["no_route", "fix_client", "No websocket route at this path."],
  4408: ["auth_timeout", "fix_client", "No auth message arrived in time."],
  4410: ["admin_disconnect", "none", "Disconnected by an administrator; reconnect by hand."],
  4429: ["rate_limited", "reconnect", "Too many messages or connections; back off."],
};

/**
 * A typed close reason from a close code and reason code (docs/errors.md).
 * @param {number} code
 * @param {string} [reason]
 * @param {boolean} [byClient]
 * @param {string} [detail] the text of a `disconnect` frame received just before (4410)
 * @returns {CloseReason}
 */
export function closeReason(code, reason = "", byClient = false, detail = "") {
  const known = CLOSE_CODES[code];
  const [kind, action, explanation] = known ?? ["unknown", "reconnect", `Close code ${code}.`];
  return Object.freeze({ code, reason, kind, action, explanation, byClient, detail });
}

// --- errors -------------------------------------------------------------------------

export class GatewayError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = new.target.name;
  }
}

export class RequestError extends GatewayError {
  /**
   * @param {string} type request type
   * @param {{id: string|number|null, error: string, detail?: string}} frame
   */
  constructor(type, frame) {
    super(`${type} refused: ${frame.error}${frame.detail ? ` (${frame.detail})` : ""}`);
    this.type = type;
    this.id = frame.id;
    this.code = frame.error;
    this.detail = frame.detail ?? "";
  }
}

export class RequestTimeoutError extends GatewayError {
  /** @param {string} type @param {number} id @param {number} timeoutMs */
  constructor(type, id, timeoutMs) {
    super(`${type} ${id}: no answer within ${timeoutMs} ms`);
    this.type = type;
    this.id = id;
    this.timeoutMs = timeoutMs;
  }
}

export class ConnectionClosedError extends GatewayError {
  /** @param {CloseReason} close */
  constructor(close) {
    super(`connection closed (${close.code} ${close.reason})`);
    this.close = close;
  }
}

export class NotConnectedError extends GatewayError {
  constructor() {
    super("the client is closed; call connect() first");
  }
}

export class TicketError extends GatewayError {
  /** @param {number} status @param {string} code */
  constructor(status, code) {
    super(`ticket refused: ${status} ${code}`);
    this.status = status;
    this.code = code;
  }
}

// --- helpers ------------------------------------------------------------------------

/**
 * Exponential backoff with full jitter: uniform in [0, min(cap, base * 2^attempt)).
 * @param {number} attempt 0 for the first retry
 * @param {{baseMs: number, capMs: number}} backoff
 * @param {() => number} random uniform in [0, 1)
 */
export function backoffDelay(attempt, { baseMs, capMs }, random) {
  const ceiling = Math.min(capMs, baseMs * 2 ** attempt);
  return Math.floor(random() * ceiling);
}

/** Channel names are lowercased, ASCII only (docs/protocol.md). @param {string} channel */
export function normaliseChannel(channel) {
  return String(channel).replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/** @param {string} name */
function readCookie(name) {
  const cookies = typeof document === "undefined" ? "" : document.cookie;
  const match = cookies.match(new RegExp(`(?:^|;\\s*)${name}=([^;]+)`));
  return match ? decodeURIComponent(match[1]) : "";
}

/**
 * Mint a one-time ticket: `POST /ws/ticket` with the session (CSRF header) or a bearer token.
 * @param {import("./client").FetchTicketOptions} [options]
 * @returns {Promise<string>}
 */
export async function fetchTicket(options = {}) {
  const { url = "/ws/ticket", accessToken, csrfToken, credentials = "same-origin" } = options;
  const fetcher = options.fetch ?? globalThis.fetch;
  /** @type {Record<string, string>} */
  const headers = accessToken
    ? { Authorization: `Bearer ${accessToken}` }
    : { "X-CSRFToken": csrfToken ?? readCookie("csrftoken") };
  const response = await fetcher(url, { method: "POST", headers, credentials, cache: "no-store" });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new TicketError(response.status, body.error ?? "ticket_refused");
  if (typeof body.ticket !== "string" || !body.ticket) throw new TicketError(502, "no_ticket");
  return body.ticket;
}

/** @param {unknown} err */
function isAuthFailure(err) {
  const status = /** @type {{status?: unknown}} */ (err ?? {}).status;
  return status === 401 || status === 403;
}

// --- the client ---------------------------------------------------------------------

/** @typedef {import("./client").ClientOptions} ClientOptions */
/** @typedef {import("./client").ClientState} ClientState */
/** @typedef {import("./client").Frame} Frame */

/**
 * @typedef {object} Pending
 * @property {string} type
 * @property {(frame: Frame) => void} resolve
 * @property {(err: Error) => void} reject
 * @property {unknown} [timer]
 */

/**
 * @typedef {object} Queued
 * @property {string} type
 * @property {Record<string, unknown>} fields
 * @property {number} timeoutMs
 * @property {(frame: Frame) => void} resolve
 * @property {(err: Error) => void} reject
 */

export class GatewayClient {
  /** @param {ClientOptions} options */
  constructor(options) {
    this.url = options.url;
    this.options = options;
    this._WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this._random = options.random ?? Math.random;
    /** @type {(fn: () => void, ms: number) => unknown} */
    this._setTimeout = options.setTimeout ?? globalThis.setTimeout.bind(globalThis);
    /** @type {(handle: unknown) => void} */
    this._clearTimeout = options.clearTimeout ?? /** @type {any} */ (globalThis.clearTimeout.bind(globalThis));
    this._backoff = { baseMs: 1000, capMs: 60000, ...options.backoff };
    this._requestTimeoutMs = options.requestTimeoutMs ?? 10000;
    this._maxAuthRetries = options.maxAuthRetries ?? 1;
    /** @type {ClientState} */
    this.state = "idle";
    /** @type {import("./client").Principal | null} */
    this.principal = null;
    /** @type {number | null} */
    this.expiresAt = null;
    /** @type {CloseReason | null} */
    this.lastClose = null;
    /** What the grants allow, from `welcome` and `channels` frames (null until one arrives). @type {import("./client").ChannelGrant[] | null} */
    this.grants = null;
    this.reconnects = 0;
    /** @type {Set<string>} */
    this._channels = new Set();
    /** @type {Map<string, Set<Function>>} */
    this._handlers = new Map();
    /** @type {Map<number, Pending>} */
    this._pending = new Map();
    /** @type {Queued[]} */
    this._outbox = [];
    /** @type {any} */
    this._ws = null;
    this._nextId = 1;
    this._attempt = 0;
    this._authFailures = 0;
    this._ready = false;
    this._stopped = true;
    /** @type {unknown} */
    this._timer = null;
    /** @type {string | null} */
    this._nextTicket = null;
    this._replacing = false;
    this._refreshedSince = false;
    /** The `detail` of a `disconnect` frame on the current socket, for its close reason. */
    this._disconnectDetail = "";
  }

  /** The channels this client is subscribed to (and resubscribes to after a reconnect). */
  get channels() {
    return new Set(this._channels);
  }

  /**
   * Listen to an event; returns a function that removes the handler.
   * @param {string} event
   * @param {Function} handler
   */
  on(event, handler) {
    const set = this._handlers.get(event) ?? new Set();
    set.add(handler);
    this._handlers.set(event, set);
    return () => set.delete(handler);
  }

  /** @param {string} event @param {unknown} detail */
  _emit(event, detail) {
    for (const handler of this._handlers.get(event) ?? []) {
      try {
        handler(detail);
      } catch (err) {
        queueMicrotask(() => { throw err; }); // a handler's bug must not break the client
      }
    }
  }

  /** @param {ClientState} state */
  _setState(state) {
    const previous = this.state;
    if (previous === state) return;
    this.state = state;
    this._emit("state", { state, previous, reconnects: this.reconnects });
  }

  /** Open the socket (again, after a close). */
  connect() {
    if (!this._stopped) return;
    this._stopped = false;
    this._attempt = 0;
    this._authFailures = 0;
    void this._open();
  }

  /** Close for good: no reconnect; pending and queued requests are rejected. */
  close(code = 1000, reason = "client_closed") {
    const ws = this._ws;
    this._ws = null;
    if (ws) ws.close(code, reason);
    const close = closeReason(code, reason, true);
    this._stop(close);
    this._emit("close", close);
  }

  // --- connection lifecycle -------------------------------------------------------

  async _open() {
    this._setState("connecting");
    this._ready = false;
    /** @type {string[]} */
    let protocols;
    try {
      protocols = await this._protocols();
    } catch (err) {
      if (!this._stopped) this._credentialFailed(err);
      return;
    }
    if (this._stopped) return;
    const ws = new this._WebSocket(this.url, protocols);
    this._ws = ws;
    this._disconnectDetail = "";
    ws.onopen = () => this._onOpen(ws);
    ws.onmessage = (/** @type {{data: unknown}} */ e) => this._onFrame(ws, e.data);
    ws.onclose = (/** @type {{code: number, reason: string}} */ e) => this._onClose(ws, e);
    ws.onerror = () => {}; // a close event always follows
  }

  /** Subprotocols for the next socket: a fresh credential each time (tickets are single-use). */
  async _protocols() {
    const ticket = this._nextTicket ?? (this.options.getTicket ? await this.options.getTicket() : null);
    this._nextTicket = null;
    if (ticket) return [SUBPROTOCOL, TICKET_PREFIX + ticket];
    if (this.options.getToken) return [SUBPROTOCOL, BEARER_PREFIX + (await this.options.getToken())];
    return [SUBPROTOCOL]; // the session cookie authenticates
  }

  /** @param {unknown} err */
  _credentialFailed(err) {
    this._emit("auth", { type: "failed", error: err });
    if (isAuthFailure(err)) {
      const code = /** @type {{code?: string}} */ (err).code ?? "credential_refused";
      this._afterClose(closeReason(4401, code));
    } else {
      this._scheduleReconnect();
    }
  }

  /** @param {any} ws */
  _onOpen(ws) {
    if (ws !== this._ws) return;
    this._setState("open");
    const queued = new Set(this._outbox.filter((q) => q.type === "subscribe").map((q) => q.fields.channel));
    const resubscribe = [...this._channels].filter((c) => !queued.has(c));
    for (const channel of resubscribe) {
      this._subscribeRequest(channel, this._request("subscribe", { channel }), true).catch(() => {});
    }
    if (resubscribe.length === 0) this._request("ping", {}).catch(() => {}); // proves we are authenticated
    const outbox = this._outbox.splice(0);
    for (const q of outbox) this._send(q.type, q.fields, q.timeoutMs).then(q.resolve, q.reject);
  }

  /** The socket answered something: it is authenticated, so the backoff starts over. */
  _markReady() {
    if (this._ready) return;
    this._ready = true;
    this._attempt = 0;
    this._authFailures = 0;
  }

  /** @param {any} ws @param {{code: number, reason: string}} event */
  _onClose(ws, event) {
    if (ws !== this._ws) return;
    this._ws = null;
    const close = closeReason(event.code, event.reason ?? "", this._replacing, this._disconnectDetail);
    this._disconnectDetail = "";
    this.lastClose = close;
    this._failPending(new ConnectionClosedError(close));
    this._emit("close", close);
    if (this._replacing) {
      this._replacing = false;
      void this._open(); // re-authentication by a new socket with a fresh ticket
      return;
    }
    this._afterClose(close);
  }

  /** @param {CloseReason} close */
  _afterClose(close) {
    if (close.action === "reconnect") this._scheduleReconnect();
    else if (close.action === "reauthenticate") void this._reauthenticate(close);
    else this._stop(close);
  }

  _scheduleReconnect() {
    const delayMs = backoffDelay(this._attempt, this._backoff, this._random);
    this._attempt += 1;
    this._setState("waiting");
    this._emit("reconnecting", { attempt: this._attempt, delayMs });
    this._timer = this._setTimeout(() => {
      this._timer = null;
      if (this._stopped) return;
      this.reconnects += 1;
      void this._open();
    }, delayMs);
  }

  /**
   * After 4401/4403: reconnect only if re-authentication succeeds, at most
   * `maxAuthRetries` times in a row without the gateway answering in between.
   * @param {CloseReason} close
   */
  async _reauthenticate(close) {
    if (this._authFailures >= this._maxAuthRetries) {
      this._stop(close);
      return;
    }
    this._authFailures += 1;
    this._setState("reauthenticating");
    let ok = false;
    try {
      ok = await this._freshCredential(close);
    } catch (err) {
      this._emit("auth", { type: "failed", error: err });
    }
    if (this._stopped) return;
    if (!ok) {
      this._stop(close);
      return;
    }
    this.reconnects += 1;
    void this._open();
  }

  /** @param {CloseReason} close @returns {Promise<boolean>} */
  async _freshCredential(close) {
    if (this.options.onAuthRequired && !(await this.options.onAuthRequired(close))) return false;
    if (this.options.getTicket) {
      this._nextTicket = await this.options.getTicket();
      return true;
    }
    return Boolean(this.options.onAuthRequired || this.options.getToken);
  }

  /** Closed for good (until connect()): `close` is why. @param {CloseReason} close */
  _stop(close) {
    const err = new ConnectionClosedError(close);
    this.lastClose = close;
    this._stopped = true;
    if (this._timer !== null) this._clearTimeout(this._timer);
    this._timer = null;
    this._failPending(err);
    for (const q of this._outbox.splice(0)) q.reject(err);
    this._setState("closed");
  }

  /** @param {Error} err */
  _failPending(err) {
    const pending = [...this._pending.values()];
    this._pending.clear();
    for (const p of pending) {
      this._clearTimeout(p.timer);
      p.reject(err);
    }
  }

  // --- frames from the gateway ----------------------------------------------------

  /** @param {any} ws @param {unknown} data */
  _onFrame(ws, data) {
    if (ws !== this._ws) return;
    let frame;
    try {
      frame = JSON.parse(String(data));
    } catch {
      return;
    }
    if (!frame || typeof frame !== "object") return;
    this._emit("frame", frame);
    const handler = FRAME_HANDLERS[frame.type];
    if (handler) handler(this, frame);
  }

  /** @param {Frame} frame */
  _settle(frame) {
    const pending = this._pending.get(/** @type {number} */ (frame.id));
    if (!pending) {
      if (frame.type === "error") this._emit("error", frame);
      return;
    }
    this._pending.delete(/** @type {number} */ (frame.id));
    this._clearTimeout(pending.timer);
    this._markReady();
    if (frame.type === "ack") pending.resolve(frame);
    else pending.reject(new RequestError(pending.type, /** @type {any} */ (frame)));
  }

  /** @param {number} expiresAt */
  _setExpiry(expiresAt) {
    this.expiresAt = expiresAt;
    if (this.principal) this.principal = { ...this.principal, expires_at: expiresAt };
  }

  /**
   * `auth.expiring`: token sockets send a fresh token in band; ticket sockets mint a
   * ticket and send it in band (a session-bound ticket socket may be refreshed by the
   * server first); session sockets wait for the server-side refresh (`auth.refreshed`).
   * @param {Frame} frame
   */
  async _onExpiring(frame) {
    this._refreshedSince = false;
    this._emit("auth", { type: "expiring", expiresAt: frame.expires_at });
    const ws = this._ws;
    try {
      if (this.options.getToken) {
        const token = await this.options.getToken();
        if (ws === this._ws) await this._reauthInBand({ token }); // else a new socket took a new token
      } else if (this.options.getTicket) {
        const ticket = await this.options.getTicket();
        if (this._refreshedSince || ws !== this._ws) return; // the server already refreshed it
        await this._reauthInBand({ ticket }).catch((err) => {
          if (!(err instanceof RequestError) || ws !== this._ws) throw err;
          this._replaceSocket(ticket); // the gateway took no ticket in band: reconnect with it
        });
      }
    } catch (err) {
      this._emit("auth", { type: "failed", error: err }); // the gateway closes with 4401 at expiry
    }
  }

  /** @param {Record<string, string>} credential */
  async _reauthInBand(credential) {
    const ack = await this.request("auth", credential);
    if (typeof ack.expires_at === "number") this._setExpiry(ack.expires_at);
    this._emit("auth", { type: "reauthenticated", expiresAt: ack.expires_at });
  }

  /** @param {string} ticket */
  _replaceSocket(ticket) {
    this._nextTicket = ticket;
    this._replacing = true;
    this._ws.close(1000, "reauthenticate");
  }

  // --- requests -------------------------------------------------------------------

  /**
   * Send one request; resolves with its `ack`, rejects with a RequestError (the `error`
   * frame), RequestTimeoutError, ConnectionClosedError or NotConnectedError. While the
   * client is connecting or waiting to reconnect, requests queue and go out on open.
   * @param {string} type
   * @param {Record<string, unknown>} [fields]
   * @param {{timeoutMs?: number}} [options]
   * @returns {Promise<Frame>}
   */
  request(type, fields = {}, options = {}) {
    const timeoutMs = options.timeoutMs ?? this._requestTimeoutMs;
    if (this._stopped) return Promise.reject(new NotConnectedError());
    if (this.state !== "open") {
      return new Promise((resolve, reject) => this._outbox.push({ type, fields, timeoutMs, resolve, reject }));
    }
    return this._send(type, fields, timeoutMs);
  }

  /** @param {string} type @param {Record<string, unknown>} fields */
  _request(type, fields) {
    return this._send(type, fields, this._requestTimeoutMs);
  }

  /**
   * @param {string} type @param {Record<string, unknown>} fields @param {number} timeoutMs
   * @returns {Promise<Frame>}
   */
  _send(type, fields, timeoutMs) {
    const id = this._nextId++;
    return new Promise((resolve, reject) => {
      /** @type {Pending} */
      const pending = { type, resolve, reject };
      pending.timer = this._setTimeout(() => {
        if (this._pending.get(id) !== pending) return;
        this._pending.delete(id);
        reject(new RequestTimeoutError(type, id, timeoutMs));
      }, timeoutMs);
      this._pending.set(id, pending);
      this._ws.send(JSON.stringify({ v: PROTOCOL_VERSION, type, id, ...fields }));
    });
  }

  /**
   * @param {string} channel @param {Promise<Frame>} answer
   * @param {boolean} held a refusal then takes away a subscription the client held (say so)
   */
  async _subscribeRequest(channel, answer, held) {
    try {
      const ack = await answer;
      this._emit("subscribed", { channel });
      return ack;
    } catch (err) {
      if (err instanceof RequestError && this._channels.delete(channel) && held) {
        this._emit("unsubscribed", { channel, reason: err.code });
      }
      throw err;
    }
  }

  /** Subscribe; the channel is kept and resubscribed after every reconnect. @param {string} channel */
  subscribe(channel) {
    const name = normaliseChannel(channel);
    const held = this._channels.has(name);
    this._channels.add(name);
    return this._subscribeRequest(name, this.request("subscribe", { channel: name }), held);
  }

  /** @param {string} channel */
  async unsubscribe(channel) {
    const name = normaliseChannel(channel);
    this._channels.delete(name);
    return this.request("unsubscribe", { channel: name });
  }

  /** @param {string} channel @param {unknown} payload */
  publish(channel, payload) {
    return this.request("publish", { channel: normaliseChannel(channel), payload });
  }

  /** Who is subscribed to a channel (needs the `presence` grant). @param {string} channel */
  async presence(channel) {
    const ack = await this.request("presence", { channel: normaliseChannel(channel) });
    return /** @type {import("./client").Member[]} */ (ack.members ?? []);
  }

  ping() {
    return this.request("ping");
  }
}

/** @type {Record<string, (client: GatewayClient, frame: Frame) => void>} */
const FRAME_HANDLERS = {
  ack: (client, frame) => client._settle(frame),
  error: (client, frame) => client._settle(frame),
  message: (client, frame) => {
    const { channel, payload, ts, mid } = frame;
    client._emit("message", { channel, payload, ts, mid });
  },
  unsubscribed: (client, frame) => {
    client._channels.delete(/** @type {string} */ (frame.channel));
    client._emit("unsubscribed", { channel: frame.channel, reason: frame.reason });
  },
  join: (client, frame) => client._emit("presence", { type: "join", channel: frame.channel, member: frame.member }),
  leave: (client, frame) => client._emit("presence", { type: "leave", channel: frame.channel, member: frame.member }),
  welcome: (client, frame) => {
    client._markReady();
    client.principal = /** @type {any} */ (frame.principal) ?? null;
    client.expiresAt = client.principal?.expires_at ?? null;
    client._emit("welcome", frame);
    FRAME_HANDLERS.channels(client, frame);
  },
  channels: (client, frame) => {
    if (!Array.isArray(frame.channels)) return;
    client.grants = frame.channels;
    client._emit("channels", { channels: frame.channels });
  },
  disconnect: (client, frame) => {
    const detail = typeof frame.detail === "string" ? frame.detail : "";
    client._disconnectDetail = detail;
    client._emit("disconnect", { reason: frame.reason, detail });
  },
  "auth.expiring": (client, frame) => void client._onExpiring(frame),
  "auth.refreshed": (client, frame) => {
    client._refreshedSince = true;
    client._setExpiry(/** @type {number} */ (frame.expires_at));
    client._emit("auth", { type: "refreshed", expiresAt: frame.expires_at });
  },
};
