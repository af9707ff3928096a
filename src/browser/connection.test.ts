import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ServerMessage } from "../transport/protocol.js";
import { Connection, type ConnectionOptions } from "./connection.js";

/** A scripted stand-in for WebSocket: the test opens, feeds and drops it. */
class FakeSocket {
  static all: FakeSocket[] = [];
  onopen: ((e: unknown) => void) | null = null;
  onmessage: ((e: { data: unknown }) => void) | null = null;
  onclose: ((e: { code: number; reason: string }) => void) | null = null;
  onerror: ((e: unknown) => void) | null = null;
  readonly sent: unknown[] = [];
  closedWith: number | null = null;
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  send(text: string) {
    this.sent.push(JSON.parse(text));
  }
  close(code: number) {
    this.closedWith = code;
    setTimeout(() => this.onclose?.({ code, reason: "" }), 0);
  }
  open() {
    this.onopen?.({});
  }
  receive(message: ServerMessage | string) {
    this.onmessage?.({ data: typeof message === "string" ? message : JSON.stringify(message) });
  }
  drop(code = 1006) {
    this.onerror?.({});
    this.onclose?.({ code, reason: "" });
  }
}
const latest = () => FakeSocket.all.at(-1)!;

function connection(overrides: Partial<ConnectionOptions> = {}) {
  const events: string[] = [];
  const messages: ServerMessage[] = [];
  const c = new Connection({
    url: "ws://test/api/sync",
    webSocketConstructor: FakeSocket as unknown as typeof WebSocket,
    initialDelayMs: 100,
    maxDelayMs: 1000,
    heartbeatIntervalMs: 1000,
    logger: { log() {}, warn() {} },
    onOpen: (count) => events.push(`open ${count}`),
    onMessage: (m) => messages.push(m),
    onClose: () => events.push("close"),
    onStateChange: () => {},
    random: () => 0.5,
    now: () => Date.now(),
    ...overrides,
  });
  return { c, events, messages };
}

beforeEach(() => {
  FakeSocket.all = [];
  vi.useFakeTimers();
});
afterEach(() => vi.useRealTimers());

describe("Connection", () => {
  it("opens, delivers parsed messages, and reconnects after a drop with the next connection count", () => {
    const { c, events, messages } = connection();
    expect(c.isOpen()).toBe(false);
    c.start();
    expect(latest().url).toBe("ws://test/api/sync");
    expect(c.send({ type: "Ping" })).toBe(false); // not open yet
    latest().open();
    expect(c.isOpen()).toBe(true);
    expect(c.send({ type: "Ping" })).toBe(true);
    expect(latest().sent).toEqual([{ type: "Ping" }]);
    latest().receive({ type: "Pong" });
    expect(messages).toEqual([{ type: "Pong" }]);

    latest().drop();
    expect(events).toEqual(["open 0", "close"]);
    expect(c.isOpen()).toBe(false);
    vi.advanceTimersByTime(49); // random 0.5 × 100 ms
    expect(FakeSocket.all).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(FakeSocket.all).toHaveLength(2);
    latest().open();
    expect(events).toEqual(["open 0", "close", "open 1"]);
    expect(c.connectionCount()).toBe(2);
  });

  it("backs off exponentially with full jitter, capped, and resets after a healthy connection", () => {
    const { c } = connection({ random: () => 0.999 });
    c.start();
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      const before = FakeSocket.all.length;
      latest().drop(); // fails before opening
      let waited = 0;
      while (FakeSocket.all.length === before) {
        vi.advanceTimersByTime(1);
        waited++;
      }
      delays.push(waited);
    }
    expect(delays).toEqual([99, 199, 399, 799, 999, 999]);
    expect(c.retries()).toBe(6);
    latest().open();
    latest().receive({ type: "Pong" });
    expect(c.retries()).toBe(0);
  });

  it("backs off on consecutive faults even when each connection carried messages first; one up for a heartbeat interval clears them", () => {
    const { c } = connection({ random: () => 0.999 });
    c.start();
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      latest().open();
      latest().receive({ type: "Pong" }); // messages before the fault: they reset the failures, not the faults
      const before = FakeSocket.all.length;
      c.fault("fatal error from the server");
      let waited = 0;
      while (FakeSocket.all.length === before) {
        vi.advanceTimersByTime(1);
        waited++;
      }
      delays.push(waited);
    }
    expect(delays).toEqual([199, 399, 799, 999, 999]);
    expect(c.retries()).toBe(5);
    latest().open();
    latest().receive({ type: "Pong" });
    vi.advanceTimersByTime(500);
    expect(c.retries()).toBe(5); // open for half an interval: not yet healthy
    vi.advanceTimersByTime(500);
    expect(c.retries()).toBe(0);
    const before = FakeSocket.all.length;
    latest().drop();
    vi.advanceTimersByTime(99); // back to the first step: 0.999 × 100 ms
    expect(FakeSocket.all).toHaveLength(before + 1);
  });

  it("jitter spreads the delay uniformly below the ceiling", () => {
    const { c } = connection({ random: () => 0 });
    c.start();
    latest().drop();
    vi.advanceTimersByTime(0);
    expect(FakeSocket.all).toHaveLength(2); // a zero delay is allowed
  });

  it("pings when idle and replaces a socket that stays silent for two intervals", () => {
    const { c, events } = connection();
    c.start();
    const first = latest();
    first.open();
    vi.advanceTimersByTime(999);
    expect(first.sent).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(first.sent).toEqual([{ type: "Ping" }]);
    first.receive({ type: "Pong" }); // at 1000: alive
    vi.advanceTimersByTime(1000);
    expect(first.sent).toEqual([{ type: "Ping" }, { type: "Ping" }]); // idle again: ping again
    vi.advanceTimersByTime(999);
    expect(events).toEqual(["open 0"]);
    vi.advanceTimersByTime(1); // 2000 ms without a message, 1000 since the unanswered Ping
    expect(events).toEqual(["open 0", "close"]);
    expect(first.closedWith).toBe(1000);
    expect(c.isOpen()).toBe(false);
    vi.advanceTimersByTime(1000);
    expect(FakeSocket.all).toHaveLength(2);
  });

  it("does not drop a healthy connection when a throttled timer fires late", () => {
    let clock = 0;
    const { c, events } = connection({ now: () => clock });
    c.start();
    latest().open();
    clock = 60_000; // a background tab: the first tick comes a minute late
    vi.advanceTimersByTime(500);
    expect(events).toEqual(["open 0"]);
    expect(latest().sent).toEqual([{ type: "Ping" }]);
    latest().receive({ type: "Pong" });
    clock = 120_000;
    vi.advanceTimersByTime(500);
    expect(c.isOpen()).toBe(true);
  });

  it("restarts on a message that is not protocol", () => {
    const { c, events, messages } = connection();
    c.start();
    latest().open();
    latest().receive("{not json");
    expect(messages).toEqual([]);
    expect(events).toEqual(["open 0", "close"]);
    expect(c.isOpen()).toBe(false);
  });

  it("stop closes the socket, reports the close, and never reconnects", async () => {
    const { c, events } = connection();
    c.start();
    latest().open();
    const stopped = c.stop();
    expect(events).toEqual(["open 0", "close"]);
    await vi.advanceTimersByTimeAsync(1);
    await stopped;
    vi.advanceTimersByTime(60_000);
    expect(FakeSocket.all).toHaveLength(1);
    expect(c.send({ type: "Ping" })).toBe(false);
    c.start(); // stopped is final
    expect(FakeSocket.all).toHaveLength(1);
  });

  it("mirrors the server's rate limit so that queued messages are paced", () => {
    const { c } = connection();
    c.start();
    latest().open();
    let sent = 0;
    while (c.canSend()) {
      c.send({ type: "Ping" });
      sent++;
    }
    expect(sent).toBe(360); // 90% of the server's burst of 400
    expect(c.msUntilCanSend()).toBe(6); // 180 messages/s
    vi.advanceTimersByTime(6);
    expect(c.canSend()).toBe(true);
  });
});
