import { describe, expect, it } from "vitest";
import { ConnectionState, type QueryResult } from "./connectionState.js";
import type { QueryId } from "./protocol.js";

const q = (n: number) => n as QueryId;
const value = (v: unknown): QueryResult => ({ type: "QueryUpdated", value: v as never });
const handle = () => {
  const h = { ended: 0, unsubscribe: () => void (h.ended += 1) };
  return h;
};

function withQueries(ids: number[], ts = 5) {
  const state = new ConnectionState(3);
  expect(state.receiveModify(0, 1)).toBeNull();
  const plan = state.beginModify(ids.map((id) => ({ type: "Add" as const, queryId: q(id), udfPath: "m:list", args: {} })));
  if (!plan.ok) throw new Error(plan.error);
  const handles = plan.subscribe.map((request) => {
    const h = handle();
    state.subscribed(request.queryId, request.gen, h, value(`initial ${request.queryId}`));
    return { ...request, handle: h };
  });
  const first = state.finishModify(1, ts);
  return { state, handles, first };
}

describe("ConnectionState", () => {
  it("answers a query-set change with one Transition from the client's version to the new one", () => {
    const { first } = withQueries([1, 2]);
    expect(first).toEqual({
      type: "Transition",
      startVersion: { querySet: 0, identity: 0, ts: 0 },
      endVersion: { querySet: 1, identity: 0, ts: 5 },
      modifications: [
        { type: "QueryUpdated", queryId: 1, value: "initial 1" },
        { type: "QueryUpdated", queryId: 2, value: "initial 2" },
      ],
    });
  });

  it("sends nothing at a flush when nothing changed, everything that changed in one Transition otherwise", () => {
    const { state, handles } = withQueries([1, 2]);
    expect(state.flushed(6)).toBeNull();
    state.queryChanged(q(1), handles[0]!.gen, value("a"));
    state.queryChanged(q(2), handles[1]!.gen, value("b"));
    state.queryChanged(q(1), handles[0]!.gen, value("a2"));
    expect(state.flushed(7)).toMatchObject({
      startVersion: { querySet: 1, ts: 5 },
      endVersion: { querySet: 1, ts: 7 },
      modifications: [
        { queryId: 1, value: "a2" },
        { queryId: 2, value: "b" },
      ],
    });
  });

  it("never lowers ts, and ignores results of superseded subscriptions", () => {
    const { state, handles } = withQueries([1], 9);
    state.queryChanged(q(1), handles[0]!.gen + 100, value("stale"));
    expect(state.flushed(10)).toBeNull();
    state.queryChanged(q(1), handles[0]!.gen, value("fresh"));
    expect(state.flushed(3)?.endVersion.ts).toBe(9); // another engine with lower timestamps (hot reload)
  });

  it("holds Transitions while a query-set change is in flight; its own Transition carries everything", () => {
    const { state, handles } = withQueries([1]);
    expect(state.receiveModify(1, 2)).toBeNull();
    const plan = state.beginModify([{ type: "Add", queryId: q(2), udfPath: "m:list", args: {} }]);
    if (!plan.ok) throw new Error(plan.error);
    state.queryChanged(q(1), handles[0]!.gen, value("changed meanwhile"));
    expect(state.flushed(6)).toBeNull();
    // The engine reported a change of the new query before its subscribe() call returned: newer wins.
    state.queryChanged(q(2), plan.subscribe[0]!.gen, value("newer"));
    expect(state.subscribed(q(2), plan.subscribe[0]!.gen, handle(), value("older"))).toBe(true);
    expect(state.finishModify(2, 6)).toMatchObject({
      endVersion: { querySet: 2, ts: 6 },
      modifications: [
        { queryId: 1, value: "changed meanwhile" },
        { queryId: 2, value: "newer" },
      ],
    });
  });

  it("removes queries, refuses adds over the limit, and reports duplicates as errors", () => {
    const { state, handles } = withQueries([1, 2, 3]);
    expect(state.receiveModify(1, 2)).toBeNull();
    const plan = state.beginModify([
      { type: "Add", queryId: q(4), udfPath: "m:list", args: {} },
      { type: "Remove", queryId: q(1) },
      { type: "Remove", queryId: q(42) },
    ]);
    expect(plan).toMatchObject({ ok: true, subscribe: [], unsubscribe: [handles[0]!.handle] });
    expect(state.finishModify(2, 6)!.modifications).toEqual([
      { type: "QueryFailed", queryId: 4, error: { code: "LIMIT_EXCEEDED", message: expect.any(String) } },
      { type: "QueryRemoved", queryId: 1 },
      { type: "QueryRemoved", queryId: 42 },
    ]);
    expect(state.receiveModify(2, 3)).toBeNull();
    expect(state.beginModify([{ type: "Add", queryId: q(2), udfPath: "m:list", args: {} }])).toMatchObject({ ok: false, error: expect.stringMatching(/already in the query set/) });
  });

  it("checks query-set versions on arrival", () => {
    const state = new ConnectionState(10);
    expect(state.receiveModify(1, 2)).toMatch(/baseVersion 1 does not match the server's query-set version 0/);
    expect(state.receiveModify(0, 0)).toMatch(/must be greater/);
    expect(state.receiveModify(0, 1)).toBeNull();
    expect(state.receiveModify(1, 3)).toBeNull();
    expect(state.receiveModify(1, 4)).toMatch(/version 3/);
  });

  it("re-subscribes everything for a new identity: one Transition with every result and the identity bumped", () => {
    const { state, handles } = withQueries([1, 2]);
    const plan = state.beginResubscribe();
    expect(plan.unsubscribe).toEqual(handles.map((h) => h.handle));
    for (const request of plan.subscribe) state.subscribed(request.queryId, request.gen, handle(), value(`as bob ${request.queryId}`));
    state.queryChanged(q(1), handles[0]!.gen, value("old identity, ignored"));
    expect(state.finishResubscribe(8, 1)).toMatchObject({
      startVersion: { querySet: 1, identity: 0, ts: 5 },
      endVersion: { querySet: 1, identity: 1, ts: 8 },
      modifications: [
        { queryId: 1, value: "as bob 1" },
        { queryId: 2, value: "as bob 2" },
      ],
    });
  });

  it("follows a mutation with a Transition at or after its ts, once published", () => {
    const state = new ConnectionState(10);
    expect(state.mutationCommitted(3, 2)).toBeNull(); // not published yet
    expect(state.flushed(2)).toBeNull();
    expect(state.flushed(4)).toMatchObject({ endVersion: { ts: 4 }, modifications: [] });
    expect(state.flushed(5)).toBeNull(); // delivered: idle again
    expect(state.mutationCommitted(6, 7)).toMatchObject({ endVersion: { ts: 7 } }); // already published: at once
    expect(state.mutationCommitted(5, 9)).toBeNull(); // the client already holds ts 7 >= 5
  });

  it("drops subscriptions that resolve after the connection closed", () => {
    const { state, handles } = withQueries([1]);
    expect(state.close()).toEqual([handles[0]!.handle]);
    expect(state.subscribed(q(1), handles[0]!.gen, handle(), value(1))).toBe(false);
    expect(state.flushed(100)).toBeNull();
  });

  it("while held (socket congested), keeps only the newest result per query and sends one Transition on release", () => {
    const { state, handles } = withQueries([1, 2]);
    state.hold();
    for (let n = 1; n <= 50; n++) {
      state.queryChanged(q(1), handles[0]!.gen, value(`v${n}`));
      expect(state.flushed(5 + n)).toBeNull();
    }
    expect(state.mutationCommitted(60, 60)).toBeNull(); // the read-your-writes Transition waits too
    expect(state.release(61)).toEqual({
      type: "Transition",
      startVersion: { querySet: 1, identity: 0, ts: 5 },
      endVersion: { querySet: 1, identity: 0, ts: 61 },
      modifications: [{ type: "QueryUpdated", queryId: 1, value: "v50" }],
    });
    expect(state.release(61)).toBeNull(); // nothing new since
  });

  it("folds a query-set change finished while held into the Transition sent on release", () => {
    const { state, handles } = withQueries([1]);
    state.hold();
    expect(state.receiveModify(1, 2)).toBeNull();
    expect(state.beginModify([{ type: "Remove", queryId: q(1) }])).toMatchObject({ ok: true, unsubscribe: [handles[0]!.handle] });
    expect(state.finishModify(2, 7)).toBeNull();
    expect(state.release(8)).toEqual({
      type: "Transition",
      startVersion: { querySet: 1, identity: 0, ts: 5 },
      endVersion: { querySet: 2, identity: 0, ts: 8 },
      modifications: [{ type: "QueryRemoved", queryId: 1 }],
    });
  });

  it("counts each live query against the shared budget and gives them all back on removal and close", () => {
    let taken = 0;
    const budget = {
      take: () => (taken >= 2 ? { code: "LIMIT_EXCEEDED", message: "full", data: { limit: "maxSubscriptions", max: 2 } } : (taken++, null)),
      give: (n: number) => void (taken -= n),
    };
    const state = new ConnectionState(10, budget);
    expect(state.receiveModify(0, 1)).toBeNull();
    const plan = state.beginModify([1, 2, 3].map((id) => ({ type: "Add" as const, queryId: q(id), udfPath: "m:list", args: {} })));
    expect(plan).toMatchObject({ ok: true, subscribe: [{ queryId: 1 }, { queryId: 2 }] });
    expect(state.finishModify(1, 1)!.modifications).toEqual([
      { type: "QueryFailed", queryId: 3, error: { code: "LIMIT_EXCEEDED", message: "full", data: { limit: "maxSubscriptions", max: 2 } } },
    ]);
    expect(taken).toBe(2);
    expect(state.receiveModify(1, 2)).toBeNull();
    state.beginModify([{ type: "Remove", queryId: q(2) }, { type: "Remove", queryId: q(3) }]);
    expect(taken).toBe(1); // 3 was never counted
    state.close();
    expect(taken).toBe(0);
  });
});
