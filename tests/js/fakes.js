// Test doubles for client.js: a scripted WebSocket and manual timers (no real time passes).

export class FakeSocket {
  /** Every socket the client opened, in order. */
  static instances = [];

  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.sent = [];
    this.closedWith = null;
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    FakeSocket.instances.push(this);
  }

  static reset() {
    FakeSocket.instances = [];
  }

  static get last() {
    return FakeSocket.instances.at(-1);
  }

  send(data) {
    this.sent.push(JSON.parse(data));
  }

  /** Like a browser: the close event follows the client's close(). */
  close(code = 1000, reason = "") {
    this.closedWith = { code, reason };
    queueMicrotask(() => this.onclose?.({ code, reason }));
  }

  // --- the gateway's side ---
  open() {
    this.onopen?.({});
  }

  receive(frame) {
    this.onmessage?.({ data: JSON.stringify({ v: 1, ...frame }) });
  }

  serverClose(code, reason = "") {
    this.onclose?.({ code, reason });
  }

  lastSent(type) {
    return this.sent.filter((f) => f.type === type).at(-1);
  }

  /** Answer every request of this type with an ack. */
  ackAll(type, extra = {}) {
    for (const f of this.sent.filter((f) => f.type === type)) this.receive({ type: "ack", id: f.id, ...extra });
  }
}

export class FakeTimers {
  constructor() {
    this.queue = [];
    this.nextHandle = 1;
    this.setTimeout = (fn, ms) => {
      const handle = this.nextHandle++;
      this.queue.push({ handle, fn, ms });
      return handle;
    };
    this.clearTimeout = (handle) => {
      this.queue = this.queue.filter((t) => t.handle !== handle);
    };
  }

  /** Delays of the timers still pending. */
  get delays() {
    return this.queue.map((t) => t.ms);
  }

  /** Run the pending timer with this delay (or the first one). */
  fire(ms) {
    const index = ms === undefined ? 0 : this.queue.findIndex((t) => t.ms === ms);
    if (index < 0) throw new Error(`no timer of ${ms} ms (pending: ${this.delays})`);
    const [timer] = this.queue.splice(index, 1);
    timer.fn();
  }
}

/** Let promise callbacks and microtasks run. */
export function settle() {
  return new Promise((resolve) => setImmediate(resolve));
}
