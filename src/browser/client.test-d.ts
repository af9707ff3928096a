/**
 * Type tests of the public generics of `walkin/browser`: what a typed `api` reference gives
 * `watchQuery`, `query`, `mutation` (and its optimistic update) and `action`.
 */
import { describe, expectTypeOf, test } from "vitest";
import type { FunctionReference } from "../server/api.js";
import type { WalkinError } from "../values/errors.js";
import { WalkinClient, type ConnectionState, type OptimisticLocalStore, type Watch } from "./index.js";

declare const client: WalkinClient;
declare const list: FunctionReference<"query", "public", { channel: string }, string[]>;
declare const count: FunctionReference<"query", "public", {}, number>;
declare const send: FunctionReference<"mutation", "public", { channel: string; body: string }, bigint>;
declare const summarize: FunctionReference<"action", "public", { text: string }, { summary: string }>;

describe("WalkinClient types", () => {
  test("watchQuery and query carry the function's return type", () => {
    const watch = client.watchQuery(list, { channel: "a" });
    expectTypeOf(watch).toEqualTypeOf<Watch<string[]>>();
    expectTypeOf(watch.localQueryResult()).toEqualTypeOf<string[] | undefined>();
    expectTypeOf(watch.onUpdate(() => {})).toEqualTypeOf<() => void>();
    expectTypeOf(client.query(count)).toEqualTypeOf<Promise<number>>();
    // @ts-expect-error wrong args
    client.watchQuery(list, { channel: 1 });
    // @ts-expect-error a mutation is not a query
    client.watchQuery(send, { channel: "a", body: "b" });
  });

  test("mutation and action results, and typed optimistic updates", () => {
    expectTypeOf(client.mutation(send, { channel: "a", body: "b" })).toEqualTypeOf<Promise<bigint>>();
    client.mutation(send, { channel: "a", body: "b" }, {
      optimisticUpdate: (store, args) => {
        expectTypeOf(store).toEqualTypeOf<OptimisticLocalStore>();
        expectTypeOf(args).toEqualTypeOf<{ channel: string; body: string }>();
        const current = store.getQuery(list, { channel: args.channel });
        expectTypeOf(current).toEqualTypeOf<string[] | undefined>();
        store.setQuery(list, { channel: args.channel }, [...(current ?? []), args.body]);
        // @ts-expect-error the value must be the query's return type
        store.setQuery(list, { channel: args.channel }, 5);
        expectTypeOf(store.getAllQueries(list)).toEqualTypeOf<{ args: { channel: string }; value: string[] | undefined }[]>();
      },
    });
    expectTypeOf(client.action(summarize, { text: "t" })).toEqualTypeOf<Promise<{ summary: string }>>();
    // @ts-expect-error a query is not an action
    client.action(list, { channel: "a" });
  });

  test("connection state and auth", () => {
    expectTypeOf(client.connectionState()).toEqualTypeOf<ConnectionState>();
    expectTypeOf(client.connectionState().isWebSocketConnected).toEqualTypeOf<boolean>();
    expectTypeOf(client.subscribeToConnectionState(() => {})).toEqualTypeOf<() => void>();
    client.setAuth(async ({ forceRefreshToken }) => (forceRefreshToken ? "fresh" : null), (ok) => expectTypeOf(ok).toEqualTypeOf<boolean>());
    expectTypeOf(client.close()).toEqualTypeOf<Promise<void>>();
  });

  test("errors are WalkinErrors", () => {
    expectTypeOf<WalkinError["code"]>().toMatchTypeOf<string>();
  });
});
