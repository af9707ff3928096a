/**
 * `QueryObserver`: one query (function path + args) seen through `useSyncExternalStore`.
 *
 * It owns the two things the hooks must get right:
 *
 * - **No I/O during render.** The client's watch is created lazily, on the first `getSnapshot`
 *   or `subscribe` call. Server rendering calls neither (React uses `getServerSnapshot` there),
 *   so rendering on the server never touches the client, let alone opens a socket.
 * - **Stable snapshots.** `useSyncExternalStore` re-renders whenever `getSnapshot` returns a
 *   different object, and loops if it returns a fresh one on every call. The snapshot is
 *   replaced only when the client's result object (or error) is a different one. The client
 *   keeps a result's object while the result is unchanged (it compares their wire text), so
 *   an unrelated commit that re-ran this query with an equal result re-renders nothing.
 */
import type { WalkinClient, Watch } from "../browser/index.js";
import { canonicalJson } from "../browser/queryResult.js";
import { makeFunctionReference } from "../server/api.js";
import { convertToJson } from "../values/json.js";
import type { Value } from "../values/value.js";

export type QuerySnapshot =
  | { readonly status: "loading" }
  | { readonly status: "success"; readonly value: unknown }
  | { readonly status: "error"; readonly error: unknown };

export const LOADING: QuerySnapshot = Object.freeze({ status: "loading" });

export class QueryObserver {
  private watch: Watch<unknown> | undefined;
  private snapshot: QuerySnapshot = LOADING;

  constructor(
    private readonly client: WalkinClient,
    readonly name: string,
    readonly args: Record<string, Value>,
  ) {}

  readonly subscribe = (onChange: () => void): (() => void) => this.getWatch().onUpdate(onChange);

  readonly getSnapshot = (): QuerySnapshot => {
    const current = this.snapshot;
    try {
      const value: unknown = this.getWatch().localQueryResult();
      if (value === undefined) this.snapshot = LOADING;
      else if (current.status !== "success" || current.value !== value) this.snapshot = { status: "success", value };
    } catch (error) {
      if (current.status !== "error" || current.error !== error) this.snapshot = { status: "error", error };
    }
    return this.snapshot;
  };

  private getWatch(): Watch<unknown> {
    this.watch ??= this.client.watchQuery(makeFunctionReference<"query">(this.name), this.args);
    return this.watch;
  }
}

/**
 * The key by which args are compared: their wire encoding, so `{ n: 1n }` ≠ `{ n: 1 }`, with keys
 * sorted as the client's query tokens have them (`{ a, b }` and `{ b, a }` are one query).
 */
export function argsKey(args: Record<string, Value>): string {
  return canonicalJson(convertToJson(args, "args"));
}
