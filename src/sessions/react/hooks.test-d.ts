import { describe, expectTypeOf, it } from "vitest";
import type { FunctionReference } from "../../server/api.js";
import type { PaginationResult } from "../../server/database.js";
import type { SessionClient } from "../browser/index.js";
import {
  SessionProvider,
  useSessionAction,
  useSessionId,
  useSessionIdArg,
  useSessionMutation,
  useSessionPaginatedQuery,
  useSessionQuery,
  type SessionArgsArray,
  type SessionId,
  type SessionQueryArgsArray,
  type UseStorage,
} from "./index.js";
declare const transfer: (args: { to: SessionId }) => Promise<null>;

type Q<Args, R> = FunctionReference<"query", "public", Args, R>;
type M<Args, R> = FunctionReference<"mutation", "public", Args, R>;
type A<Args, R> = FunctionReference<"action", "public", Args, R>;
declare const onlySession: Q<{ sessionId: string }, string[]>;
declare const withArgs: Q<{ sessionId: string; prefix: string }, number>;
declare const withOptional: Q<{ sessionId: string; limit?: number }, number>;
declare const noSession: Q<{ prefix: string }, number>;
declare const add: M<{ sessionId: string; text: string }, string>;
declare const clear: M<{ sessionId: string }, null>;
declare const count: A<{ sessionId: string }, number>;
declare const page: Q<
  { sessionId: string; channel: string; paginationOpts: { numItems: number; cursor: string | null } },
  PaginationResult<{ body: string }>
>;

describe("session hook args", () => {
  it("useSessionQuery: args may be omitted when sessionId is the only one", () => {
    expectTypeOf(useSessionQuery(onlySession)).toEqualTypeOf<string[] | undefined>();
    useSessionQuery(onlySession, {});
    useSessionQuery(onlySession, "skip");
    useSessionQuery(withOptional);
    expectTypeOf(useSessionQuery(withArgs, { prefix: "a" })).toEqualTypeOf<number | undefined>();
    useSessionQuery(withArgs, "skip");
    // @ts-expect-error prefix is required
    useSessionQuery(withArgs);
    // @ts-expect-error prefix is a string
    useSessionQuery(withArgs, { prefix: 1 });
    // @ts-expect-error the function takes no sessionId
    useSessionQuery(noSession, { prefix: "a" });
  });

  it("useSessionMutation / useSessionAction take the args without sessionId", () => {
    const send = useSessionMutation(add);
    expectTypeOf(send({ text: "hi" })).toEqualTypeOf<Promise<string>>();
    // @ts-expect-error text is required
    void send();
    expectTypeOf(useSessionMutation(clear)()).toEqualTypeOf<Promise<null>>();
    useSessionMutation(add).withOptimisticUpdate((_store, args) => {
      expectTypeOf(args).toEqualTypeOf<{ sessionId: string; text: string }>();
    });
    expectTypeOf(useSessionAction(count)()).toEqualTypeOf<Promise<number>>();
  });

  it("useSessionPaginatedQuery and useSessionIdArg", () => {
    const { results } = useSessionPaginatedQuery(page, { channel: "c" }, { initialNumItems: 5 });
    expectTypeOf(results).toEqualTypeOf<{ body: string }[]>();
    // @ts-expect-error channel is required
    useSessionPaginatedQuery(page, {}, { initialNumItems: 5 });
    expectTypeOf(useSessionIdArg({ x: 1 })).toEqualTypeOf<{ x: number } & { sessionId: string } | "skip">();
  });

  it("useSessionId and SessionProvider's useStorage", () => {
    const [id, refresh, promise] = useSessionId();
    expectTypeOf(id).toEqualTypeOf<SessionId | undefined>();
    expectTypeOf(refresh).returns.toEqualTypeOf<Promise<SessionId>>();
    expectTypeOf(promise).toEqualTypeOf<Promise<SessionId>>();
    // The new ID fits an argument declared with vSessionId (typed SessionId), as in convex-helpers.
    void refresh(async (newId) => transfer({ to: newId }));
    // usehooks-ts' shape: generic over the value, with a third "remove" element.
    type Dispatch<T> = (value: T | ((prev: T) => T)) => void;
    const useLocalStorageLike = <T,>(_key: string, initial: T | (() => T)): [T, Dispatch<T>, () => void] => [
      initial as T,
      () => {},
      () => {},
    ];
    expectTypeOf(useLocalStorageLike).toExtend<UseStorage>();
    SessionProvider({ useStorage: useLocalStorageLike, storageKey: "k" });
  });

  it("SessionClient", () => {
    const sessions = {} as SessionClient;
    expectTypeOf(sessions.query(onlySession)).toEqualTypeOf<Promise<string[]>>();
    expectTypeOf(sessions.query(withArgs, { prefix: "p" })).toEqualTypeOf<Promise<number>>();
    // @ts-expect-error prefix is required
    void sessions.query(withArgs);
    expectTypeOf(sessions.mutation(add, { text: "t" })).toEqualTypeOf<Promise<string>>();
    // @ts-expect-error text is required
    void sessions.mutation(add);
    void sessions.mutation(clear);
    void sessions.mutation(add, { text: "t" }, { optimisticUpdate: (_s, args) => expectTypeOf(args.sessionId).toBeString() });
    expectTypeOf(sessions.action(count)).toEqualTypeOf<Promise<number>>();
    expectTypeOf(sessions.watchQuery(withArgs, { prefix: "p" }).localQueryResult()).toEqualTypeOf<number | undefined>();
  });
});

describe("convex-helpers' arg tuple types", () => {
  type Ref<T extends "query" | "mutation", Args> = FunctionReference<T, "public", Args, unknown>;
  it("SessionArgsArray: required, optional, or an empty object when sessionId is the only arg", () => {
    expectTypeOf<SessionArgsArray<Ref<"mutation", { sessionId: SessionId; text: string }>>>().toEqualTypeOf<[args: { text: string }]>();
    expectTypeOf<SessionArgsArray<Ref<"mutation", { sessionId: SessionId; text?: string }>>>().toEqualTypeOf<[args?: { text?: string }]>();
    expectTypeOf<SessionArgsArray<Ref<"mutation", { sessionId: SessionId }>>>().toEqualTypeOf<[args?: Record<string, never>]>();
  });
  it("SessionQueryArgsArray: the same, with \"skip\"", () => {
    expectTypeOf<SessionQueryArgsArray<Ref<"query", { sessionId: SessionId | null; q: string }>>>().toEqualTypeOf<[args: { q: string } | "skip"]>();
    expectTypeOf<SessionQueryArgsArray<Ref<"query", { sessionId: SessionId }>>>().toEqualTypeOf<[args?: Record<string, never> | "skip"]>();
  });
});
