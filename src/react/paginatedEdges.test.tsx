// @vitest-environment jsdom
/**
 * Paginated lists as a Convex React app expects them (each Convex doc page cited above its
 * test): the optimistic helpers for paginated queries, a failed optimistic item gone while more
 * is loading, and a list that starts over when its cursors stop being valid. Each failed before
 * its fix (found in a review). Real server on loopback.
 */
import { act, cleanup, render, renderHook, screen, waitFor } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import type { OptimisticLocalStore } from "../browser/index.js";
import { anyApi, defineSchema, defineTable, mutation, paginationOptsValidator, query, type ApiFromModules } from "../server/index.js";
import { startLiveBackend } from "../testing/liveBackend.js";
import { WebSocket } from "ws";
import { WalkinClient as Client } from "../browser/index.js";
import { WalkinError, v } from "../values/index.js";
import { ErrorBoundary, liveBackendPerFile } from "./fixtures/react.js";
import * as walkinReact from "./index.js";
import { WalkinProvider, useMutation, usePaginatedQuery } from "./index.js";

const schema = defineSchema({
  msgs: defineTable({ ch: v.string(), body: v.string() }).index("by_ch", ["ch"]).index("by_ch_body", ["ch", "body"]),
  settings: defineTable({ ch: v.string(), sortByBody: v.boolean() }).index("by_ch", ["ch"]),
});
const modules = {
  m: {
    /** Newest first: a new message lands at the top of the first page. */
    page: query({
      args: { ch: v.string(), paginationOpts: paginationOptsValidator },
      handler: async (ctx, { ch, paginationOpts }) => {
        const r = await ctx.db.query("msgs").withIndex("by_ch", (q) => q.eq("ch", ch)).order("desc").paginate(paginationOpts);
        return { ...r, page: r.page.map((d) => d.body) };
      },
    }),
    /** The sort order is a setting stored in the database (a user's "sort by" preference). */
    sorted: query({
      args: { ch: v.string(), paginationOpts: paginationOptsValidator },
      handler: async (ctx, { ch, paginationOpts }) => {
        const setting = await ctx.db.query("settings").withIndex("by_ch", (q) => q.eq("ch", ch)).first();
        const r = setting?.sortByBody
          ? await ctx.db.query("msgs").withIndex("by_ch_body", (q) => q.eq("ch", ch)).paginate(paginationOpts)
          : await ctx.db.query("msgs").withIndex("by_ch", (q) => q.eq("ch", ch)).order("desc").paginate(paginationOpts);
        return { ...r, page: r.page.map((d) => d.body) };
      },
    }),
    send: mutation({
      args: { ch: v.string(), body: v.string() },
      handler: async (ctx, args) => {
        await ctx.db.insert("msgs", args);
      },
    }),
    refuse: mutation({
      args: { ch: v.string(), body: v.string() },
      handler: async () => {
        throw new WalkinError("refused");
      },
    }),
    sortByBody: mutation({
      args: { ch: v.string() },
      handler: async (ctx, { ch }) => {
        await ctx.db.insert("settings", { ch, sortByBody: true });
      },
    }),
  },
};
const api = (anyApi as unknown as ApiFromModules<typeof modules>).m;

const live = liveBackendPerFile(() => startLiveBackend(schema, modules));
const { wrapper } = live;

async function seed(ch: string, bodies: string[]) {
  for (const body of bodies) await live.other.mutation(api.send, { ch, body });
}

// https://docs.convex.dev/database/pagination#optimistic-updates-with-pagination (and
// https://docs.convex.dev/api/modules/react#optimisticallyupdatevalueinpaginatedquery, #insertattop,
// #insertatbottomifloaded, #insertatposition; exported by convex/react's use_paginated_query since
// convex 1.2x): `convex/react` exports helpers that apply an optimistic
// update to every loaded page of a usePaginatedQuery list. An app that imports them from
// "convex/react" fails to load once the path says "walkin/react".
describe("Convex's optimistic-update helpers for paginated queries", () => {
  it("walkin/react exports optimisticallyUpdateValueInPaginatedQuery, insertAtTop, insertAtBottomIfLoaded and insertAtPosition, and insertAtTop shows the item at once", async () => {
    const helpers = walkinReact as unknown as Record<string, unknown>;
    for (const name of ["optimisticallyUpdateValueInPaginatedQuery", "insertAtTop", "insertAtBottomIfLoaded", "insertAtPosition"]) {
      expect(typeof helpers[name], `walkin/react exports ${name}`).toBe("function");
    }
    type InsertAtTop = (options: { paginatedQuery: unknown; argsToMatch?: Record<string, unknown>; localQueryStore: OptimisticLocalStore; item: unknown }) => void;
    const insertAtTop = helpers.insertAtTop as InsertAtTop;
    await seed("helpers", ["h1", "h2", "h3"]);
    const { result } = renderHook(
      () => ({
        list: usePaginatedQuery(api.page, { ch: "helpers" }, { initialNumItems: 2 }),
        send: useMutation(api.send).withOptimisticUpdate((localQueryStore, { ch, body }) =>
          insertAtTop({ paginatedQuery: api.page, argsToMatch: { ch }, localQueryStore, item: `${body} (sending)` }),
        ),
      }),
      { wrapper },
    );
    await waitFor(() => expect(result.current.list.results).toEqual(["h3", "h2"]));
    let sent!: Promise<unknown>;
    act(() => {
      sent = result.current.send({ ch: "helpers", body: "h4" });
    });
    expect(result.current.list.results).toEqual(["h4 (sending)", "h3", "h2"]);
    await act(() => sent);
    expect(result.current.list.results).toEqual(["h4", "h3"]); // the first page is 2 long, as before

  });
});

// https://docs.convex.dev/api/modules/react#usepaginatedquery : "If the query reference or
// arguments change, the pagination state will be reset to the first page. Similarly, if any of
// the pages result in an InvalidCursor error or an error associated with too much data, the
// pagination state will also reset to the first page."
describe("usePaginatedQuery when a page's cursor stops being valid", () => {
  it("starts over from the first page instead of throwing into the error boundary", async () => {
    await seed("sort", ["c", "a", "d", "b"]);
    const consoleError = vi.spyOn(console, "error").mockImplementation(() => {});
    let latest: { results: unknown[]; status: string; loadMore: (n: number) => void } | undefined;
    function List() {
      latest = usePaginatedQuery(api.sorted, { ch: "sort" }, { initialNumItems: 2 });
      return <p>list: {latest.results.join(",")} ({latest.status})</p>;
    }
    try {
      render(<ErrorBoundary><List /></ErrorBoundary>, { wrapper });
      await screen.findByText("list: b,d (CanLoadMore)");
      act(() => latest!.loadMore(1));
      await screen.findByText("list: b,d,a (CanLoadMore)");
      // The user switches the list to alphabetical order: the query now reads another index, and
      // the cursors of the pages loaded so far belong to the old one.
      await live.other.mutation(api.sortByBody, { ch: "sort" });
      await screen.findByText(/^(list: a,b \(CanLoadMore\)|caught: .*)$/);
      expect(screen.queryByText(/^caught:/)?.textContent).toBeUndefined();
      expect(screen.getByText(/^list:/).textContent).toBe("list: a,b (CanLoadMore)");
    } finally {
      consoleError.mockRestore();
    }
  });
});

/** A `ws` socket that holds back the client's query-set changes while `held.on` is set. */
const held: { on: boolean; queue: (() => void)[] } = { on: false, queue: [] };
class HoldingWebSocket extends WebSocket {
  constructor(url: string) {
    super(url);
    const send = this.send.bind(this) as (data: string) => void;
    Object.defineProperty(this, "send", {
      configurable: true,
      value: (data: string) => {
        if (held.on && (JSON.parse(data) as { type: string }).type === "ModifyQuerySet") held.queue.push(() => send(data));
        else send(data);
      },
    });
  }
}

// https://docs.convex.dev/client/react/optimistic-updates : an optimistic update is rolled back
// ("the optimistic update is reverted") when the mutation fails. Here the mutation fails while
// usePaginatedQuery is loading more (its first page re-subscribed with an end cursor), and the
// list keeps showing the failed message.
describe("usePaginatedQuery: an optimistic update rolled back while more is loading", () => {
  it("no longer shows the failed item once the mutation has failed", async () => {
    await seed("rollback", ["r1", "r2", "r3"]);
    const own = new Client(live.backend.url, { webSocketConstructor: HoldingWebSocket as never, logger: false });
    try {
      const { result } = renderHook(
        () => ({
          list: usePaginatedQuery(api.page, { ch: "rollback" }, { initialNumItems: 2 }),
          send: useMutation(api.refuse).withOptimisticUpdate((store, { ch, body }) => {
            for (const { args, value } of store.getAllQueries(api.page)) {
              if (args.ch !== ch || args.paginationOpts.cursor !== null || value === undefined) continue;
              store.setQuery(api.page, args, { ...value, page: [body, ...value.page] });
            }
          }),
        }),
        { wrapper: ({ children }) => <WalkinProvider client={own}>{children}</WalkinProvider> },
      );
      await waitFor(() => expect(result.current.list.results).toEqual(["r3", "r2"]));
      held.on = true; // the next page (and the first page's pinned query) will take a while
      let sent!: Promise<unknown>;
      act(() => {
        sent = result.current.send({ ch: "rollback", body: "doomed" });
      });
      expect(result.current.list.results).toEqual(["doomed", "r3", "r2"]);
      act(() => result.current.list.loadMore(1));
      await act(() => expect(sent).rejects.toMatchObject({ message: "refused" }));
      // The mutation failed: its optimistic item must be gone, even though the next page is still loading.
      expect(result.current.list.status).toBe("LoadingMore");
      expect(result.current.list.results).toEqual(["r3", "r2"]);
      held.on = false;
      for (const release of held.queue.splice(0)) release();
      await waitFor(() => expect(result.current.list.results).toEqual(["r3", "r2", "r1"]));
    } finally {
      held.on = false;
      for (const release of held.queue.splice(0)) release();
      cleanup();
      await own.close();
    }
  });
});
