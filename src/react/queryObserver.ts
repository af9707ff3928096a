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
 *   replaced only when the result really changed: the same reference is kept, and so is a new
 *   reference whose JSON encoding equals the old one (a query re-run by an unrelated commit
 *   that produced an equal result). Errors are compared by code, message and data.
 */
import type { WalkinClient } from "../browser/index.js";
import { makeFunctionReference } from "../server/api.js";
import { isWalkinError } from "../values/errors.js";
import { convertToJson } from "../values/json.js";
import type { Value } from "../values/value.js";

export type QuerySnapshot =
  | { readonly status: "loading" }
  | { readonly status: "success"; readonly value: unknown }
  | { readonly status: "error"; readonly error: unknown };

export const LOADING: QuerySnapshot = Object.freeze({ status: "loading" });

type Watch = ReturnType<WalkinClient["watchQuery"]>;

export class QueryObserver {
  private watch: Watch | undefined;
  private snapshot: QuerySnapshot = LOADING;
  /** What the watch returned (or threw) when `snapshot` was last checked against it. */
  private lastRaw: unknown = undefined;
  /** The JSON text of `snapshot`'s value or error, computed once per new raw result. */
  private snapshotKey: string | undefined;

  constructor(
    private readonly client: WalkinClient,
    readonly name: string,
    readonly args: Record<string, Value>,
  ) {}

  readonly subscribe = (onChange: () => void): (() => void) => this.getWatch().onUpdate(onChange);

  readonly getSnapshot = (): QuerySnapshot => {
    let next: QuerySnapshot;
    let raw: unknown;
    try {
      raw = this.getWatch().localQueryResult();
      next = raw === undefined ? LOADING : { status: "success", value: raw };
    } catch (error) {
      raw = error;
      next = { status: "error", error };
    }
    if (raw === this.lastRaw && next.status === this.snapshot.status) return this.snapshot;
    this.lastRaw = raw;
    if (next.status === "loading") return this.replace(LOADING, undefined);
    const key = snapshotKey(next);
    if (key !== undefined && key === this.snapshotKey && next.status === this.snapshot.status) return this.snapshot;
    return this.replace(next, key);
  };

  private replace(next: QuerySnapshot, key: string | undefined): QuerySnapshot {
    this.snapshot = next;
    this.snapshotKey = key;
    return next;
  }

  private getWatch(): Watch {
    this.watch ??= this.client.watchQuery(makeFunctionReference<"query">(this.name), this.args);
    return this.watch;
  }
}

/** A text that is equal for equal results (and equal errors); undefined if there is none. */
function snapshotKey(snapshot: QuerySnapshot): string | undefined {
  try {
    switch (snapshot.status) {
      case "loading":
        return undefined;
      case "success":
        return JSON.stringify(convertToJson(snapshot.value as Value));
      case "error": {
        const error = snapshot.error;
        if (!isWalkinError(error)) return undefined;
        const data = error.data === undefined ? null : convertToJson(error.data);
        return JSON.stringify([error.code, error.message, data]);
      }
      default:
        return snapshot satisfies never;
    }
  } catch {
    return undefined; // not a Value: treat every new reference as a change
  }
}

/** The key by which args are compared: their wire encoding, so `{ n: 1n }` ≠ `{ n: 1 }`. */
export function argsKey(args: Record<string, Value>): string {
  return JSON.stringify(convertToJson(args, "args"));
}
