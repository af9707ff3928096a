// @vitest-environment jsdom
/**
 * Review 6 of the React layer: `insertAtPosition` puts an item whose sort key ties with loaded
 * items ahead of them, as Convex's does; `ConvexReactClient` has Convex's `url`, `logger` and
 * `prewarmQuery`; and paths written with a module's `.js` extension work in hooks and in
 * `fetchQuery`/`preloadQuery`.
 */
import { renderHook, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { closeScriptedClients, openScriptedClient, scriptedApi, sv } from "../browser/fixtures/scriptedSocket.js";
import { tick } from "../browser/fixtures/promises.js";
import type { ClientMessage } from "../transport/protocol.js";
import { defineSchema, defineTable, makeFunctionReference, mutation, query, type PaginationOptions, type PaginationResult } from "../server/index.js";
import { startLiveBackend } from "../testing/liveBackend.js";
import { v } from "../values/index.js";
import { liveBackendPerFile } from "./fixtures/react.js";
import { ConvexReactClient, fetchQuery, insertAtPosition, preloadQuery, useQuery } from "./index.js";
import { preloadedQueryResult } from "./ssr.js";

// ------------------------------------------------------------------ insertAtPosition

interface Row {
  id: string;
  n: number;
}
const page = makeFunctionReference<"query", { list: string; paginationOpts: PaginationOptions }, PaginationResult<Row>>("items:page");

afterEach(closeScriptedClients);

/**
 * A client showing one loaded first page of `items:page` for list "a" (not loaded to its end),
 * and what that page shows once a mutation inserts `item` with `insertAtPosition`.
 */
async function pageAfterInsert(rows: Row[], item: Row, sortOrder: "asc" | "desc") {
  const { client, socket } = await openScriptedClient();
  const watch = client.watchQuery(page, { list: "a", paginationOpts: { cursor: null, numItems: 10 } });
  watch.onUpdate(() => {});
  await tick();
  const modify = socket.sent.find((m): m is Extract<ClientMessage, { type: "ModifyQuerySet" }> => m.type === "ModifyQuerySet")!;
  socket.receive({
    type: "Transition",
    startVersion: sv(modify.baseVersion, 0, 0),
    endVersion: sv(modify.newVersion, 0, 1),
    modifications: [{ type: "QueryUpdated", queryId: 0 as never, value: { page: rows as never, isDone: false, continueCursor: "next" } }],
  });
  expect(watch.localQueryResult()?.page.map((row) => row.id)).toEqual(rows.map((row) => row.id));
  void client
    .mutation(scriptedApi.m.send, { x: 1 }, {
      optimisticUpdate: (localQueryStore) =>
        insertAtPosition({ paginatedQuery: page, argsToMatch: { list: "a" }, localQueryStore, item, sortOrder, sortKeyFromItem: (row: Row) => row.n }),
    })
    .catch(() => {});
  return watch.localQueryResult()?.page.map((row) => row.id);
}

describe("insertAtPosition with sort keys equal to the new item's (as Convex places it)", () => {
  const row = (id: string, n: number): Row => ({ id, n });

  it("ascending: the new item goes ahead of the items it ties with", async () => {
    const shown = await pageAfterInsert([row("a", 1), row("b", 2), row("c", 2), row("d", 3)], row("new", 2), "asc");
    expect(shown).toEqual(["a", "new", "b", "c", "d"]);
  });

  it("descending: the same", async () => {
    const shown = await pageAfterInsert([row("a", 3), row("b", 2), row("c", 2), row("d", 1)], row("new", 2), "desc");
    expect(shown).toEqual(["a", "new", "b", "c", "d"]);
  });

  it("a tie with the first item puts the new one at the top", async () => {
    const shown = await pageAfterInsert([row("a", 1), row("b", 1), row("c", 2)], row("new", 1), "asc");
    expect(shown).toEqual(["new", "a", "b", "c"]);
  });
});

// ------------------------------------------------------------------ live backend

const schema = defineSchema({ items: defineTable({ n: v.number() }) });
const modules = {
  "lib/items": {
    count: query({ args: {}, handler: async (ctx) => (await ctx.db.query("items").collect()).length }),
    add: mutation({
      args: { n: v.number() },
      handler: async (ctx, args) => {
        await ctx.db.insert("items", args);
      },
    }),
  },
};
const count = makeFunctionReference<"query", Record<string, never>, number>("lib/items:count");
const countWithExtension = makeFunctionReference<"query", Record<string, never>, number>("lib/items.js:count");

const live = liveBackendPerFile(() => startLiveBackend(schema, modules));

describe("ConvexReactClient has Convex's url, logger and prewarmQuery", () => {
  it("url and logger are what it was created with", async () => {
    const logger = { log() {}, warn() {} };
    const client = new ConvexReactClient(live.backend.url, { skipConnect: true, logger });
    expect(client.url).toBe(live.backend.url);
    expect(client.logger).toBe(logger);
    await client.close();
  });

  it("a useQuery mounted after prewarmQuery shows the result in its first render", async () => {
    live.client.prewarmQuery({ query: count, args: {} });
    const watch = live.client.watchQuery(count, {});
    await vi.waitFor(() => expect(watch.localQueryResult()).toBe(0));
    const renders: (number | undefined)[] = [];
    renderHook(
      () => {
        const value = useQuery(count, {});
        renders.push(value);
        return value;
      },
      { wrapper: live.wrapper },
    );
    expect(renders[0]).toBe(0);
  });
});

describe('paths with a module\'s ".js" extension', () => {
  it("useQuery reads the same query as the path without it", async () => {
    await live.other.mutation(makeFunctionReference<"mutation">("lib/items:add"), { n: 1 });
    const { result } = renderHook(() => useQuery(countWithExtension, {}), { wrapper: live.wrapper });
    await waitFor(() => expect(result.current).toBeGreaterThanOrEqual(1));
  });

  it("fetchQuery and preloadQuery call the function", async () => {
    const total = await fetchQuery(count, {}, { url: live.backend.url });
    expect(await fetchQuery(countWithExtension, {}, { url: live.backend.url })).toBe(total);
    expect(preloadedQueryResult(await preloadQuery(countWithExtension, {}, { url: live.backend.url }))).toBe(total);
  });
});
