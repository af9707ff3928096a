// @vitest-environment jsdom
/**
 * The session hooks against the real stack: engine + server + WebSocket client, with the ID in
 * sessionStorage (the default) or a shared `SessionIdSource`.
 */
import { act, cleanup, renderHook, waitFor } from "@testing-library/react";
import { StrictMode, useState, type ReactNode } from "react";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import type { WalkinClient } from "../../browser/index.js";
import { WalkinProvider } from "../../react/index.js";
import { createSessionIdSource, isUuidV4, memoryStore, SessionClient, type SessionIdSource } from "../browser/index.js";
import { api, startSessionBackend } from "./fixtures/backend.js";
import {
  SessionProvider,
  useLocalStorage,
  useSessionAction,
  useSessionStorage,
  useSessionId,
  useSessionIdArg,
  useSessionMutation,
  useSessionPaginatedQuery,
  useSessionQuery,
  type SessionProviderProps,
} from "./index.js";

let backend: Awaited<ReturnType<typeof startSessionBackend>>;
let client: WalkinClient;
beforeAll(async () => {
  backend = await startSessionBackend();
  client = backend.client();
});
afterEach(() => {
  cleanup();
  sessionStorage.clear();
  localStorage.clear();
});
afterAll(() => backend.close());

function wrapperWith(props: Omit<SessionProviderProps, "children"> = {}) {
  return ({ children }: { children: ReactNode }) => (
    <WalkinProvider client={client}>
      <SessionProvider {...props}>{children}</SessionProvider>
    </WalkinProvider>
  );
}

function useNotes() {
  const [sessionId, refresh] = useSessionId();
  return {
    sessionId,
    refresh,
    notes: useSessionQuery(api.notes.list),
    add: useSessionMutation(api.notes.add),
    transfer: useSessionMutation(api.notes.transfer),
    count: useSessionAction(api.notes.count),
  };
}

describe("SessionProvider", () => {
  it("keeps a UUID v4 in sessionStorage under storageKey", () => {
    const { result } = renderHook(() => useSessionId(), { wrapper: wrapperWith({ storageKey: "app-a" }) });
    const [id] = result.current;
    expect(isUuidV4(id)).toBe(true);
    expect(sessionStorage.getItem("app-a")).toBe(id);
    const other = renderHook(() => useSessionId(), { wrapper: wrapperWith({ storageKey: "app-b" }) });
    expect(other.result.current[0]).not.toBe(id); // two apps on one origin do not clash
    const again = renderHook(() => useSessionId(), { wrapper: wrapperWith({ storageKey: "app-a" }) });
    expect(again.result.current[0]).toBe(id);
  });

  it("replaces a stored value that is not an ID", () => {
    sessionStorage.setItem("walkin-session-id", "undefined");
    const { result } = renderHook(() => useSessionId(), { wrapper: wrapperWith() });
    expect(isUuidV4(result.current[0])).toBe(true);
  });

  it("uses the ready localStorage hook and a custom idGenerator", () => {
    let n = 0;
    const { result } = renderHook(() => useSessionId(), {
      wrapper: wrapperWith({ useStorage: useLocalStorage, idGenerator: () => `custom-${++n}` }),
    });
    expect(result.current[0]).toBe("custom-1");
    expect(localStorage.getItem("walkin-session-id")).toBe("custom-1");
  });

  it("bridges a foreign usehooks-ts-style storage hook", async () => {
    const values = new Map<string, string>();
    const setCalls: string[] = [];
    function useForeign(key: string, initial: string | undefined) {
      const [value, setValue] = useState(() => values.get(key) ?? initial);
      const set = (v: string) => {
        setCalls.push(v);
        values.set(key, v);
        setValue(v);
      };
      return [value, set] as const;
    }
    const { result } = renderHook(() => useSessionId(), { wrapper: wrapperWith({ useStorage: useForeign }) });
    const id = result.current[0];
    expect(isUuidV4(id)).toBe(true);
    await waitFor(() => expect(values.get("walkin-session-id")).toBe(id));
    await act(() => result.current[1]());
    await waitFor(() => expect(values.get("walkin-session-id")).toBe(result.current[0]));
    expect(result.current[0]).not.toBe(id);
    expect(setCalls).toEqual([id, result.current[0]]);
  });

  it("keeps working under StrictMode (the provider's source, and its channel, survive the remount)", async () => {
    const strict = ({ children }: { children: ReactNode }) => (
      <StrictMode>{wrapperWith({ useStorage: useLocalStorage, storageKey: "strict" })({ children })}</StrictMode>
    );
    const a = renderHook(() => useSessionId(), { wrapper: strict });
    const b = renderHook(() => useSessionId(), { wrapper: strict });
    const id = a.result.current[0];
    let newId!: string;
    await act(async () => {
      newId = await a.result.current[1]();
    });
    expect(a.result.current[0]).toBe(newId);
    expect(newId).not.toBe(id);
    await waitFor(() => expect(b.result.current[0]).toBe(newId));
  });

  it("per browser: a refresh under one provider reaches another (another tab) at once", async () => {
    const a = renderHook(() => useSessionId(), { wrapper: wrapperWith({ useStorage: useLocalStorage, storageKey: "shared" }) });
    const b = renderHook(() => useSessionId(), { wrapper: wrapperWith({ useStorage: useLocalStorage, storageKey: "shared" }) });
    const c = renderHook(() => useSessionId(), { wrapper: wrapperWith({ useStorage: useLocalStorage, storageKey: "other-app" }) });
    expect(b.result.current[0]).toBe(a.result.current[0]);
    const otherApp = c.result.current[0];
    let newId!: string;
    await act(async () => {
      newId = await a.result.current[1]();
    });
    await waitFor(() => expect(b.result.current[0]).toBe(newId));
    expect(c.result.current[0]).toBe(otherApp);
  });

  it("the ready storage hooks work on their own, in the usehooks-ts shape", () => {
    const { result } = renderHook(() => useSessionStorage("standalone", undefined));
    expect(result.current[0]).toBeUndefined();
    act(() => result.current[1]("x"));
    expect(result.current[0]).toBe("x");
    expect(sessionStorage.getItem("standalone")).toBe("x");
    expect(renderHook(() => useLocalStorage("standalone", "fallback")).result.current[0]).toBe("fallback");
  });

  it("explains a missing provider", () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    expect(() => renderHook(() => useSessionId())).toThrow(/Did you forget to wrap your app in <SessionProvider>/);
    vi.restoreAllMocks();
  });
});

describe("session hooks against the server", () => {
  it("useSessionQuery and useSessionMutation pass the ID; other sessions see nothing", async () => {
    const { result } = renderHook(useNotes, { wrapper: wrapperWith() });
    await waitFor(() => expect(result.current.notes).toEqual([]));
    await act(() => result.current.add({ text: "mine" }));
    await waitFor(() => expect(result.current.notes).toEqual(["mine"]));
    expect(await client.query(api.notes.list, { sessionId: result.current.sessionId! })).toEqual(["mine"]);
    await expect(result.current.count()).resolves.toBe(1);

    sessionStorage.clear();
    const stranger = renderHook(useNotes, { wrapper: wrapperWith() });
    await waitFor(() => expect(stranger.result.current.notes).toEqual([]));
  });

  it("refresh carries data over in beforeUpdate, then moves the subscriptions to the new ID", async () => {
    const { result } = renderHook(useNotes, { wrapper: wrapperWith({}) });
    await act(() => result.current.add({ text: "cart item" }));
    await waitFor(() => expect(result.current.notes).toEqual(["cart item"]));
    const oldId = result.current.sessionId!;
    const addBefore = result.current.add; // created before the refresh

    let newId!: string;
    await act(async () => {
      newId = await result.current.refresh((next) => result.current.transfer({ to: next }));
    });
    expect(result.current.sessionId).toBe(newId);
    await waitFor(() => expect(result.current.notes).toEqual(["cart item"]));
    await act(() => addBefore({ text: "after" })); // no stale closure
    await waitFor(() => expect(result.current.notes).toEqual(["cart item", "after"]));
    expect(await client.query(api.notes.list, { sessionId: oldId })).toEqual([]);
  });

  it("a rejected beforeUpdate keeps the old ID and its subscriptions", async () => {
    const { result } = renderHook(useNotes, { wrapper: wrapperWith() });
    await act(() => result.current.add({ text: "keep" }));
    await waitFor(() => expect(result.current.notes).toEqual(["keep"]));
    const oldId = result.current.sessionId;
    await act(async () => {
      await expect(result.current.refresh(() => Promise.reject(new Error("sign-in failed")))).rejects.toThrow("sign-in failed");
    });
    expect(result.current.sessionId).toBe(oldId);
    expect(sessionStorage.getItem("walkin-session-id")).toBe(oldId);
    expect(result.current.notes).toEqual(["keep"]);
  });

  it("skip, extra args, useSessionIdArg and pagination", async () => {
    const { result } = renderHook(
      () => ({
        skipped: useSessionQuery(api.notes.list, "skip"),
        filtered: useSessionQuery(api.notes.filtered, { prefix: "a" }),
        arg: useSessionIdArg({ x: 1 }),
        skipArg: useSessionIdArg("skip"),
        page: useSessionPaginatedQuery(api.notes.page, {}, { initialNumItems: 2 }),
        add: useSessionMutation(api.notes.add),
        sessionId: useSessionId()[0],
      }),
      { wrapper: wrapperWith() },
    );
    expect(result.current.arg).toEqual({ x: 1, sessionId: result.current.sessionId });
    expect(result.current.skipArg).toBe("skip");
    for (const text of ["a1", "b1", "a2"]) await act(() => result.current.add({ text }));
    await waitFor(() => expect(result.current.filtered).toEqual(["a1", "a2"]));
    await waitFor(() => expect(result.current.page.results).toEqual(["a1", "b1"]));
    expect(result.current.page.status).toBe("CanLoadMore");
    expect(result.current.skipped).toBeUndefined();
  });

  it("withOptimisticUpdate sees the args with sessionId", async () => {
    const seen: unknown[] = [];
    const { result } = renderHook(
      () => {
        const [sessionId] = useSessionId();
        return {
          sessionId,
          notes: useSessionQuery(api.notes.list),
          add: useSessionMutation(api.notes.add).withOptimisticUpdate((store, args) => {
            seen.push(args);
            const list = store.getQuery(api.notes.list, { sessionId: args.sessionId });
            if (list) store.setQuery(api.notes.list, { sessionId: args.sessionId }, [...list, `${args.text} (pending)`]);
          }),
        };
      },
      { wrapper: wrapperWith() },
    );
    await waitFor(() => expect(result.current.notes).toEqual([]));
    await act(() => result.current.add({ text: "opt" }));
    expect(seen).toEqual([{ text: "opt", sessionId: result.current.sessionId }]);
    await waitFor(() => expect(result.current.notes).toEqual(["opt"]));
  });

  it("shares one source with a SessionClient: a refresh through either is seen by both", async () => {
    const source: SessionIdSource = createSessionIdSource({ store: memoryStore("shared"), scope: "tab", channel: null });
    const sessions = new SessionClient(client, source);
    const { result } = renderHook(useNotes, {
      wrapper: ({ children }) => <StrictMode>{wrapperWith({ source })({ children })}</StrictMode>,
    });
    expect(result.current.sessionId).toBe(source.current);
    await sessions.mutation(api.notes.add, { text: "from plain ts" });
    await waitFor(() => expect(result.current.notes).toEqual(["from plain ts"]));

    let newId!: string;
    await act(async () => {
      newId = await sessions.source.refresh((to) => sessions.mutation(api.notes.transfer, { to }));
    });
    expect(result.current.sessionId).toBe(newId);
    await act(() => result.current.add({ text: "from react" }));
    await expect(sessions.query(api.notes.list)).resolves.toEqual(["from plain ts", "from react"]);
  });
});
