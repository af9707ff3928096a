// @vitest-environment jsdom
/**
 * Review 5 of the React hooks against a real server: args rebuilt with their keys in another
 * order (`{ ...filters, channel }` after a filter changed) are the same args, as in Convex,
 * whose client encodes args with sorted keys.
 */
import { act, renderHook, waitFor } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { anyApi, defineSchema, defineTable, mutation, paginationOptsValidator, query, type ApiFromModules } from "../server/index.js";
import { startLiveBackend } from "../testing/liveBackend.js";
import { v } from "../values/index.js";
import { liveBackendPerFile, trackSubscriptions } from "./fixtures/react.js";
import { useMutation, usePaginatedQuery, useQuery } from "./index.js";

const schema = defineSchema({
  items: defineTable({ list: v.string(), n: v.number() }).index("by_list_n", ["list", "n"]),
});
const itemsModules = {
  items: {
    page: query({
      args: { list: v.string(), min: v.number(), paginationOpts: paginationOptsValidator },
      handler: async (ctx, { list, min, paginationOpts }) => {
        const result = await ctx.db
          .query("items")
          .withIndex("by_list_n", (q) => q.eq("list", list).gte("n", min))
          .paginate(paginationOpts);
        return { ...result, page: result.page.map((doc) => doc.n) };
      },
    }),
    all: query({
      args: { list: v.string(), min: v.number() },
      handler: async (ctx, { list, min }) =>
        (await ctx.db.query("items").withIndex("by_list_n", (q) => q.eq("list", list).gte("n", min)).collect()).map((doc) => doc.n),
    }),
    insert: mutation({
      args: { list: v.string(), n: v.number() },
      handler: async (ctx, args) => {
        await ctx.db.insert("items", args);
      },
    }),
  },
};
const items = (anyApi as unknown as ApiFromModules<typeof itemsModules>).items;

const live = liveBackendPerFile(() => startLiveBackend(schema, itemsModules));
const { wrapper } = live;

async function seed(list: string, count: number) {
  for (let n = 1; n <= count; n++) await live.other.mutation(items.insert, { list, n });
}

describe("args whose keys come in another order are the same args", () => {
  it("usePaginatedQuery keeps its loaded pages instead of starting over", async () => {
    await seed("paged", 5);
    const { result, rerender } = renderHook(
      ({ args }: { args: { list: string; min: number } }) => usePaginatedQuery(items.page, args, { initialNumItems: 2 }),
      { wrapper, initialProps: { args: { list: "paged", min: 0 } } },
    );
    await waitFor(() => expect(result.current.status).toBe("CanLoadMore"));
    act(() => result.current.loadMore(2));
    await waitFor(() => expect(result.current.results).toEqual([1, 2, 3, 4]));

    rerender({ args: { min: 0, list: "paged" } });
    expect(result.current).toMatchObject({ results: [1, 2, 3, 4], status: "CanLoadMore" });
  });

  it("useQuery keeps its result and its subscription (no refetch, no flash of loading)", async () => {
    await seed("plain", 2);
    const subscriptions = trackSubscriptions(live.client);
    const { result, rerender } = renderHook(({ args }: { args: { list: string; min: number } }) => useQuery(items.all, args), {
      wrapper,
      initialProps: { args: { list: "plain", min: 0 } },
    });
    await waitFor(() => expect(result.current).toEqual([1, 2]));

    rerender({ args: { min: 0, list: "plain" } });
    expect(result.current).toEqual([1, 2]);
    await act(async () => {});
    expect(subscriptions.dropped).toEqual([]);
    subscriptions.spy.mockRestore();
  });

  it("an optimistic update that writes the args in another order than useQuery shows at once", async () => {
    const { result } = renderHook(
      () => ({
        list: useQuery(items.all, { list: "optimistic", min: 0 }),
        insert: useMutation(items.insert).withOptimisticUpdate((store, { list, n }) => {
          const current = store.getQuery(items.all, { min: 0, list });
          if (current !== undefined) store.setQuery(items.all, { min: 0, list }, [...current, n]);
        }),
      }),
      { wrapper },
    );
    await waitFor(() => expect(result.current.list).toEqual([]));
    let sent!: Promise<null>;
    act(() => {
      sent = result.current.insert({ list: "optimistic", n: 7 });
    });
    expect(result.current.list).toEqual([7]);
    await act(() => sent);
    expect(result.current.list).toEqual([7]);
  });
});
