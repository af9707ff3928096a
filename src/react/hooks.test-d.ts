/**
 * Type tests of the React hooks: results and args follow the function reference.
 * The hook calls sit in functions that are type-checked, never run.
 */
import { describe, expectTypeOf, test } from "vitest";
import type { FunctionReference } from "../server/api.js";
import type { PaginationOptions, PaginationResult } from "../server/database.js";
import {
  fetchQuery,
  preloadQuery,
  useAction,
  useMutation,
  usePaginatedQuery,
  usePreloadedQuery,
  useQuery,
  type PaginationStatus,
  type Preloaded,
} from "./index.js";

interface Message {
  _id: string;
  body: string;
}
declare const list: FunctionReference<"query", "public", { channel: string }, Message[]>;
declare const count: FunctionReference<"query", "public", {}, number>;
declare const search: FunctionReference<"query", "public", { text?: string }, string[]>;
declare const send: FunctionReference<"mutation", "public", { body: string }, string>;
declare const reset: FunctionReference<"mutation", "public", {}, null>;
declare const summarize: FunctionReference<"action", "public", { id: string }, string>;
declare const page: FunctionReference<
  "query",
  "public",
  { channel: string; paginationOpts: PaginationOptions },
  PaginationResult<Message>
>;
declare const notPaginated: FunctionReference<"query", "public", { channel: string }, Message[]>;

describe("useQuery", () => {
  test("returns the function's return type or undefined", () => {
    () => {
      expectTypeOf(useQuery(list, { channel: "a" })).toEqualTypeOf<Message[] | undefined>();
      expectTypeOf(useQuery(count)).toEqualTypeOf<number | undefined>();
    };
  });

  test("args are required unless every arg is optional", () => {
    () => {
      useQuery(count);
      useQuery(count, {});
      useQuery(search);
      useQuery(search, { text: "x" });
      // @ts-expect-error list needs { channel }
      useQuery(list);
      // @ts-expect-error channel must be a string
      useQuery(list, { channel: 1 });
      // @ts-expect-error unknown arg
      useQuery(list, { channel: "a", extra: true });
    };
  });

  test('"skip" stands in for args', () => {
    () => {
      expectTypeOf(useQuery(list, "skip")).toEqualTypeOf<Message[] | undefined>();
      useQuery(count, "skip");
      // @ts-expect-error only the literal "skip"
      useQuery(list, "skipped");
    };
  });

  test("only queries are accepted", () => {
    () => {
      // @ts-expect-error a mutation is not a query
      useQuery(send, { body: "x" });
    };
  });
});

describe("useMutation and useAction", () => {
  test("call like the function, and withOptimisticUpdate keeps the signature", () => {
    () => {
      const mutate = useMutation(send);
      expectTypeOf(mutate({ body: "x" })).toEqualTypeOf<Promise<string>>();
      // @ts-expect-error body is required
      void mutate();
      expectTypeOf(useMutation(reset)()).toEqualTypeOf<Promise<null>>();
      const optimistic = mutate.withOptimisticUpdate((_store, args) => {
        expectTypeOf(args).toEqualTypeOf<{ body: string }>();
      });
      expectTypeOf(optimistic).toEqualTypeOf(mutate);
      const run = useAction(summarize);
      expectTypeOf(run({ id: "1" })).toEqualTypeOf<Promise<string>>();
      // @ts-expect-error an action is not a mutation
      useMutation(summarize);
    };
  });
});

describe("usePaginatedQuery", () => {
  test("items, status and args without paginationOpts", () => {
    () => {
      const result = usePaginatedQuery(page, { channel: "a" }, { initialNumItems: 10 });
      expectTypeOf(result.results).toEqualTypeOf<Message[]>();
      expectTypeOf(result.status).toEqualTypeOf<PaginationStatus>();
      expectTypeOf(result.loadMore).toEqualTypeOf<(numItems: number) => void>();
      usePaginatedQuery(page, "skip", { initialNumItems: 10 });
      // @ts-expect-error channel is required
      usePaginatedQuery(page, {}, { initialNumItems: 10 });
      // @ts-expect-error the query must take paginationOpts and return a page
      usePaginatedQuery(notPaginated, { channel: "a" }, { initialNumItems: 10 });
    };
  });
});

describe("SSR", () => {
  test("fetchQuery and preloaded queries keep the types", async () => {
    () => {
      expectTypeOf(fetchQuery(list, { channel: "a" }, { url: "http://x" })).toEqualTypeOf<Promise<Message[]>>();
      expectTypeOf(preloadQuery(list, { channel: "a" }, { url: "http://x" })).toEqualTypeOf<Promise<Preloaded<typeof list>>>();
      // @ts-expect-error channel is required
      void fetchQuery(list, {}, { url: "http://x" });
    };
    () => {
      const preloaded = {} as Preloaded<typeof list>;
      expectTypeOf(usePreloadedQuery(preloaded)).toEqualTypeOf<Message[]>();
    };
  });
});
