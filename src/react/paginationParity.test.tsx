// @vitest-environment jsdom
/**
 * usePaginatedQuery when a page reads too much data. Convex documents for its hook
 * (https://docs.convex.dev/api/modules/react#usepaginatedquery): "if any of the pages result in
 * an InvalidCursor error or an error associated with too much data, the pagination state will
 * also reset to the first page." A pinned page keeps its bounds whatever is inserted into them,
 * so one that receives many large documents grows until it reads more than a function may. Real
 * server on loopback.
 */
import { act, render, screen } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { anyApi, defineSchema, defineTable, mutation, paginationOptsValidator, query, type ApiFromModules } from "../server/index.js";
import { startLiveBackend } from "../testing/liveBackend.js";
import { v } from "../values/index.js";
import { ErrorBoundary, liveBackendPerFile } from "./fixtures/react.js";
import { usePaginatedQuery } from "./index.js";

/** Just under the 1 MiB a document may hold: 18 of them are more than the 16 MiB a function may read. */
const BLOB_CHARS = 950_000;

const schema = defineSchema({
  posts: defineTable({ ch: v.string(), label: v.string(), blob: v.optional(v.string()) }).index("by_ch", ["ch"]),
});
const modules = {
  m: {
    /** Newest first: a new post lands in the first page. Returns labels only, not the blobs. */
    page: query({
      args: { ch: v.string(), paginationOpts: paginationOptsValidator },
      handler: async (ctx, { ch, paginationOpts }) => {
        const r = await ctx.db.query("posts").withIndex("by_ch", (q) => q.eq("ch", ch)).order("desc").paginate(paginationOpts);
        return { ...r, page: r.page.map((d) => d.label) };
      },
    }),
    send: mutation({
      args: { ch: v.string(), label: v.string() },
      handler: async (ctx, args) => {
        await ctx.db.insert("posts", args);
      },
    }),
    /** `count` posts of about 1 MB each, labelled big<from>, big<from + 1>, … */
    sendBig: mutation({
      args: { ch: v.string(), from: v.number(), count: v.number() },
      handler: async (ctx, { ch, from, count }) => {
        const blob = "x".repeat(BLOB_CHARS);
        for (let i = 0; i < count; i++) await ctx.db.insert("posts", { ch, label: `big${from + i}`, blob });
      },
    }),
  },
};
const api = (anyApi as unknown as ApiFromModules<typeof modules>).m;

const live = liveBackendPerFile(() => startLiveBackend(schema, modules));
const { wrapper } = live;

describe("usePaginatedQuery when a loaded page reads too much data", () => {
  it("starts over from the first page instead of throwing into the error boundary", async () => {
    for (const label of ["s1", "s2"]) await live.other.mutation(api.send, { ch: "big", label });
    const consoleError = vi.spyOn(console, "error").mockImplementation(() => {});
    let latest: { results: unknown[]; status: string; loadMore: (n: number) => void } | undefined;
    function List() {
      latest = usePaginatedQuery(api.page, { ch: "big" }, { initialNumItems: 1 });
      return <p>list: {latest.results.join(",")} ({latest.status})</p>;
    }
    try {
      render(<ErrorBoundary><List /></ErrorBoundary>, { wrapper });
      await screen.findByText("list: s2 (CanLoadMore)");
      act(() => latest!.loadMore(1));
      await screen.findByText("list: s2,s1 (CanLoadMore)");
      // The first page is now pinned to end at s2; 20 large posts land in it, two commits of 10
      // (a mutation may write 16 MiB). After the second, it reads some 19 MB: over the limit.
      await live.other.mutation(api.sendBig, { ch: "big", from: 1, count: 10 });
      await screen.findByText(/^list: big10,.*,big1,s2,s1 \(CanLoadMore\)$/);
      await live.other.mutation(api.sendBig, { ch: "big", from: 11, count: 10 });
      await screen.findByText(/^(list: big20 \(CanLoadMore\)|caught: .*)$/);
      expect(screen.queryByText(/^caught:/)?.textContent).toBeUndefined();
      expect(screen.getByText(/^list:/).textContent).toBe("list: big20 (CanLoadMore)");
    } finally {
      consoleError.mockRestore();
    }
  });
});
