import { describe, expect, it } from "vitest";
import { makeFunctionReference } from "../server/api.js";
import type { QueryId, RequestId, StateModification } from "../transport/protocol.js";
import type { JSONValue } from "../values/value.js";
import { LocalSyncState } from "./localSyncState.js";
import { OptimisticUpdates, type OptimisticLocalStore } from "./optimisticUpdates.js";

const api = {
  messages: { list: makeFunctionReference<"query", { channel?: string }, string[]>("messages:list") },
  counters: { get: makeFunctionReference<"query", { name: string }, number>("counters:get") },
  a: { b: makeFunctionReference<"query", Record<string, never>, { n: number }>("a:b") },
};
const rid = (n: number) => n as RequestId;

/** A LocalSyncState with queries answered by a test-driven server. */
function setup() {
  const sync = new LocalSyncState();
  const view = new OptimisticUpdates();
  let version = { querySet: 0, identity: 0, ts: 0 };
  const subscribe = (path: string, args: JSONValue) => {
    const token = sync.subscribe(path, args);
    const message = sync.takeQuerySetMessage();
    view.recompute(sync, [token]);
    return { token, queryId: (message?.modifications[0] as { queryId: QueryId } | undefined)?.queryId };
  };
  const serverSends = (ts: number, modifications: StateModification[], querySet = version.querySet + 1) => {
    const end = { querySet, identity: 0, ts };
    const changed = sync.applyTransition({ type: "Transition", startVersion: version, endVersion: end, modifications });
    version = end;
    return changed;
  };
  const value = (token: ReturnType<typeof subscribe>["token"]) => {
    const result = view.result(token);
    return result?.kind === "value" ? result.value : result;
  };
  return { sync, view, subscribe, serverSends, value };
}

const append = (store: OptimisticLocalStore, { body }: { body: string }) => {
  const list = store.getQuery(api.messages.list, {});
  if (list) store.setQuery(api.messages.list, {}, [...list, body]);
};

describe("OptimisticUpdates", () => {
  it("shows a layer at once, re-applies it over new server results, and drops it when its write arrives", () => {
    const { sync, view, subscribe, serverSends, value } = setup();
    const list = subscribe("messages:list", {});
    view.recompute(sync, serverSends(1, [{ type: "QueryUpdated", queryId: list.queryId!, value: ["a"] }]));
    expect(value(list.token)).toEqual(["a"]);

    view.add(rid(0), append, { body: "mine" });
    expect(view.recompute(sync, [])).toEqual([list.token]);
    expect(value(list.token)).toEqual(["a", "mine"]);

    // Someone else's message arrives first: the layer is re-applied on top of it.
    view.recompute(sync, serverSends(2, [{ type: "QueryUpdated", queryId: list.queryId!, value: ["a", "b"] }], 1));
    expect(value(list.token)).toEqual(["a", "b", "mine"]);

    // The Transition with our write: layer dropped in the same step, no flicker.
    const changed = serverSends(3, [{ type: "QueryUpdated", queryId: list.queryId!, value: ["a", "b", "mine"] }], 1);
    expect(view.drop([rid(0)])).toBe(true);
    const before = view.result(list.token);
    expect(view.recompute(sync, changed)).toEqual([]); // same value: watchers are not bothered
    expect(view.result(list.token)).toBe(before);
    expect(view.layerCount()).toBe(0);
  });

  it("rolls back when the mutation fails", () => {
    const { sync, view, subscribe, serverSends, value } = setup();
    const list = subscribe("messages:list", {});
    view.recompute(sync, serverSends(1, [{ type: "QueryUpdated", queryId: list.queryId!, value: ["a"] }]));
    const server = view.result(list.token);
    view.add(rid(0), append, { body: "x" });
    view.recompute(sync, []);
    view.drop([rid(0)]);
    expect(view.recompute(sync, [])).toEqual([list.token]);
    expect(view.result(list.token)).toBe(server); // the server's object, not a copy
    expect(value(list.token)).toEqual(["a"]);
  });

  it("applies layers in mutation order, each seeing the previous ones", () => {
    const { sync, view, subscribe, serverSends, value } = setup();
    const count = subscribe("counters:get", { name: "c" });
    view.recompute(sync, serverSends(1, [{ type: "QueryUpdated", queryId: count.queryId!, value: 10 }]));
    const bump = (by: number) => (store: OptimisticLocalStore) => {
      const n = store.getQuery(api.counters.get, { name: "c" });
      if (typeof n === "number") store.setQuery(api.counters.get, { name: "c" }, n * by);
    };
    view.add(rid(0), bump(2), {});
    view.add(rid(1), (store) => store.setQuery(api.counters.get, { name: "c" }, (store.getQuery(api.counters.get, { name: "c" }) as number) + 1), {});
    view.recompute(sync, []);
    expect(value(count.token)).toBe(21); // (10 * 2) + 1, not (10 + 1) * 2
    view.drop([rid(0)]);
    view.recompute(sync, []);
    expect(value(count.token)).toBe(11);
  });

  it("getAllQueries lists every subscribed query of a function; setQuery(undefined) shows loading", () => {
    const { sync, view, subscribe, serverSends, value } = setup();
    const x = subscribe("messages:list", { channel: "x" });
    const y = subscribe("messages:list", { channel: "y" });
    subscribe("users:get", {});
    view.recompute(sync, serverSends(1, [{ type: "QueryUpdated", queryId: x.queryId!, value: [] }], 3));
    let seen: unknown;
    view.add(rid(0), (store) => {
      seen = store.getAllQueries(api.messages.list);
      store.setQuery(api.messages.list, { channel: "x" }, undefined);
    }, {});
    view.recompute(sync, []);
    expect(seen).toEqual([
      { args: { channel: "x" }, value: [] },
      { args: { channel: "y" }, value: undefined },
    ]);
    expect(value(x.token)).toBeUndefined();
    expect(value(y.token)).toBeUndefined();
  });

  it("keeps the previous object when a layer produces an equal value, and survives a throwing update", () => {
    const errors: unknown[] = [];
    const sync = new LocalSyncState();
    const view = new OptimisticUpdates((e) => errors.push(e));
    const token = sync.subscribe("a:b", {});
    sync.takeQuerySetMessage();
    sync.applyTransition({
      type: "Transition",
      startVersion: { querySet: 0, identity: 0, ts: 0 },
      endVersion: { querySet: 1, identity: 0, ts: 1 },
      modifications: [{ type: "QueryUpdated", queryId: 0 as QueryId, value: { n: 1 } }],
    });
    view.recompute(sync, [token]);
    const server = view.result(token);
    view.add(rid(0), (store) => store.setQuery(api.a.b, {}, { n: 1 }), {});
    view.add(rid(1), () => {
      throw new Error("bad update");
    }, {});
    expect(view.recompute(sync, [])).toEqual([]);
    expect(view.result(token)).toBe(server);
    expect(errors).toHaveLength(1);
  });

  it("forgets queries that were unsubscribed", () => {
    const { sync, view, subscribe, serverSends } = setup();
    const q = subscribe("a:b", {});
    view.recompute(sync, serverSends(1, [{ type: "QueryUpdated", queryId: q.queryId!, value: 1 }]));
    sync.unsubscribe(q.token);
    expect(view.recompute(sync, [q.token])).toEqual([q.token]);
    expect(view.result(q.token)).toBeUndefined();
  });
});
