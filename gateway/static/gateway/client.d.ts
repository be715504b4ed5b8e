// Types for client.js: the gateway's pub/sub protocol, version 1 (docs/protocol.md).

export declare const PROTOCOL_VERSION: 1;
export declare const SUBPROTOCOL: "gateway.v1";
export declare const TICKET_PREFIX: "gateway.ticket.";
export declare const BEARER_PREFIX: "gateway.bearer.";

/** What a client should do after a close (docs/errors.md). */
export type CloseAction = "none" | "reconnect" | "reauthenticate" | "fix_client";

export type CloseKind =
  | "normal" | "going_away" | "no_status" | "abnormal" | "policy_violation" | "message_too_big"
  | "internal_error" | "service_restart" | "try_again_later" | "bad_request" | "unauthenticated"
  | "forbidden" | "no_route" | "auth_timeout" | "admin_disconnect" | "rate_limited" | "unknown";

/** A close code and reason code, classified. */
export interface CloseReason {
  readonly code: number;
  /** The gateway's reason code, e.g. `logged_out`, `expired`, `bus_lost`, `rate_limited`. */
  readonly reason: string;
  readonly kind: CloseKind;
  readonly action: CloseAction;
  readonly explanation: string;
  /** True when this client closed the socket itself. */
  readonly byClient: boolean;
  /** The `detail` of the `disconnect` frame that came just before (4410: the administrator's reason), else "". */
  readonly detail: string;
}

export declare function closeReason(
  code: number, reason?: string, byClient?: boolean, detail?: string): CloseReason;

export declare class GatewayError extends Error {}
export declare class RequestError extends GatewayError {
  readonly type: string;
  readonly id: string | number | null;
  /** The protocol's error code: `forbidden`, `invalid_channel`, `too_many_subscriptions`, ... */
  readonly code: string;
  readonly detail: string;
}
export declare class RequestTimeoutError extends GatewayError {
  readonly type: string;
  readonly id: number;
  readonly timeoutMs: number;
}
export declare class ConnectionClosedError extends GatewayError {
  readonly close: CloseReason;
}
export declare class NotConnectedError extends GatewayError {}
export declare class TicketError extends GatewayError {
  readonly status: number;
  readonly code: string;
}

export declare function backoffDelay(
  attempt: number, backoff: { baseMs: number; capMs: number }, random: () => number): number;
export declare function normaliseChannel(channel: string): string;

export interface FetchTicketOptions {
  /** Default `/ws/ticket` (same origin). */
  url?: string;
  /** Mint with `Authorization: Bearer` instead of the session (no CSRF then). */
  accessToken?: string;
  /** Default: the `csrftoken` cookie. */
  csrfToken?: string;
  credentials?: "omit" | "same-origin" | "include";
  fetch?: typeof fetch;
}
export declare function fetchTicket(options?: FetchTicketOptions): Promise<string>;

export interface Principal {
  subject: string;
  issuer: string;
  client_id?: string | null;
  groups: string[];
  roles: string[];
  scopes?: string[];
  expires_at: number;
  credential?: string;
  sid?: string | null;
}

export interface Member { issuer: string; subject: string; }

/** One grant target (a channel or a `prefix.*` pattern) and the operations it allows. */
export interface ChannelGrant { channel: string; operations: ("subscribe" | "publish" | "presence")[]; }

/** Any frame from the gateway. */
export interface Frame { v?: number; type: string; id?: string | number | null; [field: string]: unknown; }

export interface WebSocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

export interface ClientOptions {
  /** `wss://gw.example.com/ws/events/`. Never put a credential in it. */
  url: string;
  /** Cross-origin: a fresh one-time ticket for every connection and re-authentication. */
  getTicket?: () => Promise<string>;
  /** An access token (sent as subprotocol `gateway.bearer.<token>`, and in band on `auth.expiring`). */
  getToken?: () => Promise<string>;
  /** After 4401/4403: resolve true once the user can authenticate again (e.g. signed in anew). */
  onAuthRequired?: (close: CloseReason) => boolean | Promise<boolean>;
  /** Default 1 s doubling to 60 s, full jitter. */
  backoff?: { baseMs?: number; capMs?: number };
  /** Default 10 000 ms. */
  requestTimeoutMs?: number;
  /** Re-authentications in a row without the gateway answering in between (default 1). */
  maxAuthRetries?: number;
  WebSocket?: new (url: string, protocols: string[]) => WebSocketLike;
  random?: () => number;
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (handle: unknown) => void;
}

/**
 * idle: never connected; connecting: minting a credential or opening; open: socket open;
 * waiting: backing off before a reconnect; reauthenticating: after 4401/4403; closed: for good.
 */
export type ClientState = "idle" | "connecting" | "open" | "waiting" | "reauthenticating" | "closed";

export interface ClientEvents {
  message: { channel: string; payload: unknown; ts: number; mid: string };
  subscribed: { channel: string };
  /** `revoked` from the gateway, or the error code when a (re)subscribe is refused. */
  unsubscribed: { channel: string; reason: string };
  presence: { type: "join" | "leave"; channel: string; member: Member };
  welcome: Frame & { principal: Principal; channels?: ChannelGrant[] };
  /** What the grants allow: from the welcome, and again whenever it changes. */
  channels: { channels: ChannelGrant[] };
  state: { state: ClientState; previous: ClientState; reconnects: number };
  close: CloseReason;
  /** An administrator is disconnecting this subject: the close (4410 `admin_disconnect`) follows. */
  disconnect: { reason: string; detail: string };
  reconnecting: { attempt: number; delayMs: number };
  auth: { type: "expiring" | "refreshed" | "reauthenticated" | "failed"; expiresAt?: number; error?: unknown };
  /** An `error` frame that answers no pending request (e.g. id null). */
  error: Frame;
  /** Every frame, before the specific event. */
  frame: Frame;
}

export declare class GatewayClient {
  constructor(options: ClientOptions);
  readonly url: string;
  readonly state: ClientState;
  readonly principal: Principal | null;
  readonly expiresAt: number | null;
  readonly lastClose: CloseReason | null;
  readonly reconnects: number;
  /** The channels subscribed to (resubscribed after a reconnect). */
  readonly channels: ReadonlySet<string>;
  /** What the grants allow (latest `welcome` or `channels` frame), null before either. */
  readonly grants: ChannelGrant[] | null;
  on<E extends keyof ClientEvents>(event: E, handler: (detail: ClientEvents[E]) => void): () => void;
  connect(): void;
  close(code?: number, reason?: string): void;
  request(type: string, fields?: Record<string, unknown>, options?: { timeoutMs?: number }): Promise<Frame>;
  subscribe(channel: string): Promise<Frame>;
  unsubscribe(channel: string): Promise<Frame>;
  publish(channel: string, payload: unknown): Promise<Frame>;
  presence(channel: string): Promise<Member[]>;
  ping(): Promise<Frame>;
}
