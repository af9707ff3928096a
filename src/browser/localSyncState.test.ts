import { describe, expect, it } from "vitest";
import type { QueryId, TransitionMessage, StateModification } from "../transport/protocol.js";
import { LocalSyncState, ProtocolMismatch } from "./localSyncState.js";

const id = (n: number) => n as QueryId;

function transition(
  start: { querySet: number; identity: number; ts: number },
  end: { querySet: number; identity: number; ts: number },
  modifications: StateModification[] = [],
): TransitionMessage {
  return { type: "Transition", startVersion: start, endVersion: end, modifications };
}

describe("LocalSyncState query set", () => {
  it("deduplicates identical (path, args) into one server query with a subscriber count", () => {
    const s = new LocalSyncState();
    const a = s.subscribe("m:list", { c: "x" });
    const b = s.subscribe("m:list", { c: "x" });
    const c = s.subscribe("m:list", { c: "y" });
    expect(a).toBe(b);
    expect(c).not.toBe(a);
    expect(s.takeQuerySetMessage()).toEqual({
      type: "ModifyQuerySet",
      baseVersion: 0,
      newVersion: 1,
      modifications: [
        { type: "Add", queryId: 0, udfPath: "m:list", args: { c: "x" } },
        { type: "Add", queryId: 1, udfPath: "m:list", args: { c: "y" } },
      ],
    });
    s.unsubscribe(a);
    expect(s.takeQuerySetMessage()).toBeNull(); // one subscriber left
    s.unsubscribe(b);
    expect(s.takeQuerySetMessage()).toEqual({ type: "ModifyQuerySet", baseVersion: 1, newVersion: 2, modifications: [{ type: "Remove", queryId: 0 }] });
    expect(s.has(a)).toBe(false);
    expect(s.has(c)).toBe(true);
  });

  it("cancels an Add that was never sent instead of sending Add + Remove", () => {
    const s = new LocalSyncState();
    const t = s.subscribe("m:list", {});
    s.unsubscribe(t);
    expect(s.takeQuerySetMessage()).toBeNull();
    // A later subscribe gets a fresh query id: ids are never reused.
    s.subscribe("m:list", {});
    expect(s.takeQuerySetMessage()?.modifications).toEqual([{ type: "Add", queryId: 1, udfPath: "m:list", args: {} }]);
  });

  it("keys queries by path and args without ambiguity", () => {
    const s = new LocalSyncState();
    expect(s.subscribe("a", { b: 1 })).not.toBe(s.subscribe("a", { b: "1" }));
    expect(s.subscribe("a:b", {})).not.toBe(s.subscribe("a", ["b"]));
  });
});

describe("LocalSyncState transitions", () => {
  it("applies results, checks versions, and tracks ts", () => {
    const s = new LocalSyncState();
    const t = s.subscribe("m:list", {});
    s.takeQuerySetMessage();
    expect(s.result(t)).toBeUndefined();
    const changed = s.applyTransition(transition({ querySet: 0, identity: 0, ts: 0 }, { querySet: 1, identity: 0, ts: 5 }, [
      { type: "QueryUpdated", queryId: id(0), value: [{ n: { $integer: "AQAAAAAAAAA=" } }] },
    ]));
    expect(changed).toEqual([t]);
    expect(s.result(t)).toMatchObject({ kind: "value", value: [{ n: 1n }] });
    expect(s.serverVersion()).toEqual({ querySet: 1, identity: 0, ts: 5 });
    expect(s.lastTransitionTs()).toBe(5);

    // A transition that does not start where the last ended is refused.
    expect(() => s.applyTransition(transition({ querySet: 1, identity: 0, ts: 4 }, { querySet: 1, identity: 0, ts: 6 }))).toThrow(ProtocolMismatch);
    // So is one claiming a query-set version the client never sent.
    expect(() => s.applyTransition(transition({ querySet: 1, identity: 0, ts: 5 }, { querySet: 2, identity: 0, ts: 6 }))).toThrow(/beyond/);
  });

  it("keeps the decoded object when a result arrives unchanged", () => {
    const s = new LocalSyncState();
    const t = s.subscribe("m:list", {});
    s.takeQuerySetMessage();
    s.applyTransition(transition({ querySet: 0, identity: 0, ts: 0 }, { querySet: 1, identity: 0, ts: 1 }, [
      { type: "QueryUpdated", queryId: id(0), value: { a: [1, 2] } },
    ]));
    const first = s.result(t);
    const changed = s.applyTransition(transition({ querySet: 1, identity: 0, ts: 1 }, { querySet: 1, identity: 0, ts: 2 }, [
      { type: "QueryUpdated", queryId: id(0), value: { a: [1, 2] } },
    ]));
    expect(changed).toEqual([]);
    expect(s.result(t)).toBe(first);
  });

  it("tells changed results from unchanged ones exactly as their JSON texts would", () => {
    const s = new LocalSyncState();
    const t = s.subscribe("m:list", {});
    s.takeQuerySetMessage();
    const values = [
      { a: [1, 2], b: { c: null } },
      { a: [1, 2], b: { c: null } }, // same: kept
      { b: { c: null }, a: [1, 2] }, // same fields, other order: the app can see the order
      { b: { c: false }, a: [1, 2] },
      { b: { c: false }, a: [1, 2, 3] },
      { b: { c: false }, a: { 0: 1, 1: 2, 2: 3 } },
      { b: { c: false }, a: { 0: 1, 1: 2, 2: 3 } }, // same: kept
      { b: { c: "false" }, a: { 0: 1, 1: 2, 2: 3 } },
      [{ b: 1 }],
      [{ b: 1, c: 2 }],
      [{ b: 1, c: 2 }], // same: kept
      [{ n: { $integer: "AQAAAAAAAAA=" } }],
      [{ n: { $integer: "AgAAAAAAAAA=" } }],
    ];
    for (let i = 0; i < values.length; i++) {
      const before = s.result(t);
      const changed = s.applyTransition(transition({ querySet: i === 0 ? 0 : 1, identity: 0, ts: i }, { querySet: 1, identity: 0, ts: i + 1 }, [
        { type: "QueryUpdated", queryId: id(0), value: values[i]! },
      ]));
      const same = i > 0 && JSON.stringify(values[i]) === JSON.stringify(values[i - 1]);
      expect(changed).toEqual(same ? [] : [t]);
      if (same) expect(s.result(t)).toBe(before);
      expect(s.result(t)?.text).toBe("v" + JSON.stringify(values[i]));
    }
  });

  it("turns QueryFailed into a WalkinError with decoded data, and QueryRemoved into no result", () => {
    const s = new LocalSyncState();
    const t = s.subscribe("m:list", {});
    s.takeQuerySetMessage();
    s.applyTransition(transition({ querySet: 0, identity: 0, ts: 0 }, { querySet: 1, identity: 0, ts: 1 }, [
      { type: "QueryFailed", queryId: id(0), error: { message: "nope", code: "APPLICATION", data: { max: { $integer: "CgAAAAAAAAA=" } } } },
    ]));
    const result = s.result(t);
    expect(result?.kind).toBe("error");
    if (result?.kind !== "error") return;
    expect(result.error.message).toBe("nope");
    expect(result.error.code).toBe("APPLICATION");
    expect(result.error.data).toEqual({ max: 10n });
    expect(s.applyTransition(transition({ querySet: 1, identity: 0, ts: 1 }, { querySet: 1, identity: 0, ts: 2 }, [{ type: "QueryRemoved", queryId: id(0) }]))).toEqual([t]);
    expect(s.result(t)).toBeUndefined();
  });

  it("ignores results for queries removed locally before the server saw the Remove", () => {
    const s = new LocalSyncState();
    const t = s.subscribe("m:list", {});
    s.takeQuerySetMessage();
    s.unsubscribe(t);
    s.takeQuerySetMessage();
    const changed = s.applyTransition(transition({ querySet: 0, identity: 0, ts: 0 }, { querySet: 1, identity: 0, ts: 3 }, [
      { type: "QueryUpdated", queryId: id(0), value: 1 },
    ]));
    expect(changed).toEqual([]);
    expect(s.result(t)).toBeUndefined();
  });
});

describe("LocalSyncState auth and restart", () => {
  it("numbers Authenticate messages, one at a time, and undoes one the server refused", () => {
    const s = new LocalSyncState();
    s.identity.want("t1");
    expect(s.identity.authenticate("t1")).toEqual({ message: { type: "Authenticate", baseVersion: 0, token: "t1" }, identityVersion: 1, wanted: true });
    s.identity.want("t2");
    // t1 is unanswered: t2 waits, since its number depends on whether t1 is accepted.
    expect(s.identity.authenticate("t2")).toBeNull();
    expect(s.identity.onAuthError(0)).toBe(false); // t1 refused, but replaced since: the app's token is t2
    expect(s.identity.authenticate("t2")?.message).toEqual({ type: "Authenticate", baseVersion: 0, token: "t2" });
    expect(s.identity.onAuthError(0)).toBe(true); // t2 refused: the server still holds nothing, at version 0
    s.identity.want(null);
    expect(s.identity.authenticate(null)?.message).toEqual({ type: "Authenticate", baseVersion: 0, token: null });
    s.applyTransition(transition({ querySet: 0, identity: 0, ts: 0 }, { querySet: 0, identity: 1, ts: 1 }, []));
    expect(s.identity.hasInFlight()).toBe(false);
    expect(s.isCurrentIdentity(1)).toBe(true);
  });

  it("restart queues the token and every query under its old id after Connect", () => {
    const s = new LocalSyncState();
    const a = s.subscribe("m:a", {});
    s.subscribe("m:b", { x: 1 });
    s.takeQuerySetMessage();
    s.identity.want("tok");
    s.identity.authenticate("tok");
    s.applyTransition(transition({ querySet: 0, identity: 0, ts: 0 }, { querySet: 1, identity: 1, ts: 9 }, [{ type: "QueryUpdated", queryId: id(0), value: "A" }]));
    const before = s.result(a);
    s.subscribe("m:c", {}); // queued, never sent on the old connection
    s.unsubscribe(s.subscribe("m:b", { x: 1 })); // still one subscriber of m:b

    expect(s.restart({ clientId: "client", connectionCount: 1, newRequestsFrom: 7 })).toEqual({
      type: "Connect",
      clientId: "client",
      connectionCount: 1,
      maxObservedTimestamp: 9,
      newRequestsFrom: 7,
    });
    // The new connection starts signed out: the token is to be sent again, from version 0.
    expect(s.identity.sentToken()).toBeNull();
    expect(s.identity.needsWantedToken()).toBe(true);
    expect(s.identity.authenticate("tok")?.message).toEqual({ type: "Authenticate", baseVersion: 0, token: "tok" });
    expect(s.takeQuerySetMessage()).toEqual({
      type: "ModifyQuerySet",
      baseVersion: 0,
      newVersion: 1,
      modifications: [
        { type: "Add", queryId: 0, udfPath: "m:a", args: {} },
        { type: "Add", queryId: 1, udfPath: "m:b", args: { x: 1 } },
        { type: "Add", queryId: 2, udfPath: "m:c", args: {} },
      ],
    });
    expect(s.takeQuerySetMessage()).toBeNull();
    // Old results stay visible until the new connection answers; its versions start at zero.
    expect(s.result(a)).toBe(before);
    expect(s.serverVersion()).toEqual({ querySet: 0, identity: 0, ts: 0 });
    expect(s.applyTransition(transition({ querySet: 0, identity: 0, ts: 0 }, { querySet: 1, identity: 1, ts: 10 }, [{ type: "QueryUpdated", queryId: id(0), value: "A" }]))).toEqual([]);
    expect(s.result(a)).toBe(before);
  });

  it("a connection without queries still sends an (empty) ModifyQuerySet, to get a Transition back", () => {
    const s = new LocalSyncState();
    expect(s.restart({ clientId: "c", connectionCount: 0, newRequestsFrom: 0 })).toEqual({ type: "Connect", clientId: "c", connectionCount: 0, newRequestsFrom: 0 });
    expect(s.identity.needsWantedToken()).toBe(false); // signed out: nothing to send
    expect(s.takeQuerySetMessage()).toEqual({ type: "ModifyQuerySet", baseVersion: 0, newVersion: 1, modifications: [] });
  });
});
