// @vitest-environment jsdom
/**
 * Full-text search end to end: a live search watched by the browser client over a real
 * WebSocket server, following another client's inserts, edits and deletes; and the pages of a
 * search held by `usePaginatedQuery`, which must stay one consistent list (nothing missing,
 * nothing twice) while documents are inserted and deleted between and within its pages.
 */
import { act, cleanup, renderHook, waitFor } from "@testing-library/react";
import { createElement, type ReactNode } from "react";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { anyApi, defineSchema, defineTable, mutation, paginationOptsValidator, query, type ApiFromModules } from "../server/index.js";
import { startLiveBackend, type LiveBackend } from "../testing/liveBackend.js";
import { v } from "../values/index.js";
import { usePaginatedQuery, WalkinProvider } from "../react/index.js";
import type { WalkinClient } from "./index.js";
import { until } from "./fixtures/liveClients.js";

const schema = defineSchema({
  messages: defineTable({ body: v.string(), channel: v.string() })
    .searchIndex("search_body", { searchField: "body", filterFields: ["channel"] }),
});

const messages = {
  search: query({
    args: { text: v.string(), channel: v.optional(v.string()) },
    handler: async (ctx, { text, channel }) =>
      (await ctx.db.query("messages")
        .withSearchIndex("search_body", (q) => (channel === undefined ? q.search("body", text) : q.search("body", text).eq("channel", channel)))
        .collect()).map((m) => m.body),
  }),
  page: query({
    args: { text: v.string(), channel: v.string(), paginationOpts: paginationOptsValidator },
    handler: async (ctx, { text, channel, paginationOpts }) => {
      const result = await ctx.db.query("messages")
        .withSearchIndex("search_body", (q) => q.search("body", text).eq("channel", channel))
        .paginate(paginationOpts);
      return { ...result, page: result.page.map((m) => m.body) };
    },
  }),
  send: mutation({ args: { body: v.string(), channel: v.string() }, handler: (ctx, m) => ctx.db.insert("messages", m) }),
  edit: mutation({
    args: { id: v.id("messages"), body: v.optional(v.string()), channel: v.optional(v.string()) },
    handler: (ctx, { id, ...fields }) => ctx.db.patch(id, fields),
  }),
  remove: mutation({ args: { id: v.id("messages") }, handler: (ctx, { id }) => ctx.db.delete(id) }),
};
const api = anyApi as unknown as ApiFromModules<{ messages: typeof messages }>;

let backend: LiveBackend;
let watcher: WalkinClient;
let writer: WalkinClient;
beforeAll(async () => {
  backend = await startLiveBackend(schema, { messages });
  watcher = backend.client();
  writer = backend.client();
});
afterEach(cleanup);
afterAll(() => backend.close());

const sameSet = (expected: string[]) => (value: string[] | undefined) =>
  value !== undefined && value.length === expected.length && [...value].sort().join("\n") === [...expected].sort().join("\n");

describe("a live search watched by the browser client", () => {
  it("follows another client's inserts, edits, channel moves and deletes", async () => {
    const channel = "live-watch";
    const watch = watcher.watchQuery(api.messages.search, { text: "deploy", channel });
    const unwatched = watch.onUpdate(() => {});
    try {
      await until(watch, sameSet([]));
      const a = await writer.mutation(api.messages.send, { body: "Deploy started", channel });
      await until(watch, sameSet(["Deploy started"]));
      // A message elsewhere, and one without the word, change nothing the watch shows.
      await writer.mutation(api.messages.send, { body: "deploy elsewhere", channel: "other" });
      const b = await writer.mutation(api.messages.send, { body: "lunch?", channel });
      // Typed as the prefix: "deploys" and "deployment" are found too.
      await writer.mutation(api.messages.edit, { id: b, body: "deployment done" });
      await until(watch, sameSet(["Deploy started", "deployment done"]));
      await writer.mutation(api.messages.edit, { id: a, body: "rollback" });
      await until(watch, sameSet(["deployment done"]));
      await writer.mutation(api.messages.edit, { id: b, channel: "other" });
      await until(watch, sameSet([]));
      await writer.mutation(api.messages.edit, { id: b, channel });
      await until(watch, sameSet(["deployment done"]));
      await writer.mutation(api.messages.remove, { id: b });
      expect(await until(watch, sameSet([]))).toEqual([]);
      // The one-shot query over the same connection agrees with the watch.
      expect(await watcher.query(api.messages.search, { text: "deploy", channel })).toEqual([]);
    } finally {
      unwatched();
    }
  });
});

describe("usePaginatedQuery over a live search", () => {
  const wrapper = ({ children }: { children: ReactNode }) => createElement(WalkinProvider, { client: watcher }, children);

  it("keeps its pages one consistent ranked list while documents are inserted and deleted", async () => {
    const channel = "live-pages";
    const ids: string[] = [];
    for (const body of ["kiwi one", "kiwi kiwi two", "kiwi three", "kiwi four", "kiwi five"]) {
      ids.push(await writer.mutation(api.messages.send, { body, channel }));
    }
    /** The whole ranked result now, from the server. */
    const all = () => writer.query(api.messages.search, { text: "kiwi", channel });
    // Every list the hook renders: one with a document twice would show pages from two snapshots.
    const rendered: string[][] = [];
    const { result } = renderHook(() => {
      const pages = usePaginatedQuery(api.messages.page, { text: "kiwi", channel }, { initialNumItems: 2 });
      rendered.push(pages.results);
      return pages;
    }, { wrapper });
    await waitFor(() => expect(result.current.status).toBe("CanLoadMore"));
    expect(result.current.results).toEqual((await all()).slice(0, 2));
    act(() => result.current.loadMore(2));
    await waitFor(() => expect(result.current.results).toHaveLength(4));
    expect(result.current.results).toEqual((await all()).slice(0, 4));

    // Inserted between the pages' ranks (the most relevant first, then one that ranks low),
    // and in another channel: the loaded list is always the first 4 of the ranked result.
    const writes: (() => Promise<unknown>)[] = [
      () => writer.mutation(api.messages.send, { body: "kiwi kiwi kiwi", channel }),
      () => writer.mutation(api.messages.send, { body: `kiwi ${"long ".repeat(30)}`, channel }),
      () => writer.mutation(api.messages.send, { body: "kiwi kiwi kiwi kiwi", channel: "elsewhere" }),
      () => writer.mutation(api.messages.remove, { id: ids[1] as never }),
      () => writer.mutation(api.messages.edit, { id: ids[0] as never, body: "no fruit" }),
    ];
    for (const write of writes) {
      await write();
      const expected = (await all()).slice(0, 4);
      await waitFor(() => expect(result.current.results).toEqual(expected));
    }
    expect(rendered.filter((list) => new Set(list).size !== list.length)).toEqual([]);
    act(() => result.current.loadMore(10));
    await waitFor(() => expect(result.current.status).toBe("Exhausted"));
    expect(result.current.results).toEqual(await all());
  });
});
