/**
 * Session IDs kept from the dashboard's page and its logs, on a real server (loopback, port 0)
 * and real fetch: a record keyed by session ID, a job's arguments, and a run's validation error.
 * Each failed before its fix (found in a security review of the admin API).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Engine } from "../engine/engine.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { startServer, type WalkinServer } from "../transport/index.js";
import { defineSchema, defineTable, internalMutation, makeFunctionReference, mutation } from "../server/index.js";
import { v } from "../values/index.js";
import { vSessionId } from "../sessions/sessionId.js";
import { Dashboard } from "./api/dashboard.js";
import { adminCall } from "./api/fixtures/adminBackend.js";

const KEY = "review-admin-key-0123456789abcdefghij";

const schema = defineSchema({
  // A poll's votes keyed by the voter's session: the keys are session-ID digests.
  polls: defineTable({ title: v.string(), votes: v.record(vSessionId, v.boolean()) }),
});

const modules = {
  polls: {
    vote: mutation({
      args: { sessionId: vSessionId },
      handler: async (ctx, { sessionId }) => {
        await ctx.db.insert("polls", { title: "lunch", votes: { [sessionId]: true } });
        return sessionId as string;
      },
    }),
    /** A client sends its own votes map, keyed by its raw session ID (a credential). */
    bulk: mutation({ args: { votes: v.record(vSessionId, v.boolean()) }, handler: async () => null }),
  },
  later: {
    /** Schedules a session function with the session's digest, as server code may. */
    schedule: mutation({
      args: { sessionId: vSessionId },
      handler: async (ctx, { sessionId }) => {
        await ctx.scheduler.runAfter(3_600_000, makeFunctionReference<"mutation">("later:run"), { sessionId });
        return sessionId as string;
      },
    }),
    run: internalMutation({ args: { sessionId: vSessionId }, handler: async () => null }),
  },
};

let dashboard: Dashboard;
let engine: Engine;
let server: WalkinServer;

beforeAll(async () => {
  dashboard = new Dashboard({ adminKey: KEY });
  engine = await Engine.open({ storage: await openSqliteStorage({ filename: ":memory:" }), schema, modules, runScheduler: false, observeRun: dashboard.observeRun });
  server = await startServer({ engine, port: 0, log: () => {}, dashboard });
});

afterAll(async () => {
  dashboard.close();
  await server.close();
  await engine.close();
});

const admin = (path: string, body?: unknown) => adminCall(server.url, path, body, KEY);

describe("session-ID digests stay on the server", () => {
  it("hides a field that is a record keyed by vSessionId, and an insert cannot set its keys", async () => {
    const digest = (await engine.runMutation("polls:vote", { sessionId: crypto.randomUUID() }, { fromClient: true })).value as string;
    expect(digest).toMatch(/^sd1_/);

    const tables = await admin("tables");
    expect(tables.json.find((t: { name: string }) => t.name === "polls").hiddenFields).toContain("votes");
    const listed = await admin("documents/list", { table: "polls" });
    expect(listed.status).toBe(200);
    expect(listed.text).not.toContain(digest);
    const id = listed.json.page[0].doc._id as string;
    expect((await admin("documents/get", { id })).text).not.toContain(digest);

    // Nor can the dashboard write a digest of its choosing under that field.
    const other = (await engine.runMutation("polls:vote", { sessionId: crypto.randomUUID() }, { fromClient: true })).value as string;
    const inserted = await admin("documents/insert", { table: "polls", document: { title: "chosen", votes: { [other]: false } } });
    expect(inserted.status).toBe(400);
  });

  it("does not send the session digest in a scheduled job's arguments to the page", async () => {
    const digest = (await engine.runMutation("later:schedule", { sessionId: crypto.randomUUID() }, { fromClient: true })).value as string;
    expect(digest).toMatch(/^sd1_/);
    const scheduler = await admin("scheduler");
    expect(scheduler.status).toBe(200);
    expect(scheduler.json.jobs.pending.some((job: { name: string }) => job.name === "later:run")).toBe(true);
    expect(scheduler.text).not.toContain(digest);
  });

  it("never writes a client's raw session ID into the Logs screen's run errors", async () => {
    const raw = crypto.randomUUID();
    // A valid session-ID key with a value of the wrong type: the argument validation error names the key's path.
    const response = await fetch(`${server.url}/api/mutation`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ path: "polls:bulk", args: { votes: { [raw]: "yes" } } }),
    });
    expect(response.status).toBe(400);
    const logs = await admin("logs");
    const entry = (logs.json as Array<{ path: string; outcome: string; error: string | null }>).findLast((e) => e.path === "polls:bulk");
    expect(entry?.outcome).toBe("error");
    expect(logs.text).not.toContain(raw);
  });
});
