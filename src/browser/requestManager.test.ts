import { describe, expect, it } from "vitest";
import type { MutationMessage, RequestId } from "../transport/protocol.js";
import { isWalkinError } from "../values/errors.js";
import { settled, tick } from "./fixtures/promises.js";
import { RequestManager } from "./requestManager.js";

const rid = (n: number) => n as RequestId;

/** Sends what is unsent, as the messages the server would parse from the texts. */
function sendAll(requests: RequestManager) {
  const sent: MutationMessage[] = [];
  requests.sendUnsent((text) => {
    sent.push(JSON.parse(text) as MutationMessage);
    return true;
  }, null);
  return sent;
}

describe("RequestManager", () => {
  it("numbers requests in order and sends each once", () => {
    const r = new RequestManager();
    expect(r.mutation("m:a", { x: 1 }).requestId).toBe(0);
    expect(r.action("m:b", {}).requestId).toBe(1);
    expect(r.mutation("m:c", {}).requestId).toBe(2);
    expect(sendAll(r)).toEqual([
      { type: "Mutation", requestId: 0, udfPath: "m:a", args: { x: 1 } },
      { type: "Action", requestId: 1, udfPath: "m:b", args: {} },
      { type: "Mutation", requestId: 2, udfPath: "m:c", args: {} },
    ]);
    expect(sendAll(r)).toEqual([]);
    expect(r.hasUnsent()).toBe(false);
  });

  it("a call the server would refuse throws, and takes no request ID and nothing to send", () => {
    const r = new RequestManager();
    expect(() => r.mutation(`m:${"x".repeat(600)}`, {})).toThrow(/602 characters long/);
    expect(() => r.action(`m:${"x".repeat(600)}`, {})).toThrow(/action .* 602 characters long/);
    expect(r.nextId).toBe(0);
    expect(r.hasUnsent()).toBe(false);
    expect(r.stats()).toEqual({ mutations: 0, actions: 0, oldestStartedAt: null });
    expect(r.mutation("m:a", {}).requestId).toBe(0);
    expect(sendAll(r).map((m) => m.requestId)).toEqual([0]);
  });

  it("stops sending at the first refusal and keeps the rest in order", () => {
    const r = new RequestManager();
    for (let i = 0; i < 4; i++) r.mutation("m:a", { i });
    let budget = 2;
    const sent: number[] = [];
    r.sendUnsent((text) => budget-- > 0 && sent.push((JSON.parse(text) as MutationMessage).requestId) > 0, null);
    expect(sent).toEqual([0, 1]);
    expect(r.hasUnsent()).toBe(true);
    expect(sendAll(r).map((m) => m.requestId)).toEqual([2, 3]);
  });

  it("resolves a mutation only once a Transition at its ts is applied (read your writes)", async () => {
    const r = new RequestManager();
    const { requestId, result } = r.mutation("m:a", {});
    const state = settled(result);
    sendAll(r);
    expect(r.onMutationResponse({ type: "MutationResponse", requestId, success: true, result: { $integer: "BwAAAAAAAAA=" }, ts: 10 }, 9)).toEqual({
      requestId,
      outcome: "committed",
    });
    expect(r.onTransitionApplied(9)).toEqual([]);
    await tick();
    expect(state.status).toBe("pending");
    expect(r.stats().mutations).toBe(1);
    expect(r.onTransitionApplied(10)).toEqual([requestId]);
    await tick();
    expect(state).toEqual({ status: "resolved", value: 7n });
    expect(r.stats()).toEqual({ mutations: 0, actions: 0, oldestStartedAt: null });
  });

  it("resolves at once when the Transition with the write came before the response", async () => {
    const r = new RequestManager();
    const { requestId, result } = r.mutation("m:a", {});
    sendAll(r);
    expect(r.onMutationResponse({ type: "MutationResponse", requestId, success: true, result: null, ts: 10 }, 12)?.outcome).toBe("resolved");
    await expect(result).resolves.toBeNull();
  });

  it("rejects a failed mutation with the server's error", async () => {
    const r = new RequestManager();
    const { requestId, result } = r.mutation("m:a", {});
    sendAll(r);
    r.onMutationResponse({ type: "MutationResponse", requestId, success: false, error: { message: "full", code: "APPLICATION", data: { max: 3 } } }, 0);
    const error = await result.catch((e: unknown) => e);
    expect(isWalkinError(error) && { message: error.message, code: error.code, data: error.data }).toEqual({ message: "full", code: "APPLICATION", data: { max: 3 } });
  });

  it("ignores responses to unknown or already answered requests", () => {
    const r = new RequestManager();
    const { requestId } = r.mutation("m:a", {});
    sendAll(r);
    expect(r.onMutationResponse({ type: "MutationResponse", requestId: rid(99), success: true, result: null, ts: 1 }, 0)).toBeNull();
    r.onMutationResponse({ type: "MutationResponse", requestId, success: true, result: null, ts: 5 }, 0);
    expect(r.onMutationResponse({ type: "MutationResponse", requestId, success: true, result: null, ts: 5 }, 0)).toBeNull();
    expect(r.onActionResponse({ type: "ActionResponse", requestId, success: true, result: null }, 0)).toBe(false);
  });

  it("on disconnect re-queues unanswered mutations in order and rejects actions in flight", async () => {
    const r = new RequestManager();
    const m0 = r.mutation("m:a", { n: 0 });
    const a1 = r.action("m:act", {});
    const m2 = r.mutation("m:a", { n: 2 });
    const m3 = r.mutation("m:a", { n: 3 });
    sendAll(r);
    r.onMutationResponse({ type: "MutationResponse", requestId: m0.requestId, success: true, result: null, ts: 4 }, 0);
    const a4 = r.action("m:act", {}); // made while disconnected below: not yet sent, so not rejected
    expect(r.onDisconnect()).toEqual([a1.requestId]);
    const error = await a1.result.catch((e: unknown) => e);
    expect(isWalkinError(error) && error.code).toBe("DISCONNECTED");
    expect((error as Error).message).toMatch(/not retried.*idempotent/);
    // The committed mutation is not re-sent; it waits for a Transition on the new connection.
    expect(sendAll(r).map((m) => [m.type, m.requestId])).toEqual([
      ["Mutation", m2.requestId],
      ["Mutation", m3.requestId],
      ["Action", a4.requestId],
    ]);
    r.onTransitionApplied(4);
    await expect(m0.result).resolves.toBeNull();
  });

  it("resolves an action that wrote once a Transition reaches its last write, across a disconnect", async () => {
    const r = new RequestManager();
    const wrote = r.action("a:send", {});
    const readOnly = r.action("a:read", {});
    const behind = r.action("a:send", {});
    sendAll(r);
    let settled = 0;
    for (const request of [wrote, readOnly, behind]) void request.result.then(() => settled++);
    expect(r.onActionResponse({ type: "ActionResponse", requestId: wrote.requestId, success: true, result: "sent", ts: 7 }, 5)).toBe(true);
    // No write, or a write the client already holds: resolved at once.
    r.onActionResponse({ type: "ActionResponse", requestId: readOnly.requestId, success: true, result: "read" }, 5);
    r.onActionResponse({ type: "ActionResponse", requestId: behind.requestId, success: true, result: "old", ts: 4 }, 5);
    await expect(readOnly.result).resolves.toBe("read");
    await expect(behind.result).resolves.toBe("old");
    expect(settled).toBe(2);
    // The one that wrote at 7 waits for a Transition at 7, through a reconnect, and tells the
    // next connection to ask for a snapshot that has its write.
    expect(r.maxCommittedTs()).toBe(7);
    expect(r.onDisconnect()).toEqual([]);
    expect(sendAll(r)).toEqual([]);
    r.onTransitionApplied(6);
    await Promise.resolve();
    expect(settled).toBe(2);
    expect(r.onTransitionApplied(7)).toEqual([wrote.requestId]);
    await expect(wrote.result).resolves.toBe("sent");
    expect(r.stats()).toMatchObject({ mutations: 0, actions: 0 });
  });

  it("rejectAll rejects everything", async () => {
    const r = new RequestManager();
    const { result } = r.mutation("m:a", {});
    r.rejectAll(new Error("closed"));
    await expect(result).rejects.toThrow("closed");
    expect(r.stats().mutations).toBe(0);
  });

  it("reports the oldest in-flight request", () => {
    let now = 100;
    const r = new RequestManager(() => now);
    r.mutation("m:a", {});
    now = 200;
    r.action("m:b", {});
    expect(r.stats()).toEqual({ mutations: 1, actions: 1, oldestStartedAt: 100 });
  });

  it("knows whether anything is unsent or awaits a Transition, through sends, disconnects and commits", async () => {
    const r = new RequestManager();
    expect(r.hasUnsent()).toBe(false);
    const a = r.mutation("m:a", {});
    const b = r.mutation("m:b", {});
    expect(r.hasUnsent()).toBe(true);
    expect(sendAll(r).map((m) => m.requestId)).toEqual([0, 1]);
    expect(r.hasUnsent()).toBe(false);
    expect(sendAll(r)).toEqual([]);
    // `a` commits at 5 and waits for its Transition; `b` is in flight when the connection drops.
    r.onMutationResponse({ type: "MutationResponse", requestId: rid(0), success: true, result: null, ts: 5 }, 0);
    r.onDisconnect();
    expect(r.hasUnsent()).toBe(true);
    expect(sendAll(r).map((m) => m.requestId)).toEqual([1]);
    expect(r.hasUnsent()).toBe(false);
    expect(r.onTransitionApplied(4)).toEqual([]);
    expect(r.onTransitionApplied(5)).toEqual([0]);
    r.onMutationResponse({ type: "MutationResponse", requestId: rid(1), success: true, result: null, ts: 7 }, 5);
    expect(r.onTransitionApplied(7)).toEqual([1]);
    expect(await Promise.all([a.result, b.result])).toEqual([null, null]);
    expect(r.stats()).toEqual({ mutations: 0, actions: 0, oldestStartedAt: null });
  });

  it("keeps its counts through every way a request leaves", async () => {
    let now = 0;
    const r = new RequestManager(() => ++now);
    const calls = [r.mutation("m:a", {}), r.action("a:b", {}), r.mutation("m:c", {}), r.mutation("m:d", {}), r.action("a:e", {})];
    for (const call of calls) call.result.catch(() => {});
    expect(r.stats()).toEqual({ mutations: 3, actions: 2, oldestStartedAt: 1 });
    sendAll(r);
    // The oldest mutation fails: the oldest request is now the first action.
    r.onMutationResponse({ type: "MutationResponse", requestId: rid(0), success: false, error: { code: "INTERNAL", message: "no" } }, 0);
    expect(r.stats()).toEqual({ mutations: 2, actions: 2, oldestStartedAt: 2 });
    // An action answers; a mutation commits (still in flight until its Transition), another resolves at once.
    r.onActionResponse({ type: "ActionResponse", requestId: rid(1), success: true, result: null }, 0);
    r.onMutationResponse({ type: "MutationResponse", requestId: rid(2), success: true, result: null, ts: 9 }, 0);
    r.onMutationResponse({ type: "MutationResponse", requestId: rid(3), success: true, result: null, ts: 5 }, 5);
    expect(r.stats()).toEqual({ mutations: 1, actions: 1, oldestStartedAt: 3 });
    // The connection drops: the action in flight is rejected, the committed mutation stays.
    r.onDisconnect();
    expect(r.stats()).toEqual({ mutations: 1, actions: 0, oldestStartedAt: 3 });
    r.onTransitionApplied(9);
    expect(r.stats()).toEqual({ mutations: 0, actions: 0, oldestStartedAt: null });
    expect(await Promise.allSettled(calls.map((call) => call.result))).toMatchObject(["rejected", "fulfilled", "fulfilled", "fulfilled", "rejected"].map((status) => ({ status })));
  });
});
