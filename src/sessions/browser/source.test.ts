// @vitest-environment jsdom
/**
 * The session ID source, with two simulated tabs: two sources over a shared fake storage and a
 * fake BroadcastChannel that delivers asynchronously to every other member, like the real one.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { isUuidV4 } from "./id.js";
import { createSessionIdSource, type ChannelLike, type SessionIdSource } from "./source.js";
import type { SessionIdStore } from "./stores.js";

class FakeBus {
  private readonly members = new Set<(data: unknown) => void>();
  channel(): ChannelLike {
    let listener: ((event: { data: unknown }) => void) | undefined;
    const deliver = (data: unknown) => listener?.({ data: structuredClone(data) });
    this.members.add(deliver);
    return {
      postMessage: (data) => {
        for (const member of this.members) if (member !== deliver) queueMicrotask(() => member(data));
      },
      addEventListener: (_type, l) => void (listener = l),
      close: () => void this.members.delete(deliver),
    };
  }
}

function fakeStore(initial?: string): SessionIdStore & { value: string | undefined } {
  return {
    kind: "memory",
    value: initial,
    get() {
      return this.value;
    },
    set(id) {
      this.value = id;
    },
  };
}

let tabs = 0;
const flush = () => new Promise((resolve) => setTimeout(resolve, 0));
const sources: SessionIdSource[] = [];
function track(source: SessionIdSource) {
  sources.push(source);
  return source;
}
afterEach(() => {
  for (const s of sources.splice(0)) s.dispose();
  vi.restoreAllMocks();
});

describe("createSessionIdSource", () => {
  it("keeps a stored ID and generates one when there is none or it is not a UUID v4", () => {
    const id = "3b241101-e2bb-4255-8caf-4136c566a962";
    expect(track(createSessionIdSource({ store: fakeStore(id), scope: "tab", channel: null })).current).toBe(id);
    const bad = fakeStore("undefined");
    const source = track(createSessionIdSource({ store: bad, scope: "tab", channel: null }));
    expect(isUuidV4(source.current)).toBe(true);
    expect(bad.value).toBe(source.current);
  });

  it("uses initialId (a server render's ID) when the store has none", async () => {
    const id = "3b241101-e2bb-4255-8caf-4136c566a962";
    const source = track(createSessionIdSource({ store: fakeStore(), scope: "tab", channel: null, initialId: id }));
    expect(source.current).toBe(id);
    await expect(source.ready).resolves.toBe(id);
  });

  it("refresh awaits beforeUpdate with the new ID, then stores, switches and notifies", async () => {
    const store = fakeStore();
    const source = track(createSessionIdSource({ store, scope: "tab", channel: null }));
    const old = source.current!;
    const seen: string[] = [];
    source.subscribe((id) => seen.push(id));
    let during: string | undefined;
    const newId = await source.refresh(async (next) => {
      during = source.current;
      expect(store.value).toBe(old);
      expect(next).not.toBe(old);
    });
    expect(during).toBe(old);
    expect(source.current).toBe(newId);
    expect(store.value).toBe(newId);
    expect(seen).toEqual([newId]);
    await expect(source.ready).resolves.toBe(newId);
  });

  it("set switches to a given ID (stored, notified, and followed by other tabs of the browser)", async () => {
    const bus = new FakeBus();
    const store = fakeStore();
    const a = track(createSessionIdSource({ store, scope: "browser", channel: bus.channel(), tabId: "a" }));
    const b = track(createSessionIdSource({ store: fakeStore(a.current), scope: "browser", channel: bus.channel(), tabId: "b" }));
    const seen: string[] = [];
    a.subscribe((id) => seen.push(id));
    const id = "3b241101-e2bb-4255-8caf-4136c566a962";
    a.set(id);
    expect([a.current, store.value, seen]).toEqual([id, id, [id]]);
    await flush();
    expect(b.current).toBe(id);
  });

  it("set refuses what is not a session ID, without echoing it, and changes nothing", () => {
    const store = fakeStore();
    const source = track(createSessionIdSource({ store, scope: "tab", channel: null }));
    const before = source.current;
    for (const bad of ["", "secret-token-value", "3b241101-e2bb-1255-8caf-4136c566a962", 5 as never]) {
      expect(() => source.set(bad)).toThrow(/UUID v4/);
      expect(() => source.set(bad)).not.toThrow(String(bad).length > 3 ? String(bad) : "\u0000");
    }
    expect([source.current, store.value]).toEqual([before, before]);
  });

  it("keeps the old ID when beforeUpdate rejects, and propagates the error", async () => {
    const store = fakeStore();
    const source = track(createSessionIdSource({ store, scope: "tab", channel: null }));
    const old = source.current;
    const listener = vi.fn();
    source.subscribe(listener);
    await expect(source.refresh(() => Promise.reject(new Error("transfer failed")))).rejects.toThrow("transfer failed");
    expect(source.current).toBe(old);
    expect(store.value).toBe(old);
    expect(listener).not.toHaveBeenCalled();
    // and the source still works
    await expect(source.refresh()).resolves.not.toBe(old);
  });

  it("serializes concurrent refreshes", async () => {
    const source = track(createSessionIdSource({ store: fakeStore(), scope: "tab", channel: null }));
    const order: string[] = [];
    let release!: () => void;
    const first = source.refresh(async (id) => {
      order.push(`start1 ${id === source.current}`);
      await new Promise<void>((r) => (release = r));
      order.push("end1");
    });
    const second = source.refresh(async () => void order.push("start2"));
    await flush();
    expect(order).toEqual(["start1 false"]);
    release();
    const [a, b] = await Promise.all([first, second]);
    expect(order).toEqual(["start1 false", "end1", "start2"]);
    expect(a).not.toBe(b);
    expect(source.current).toBe(b);
  });

  it("rejects an idGenerator that returns something invalid", async () => {
    const source = track(createSessionIdSource({ store: fakeStore(), scope: "tab", channel: null, idGenerator: () => "ok-id" }));
    expect(source.current).toBe("ok-id");
    const bad = track(
      createSessionIdSource({ store: fakeStore(), scope: "tab", channel: null, idGenerator: () => "x", isValidId: (v) => v.length > 1 }),
    );
    await expect(bad.refresh()).rejects.toThrow(/invalid ID/);
  });
});

describe("two tabs, per browser", () => {
  it("a refresh in one tab reaches the other, whose subscribers see the new ID", async () => {
    const bus = new FakeBus();
    const storage = fakeStore();
    const a = track(createSessionIdSource({ store: storage, scope: "browser", channel: bus.channel(), tabId: String(++tabs) }));
    const b = track(createSessionIdSource({ store: storage, scope: "browser", channel: bus.channel(), tabId: String(++tabs) }));
    expect(b.current).toBe(a.current);
    const seen: string[] = [];
    b.subscribe((id) => seen.push(id));
    const newId = await a.refresh();
    await flush();
    expect(b.current).toBe(newId);
    expect(seen).toEqual([newId]);
  });

  it("concurrent refreshes in two tabs converge on one ID", async () => {
    const bus = new FakeBus();
    const storage = fakeStore();
    const a = track(createSessionIdSource({ store: storage, scope: "browser", channel: bus.channel(), tabId: String(++tabs) }));
    const b = track(createSessionIdSource({ store: storage, scope: "browser", channel: bus.channel(), tabId: String(++tabs) }));
    await Promise.all([a.refresh(), b.refresh()]);
    await flush();
    expect(a.current).toBe(b.current);
    expect(storage.value).toBe(a.current);
  });

  it("follows storage events when there is no BroadcastChannel", async () => {
    let emit!: (value: string | undefined) => void;
    const storage = { ...fakeStore(), subscribe: (cb: (v: string | undefined) => void) => ((emit = cb), () => {}) };
    const b = track(createSessionIdSource({ store: storage, scope: "browser", channel: null }));
    const id = "3b241101-e2bb-4255-8caf-4136c566a962";
    emit("garbage");
    expect(b.current).not.toBe("garbage");
    emit(id);
    expect(b.current).toBe(id);
  });
});

describe("two tabs, per tab", () => {
  it("a duplicated tab (same sessionStorage copy) takes a new ID after onDuplicateTab", async () => {
    const bus = new FakeBus();
    const now = vi.spyOn(Date, "now").mockReturnValue(1000);
    const original = track(createSessionIdSource({ store: fakeStore(), scope: "tab", channel: bus.channel(), tabId: String(++tabs) }));
    const id = original.current!;
    now.mockReturnValue(2000);
    const onDuplicateTab = vi.fn(async () => {});
    const copy = fakeStore(id); // a duplicated tab starts with a copy of sessionStorage
    const duplicate = track(createSessionIdSource({ store: copy, scope: "tab", channel: bus.channel(), tabId: String(++tabs), onDuplicateTab }));
    expect(duplicate.current).toBe(id);
    await flush();
    await flush();
    expect(original.current).toBe(id);
    expect(duplicate.current).not.toBe(id);
    expect(copy.value).toBe(duplicate.current);
    expect(onDuplicateTab).toHaveBeenCalledWith(id, duplicate.current);
  });

  it("sources of one tab (StrictMode, two providers) are not duplicates of each other", async () => {
    const bus = new FakeBus();
    const store = fakeStore();
    const a = track(createSessionIdSource({ store, scope: "tab", channel: bus.channel(), tabId: "same" }));
    const b = track(createSessionIdSource({ store, scope: "tab", channel: bus.channel(), tabId: "same" }));
    await flush();
    await flush();
    expect(b.current).toBe(a.current);
    expect(store.value).toBe(a.current);
  });

  it("tabs with different IDs leave each other alone, and a failing onDuplicateTab still separates them", async () => {
    const bus = new FakeBus();
    const a = track(createSessionIdSource({ store: fakeStore(), scope: "tab", channel: bus.channel(), tabId: String(++tabs) }));
    const b = track(createSessionIdSource({ store: fakeStore(), scope: "tab", channel: bus.channel(), tabId: String(++tabs) }));
    const [idA, idB] = [a.current, b.current];
    await flush();
    expect([a.current, b.current]).toEqual([idA, idB]);

    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const now = vi.spyOn(Date, "now").mockReturnValue(Number.MAX_SAFE_INTEGER);
    const dup = track(
      createSessionIdSource({
        store: fakeStore(idA),
        scope: "tab",
        channel: bus.channel(), tabId: String(++tabs),
        onDuplicateTab: () => Promise.reject(new Error("copy failed")),
      }),
    );
    now.mockRestore();
    await flush();
    await flush();
    expect(a.current).toBe(idA);
    expect(dup.current).not.toBe(idA);
    expect(warn).toHaveBeenCalledTimes(1);
  });
});
