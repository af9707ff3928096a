/**
 * Tables the engine keeps for itself. App code cannot read or write them through `ctx.db`
 * (names starting with "_" are reserved); `ctx.db.system` can read them.
 */
import { v } from "../values/index.js";
import { defineTable } from "../server/schema.js";
import type { Doc } from "./documents.js";

export const SYSTEM_TABLES = {
  _scheduled_functions: defineTable({
    name: v.string(),
    args: v.any(),
    scheduledTime: v.number(),
    state: v.union(v.literal("pending"), v.literal("inProgress"), v.literal("success"), v.literal("failed"), v.literal("canceled")),
    error: v.optional(v.string()),
    completedTime: v.optional(v.number()),
    /**
     * While the job's action runs ("inProgress", or "canceled" while it runs): the running node
     * renews this, and removes it from a canceled job when the action ends; past it, the node
     * is presumed dead. Not shown by `ctx.db.system`.
     */
    leaseUntil: v.optional(v.number()),
  }).index("by_state_time", ["state", "scheduledTime"]),
  _cron_jobs: defineTable({
    name: v.string(),
    spec: v.string(),
    nextRun: v.number(),
    /** The `_scheduled_functions` job of the latest run: while it is in flight, due runs are skipped (cron.ts). */
    lastRun: v.optional(v.string()),
  }).index("by_name", ["name"]),
  /**
   * Results of mutations sent by clients, keyed by (clientId, requestId), written in the
   * mutation's own transaction: a mutation re-sent after a reconnect or a server restart is
   * answered from here instead of being applied twice.
   */
  _client_requests: defineTable({
    clientId: v.string(),
    requestId: v.number(),
    result: v.any(),
  }).index("by_client_request", ["clientId", "requestId"]),
  /**
   * One document per index built since this table exists: `lacked` is false when a build wrote
   * it, true once a node without the index may have written its table since (indexBuilds.ts).
   * Read whole by a scan: a handful of documents, and no index of its own to build first.
   */
  _index_builds: defineTable({
    index: v.string(),
    lacked: v.boolean(),
  }),
  /** Stored files (`ctx.storage`), as Convex's `_storage`; their bytes are in `_storage_chunks` (fileStore.ts). */
  _storage: defineTable({
    /** base64 SHA-256 of the bytes. */
    sha256: v.string(),
    size: v.number(),
    contentType: v.optional(v.string()),
    /** The key of the file's chunks. Not shown by `ctx.db.system`. */
    chunks: v.string(),
  }),
  /** A file's bytes, `CHUNK_BYTES` to a document, in order `n` under the file's key. */
  _storage_chunks: defineTable({
    chunks: v.string(),
    n: v.number(),
    data: v.bytes(),
  }).index("by_chunks", ["chunks", "n"]),
  /**
   * Chunk keys not owned by a stored file: an upload URL not used yet (with `tokenHash`), an
   * upload under way, a deleted file's bytes. Past `until`, the sweep deletes the chunks, then
   * the document (fileStore.ts).
   */
  _storage_pending: defineTable({
    chunks: v.string(),
    until: v.number(),
    /** sha256 (hex) of the upload URL's secret, until an upload claims it. */
    tokenHash: v.optional(v.string()),
  }).index("by_until", ["until"]),
};


/**
 * A system document as app code reads it through `ctx.db.system`, in the shape Convex documents
 * (its `SystemDataModel`): a scheduled function's `state` is `{ kind }` (`{ kind: "failed", error }`
 * when it failed), its `args` the array of arguments, and its `name` the path with the module's
 * file, `"messages.js:send"`. The engine stores and indexes the flat form (`state: "failed"`,
 * `error`, `name: "messages:send"`, the path it resolves), which its own code keeps reading
 * through the transaction.
 */
export function systemDocumentPresenter(table: string): ((doc: Doc) => Doc) | undefined {
  if (table === "_scheduled_functions") return presentScheduledFunction;
  return table === "_storage" ? presentStoredFile : undefined;
}

/** A stored file without where its bytes are: Convex's `_storage` shape. */
function presentStoredFile(doc: Doc): Doc {
  const { chunks: _chunks, ...rest } = doc;
  return rest as Doc;
}

function presentScheduledFunction(doc: Doc): Doc {
  // `leaseUntil` is the scheduler's own bookkeeping (scheduler.ts), not part of Convex's shape.
  const { state, error, args, name, leaseUntil: _lease, ...rest } = doc;
  return {
    ...rest,
    name: typeof name === "string" ? convexFunctionName(name) : name,
    args: [args ?? {}],
    state: state === "failed" ? { kind: "failed", error: error ?? "" } : { kind: state ?? null },
  } as Doc;
}

/** `"lib/users:get"` → `"lib/users.js:get"`, and a module alone (its default export) → `"mod.js:default"`, as Convex names them. */
function convexFunctionName(path: string): string {
  const at = path.lastIndexOf(":");
  const [module, exported] = at === -1 ? [path, "default"] : [path.slice(0, at), path.slice(at + 1)];
  return `${module.endsWith(".js") ? module : `${module}.js`}:${exported}`;
}
