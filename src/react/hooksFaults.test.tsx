// @vitest-environment jsdom
/**
 * The React bindings' invariants against real servers on loopback: paginated lists
 * under concurrent inserts and deletes, switching args and clients, "skip", StrictMode.
 */
import { act, cleanup, render, renderHook, waitFor } from "@testing-library/react";
import { hydrateRoot, type Root } from "react-dom/client";
import { renderToString } from "react-dom/server";
import { seededRandom } from "../storage/conformance/history.js";
import { WebSocket } from "ws";
import { StrictMode, Suspense, startTransition, use, useLayoutEffect, useState, type ReactNode } from "react";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { WalkinClient } from "../browser/index.js";
import { anyApi, defineSchema, defineTable, mutation, paginationOptsValidator, query, type ApiFromModules } from "../server/index.js";
import { startLiveBackend, type LiveBackend } from "../testing/liveBackend.js";
import { v } from "../values/index.js";
import { api, startBackend, type Backend } from "./fixtures/backend.js";
import { trackSubscriptions } from "./fixtures/react.js";
import { WalkinProvider, preloadQuery, useConnectionState, useMutation, usePaginatedQuery, usePreloadedQuery, useQuery, type Preloaded } from "./index.js";

/** A table of numbered items, listed by number (asc or desc), with inserts and deletes. */
const itemsSchema = defineSchema({
  items: defineTable({ list: v.string(), n: v.number() }).index("by_list_n", ["list", "n"]),
});
const itemsModules = {
  items: {
    page: query({
      args: { list: v.string(), desc: v.boolean(), paginationOpts: paginationOptsValidator },
      handler: async (ctx, { list, desc, paginationOpts }) => {
        const result = await ctx.db
          .query("items")
          .withIndex("by_list_n", (q) => q.eq("list", list))
          .order(desc ? "desc" : "asc")
          .paginate(paginationOpts);
        return { ...result, page: result.page.map((doc) => doc.n) };
      },
    }),
    all: query({
      args: { list: v.string(), desc: v.boolean() },
      handler: async (ctx, { list, desc }) => {
        const docs = await ctx.db
          .query("items")
          .withIndex("by_list_n", (q) => q.eq("list", list))
          .order(desc ? "desc" : "asc")
          .collect();
        return docs.map((doc) => doc.n);
      },
    }),
    insert: mutation({
      args: { list: v.string(), n: v.number() },
      handler: async (ctx, args) => {
        await ctx.db.insert("items", args);
      },
    }),
    remove: mutation({
      args: { list: v.string(), n: v.number() },
      handler: async (ctx, { list, n }) => {
        const doc = await ctx.db.query("items").withIndex("by_list_n", (q) => q.eq("list", list).eq("n", n)).first();
        if (doc) await ctx.db.delete(doc._id);
      },
    }),
  },
};
const items = (anyApi as unknown as ApiFromModules<typeof itemsModules>).items;

let backend: Backend;
let client: WalkinClient;
let other: WalkinClient;
let itemsBackend: LiveBackend;
let itemsClient: WalkinClient;
let itemsWriter: WalkinClient;
beforeAll(async () => {
  backend = await startBackend();
  client = backend.client();
  other = backend.client();
  itemsBackend = await startLiveBackend(itemsSchema, itemsModules);
  itemsClient = itemsBackend.client();
  itemsWriter = itemsBackend.client();
});
afterEach(cleanup);
afterAll(async () => {
  await backend.close();
  await itemsBackend.close();
});

function wrapper({ children }: { children: ReactNode }) {
  return <WalkinProvider client={client}>{children}</WalkinProvider>;
}

async function seed(channel: string, bodies: string[]) {
  for (const body of bodies) await other.mutation(api.messages.send, { channel, body });
}

/** A seeded generator, so a failing seed can be replayed. */
const rng = seededRandom;

describe("usePaginatedQuery: returning to the same args after \"skip\"", () => {
  it("starts over from LoadingFirstPage instead of showing the pages it had before the skip", async () => {
    await seed("skip-back", ["k1", "k2", "k3"]);
    const renders: { channel: string; status: string; results: unknown[] }[] = [];
    const { result, rerender } = renderHook(
      ({ channel }) => {
        const r = usePaginatedQuery(api.messages.page, channel === "skip" ? "skip" : { channel }, { initialNumItems: 2 });
        renders.push({ channel, status: r.status, results: r.results });
        return r;
      },
      { wrapper, initialProps: { channel: "skip-back" } },
    );
    await waitFor(() => expect(result.current.results).toEqual(["k3", "k2"]));
    act(() => result.current.loadMore(5));
    await waitFor(() => expect(result.current.status).toBe("Exhausted"));
    expect(result.current.results).toEqual(["k3", "k2", "k1"]);

    rerender({ channel: "skip" });
    expect(result.current).toMatchObject({ results: [], status: "LoadingFirstPage" });
    // While skipped, the list changes completely.
    await seed("skip-back", ["k4", "k5", "k6", "k7"]);

    renders.length = 0;
    rerender({ channel: "skip-back" });
    await waitFor(() => expect(result.current.results).toEqual(["k7", "k6"]));
    // Every render before the fresh first page must be "LoadingFirstPage" with no items: the pages
    // loaded before the skip are forgotten ("returning to those args starts over").
    const beforeFresh = renders.slice(0, renders.findIndex((r) => r.results[0] === "k7"));
    expect(beforeFresh.length).toBeGreaterThan(0);
    for (const r of beforeFresh) expect(r).toMatchObject({ status: "LoadingFirstPage", results: [] });
  });
});

describe("usePaginatedQuery: args changed in a transition that suspends", () => {
  it("never commits the old args' items as the new args' pages", async () => {
    await seed("tr-a", ["a1", "a2", "a3"]);
    await seed("tr-b", ["b1", "b2", "b3"]);
    let resolveGate!: () => void;
    const gate = new Promise<void>((resolve) => (resolveGate = resolve));
    const committed: { channel: string; status: string; results: unknown[] }[] = [];
    let setChannel!: (channel: string) => void;
    function Gate({ channel }: { channel: string }) {
      if (channel === "tr-b") use(gate);
      return null;
    }
    function App() {
      const [channel, set] = useState("tr-a");
      setChannel = set;
      const { results, status } = usePaginatedQuery(api.messages.page, { channel }, { initialNumItems: 2 });
      useLayoutEffect(() => void committed.push({ channel, status, results }));
      return (
        <>
          <p>{channel}: {results.join(",")}</p>
          <Gate channel={channel} />
        </>
      );
    }
    const view = render(
      <Suspense fallback={<p>fallback</p>}>
        <App />
      </Suspense>,
      { wrapper },
    );
    await view.findByText("tr-a: a3,a2");
    act(() => startTransition(() => setChannel("tr-b")));
    // The transition's render of tr-b is suspended; tr-a stays on screen and stays live.
    await other.mutation(api.messages.send, { channel: "tr-a", body: "a4" });
    await view.findByText("tr-a: a4,a3");
    await act(async () => resolveGate());
    await view.findByText("tr-b: b3,b2");
    const wrong = committed.filter((c) => c.channel === "tr-b" && c.results.some((body) => !String(body).startsWith("b")));
    expect(wrong).toEqual([]);
  });
});

describe("usePaginatedQuery: a new client from the provider", () => {
  it("reads the pages through the new client, not the old one", async () => {
    const second = await startBackend();
    const firstClientWatches = trackSubscriptions(client);
    try {
      const secondClient = second.client();
      await seed("swap", ["from first"]);
      await secondClient.mutation(api.messages.send, { channel: "swap", body: "from second" });
      let seen: unknown[] = [];
      function List() {
        const { results } = usePaginatedQuery(api.messages.page, { channel: "swap" }, { initialNumItems: 2 });
        seen = results;
        return null;
      }
      const view = render(
        <WalkinProvider client={client}>
          <List />
        </WalkinProvider>,
      );
      await waitFor(() => expect(seen).toEqual(["from first"]));
      view.rerender(
        <WalkinProvider client={secondClient}>
          <List />
        </WalkinProvider>,
      );
      // useQuery would switch; usePaginatedQuery must too.
      await waitFor(() => expect(seen).toEqual(["from second"]), { timeout: 2000 });
      // ...and no longer subscribes through the old client.
      expect([...firstClientWatches.active.values()].every((n) => n === 0)).toBe(true);
    } finally {
      firstClientWatches.spy.mockRestore();
      await second.close();
    }
  });

  it("useQuery switches to the new client (for comparison)", async () => {
    const second = await startBackend();
    try {
      const secondClient = second.client();
      await seed("swap-q", ["from first"]);
      await secondClient.mutation(api.messages.send, { channel: "swap-q", body: "from second" });
      let seen: unknown;
      function List() {
        seen = useQuery(api.messages.list, { channel: "swap-q" });
        return null;
      }
      const view = render(<WalkinProvider client={client}><List /></WalkinProvider>);
      await waitFor(() => expect(seen).toEqual(["from first"]));
      view.rerender(<WalkinProvider client={secondClient}><List /></WalkinProvider>);
      await waitFor(() => expect(seen).toEqual(["from second"]));
    } finally {
      await second.close();
    }
  });
});

describe("useQuery: changing args", () => {
  it("never shows the old args' result under the new args, and never goes back to an older result", async () => {
    await seed("sw-a", ["a"]);
    await seed("sw-b", ["b"]);
    const renders: { channel: string; value: unknown }[] = [];
    const { result, rerender } = renderHook(
      ({ channel }) => {
        const value = useQuery(api.messages.list, { channel });
        renders.push({ channel, value });
        return value;
      },
      { wrapper, initialProps: { channel: "sw-a" } },
    );
    await waitFor(() => expect(result.current).toEqual(["a"]));
    rerender({ channel: "sw-b" });
    await waitFor(() => expect(result.current).toEqual(["b"]));
    await other.mutation(api.messages.send, { channel: "sw-b", body: "b2" });
    await waitFor(() => expect(result.current).toEqual(["b", "b2"]));
    rerender({ channel: "sw-a" });
    await waitFor(() => expect(result.current).toEqual(["a"]));
    for (const r of renders) {
      if (r.value === undefined) continue;
      expect((r.value as string[]).every((body) => body.startsWith(r.channel.slice(3)))).toBe(true);
    }
    const bRenders = renders.filter((r) => r.channel === "sw-b" && r.value !== undefined).map((r) => (r.value as string[]).length);
    expect(bRenders).toEqual([...bRenders].sort((x, y) => x - y)); // never back to a shorter (older) list
  });
});

describe("StrictMode and unmount leave no subscription behind", () => {
  it("useQuery and usePaginatedQuery, including after loadMore and args changes", async () => {
    await seed("strict-leak", ["l1", "l2", "l3", "l4", "l5"]);
    const { active, spy } = trackSubscriptions(client);
    try {
      const { result, rerender, unmount } = renderHook(
        ({ channel }) => ({
          list: useQuery(api.messages.list, channel === "skip" ? "skip" : { channel }),
          pages: usePaginatedQuery(api.messages.page, channel === "skip" ? "skip" : { channel }, { initialNumItems: 2 }),
        }),
        {
          wrapper: ({ children }) => <StrictMode>{wrapper({ children })}</StrictMode>,
          initialProps: { channel: "strict-leak" },
        },
      );
      await waitFor(() => expect(result.current.pages.results).toEqual(["l5", "l4"]));
      act(() => result.current.pages.loadMore(2));
      await waitFor(() => expect(result.current.pages.results).toHaveLength(4));
      rerender({ channel: "skip" });
      await act(async () => {});
      expect([...active.values()].every((n) => n === 0)).toBe(true);
      rerender({ channel: "strict-leak" });
      await waitFor(() => expect(result.current.pages.results.length).toBeGreaterThan(0));
      unmount();
      await act(async () => {});
      expect([...active.values()].every((n) => n === 0)).toBe(true);
    } finally {
      spy.mockRestore();
    }
  });
});

describe("usePaginatedQuery under concurrent inserts and deletes (randomized)", () => {
  for (const seedValue of [1, 2, 3, 4, 5]) {
    for (const desc of [true, false]) {
      it(`pages stay contiguous (seed ${seedValue}, ${desc ? "desc" : "asc"})`, async () => {
        const random = rng(seedValue * 7919 + (desc ? 1 : 0));
        const list = `rand-${seedValue}-${desc}`;
        const present = new Set<number>();
        for (let i = 0; i < 12; i++) {
          const n = i * 10;
          present.add(n);
          await itemsWriter.mutation(items.insert, { list, n });
        }
        const renders: number[][] = [];
        const inconsistent: { results: number[]; all: number[] | undefined; status: string }[] = [];
        const { result } = renderHook(
          () => {
            const r = usePaginatedQuery(items.page, { list, desc }, { initialNumItems: 3 });
            // The whole list through the same client: it changes in the same Transitions.
            const all = useQuery(items.all, { list, desc });
            renders.push(r.results as number[]);
            const got = r.results as number[];
            if (!r.isLoading && (all === undefined || JSON.stringify(got) !== JSON.stringify(all.slice(0, got.length)))) {
              inconsistent.push({ results: got, all, status: r.status });
            }
            return r;
          },
          { wrapper: ({ children }) => <WalkinProvider client={itemsClient}>{children}</WalkinProvider> },
        );
        await waitFor(() => expect(result.current.status).not.toBe("LoadingFirstPage"));

        for (let step = 0; step < 25; step++) {
          const roll = random();
          const writes: Promise<unknown>[] = [];
          const nWrites = 1 + Math.floor(random() * 3);
          for (let w = 0; w < nWrites; w++) {
            if (random() < 0.55 || present.size === 0) {
              let n: number;
              do n = Math.floor(random() * 200); while (present.has(n));
              present.add(n);
              writes.push((random() < 0.5 ? itemsWriter : itemsClient).mutation(items.insert, { list, n }));
            } else {
              const all = [...present];
              const n = all[Math.floor(random() * all.length)]!;
              present.delete(n);
              writes.push((random() < 0.5 ? itemsWriter : itemsClient).mutation(items.remove, { list, n }));
            }
          }
          if (roll < 0.5) act(() => result.current.loadMore(1 + Math.floor(random() * 3)));
          await act(() => Promise.all(writes));
          if (random() < 0.3) act(() => result.current.loadMore(2));
        }
        // Settle: the live list, read through the same client, as the reference.
        const expected = [...present].sort((x, y) => (desc ? y - x : x - y));
        await waitFor(() => {
          const got = result.current.results as number[];
          expect(result.current.isLoading).toBe(false);
          expect(got).toEqual(expected.slice(0, got.length));
          if (result.current.status === "Exhausted") expect(got).toEqual(expected);
        });
        // No render ever showed a document twice or out of order.
        for (const r of renders) {
          expect(new Set(r).size).toBe(r.length);
          const sorted = [...r].sort((x, y) => (desc ? y - x : x - y));
          expect(r).toEqual(sorted);
        }
        // Every settled render (not loading) showed a prefix of the list as of that render.
        expect(inconsistent).toEqual([]);
        // Load everything: the pages together are exactly the list.
        for (let i = 0; i < 40 && result.current.status !== "Exhausted"; i++) {
          act(() => result.current.loadMore(4));
          await waitFor(() => expect(result.current.isLoading).toBe(false));
        }
        expect(result.current.status).toBe("Exhausted");
        expect(result.current.results).toEqual(expected);
      });
    }
  }
});

describe("hydration with a client that is already connected", () => {
  it("useConnectionState hydrates the server's HTML without a mismatch", async () => {
    function Status() {
      const { isWebSocketConnected } = useConnectionState();
      return <p>{isWebSocketConnected ? "online" : "offline"}</p>;
    }
    const serverSide = new WalkinClient(backend.url, { skipConnect: true, logger: false });
    const html = renderToString(<WalkinProvider client={serverSide}><Status /></WalkinProvider>);
    expect(html).toBe("<p>offline</p>");

    // The browser's client (made at module scope) connected before hydration ran, e.g. a
    // lazily hydrated part of the page.
    const browser = new WalkinClient(backend.url, { webSocketConstructor: WebSocket as never, logger: false });
    await waitFor(() => expect(browser.connectionState().isWebSocketConnected).toBe(true));
    const container = document.createElement("div");
    container.innerHTML = html;
    document.body.appendChild(container);
    const onRecoverableError = vi.fn();
    const consoleError = vi.spyOn(console, "error").mockImplementation(() => {});
    let root!: Root;
    try {
      await act(async () => {
        root = hydrateRoot(container, <WalkinProvider client={browser}><Status /></WalkinProvider>, { onRecoverableError });
      });
      await waitFor(() => expect(container.textContent).toBe("online"));
      expect(onRecoverableError.mock.calls.map((call) => String((call[0] as Error).message).slice(0, 120))).toEqual([]);
    } finally {
      consoleError.mockRestore();
      act(() => root.unmount());
      container.remove();
      await browser.close();
      await serverSide.close();
    }
  });
});

describe("usePaginatedQuery: loadMore and status", () => {
  it("ignores a second loadMore made before the first one's page loaded, and moves LoadingFirstPage → CanLoadMore → LoadingMore → Exhausted", async () => {
    await seed("twice", ["t1", "t2", "t3", "t4", "t5"]);
    const statuses: string[] = [];
    const { result } = renderHook(
      () => {
        const r = usePaginatedQuery(api.messages.page, { channel: "twice" }, { initialNumItems: 2 });
        if (statuses[statuses.length - 1] !== r.status) statuses.push(r.status);
        return r;
      },
      { wrapper },
    );
    act(() => result.current.loadMore(1)); // while the first page loads: nothing
    await waitFor(() => expect(result.current.status).toBe("CanLoadMore"));
    act(() => {
      result.current.loadMore(1);
      result.current.loadMore(1);
    });
    act(() => result.current.loadMore(1)); // LoadingMore now: nothing
    await waitFor(() => expect(result.current.status).toBe("CanLoadMore"));
    expect(result.current.results).toEqual(["t5", "t4", "t3"]);
    act(() => result.current.loadMore(10));
    await waitFor(() => expect(result.current.status).toBe("Exhausted"));
    expect(result.current.results).toEqual(["t5", "t4", "t3", "t2", "t1"]);
    expect(statuses).toEqual(["LoadingFirstPage", "CanLoadMore", "LoadingMore", "CanLoadMore", "LoadingMore", "Exhausted"]);
  });

  it("starts over when initialNumItems changes", async () => {
    await seed("num", ["n1", "n2", "n3", "n4"]);
    const { result, rerender } = renderHook(
      ({ n }) => usePaginatedQuery(api.messages.page, { channel: "num" }, { initialNumItems: n }),
      { wrapper, initialProps: { n: 1 } },
    );
    await waitFor(() => expect(result.current.results).toEqual(["n4"]));
    act(() => result.current.loadMore(2));
    await waitFor(() => expect(result.current.results).toEqual(["n4", "n3", "n2"]));
    rerender({ n: 2 });
    expect(result.current).toMatchObject({ status: "LoadingFirstPage", results: [] });
    await waitFor(() => expect(result.current.results).toEqual(["n4", "n3"]));
  });
});

describe("usePreloadedQuery with new preloaded args", () => {
  it("shows the new preloaded value at once, never the old args' live result", async () => {
    await seed("pre-a", ["pa"]);
    await seed("pre-b", ["pb"]);
    const a = await preloadQuery(api.messages.list, { channel: "pre-a" }, { url: backend.url });
    const b = await preloadQuery(api.messages.list, { channel: "pre-b" }, { url: backend.url });
    const renders: { which: string; value: string[] }[] = [];
    const { rerender } = renderHook(
      ({ preloaded, which }: { preloaded: Preloaded<typeof api.messages.list>; which: string }) => {
        const value = usePreloadedQuery(preloaded);
        renders.push({ which, value });
        return value;
      },
      { wrapper, initialProps: { preloaded: a, which: "a" } },
    );
    expect(renders[0]).toEqual({ which: "a", value: ["pa"] });
    await act(async () => {
      await new Promise((resolve) => setTimeout(resolve, 100));
    });
    rerender({ preloaded: b, which: "b" });
    await waitFor(() => expect(renders[renders.length - 1]!.value).toEqual(["pb"]));
    await other.mutation(api.messages.send, { channel: "pre-b", body: "pb2" });
    await waitFor(() => expect(renders[renders.length - 1]!.value).toEqual(["pb", "pb2"]));
    for (const r of renders) expect(r.value.every((body) => body.startsWith(`p${r.which}`))).toBe(true);
  });
});

describe("useQuery never goes back to an older result", () => {
  it("a counter incremented concurrently (some optimistically, some by another client) never decreases on screen", async () => {
    const name = "monotonic";
    const seen: number[] = [];
    const { result } = renderHook(
      () => {
        const count = useQuery(api.counters.get, { name });
        if (count !== undefined) seen.push(count);
        return {
          count,
          increment: useMutation(api.counters.increment).withOptimisticUpdate((store, args) => {
            const current = store.getQuery(api.counters.get, args);
            if (current !== undefined) store.setQuery(api.counters.get, args, current + 1);
          }),
        };
      },
      { wrapper: ({ children }) => <StrictMode>{wrapper({ children })}</StrictMode> },
    );
    await waitFor(() => expect(result.current.count).toBe(0));
    const random = rng(42);
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 30; i++) {
      if (random() < 0.5) act(() => void calls.push(result.current.increment({ name })));
      else calls.push(other.mutation(api.counters.increment, { name }));
      if (random() < 0.3) await act(() => new Promise((resolve) => setTimeout(resolve, 5)));
    }
    await act(() => Promise.all(calls));
    await waitFor(() => expect(result.current.count).toBe(30));
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThanOrEqual(seen[i - 1]!);
  });
});
