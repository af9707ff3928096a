/**
 * Tables the engine keeps for itself. App code cannot read or write them through `ctx.db`
 * (names starting with "_" are reserved); `ctx.db.system` can read them.
 */
import { v } from "../values/index.js";
import { defineTable } from "../server/schema.js";

export const SYSTEM_TABLES = {
  _scheduled_functions: defineTable({
    name: v.string(),
    args: v.any(),
    scheduledTime: v.number(),
    state: v.union(v.literal("pending"), v.literal("inProgress"), v.literal("success"), v.literal("failed"), v.literal("canceled")),
    error: v.optional(v.string()),
    completedTime: v.optional(v.number()),
    /** While "inProgress": the running node renews this; past it, the node is presumed dead. */
    leaseUntil: v.optional(v.number()),
  }).index("by_state_time", ["state", "scheduledTime"]),
  _cron_jobs: defineTable({
    name: v.string(),
    spec: v.string(),
    nextRun: v.number(),
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
};

