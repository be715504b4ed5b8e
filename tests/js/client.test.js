// Unit tests for gateway/static/gateway/client.js: node --test tests/js/
import assert from "node:assert/strict";
import { beforeEach, describe, test } from "node:test";

import {
  GatewayClient, RequestError, RequestTimeoutError, ConnectionClosedError, NotConnectedError,
  TicketError, backoffDelay, closeReason, fetchTicket,
} from "../../gateway/static/gateway/client.js";
import { FakeSocket, FakeTimers, settle } from "./fakes.js";

const URL = "wss://gw.example.test/ws/events/";
const TIMEOUT = 7777; // request timeouts, told apart from backoff timers by their delay

function makeClient(options = {}) {
  const timers = new FakeTimers();
  const client = new GatewayClient({
    url: URL, WebSocket: FakeSocket, random: () => 0.5, requestTimeoutMs: TIMEOUT,
    setTimeout: timers.setTimeout, clearTimeout: timers.clearTimeout, ...options,
  });
  const events = [];
  for (const name of ["message", "subscribed", "unsubscribed", "presence", "welcome", "state",
    "close", "reconnecting", "auth", "error", "disconnect"]) {
    client.on(name, (detail) => events.push([name, detail]));
  }
  return { client, timers, events, of: (name) => events.filter(([n]) => n === name).map(([, d]) => d) };
}

/** Open the client's next socket and let the gateway answer its first request. */
async function openSocket() {
  await settle();
  const ws = FakeSocket.last;
  ws.open();
  ws.ackAll("ping");
  ws.ackAll("subscribe");
  await settle();
  return ws;
}

beforeEach(() => FakeSocket.reset());

describe("backoff", () => {
  test("grows exponentially from the base to the cap", () => {
    const nearlyOne = () => 0.999999;
    const delays = [0, 1, 2, 3, 6, 7, 20].map((n) => backoffDelay(n, { baseMs: 1000, capMs: 60000 }, nearlyOne));
    assert.deepEqual(delays, [999, 1999, 3999, 7999, 59999, 59999, 59999]);
  });

  test("full jitter stays within [0, ceiling)", () => {
    for (const attempt of [0, 3, 10]) {
      const ceiling = Math.min(60000, 1000 * 2 ** attempt);
      assert.equal(backoffDelay(attempt, { baseMs: 1000, capMs: 60000 }, () => 0), 0);
      assert.ok(backoffDelay(attempt, { baseMs: 1000, capMs: 60000 }, () => 0.9999999) < ceiling);
      assert.equal(backoffDelay(attempt, { baseMs: 1000, capMs: 60000 }, () => 0.25), Math.floor(ceiling / 4));
    }
  });

  test("each lost connection waits longer, with the injected jitter, up to the cap", async () => {
    const randoms = [0.5, 0.25, 1 - 1e-9, 0.5, 0.5];
    const { client, timers, of } = makeClient({ random: () => randoms.shift(), backoff: { baseMs: 100, capMs: 400 } });
    client.connect();
    await settle();
    for (let i = 0; i < 5; i++) {
      FakeSocket.last.serverClose(1006);
      const [delay] = timers.delays;
      timers.fire(delay);
      await settle();
    }
    assert.deepEqual(of("reconnecting").map((r) => r.delayMs), [50, 50, 399, 200, 200]);
    assert.equal(FakeSocket.instances.length, 6);
    assert.equal(client.reconnects, 5);
  });

  test("the backoff starts over once the gateway answers", async () => {
    const { client, timers, of } = makeClient({ backoff: { baseMs: 100, capMs: 10000 } });
    client.connect();
    await settle();
    FakeSocket.last.serverClose(1011, "bus_lost");
    timers.fire(50);
    await settle();
    FakeSocket.last.serverClose(1011, "bus_lost");
    timers.fire(100);
    await openSocket(); // answered: authenticated and working
    FakeSocket.last.serverClose(1012);
    assert.deepEqual(of("reconnecting").map((r) => r.delayMs), [50, 100, 50]);
  });
});

describe("closes", () => {
  test("close codes map to typed reasons", () => {
    assert.deepEqual({ ...closeReason(4401, "logged_out") }, {
      code: 4401, reason: "logged_out", kind: "unauthenticated", action: "reauthenticate",
      explanation: closeReason(4401).explanation, byClient: false, detail: "",
    });
    assert.equal(closeReason(4410, "admin_disconnect").kind, "admin_disconnect");
    assert.equal(closeReason(4410, "admin_disconnect").action, "none");
    assert.equal(closeReason(4403, "missing_scope").kind, "forbidden");
    assert.equal(closeReason(1011, "bus_lost").action, "reconnect");
    assert.equal(closeReason(4429, "rate_limited").action, "reconnect");
    assert.equal(closeReason(1008, "token_in_url").action, "fix_client");
    assert.equal(closeReason(4404, "no_route").action, "fix_client");
    assert.equal(closeReason(1000).action, "none");
    assert.equal(closeReason(4999).kind, "unknown");
  });

  for (const [code, reason] of [[4401, "logged_out"], [4403, "claim_mismatch"]]) {
    test(`${code} on a session socket: no reconnect`, async () => {
      const { client, timers, of } = makeClient();
      client.connect();
      const ws = await openSocket();
      ws.serverClose(code, reason);
      await settle();
      assert.equal(client.state, "closed");
      assert.deepEqual(timers.delays, []);
      assert.equal(FakeSocket.instances.length, 1);
      assert.equal(client.lastClose.code, code);
      assert.equal(client.lastClose.reason, reason);
      assert.deepEqual(of("close").map((c) => c.reason), [reason]);
      await assert.rejects(client.ping(), NotConnectedError);
    });
  }

  test("4410 after a disconnect notice: no reconnect, the administrator's reason kept", async () => {
    const { client, timers, of } = makeClient({ getTicket: async () => "t1" });
    client.connect();
    const ws = await openSocket();
    ws.receive({ type: "disconnect", reason: "admin_disconnect", detail: "maintenance window" });
    ws.serverClose(4410, "admin_disconnect");
    await settle();
    assert.deepEqual(of("disconnect"), [{ reason: "admin_disconnect", detail: "maintenance window" }]);
    assert.equal(client.state, "closed");
    assert.deepEqual(timers.delays, []);
    assert.equal(FakeSocket.instances.length, 1);
    assert.equal(client.lastClose.kind, "admin_disconnect");
    assert.equal(client.lastClose.detail, "maintenance window");
    assert.deepEqual(of("close").map((c) => [c.code, c.detail]), [[4410, "maintenance window"]]);
    client.connect(); // the person reconnects by hand
    await openSocket();
    assert.equal(FakeSocket.instances.length, 2);
    assert.equal(client.state, "open");
  });

  test("a disconnect notice's reason belongs to its own socket only", async () => {
    const { client, timers, of } = makeClient();
    client.connect();
    const first = await openSocket();
    first.receive({ type: "disconnect", reason: "admin_disconnect", detail: "old" });
    first.serverClose(1006);
    timers.fire(500);
    const second = await openSocket();
    second.serverClose(1006);
    assert.deepEqual(of("close").map((c) => c.detail), ["old", ""]);
    assert.equal(client.state, "waiting");
  });

  test("4401 with getTicket refused (signed out): no reconnect", async () => {
    let minted = 0;
    const getTicket = async () => {
      if (minted++ > 0) throw new TicketError(401, "no_session");
      return "t1";
    };
    const { client } = makeClient({ getTicket });
    client.connect();
    const ws = await openSocket();
    ws.serverClose(4401, "logged_out");
    await settle();
    assert.equal(client.state, "closed");
    assert.equal(FakeSocket.instances.length, 1);
    assert.equal(minted, 2);
  });

  test("4401 with a fresh ticket: reconnects with the new ticket", async () => {
    const tickets = ["t1", "t2"];
    const { client } = makeClient({ getTicket: async () => tickets.shift() });
    client.connect();
    const ws = await openSocket();
    ws.serverClose(4401, "expired");
    await settle();
    assert.equal(FakeSocket.instances.length, 2);
    assert.deepEqual(FakeSocket.last.protocols, ["gateway.v1", "gateway.ticket.t2"]);
    assert.equal(FakeSocket.last.url, URL);
  });

  test("every connection mints its own ticket (tickets are single-use)", async () => {
    let n = 0;
    const { client, timers } = makeClient({ getTicket: async () => `t${++n}` });
    client.connect();
    await openSocket();
    FakeSocket.last.serverClose(4401, "expired"); // re-authentication mints t2
    await openSocket();
    FakeSocket.last.serverClose(1006);
    timers.fire(500);
    await settle();
    assert.deepEqual(FakeSocket.instances.map((ws) => ws.protocols[1]),
      ["gateway.ticket.t1", "gateway.ticket.t2", "gateway.ticket.t3"]);
  });

  test("4401 again right after re-authenticating: stops instead of looping", async () => {
    let n = 0;
    const { client } = makeClient({ getTicket: async () => `t${++n}` });
    client.connect();
    await openSocket();
    FakeSocket.last.serverClose(4401, "expired");
    await settle();
    FakeSocket.last.open();
    FakeSocket.last.serverClose(4401, "invalid_ticket"); // accepted, then closed: never answered
    await settle();
    assert.equal(client.state, "closed");
    assert.equal(FakeSocket.instances.length, 2);
  });

  test("4403 reconnects only when onAuthRequired resolves true", async () => {
    const answers = [true, false];
    const seen = [];
    const onAuthRequired = async (close) => { seen.push(close.reason); return answers.shift(); };
    const { client } = makeClient({ onAuthRequired });
    client.connect();
    await openSocket();
    FakeSocket.last.serverClose(4403, "origin_required");
    await settle();
    assert.equal(FakeSocket.instances.length, 2);
    await openSocket();
    FakeSocket.last.serverClose(4403, "claim_mismatch");
    await settle();
    assert.equal(FakeSocket.instances.length, 2);
    assert.equal(client.state, "closed");
    assert.deepEqual(seen, ["origin_required", "claim_mismatch"]);
  });

  test("close() stops for good and rejects pending requests", async () => {
    const { client, timers } = makeClient();
    client.connect();
    const ws = await openSocket();
    const pending = client.publish("deploys", { v: 1 });
    client.close();
    await assert.rejects(pending, ConnectionClosedError);
    assert.deepEqual(ws.closedWith, { code: 1000, reason: "client_closed" });
    await settle();
    assert.equal(client.state, "closed");
    assert.deepEqual(timers.delays, []);
    assert.equal(FakeSocket.instances.length, 1);
  });
});

describe("subscriptions", () => {
  test("every channel is resubscribed after a reconnect", async () => {
    const { client, timers } = makeClient();
    client.connect();
    await openSocket();
    const done = Promise.all([client.subscribe("Deploys"), client.subscribe("alerts.critical")]);
    FakeSocket.last.ackAll("subscribe");
    await done;
    FakeSocket.last.serverClose(1006);
    timers.fire(500);
    await settle();
    const second = FakeSocket.last;
    second.open();
    const channels = second.sent.filter((f) => f.type === "subscribe").map((f) => f.channel);
    assert.deepEqual(channels.sort(), ["alerts.critical", "deploys"]);
    assert.deepEqual(second.sent.filter((f) => f.type === "ping"), []);
  });

  test("a subscribe made while reconnecting is sent once, on open", async () => {
    const { client, timers } = makeClient();
    client.connect();
    await openSocket();
    FakeSocket.last.serverClose(1006);
    const answer = client.subscribe("deploys");
    timers.fire(500);
    await settle();
    FakeSocket.last.open();
    const subscribes = FakeSocket.last.sent.filter((f) => f.type === "subscribe");
    assert.equal(subscribes.length, 1);
    FakeSocket.last.ackAll("subscribe", { channel: "deploys" });
    assert.equal((await answer).channel, "deploys");
  });

  test("unsubscribed (revoked) reaches the handler and the channel is not resubscribed", async () => {
    const { client, timers, of } = makeClient();
    client.connect();
    await openSocket();
    const both = Promise.all([client.subscribe("deploys"), client.subscribe("ops")]);
    FakeSocket.last.ackAll("subscribe");
    await both;
    FakeSocket.last.receive({ type: "unsubscribed", channel: "ops", reason: "revoked" });
    assert.deepEqual(of("unsubscribed"), [{ channel: "ops", reason: "revoked" }]);
    assert.deepEqual([...client.channels], ["deploys"]);
    FakeSocket.last.serverClose(1006);
    timers.fire(500);
    await settle();
    FakeSocket.last.open();
    assert.deepEqual(FakeSocket.last.sent.filter((f) => f.type === "subscribe").map((f) => f.channel), ["deploys"]);
  });

  test("a refused resubscribe drops the channel and says why", async () => {
    const { client, timers, of } = makeClient();
    client.connect();
    await openSocket();
    const sub = client.subscribe("deploys");
    FakeSocket.last.ackAll("subscribe");
    await sub;
    FakeSocket.last.serverClose(1006);
    timers.fire(500);
    await settle();
    const ws = FakeSocket.last;
    ws.open();
    ws.receive({ type: "error", id: ws.lastSent("subscribe").id, error: "forbidden", detail: "no grant" });
    await settle();
    assert.deepEqual(of("unsubscribed"), [{ channel: "deploys", reason: "forbidden" }]);
    assert.equal(client.channels.size, 0);
  });

  test("the welcome and channels frames say what the grants allow", async () => {
    const { client, events } = makeClient();
    const lists = [];
    client.on("channels", ({ channels }) => lists.push(channels.map((c) => c.channel)));
    client.connect();
    const ws = await openSocket();
    assert.equal(client.grants, null);
    ws.receive({ type: "welcome", principal: { subject: "bob", issuer: "i", groups: [], roles: [], expires_at: 1 },
      channels: [{ channel: "alerts.*", operations: ["subscribe"] }, { channel: "deploys", operations: ["subscribe"] }] });
    ws.receive({ type: "channels", channels: [{ channel: "deploys", operations: ["subscribe"] }] });
    assert.deepEqual(lists, [["alerts.*", "deploys"], ["deploys"]]);
    assert.deepEqual(client.grants, [{ channel: "deploys", operations: ["subscribe"] }]);
    assert.equal(client.principal.subject, "bob");
    assert.ok(events.some(([name]) => name === "welcome"));
  });

  test("messages and presence events reach their handlers", async () => {
    const { client, of } = makeClient();
    client.connect();
    const ws = await openSocket();
    ws.receive({ type: "message", channel: "deploys", payload: { version: "1.2.3" }, ts: 1.5, mid: "m1" });
    ws.receive({ type: "join", channel: "deploys", member: { issuer: "i", subject: "carol" } });
    ws.receive({ type: "leave", channel: "deploys", member: { issuer: "i", subject: "carol" } });
    assert.deepEqual(of("message"), [{ channel: "deploys", payload: { version: "1.2.3" }, ts: 1.5, mid: "m1" }]);
    assert.deepEqual(of("presence").map((p) => p.type), ["join", "leave"]);
    assert.equal(of("presence")[0].member.subject, "carol");
    const members = client.presence("deploys");
    ws.ackAll("presence", { members: [{ issuer: "i", subject: "bob" }] });
    assert.deepEqual(await members, [{ issuer: "i", subject: "bob" }]);
  });
});

describe("requests", () => {
  test("acks are matched to requests by id, in any order", async () => {
    const { client } = makeClient();
    client.connect();
    const ws = await openSocket();
    const first = client.publish("a", 1);
    const second = client.publish("b", 2);
    const [one, two] = ws.sent.filter((f) => f.type === "publish");
    assert.notEqual(one.id, two.id);
    ws.receive({ type: "ack", id: two.id, channel: "b", mid: "m2" });
    ws.receive({ type: "ack", id: one.id, channel: "a", mid: "m1" });
    assert.equal((await first).mid, "m1");
    assert.equal((await second).mid, "m2");
  });

  test("an error frame rejects its request with a typed error", async () => {
    const { client, of } = makeClient();
    client.connect();
    const ws = await openSocket();
    const answer = client.subscribe("secret");
    ws.receive({ type: "error", id: ws.lastSent("subscribe").id, error: "forbidden", detail: "no grant allows subscribe on this channel" });
    await assert.rejects(answer, (err) => err instanceof RequestError && err.code === "forbidden" && err.type === "subscribe");
    assert.equal(client.channels.has("secret"), false);
    assert.deepEqual(of("unsubscribed"), []); // never held: the rejection says it all
  });

  test("a request without an answer times out with RequestTimeoutError", async () => {
    const { client, timers } = makeClient();
    client.connect();
    const ws = await openSocket();
    const answer = client.ping();
    timers.fire(TIMEOUT);
    await assert.rejects(answer, (err) => err instanceof RequestTimeoutError && err.timeoutMs === TIMEOUT);
    ws.receive({ type: "ack", id: ws.lastSent("ping").id }); // late: ignored
  });

  test("an answered request clears its timeout", async () => {
    const { client, timers } = makeClient();
    client.connect();
    const ws = await openSocket();
    const answer = client.ping();
    ws.receive({ type: "ack", id: ws.lastSent("ping").id });
    await answer;
    assert.deepEqual(timers.delays, []);
  });

  test("a lost connection rejects requests in flight", async () => {
    const { client } = makeClient();
    client.connect();
    const ws = await openSocket();
    const answer = client.presence("deploys");
    ws.serverClose(1011, "bus_lost");
    await assert.rejects(answer, (err) => err instanceof ConnectionClosedError && err.close.reason === "bus_lost");
  });
});

describe("auth.expiring", () => {
  test("token sockets send a fresh token in band and take the new expiry", async () => {
    const tokens = ["tok-1", "tok-2"];
    const { client, of } = makeClient({ getToken: async () => tokens.shift() });
    client.connect();
    const ws = await openSocket();
    assert.deepEqual(ws.protocols, ["gateway.v1", "gateway.bearer.tok-1"]);
    ws.receive({ type: "auth.expiring", expires_at: 1000 });
    await settle();
    const auth = ws.lastSent("auth");
    assert.equal(auth.token, "tok-2");
    ws.receive({ type: "ack", id: auth.id, expires_at: 5000 });
    await settle();
    assert.equal(client.expiresAt, 5000);
    assert.deepEqual(of("auth").map((a) => a.type), ["expiring", "reauthenticated"]);
  });

  test("ticket sockets mint a ticket and send it in band", async () => {
    const tickets = ["t1", "t2"];
    const { client } = makeClient({ getTicket: async () => tickets.shift() });
    client.connect();
    const ws = await openSocket();
    ws.receive({ type: "auth.expiring", expires_at: 1000 });
    await settle();
    const auth = ws.lastSent("auth");
    assert.equal(auth.ticket, "t2");
    ws.receive({ type: "ack", id: auth.id, expires_at: 9000 });
    await settle();
    assert.equal(client.expiresAt, 9000);
    assert.equal(FakeSocket.instances.length, 1);
  });

  test("ticket sockets reconnect with the minted ticket if the gateway refuses it in band", async () => {
    const tickets = ["t1", "t2"];
    const { client } = makeClient({ getTicket: async () => tickets.shift() });
    client.connect();
    const ws = await openSocket();
    const sub = client.subscribe("deploys");
    ws.ackAll("subscribe");
    await sub;
    ws.receive({ type: "auth.expiring", expires_at: 1000 });
    await settle();
    ws.receive({ type: "error", id: ws.lastSent("auth").id, error: "unknown_field", detail: "unknown fields: ticket" });
    await settle();
    assert.deepEqual(ws.closedWith, { code: 1000, reason: "reauthenticate" });
    assert.equal(FakeSocket.instances.length, 2);
    assert.deepEqual(FakeSocket.last.protocols, ["gateway.v1", "gateway.ticket.t2"]);
    FakeSocket.last.open();
    assert.equal(FakeSocket.last.lastSent("subscribe").channel, "deploys");
  });

  test("a ticket socket the server refreshed sends nothing", async () => {
    let release;
    const tickets = [Promise.resolve("t1"), new Promise((r) => { release = r; })];
    const { client } = makeClient({ getTicket: () => tickets.shift() });
    client.connect();
    const ws = await openSocket();
    ws.receive({ type: "auth.expiring", expires_at: 1000 });
    ws.receive({ type: "auth.refreshed", expires_at: 4000 });
    release("t2");
    await settle();
    assert.equal(ws.lastSent("auth"), undefined);
    assert.equal(client.expiresAt, 4000);
  });

  test("session sockets follow the server-side refresh", async () => {
    const { client, of } = makeClient();
    client.connect();
    const ws = await openSocket();
    ws.receive({ type: "welcome", principal: { subject: "alice", issuer: "i", groups: [], roles: [], expires_at: 1000 } });
    ws.receive({ type: "auth.expiring", expires_at: 1000 });
    await settle();
    assert.equal(ws.lastSent("auth"), undefined);
    ws.receive({ type: "auth.refreshed", expires_at: 2000 });
    assert.equal(client.expiresAt, 2000);
    assert.equal(client.principal.expires_at, 2000);
    assert.deepEqual(of("auth").map((a) => a.type), ["expiring", "refreshed"]);
  });
});

describe("credentials", () => {
  test("session sockets offer only the fixed subprotocol; the URL is never changed", async () => {
    const { client } = makeClient();
    client.connect();
    await settle();
    assert.deepEqual(FakeSocket.last.protocols, ["gateway.v1"]);
    assert.equal(FakeSocket.last.url, URL);
  });

  test("fetchTicket posts with the CSRF token, or with a bearer token", async () => {
    const calls = [];
    const fetch = async (url, init) => {
      calls.push([url, init]);
      return { ok: true, status: 200, json: async () => ({ ticket: "abc", expires_in: 30 }) };
    };
    assert.equal(await fetchTicket({ fetch, csrfToken: "csrf1" }), "abc");
    assert.equal(await fetchTicket({ fetch, url: "https://gw.example.test/ws/ticket", accessToken: "at" }), "abc");
    assert.equal(calls[0][0], "/ws/ticket");
    assert.equal(calls[0][1].method, "POST");
    assert.deepEqual(calls[0][1].headers, { "X-CSRFToken": "csrf1" });
    assert.deepEqual(calls[1][1].headers, { Authorization: "Bearer at" });
  });

  test("fetchTicket turns a refusal into TicketError", async () => {
    const fetch = async () => ({ ok: false, status: 401, json: async () => ({ error: "no_session" }) });
    await assert.rejects(fetchTicket({ fetch, csrfToken: "x" }),
      (err) => err instanceof TicketError && err.status === 401 && err.code === "no_session");
  });

  test("a ticket endpoint that is down is retried with backoff, not treated as signed out", async () => {
    let calls = 0;
    const getTicket = async () => { if (calls++ === 0) throw new TypeError("network"); return "t"; };
    const { client, timers } = makeClient({ getTicket });
    client.connect();
    await settle();
    assert.equal(client.state, "waiting");
    timers.fire(500);
    await settle();
    assert.deepEqual(FakeSocket.last.protocols, ["gateway.v1", "gateway.ticket.t"]);
  });
});
