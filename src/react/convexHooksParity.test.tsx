// @vitest-environment jsdom
/**
 * Code written against Convex's `convex/react` must run with only its imports changed to
 * `walkin/react`. Each test here is a behaviour such code relies on, checked against the real
 * server on loopback and the real client.
 */
import { act, render, renderHook, screen, waitFor } from "@testing-library/react";
import { StrictMode, type ReactNode } from "react";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as walkinAuthReact from "../auth/react/index.js";
import { AuthLoading, AuthProvider, Authenticated, Unauthenticated, useAuthActions } from "../auth/react/index.js";
import { startRealAuthBackend } from "../auth/browser/fixtures/realAuth.js";
import { defineSchema, defineTable, mutation, query, action, anyApi, paginationOptsValidator, type ApiFromModules } from "../server/index.js";
import { startLiveBackend } from "../testing/liveBackend.js";
import { WalkinError, isWalkinError, v } from "../values/index.js";
import { ErrorBoundary, liveBackendPerFile, trackSubscriptions } from "./fixtures/react.js";
import * as walkinReact from "./index.js";
import { ConvexProvider, useAction, useConvex, useMutation, usePaginatedQuery, useQueries, useQuery } from "./index.js";

const schema = defineSchema({
  notes: defineTable({ name: v.string(), text: v.string() }).index("by_name", ["name"]),
  items: defineTable({ list: v.string(), n: v.number() }).index("by_list", ["list", "n"]),
});

const notes = {
  /** Fails while the note is missing: an error that goes away when the data changes. */
  get: query({
    args: { name: v.string() },
    handler: async (ctx, { name }) => {
      const note = await ctx.db.query("notes").withIndex("by_name", (q) => q.eq("name", name)).unique();
      if (note === null) throw new WalkinError(`no note ${name}`, { data: { name } });
      return note.text;
    },
  }),
  set: mutation({
    args: { name: v.string(), text: v.string() },
    handler: async (ctx, { name, text }) => {
      const note = await ctx.db.query("notes").withIndex("by_name", (q) => q.eq("name", name)).unique();
      if (note) await ctx.db.patch(note._id, { text });
      else await ctx.db.insert("notes", { name, text });
      return text;
    },
  }),
  setThenFail: mutation({
    args: { name: v.string(), text: v.string() },
    handler: async () => {
      throw new WalkinError("refused");
    },
  }),
  /** Returns nothing: clients receive null, as in Convex. */
  nothing: query({ args: {}, handler: async () => {} }),
  echo: action({ args: { text: v.string() }, handler: async (_ctx, { text }) => `echo ${text}` }),
};
const items = {
  page: query({
    args: { list: v.string(), paginationOpts: paginationOptsValidator },
    handler: async (ctx, { list, paginationOpts }) => {
      const result = await ctx.db.query("items").withIndex("by_list", (q) => q.eq("list", list)).paginate(paginationOpts);
      return { ...result, page: result.page.map((item) => item.n) };
    },
  }),
  fill: mutation({
    args: { list: v.string(), count: v.number() },
    handler: async (ctx, { list, count }) => {
      for (let n = 0; n < count; n++) await ctx.db.insert("items", { list, n });
    },
  }),
};
const modules = { notes, items };
const api = anyApi as unknown as ApiFromModules<typeof modules>;

const live = liveBackendPerFile(() => startLiveBackend(schema, modules));
const { wrapper } = live;
const strictWrapper = ({ children }: { children: ReactNode }) => <StrictMode>{wrapper({ children })}</StrictMode>;

function quietConsoleError() {
  return vi.spyOn(console, "error").mockImplementation(() => {});
}

describe('useQuery with "skip"', () => {
  it("never shows a result from before the skip when the same args come back after the data changed", async () => {
    await live.other.mutation(api.notes.set, { name: "skip-back", text: "v1" });
    const seen: (string | undefined)[] = [];
    const { result, rerender } = renderHook(
      ({ skip }) => {
        const value = useQuery(api.notes.get, skip ? "skip" : { name: "skip-back" });
        seen.push(value);
        return value;
      },
      { wrapper, initialProps: { skip: false } },
    );
    await waitFor(() => expect(result.current).toBe("v1"));
    rerender({ skip: true });
    expect(result.current).toBeUndefined();
    await live.other.mutation(api.notes.set, { name: "skip-back", text: "v2" });
    seen.length = 0;
    rerender({ skip: false });
    await waitFor(() => expect(result.current).toBe("v2"));
    // Back from "skip": loading, then the current result; v1 (from before the skip) never shows.
    expect(seen).not.toContain("v1");
  });
});

describe("useQuery results", () => {
  it("gives null, not undefined (loading) forever, for a query that returns nothing", async () => {
    const { result } = renderHook(() => useQuery(api.notes.nothing), { wrapper });
    await waitFor(() => expect(result.current).toBeNull());
  });
});

describe("useQuery while disconnected", () => {
  it("keeps showing the last result when the connection drops (no flash to loading)", async () => {
    // Its own backend: this test stops the server.
    const own = await startLiveBackend(schema, modules);
    try {
      const client = own.client();
      await client.mutation(api.notes.set, { name: "offline", text: "kept" });
      const seen: (string | undefined)[] = [];
      const { result, unmount } = renderHook(
        () => {
          const text = useQuery(api.notes.get, { name: "offline" });
          seen.push(text);
          return { text, connected: walkinReact.useConnectionState().isWebSocketConnected };
        },
        { wrapper: ({ children }) => <ConvexProvider client={client}>{children}</ConvexProvider> },
      );
      await waitFor(() => expect(result.current).toEqual({ text: "kept", connected: true }));
      seen.length = 0;
      await act(() => own.stopServer());
      await waitFor(() => expect(result.current.connected).toBe(false));
      expect(seen.every((text) => text === "kept")).toBe(true);
      unmount();
    } finally {
      await own.close();
    }
  });
});

describe("useQuery errors", () => {
  it("throws into the error boundary; a retry after the data is fixed shows the result, and so do new args", async () => {
    const consoleError = quietConsoleError();
    function Note({ name }: { name: string }) {
      const text = useQuery(api.notes.get, { name });
      return <p>note: {text ?? "loading"}</p>;
    }
    // The usual reset: the boundary is keyed by what should reset it (react-error-boundary's resetKeys).
    function App({ name, attempt }: { name: string; attempt: number }) {
      return (
        <ErrorBoundary key={`${name} ${attempt}`}>
          <Note name={name} />
        </ErrorBoundary>
      );
    }
    const { active, spy } = trackSubscriptions(live.client);
    try {
      const { rerender } = render(<App name="missing" attempt={0} />, { wrapper });
      await screen.findByText("caught: no note missing");
      // The failed component unmounted, and with it its subscription.
      await waitFor(() => expect(active.get('notes:get {"name":"missing"}')).toBe(0));
      // New args: the boundary resets and the new query's result shows.
      await live.other.mutation(api.notes.set, { name: "present", text: "here" });
      rerender(<App name="present" attempt={0} />);
      await screen.findByText("note: here");
      // Back to the failing args, then a retry once the data is fixed: the stale error is not replayed.
      rerender(<App name="missing" attempt={0} />);
      await screen.findByText("caught: no note missing");
      await live.other.mutation(api.notes.set, { name: "missing", text: "found" });
      rerender(<App name="missing" attempt={1} />);
      await screen.findByText("note: found");
    } finally {
      spy.mockRestore();
      consoleError.mockRestore();
    }
  });
});

describe("StrictMode", () => {
  it("leaves one subscription per query while mounted and none after unmount", async () => {
    await live.other.mutation(api.items.fill, { list: "strict", count: 3 });
    await live.other.mutation(api.notes.set, { name: "strict", text: "s" });
    const { active, spy } = trackSubscriptions(live.client);
    try {
      const { result, unmount } = renderHook(
        () => ({
          note: useQuery(api.notes.get, { name: "strict" }),
          pages: usePaginatedQuery(api.items.page, { list: "strict" }, { initialNumItems: 2 }),
          many: useQueries({ a: { query: api.items.page, args: { list: "strict", paginationOpts: { numItems: 1, cursor: null } } } }),
        }),
        { wrapper: ({ children }) => <StrictMode>{wrapper({ children: <ErrorBoundary>{children}</ErrorBoundary> })}</StrictMode> },
      );
      await waitFor(() => expect(result.current.note).toBe("s"));
      await waitFor(() => expect(result.current.many.a).toMatchObject({ page: [0] }));
      await waitFor(() => expect(result.current.pages.status).toBe("CanLoadMore"));
      act(() => result.current.pages.loadMore(5));
      await waitFor(() => expect(result.current.pages.status).toBe("Exhausted"));
      await waitFor(() => expect([...active.values()].every((count) => count <= 1)).toBe(true));
      unmount();
      // The paginated store ends its subscriptions a microtask later (see usePaginatedQuery).
      await waitFor(() => expect([...active.entries()].filter(([, count]) => count !== 0)).toEqual([]));
    } finally {
      spy.mockRestore();
    }
  });
});

describe("usePaginatedQuery subscriptions", () => {
  it("keeps none of the old args' pages subscribed after the args change mid-loadMore, and none after unmount", async () => {
    await live.other.mutation(api.items.fill, { list: "leak-a", count: 4 });
    await live.other.mutation(api.items.fill, { list: "leak-b", count: 4 });
    const { active, spy } = trackSubscriptions(live.client);
    try {
      const { result, rerender, unmount } = renderHook(({ list }) => usePaginatedQuery(api.items.page, { list }, { initialNumItems: 2 }), {
        wrapper: strictWrapper,
        initialProps: { list: "leak-a" },
      });
      await waitFor(() => expect(result.current.status).toBe("CanLoadMore"));
      act(() => result.current.loadMore(1));
      rerender({ list: "leak-b" }); // before the next page (and the pinned page) loaded
      await waitFor(() => expect(result.current.status).toBe("CanLoadMore"));
      expect(result.current.results).toEqual([0, 1]);
      const subscribed = () => [...active.entries()].filter(([, count]) => count !== 0).map(([key]) => key);
      await waitFor(() => expect(subscribed().filter((key) => key.includes("leak-a"))).toEqual([]));
      expect(subscribed()).toHaveLength(1);
      unmount();
      await waitFor(() => expect(subscribed()).toEqual([]));
    } finally {
      spy.mockRestore();
    }
  });
});

describe("useMutation(...).withOptimisticUpdate", () => {
  it("shows the update at once, replaces it with the server's result without going back, and rolls back a failure", async () => {
    await live.other.mutation(api.notes.set, { name: "opt", text: "before" });
    const seen: (string | undefined)[] = [];
    const { result } = renderHook(
      () => {
        const text = useQuery(api.notes.get, { name: "opt" });
        seen.push(text);
        const update = (store: walkinReact.OptimisticLocalStore, args: { name: string; text: string }) => {
          // getAllQueries finds the loaded query; setQuery replaces its value.
          const all = store.getAllQueries(api.notes.get);
          expect(all.map((q) => q.args)).toContainEqual({ name: args.name });
          if (store.getQuery(api.notes.get, { name: args.name }) !== undefined) store.setQuery(api.notes.get, { name: args.name }, `${args.text} (sending)`);
        };
        return {
          text,
          set: useMutation(api.notes.set).withOptimisticUpdate(update),
          fail: useMutation(api.notes.setThenFail).withOptimisticUpdate(update),
        };
      },
      { wrapper },
    );
    await waitFor(() => expect(result.current.text).toBe("before"));
    seen.length = 0;
    let sent!: Promise<string>;
    act(() => {
      sent = result.current.set({ name: "opt", text: "after" });
    });
    expect(result.current.text).toBe("after (sending)");
    await act(() => sent);
    expect(result.current.text).toBe("after");
    expect(seen.filter((text, i) => text !== seen[i - 1])).toEqual(["after (sending)", "after"]);

    seen.length = 0;
    let failed!: Promise<unknown>;
    act(() => {
      failed = result.current.fail({ name: "opt", text: "nope" }).catch((error: unknown) => error);
    });
    expect(result.current.text).toBe("nope (sending)");
    const error = await act(() => failed);
    expect(isWalkinError(error) && error.message).toBe("refused");
    expect(result.current.text).toBe("after");
    expect(seen.filter((text, i) => text !== seen[i - 1])).toEqual(["nope (sending)", "after"]);

    // A failed mutation's rollback keeps the update of a later one still in flight. Mutations run
    // in the order sent, so: both updates applied ("again (sending)" on top), the failure removes
    // only its own layer (still "again (sending)"), then the second one's result ("again").
    seen.length = 0;
    let both!: Promise<unknown>;
    act(() => {
      both = Promise.all([result.current.fail({ name: "opt", text: "lost" }).catch(() => {}), result.current.set({ name: "opt", text: "again" })]);
    });
    expect(result.current.text).toBe("again (sending)");
    await act(() => both);
    expect(result.current.text).toBe("again");
    expect(seen.filter((text, i) => text !== seen[i - 1])).toEqual(["again (sending)", "again"]);
  });
});

describe("useAction and useConvex", () => {
  it("runs the action, and hands out the provider's client under ConvexProvider", async () => {
    const { result } = renderHook(() => ({ echo: useAction(api.notes.echo), convex: useConvex() }), {
      wrapper: ({ children }) => <ConvexProvider client={live.client}>{children}</ConvexProvider>,
    });
    expect(result.current.convex).toBe(live.client);
    expect(await result.current.echo({ text: "hi" })).toBe("echo hi");
    await live.other.mutation(api.notes.set, { name: "via-client", text: "ok" });
    expect(await result.current.convex.query(api.notes.get, { name: "via-client" })).toBe("ok");
  });
});

describe("usePaginatedQuery", () => {
  it("LoadingFirstPage → CanLoadMore → LoadingMore → Exhausted; loadMore twice at once loads one page; new args start over", async () => {
    await live.other.mutation(api.items.fill, { list: "pq", count: 5 });
    await live.other.mutation(api.items.fill, { list: "pq-other", count: 1 });
    const { result, rerender } = renderHook(({ list }) => usePaginatedQuery(api.items.page, { list }, { initialNumItems: 2 }), {
      wrapper: strictWrapper,
      initialProps: { list: "pq" },
    });
    expect(result.current.status).toBe("LoadingFirstPage");
    await waitFor(() => expect(result.current.status).toBe("CanLoadMore"));
    expect(result.current.results).toEqual([0, 1]);
    act(() => {
      result.current.loadMore(2);
      result.current.loadMore(2);
    });
    expect(result.current.status).toBe("LoadingMore");
    expect(result.current.results).toEqual([0, 1]);
    await waitFor(() => expect(result.current.status).toBe("CanLoadMore"));
    expect(result.current.results).toEqual([0, 1, 2, 3]);
    act(() => result.current.loadMore(2));
    await waitFor(() => expect(result.current.status).toBe("Exhausted"));
    expect(result.current.results).toEqual([0, 1, 2, 3, 4]);
    rerender({ list: "pq-other" });
    expect(result.current).toMatchObject({ status: "LoadingFirstPage", results: [] });
    await waitFor(() => expect(result.current.status).toBe("Exhausted"));
    expect(result.current.results).toEqual([0]);
  });
});

describe("useQueries", () => {
  it("is exported, loads each query by key, gives a failed one as an Error, and follows changes", async () => {
    // Imported through the namespace, so that before useQueries existed this failed here and not at import.
    const useQueries = (walkinReact as Partial<typeof walkinReact>).useQueries;
    expect(typeof useQueries).toBe("function");
    const seenA: unknown[] = [];
    await live.other.mutation(api.notes.set, { name: "q-a", text: "a" });
    const { result, rerender } = renderHook(
      ({ names }) => {
        const results = useQueries!(Object.fromEntries(names.map((name) => [name, { query: api.notes.get, args: { name } }])));
        seenA.push(results["q-a"]);
        return results;
      },
      { wrapper: strictWrapper, initialProps: { names: ["q-a", "q-missing"] } },
    );
    expect(result.current).toEqual({ "q-a": undefined, "q-missing": undefined });
    await waitFor(() => expect(result.current["q-missing"]).toBeInstanceOf(Error));
    await waitFor(() => expect(result.current["q-a"]).toBe("a"));
    expect((result.current["q-missing"] as Error).message).toBe("no note q-missing");
    const before = result.current;
    rerender({ names: ["q-a", "q-missing"] }); // a new object of the same value keeps the result
    expect(result.current).toBe(before);
    await live.other.mutation(api.notes.set, { name: "q-a", text: "a2" });
    await waitFor(() => expect(result.current["q-a"]).toBe("a2"));
    // Adding a key keeps the other keys' results: q-a never goes back to loading.
    seenA.length = 0;
    await live.other.mutation(api.notes.set, { name: "q-c", text: "c" });
    rerender({ names: ["q-a", "q-c"] });
    await waitFor(() => expect(result.current).toEqual({ "q-a": "a2", "q-c": "c" }));
    expect(seenA.every((value) => value === "a2")).toBe(true);
    rerender({ names: ["q-b"] });
    expect(result.current).toEqual({ "q-b": undefined });
  });
});


describe("useConvexAuth, Authenticated, Unauthenticated, AuthLoading (from walkin/auth/react)", () => {
  let auth: Awaited<ReturnType<typeof startRealAuthBackend>>;
  beforeAll(async () => {
    auth = await startRealAuthBackend();
  });
  afterAll(() => auth.close());

  it("useConvexAuth gives { isLoading, isAuthenticated }, in step with the gates", async () => {
    // Through the namespace, so that before useConvexAuth existed this failed here and not at import.
    const useConvexAuth = (walkinAuthReact as Partial<typeof walkinAuthReact>).useConvexAuth;
    expect(typeof useConvexAuth).toBe("function");
    const client = auth.client();
    function App() {
      const { isLoading, isAuthenticated } = useConvexAuth!();
      const { signIn, signOut } = useAuthActions();
      return (
        <>
          <p>state: {isLoading ? "loading" : isAuthenticated ? "in" : "out"}</p>
          <AuthLoading>gate: loading</AuthLoading>
          <Unauthenticated>
            gate: out <button onClick={() => void signIn("anonymous")}>sign in</button>
          </Unauthenticated>
          <Authenticated>
            gate: in <button onClick={() => void signOut()}>sign out</button>
          </Authenticated>
        </>
      );
    }
    const { unmount } = render(
      <StrictMode>
        <AuthProvider client={client} storage="sessionStorage">
          <App />
        </AuthProvider>
      </StrictMode>,
    );
    try {
      await screen.findByText("state: out");
      expect(screen.getByText(/gate: out/)).toBeTruthy();
      act(() => screen.getByText("sign in").click());
      await screen.findByText("state: in");
      expect(screen.getByText(/gate: in/)).toBeTruthy();
      act(() => screen.getByText("sign out").click());
      await screen.findByText("state: out");
    } finally {
      unmount();
      sessionStorage.clear();
      await client.close();
    }
  });
});
