/**
 * A review of the admin API as an operator meets it, on a real server (loopback) and SQLite.
 * What held already: an edit goes through validation, index maintenance and live queries like
 * any mutation, and paging a table that is being written neither repeats nor skips. What each
 * failed before its fix: a body that is not UTF-8 was stored with replacement characters; an
 * `as` without a kind ran the function as nobody; an action run from the dashboard during a
 * reload lost its engine halfway; the Logs screen showed session digests and kept errors of any
 * size; a write during a table's count left the count one short; the Scheduler screen, a
 * user's page and the users search failed outright on a busy app (more jobs, documents or
 * users than one read may take); a user's page left out a nullable reference to users; and
 * `new Dashboard` took a guessable admin key; a table of big documents could not be listed.
 */
import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { Engine, type FunctionRunTrace } from "../../engine/engine.js";
import { QueryImpl } from "../../engine/query.js";
import { openSqliteStorage } from "../../storage/sqlite/index.js";
import { startServer, type WalkinServer } from "../../transport/index.js";
import { action, defineSchema, defineTable, makeFunctionReference, mutation, query, type SchemaDefinition } from "../../server/index.js";
import { authTables } from "../../auth/index.js";
import { sessionDigest, vSessionId } from "../../sessions/sessionId.js";
import { v } from "../../values/index.js";
import { Dashboard } from "./dashboard.js";
import { adminCall } from "./fixtures/adminBackend.js";
import { RunLog } from "./runLog.js";
import { TableCounts } from "./tables.js";

const KEY = "review-dashboard-key-0123456789abcdefghij";

const schema = defineSchema({
  notes: defineTable({ text: v.string(), n: v.optional(v.number()) }).index("by_text", ["text"]),
});

/** notes:slow waits here (when set) before it writes: a reload can happen meanwhile. */
let slowGate: { started: () => void; release: Promise<void> } | null = null;

const modules = {
  notes: {
    add: mutation({ args: { text: v.string() }, handler: async (ctx, { text }) => ctx.db.insert("notes", { text }) }),
    countOf: query({ args: { text: v.string() }, handler: async (ctx, { text }) => (await ctx.db.query("notes").withIndex("by_text", (q) => q.eq("text", text)).collect()).length }),
    /** App code that prints its session's digest, and puts it in an error. */
    whisper: mutation({
      args: { sessionId: vSessionId },
      handler: async (_ctx, { sessionId }) => {
        console.log("draft of", sessionId);
        throw new Error(`No draft for ${sessionId}`);
      },
    }),
    slow: action({
      args: {},
      handler: async (ctx) => {
        slowGate?.started();
        await slowGate?.release;
        await ctx.runMutation(makeFunctionReference<"mutation">("notes:add"), { text: "written by slow" });
        return "done";
      },
    }),
  },
};

let dashboard: Dashboard;
let engine: Engine;
let server: WalkinServer;

const openEngine = async () => Engine.open({ storage: await openSqliteStorage({ filename: ":memory:" }), schema, modules, runScheduler: false, observeRun: dashboard.observeRun });

beforeAll(async () => {
  dashboard = new Dashboard({ adminKey: KEY });
  engine = await openEngine();
  server = await startServer({ engine, port: 0, log: () => {}, dashboard });
});

afterAll(async () => {
  dashboard.close();
  await server.close();
  await engine.close();
});

const admin = (path: string, body?: unknown) => adminCall(server.url, path, body, KEY);

/** A POST with a body of exact bytes (fetch would only send valid UTF-8). */
function postBytes(path: string, body: Buffer) {
  const { port } = new URL(server.url);
  return new Promise<{ status: number; json: any }>((resolve, reject) => {
    const req = httpRequest(
      { host: "127.0.0.1", port, method: "POST", path: `/api/admin/${path}`, headers: { Authorization: `Bearer ${KEY}`, "Content-Type": "application/json", "Content-Length": String(body.length) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString("utf8")) }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** A server of its own, for a test that fills a database: `admin` as above, against it. */
async function ownBackend(appSchema: SchemaDefinition<any>) {
  const board = new Dashboard({ adminKey: KEY });
  const e = await Engine.open({ storage: await openSqliteStorage({ filename: ":memory:" }), schema: appSchema, modules, runScheduler: false, observeRun: board.observeRun });
  const s = await startServer({ engine: e, port: 0, log: () => {}, dashboard: board });
  return {
    engine: e,
    async admin(path: string, body?: unknown) {
      const response = await fetch(`${s.url}/api/admin/${path}`, {
        method: body === undefined ? "GET" : "POST",
        headers: { Authorization: `Bearer ${KEY}`, "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: response.status, text: await response.text() };
    },
    async close() {
      board.close();
      await s.close();
      await e.close();
    },
  };
}

const allNotes = () => engine.read(async (txn) => (await new QueryImpl(txn, engine.catalog.lookup("notes")!).collect()).map((doc) => doc.text as string));

describe("an edit from the dashboard is a write like any other", () => {
  it("keeps the index current and re-runs a live query that reads it", async () => {
    const id = (await engine.runMutation("notes:add", { text: "draft" })).value as string;
    const results: unknown[] = [];
    const live = await engine.subscriptions.subscribe("notes:countOf", { text: "final" }, {}, (outcome) => results.push(outcome.ok ? outcome.value : outcome.error));
    expect(live.outcome).toEqual({ ok: true, value: 0 });
    expect((await admin("documents/replace", { id, document: { text: "final" } })).status).toBe(200);
    await vi.waitFor(() => expect(results.at(-1)).toBe(1));
    // Listed by the index under its new value, not its old one.
    expect((await admin("documents/list", { table: "notes", index: "by_text", indexValues: ["final"] })).json.page.map((p: any) => p.doc._id)).toEqual([id]);
    expect((await admin("documents/list", { table: "notes", index: "by_text", indexValues: ["draft"] })).json.page).toEqual([]);
    expect((await admin("documents/delete", { id })).status).toBe(200);
    await vi.waitFor(() => expect(results.at(-1)).toBe(0));
    live.unsubscribe();
  });
});

describe("paging a table that is being written", () => {
  it("lists every document that was there throughout exactly once, newest first", async () => {
    const kept = new Set<string>();
    for (let i = 0; i < 60; i++) kept.add((await engine.runMutation("notes:add", { text: `kept ${i}` })).value as string);
    const doomed: string[] = [];
    for (let i = 0; i < 20; i++) doomed.push((await engine.runMutation("notes:add", { text: `doomed ${i}` })).value as string);
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 100; pages++) {
      const { json } = await admin("documents/list", { table: "notes", numItems: 7, cursor });
      seen.push(...json.page.map((view: { doc: { _id: string } }) => view.doc._id));
      if (json.isDone) break;
      cursor = json.continueCursor;
      // Between pages the app writes: a new note (newer than all, so not on later pages) and
      // a delete, sometimes of the very document the cursor points at.
      await engine.runMutation("notes:add", { text: `new ${pages}` });
      const last = json.page.at(-1).doc._id as string;
      const gone = doomed.includes(last) ? last : doomed.find((id) => !seen.includes(id));
      if (gone) {
        doomed.splice(doomed.indexOf(gone), 1);
        await engine.runSystemMutation((txn) => txn.delete(gone));
      }
    }
    expect(new Set(seen).size).toBe(seen.length);
    expect([...kept].filter((id) => !seen.includes(id))).toEqual([]);
  });
});

describe("browsing a table of big documents", () => {
  it("pages through it, fewer to a page, instead of failing on what one read may take", { timeout: 60_000 }, async () => {
    // 30 documents of 900 kB (images kept as data URLs, say): 25 to a page would be 22 MB.
    const backend = await ownBackend(defineSchema({ blobs: defineTable({ n: v.number(), data: v.string() }) }));
    const e = backend.engine;
    try {
      const blobs = e.catalog.lookup("blobs")!;
      for (let batch = 0; batch < 3; batch++) {
        await e.runSystemMutation(async (txn) => {
          for (let i = 0; i < 10; i++) await txn.insert(blobs, { n: batch * 10 + i, data: "x".repeat(900_000) });
        });
      }
      for (const filters of [undefined, [{ field: "n", op: "gte", value: 0 }]]) {
        const seen: number[] = [];
        let cursor: string | null = null;
        for (let pages = 0; pages < 30; pages++) {
          const answer = await backend.admin("documents/list", { table: "blobs", cursor, filters });
          expect([answer.status, answer.text.slice(0, 200)]).toEqual([200, expect.any(String)]);
          const json = JSON.parse(answer.text) as { page: Array<{ doc: { n: number } }>; isDone: boolean; continueCursor: string };
          seen.push(...json.page.map((view) => view.doc.n));
          if (json.isDone) break;
          cursor = json.continueCursor;
        }
        expect(seen).toEqual(Array.from({ length: 30 }, (_, i) => 29 - i));
      }
    } finally {
      await backend.close();
    }
  });
});

describe("a request body that is not UTF-8", () => {
  it("is refused with a clear error, and nothing is written", async () => {
    const before = await admin("documents/list", { table: "notes", numItems: 200 });
    // "café" as Latin-1: the é is the single byte 0xE9, not valid UTF-8.
    const body = Buffer.concat([Buffer.from('{"table":"notes","document":{"text":"caf'), Buffer.from([0xe9]), Buffer.from('"}}')]);
    const answer = await postBytes("documents/insert", body);
    expect(answer.status).toBe(400);
    expect(answer.json.error.message).toMatch(/UTF-8/);
    const after = await admin("documents/list", { table: "notes", numItems: 200 });
    expect(after.json.page.length).toBe(before.json.page.length);
  });
});

describe("running a function from the dashboard", () => {
  it("refuses an 'as' that does not say who, instead of running as nobody", async () => {
    const before = (await allNotes()).length;
    for (const as of [{ userId: "someone" }, { kind: "User", userId: "someone" }, "user", ["user"]]) {
      const answer = await admin("functions/run", { path: "notes:add", args: { text: "as whom?" }, as });
      expect([JSON.stringify(as), answer.status]).toEqual([JSON.stringify(as), 400]);
      expect(answer.json.error.message).toContain('"as" must be { "kind": "nobody" }');
    }
    expect((await allNotes()).length).toBe(before);
    // Left out, or said plainly, it is nobody.
    expect((await admin("functions/run", { path: "notes:countOf", args: { text: "x" } })).status).toBe(200);
    expect((await admin("functions/run", { path: "notes:countOf", args: { text: "x" }, as: { kind: "nobody" } })).status).toBe(200);
  });
});

describe("a function run from the dashboard while the functions reload", () => {
  it("finishes on the engine it started on: the old engine is retired only after it", async () => {
    let started!: () => void;
    let release!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    slowGate = { started, release: new Promise<void>((resolve) => (release = resolve)) };
    const old = engine;
    const ran = admin("functions/run", { path: "notes:slow" });
    ran.catch(() => {}); // awaited below; a failure before then must not go unhandled
    await running;
    // What `walkin dev` does on a reload (cli/serve.ts): serve the new engine, and close the old
    // one once the server says nothing runs on it any more.
    const next = await openEngine();
    old.handOver();
    await server.setEngine(next);
    engine = next;
    const retiring = server.retired(old).then(() => old.close());
    // The action still runs on the old engine: the server must not call it retired yet.
    const first = await Promise.race([retiring.then(() => "retired"), new Promise((resolve) => setImmediate(() => resolve("still running")))]);
    release();
    expect(first).toBe("still running");
    const answer = await ran;
    expect([answer.status, answer.json.value ?? answer.json.error?.message]).toEqual([200, "done"]);
    await retiring;
    slowGate = null;
  });
});

describe("the Logs screen", () => {
  it("masks a session's digest that app code prints or puts in an error, as the Scheduler screen does", async () => {
    const raw = crypto.randomUUID();
    const digest = sessionDigest(raw);
    await expect(engine.runMutation("notes:whisper", { sessionId: raw }, { fromClient: true })).rejects.toThrow(/No draft/);
    const logs = await admin("logs");
    const entry = (logs.json as Array<{ path: string; error: string; logs: string[] }>).findLast((e) => e.path === "notes:whisper")!;
    expect(entry.logs).toEqual(["draft of sd1_[hidden]"]);
    expect(entry.error).toBe("No draft for sd1_[hidden]");
    expect(logs.text).not.toContain(digest);
  });
});

describe("the run log's memory", () => {
  it("keeps a bounded part of a huge error message", async () => {
    const log = new RunLog();
    const trace: FunctionRunTrace = { type: "mutation", path: "notes:echo", caller: { fromClient: true }, retries: 0, error: null };
    const huge = `No product named ${"x".repeat(1_000_000)}`;
    await expect(log.observe(trace, async () => Promise.reject(new Error(huge)))).rejects.toThrow();
    const [entry] = log.recent();
    expect(entry!.error!.startsWith("No product named xxx")).toBe(true);
    expect(entry!.error!.length).toBeLessThan(10_000);
  });
});

describe("a table's count", () => {
  it("is not left behind by a write that lands while the table is being counted", async () => {
    let told = 0;
    let clock = 0;
    const counts = new TableCounts(() => told++, { recountMs: 20, now: () => clock });
    // As the Dashboard wires it: a commit marks its tables' counts stale.
    const stopListening = engine.onCommit((_record, tables) => counts.forget(tables));
    const notesCount = async () => (await counts.summaries(engine)).find((t) => t.name === "notes")!.count;
    try {
      const before = await notesCount();
      await engine.runMutation("notes:add", { text: "makes the count stale" });
      clock += 25; // old enough to be counted again when asked
      // Hold the recount's first read of storage: its snapshot is taken, its answer not yet in.
      let holdScan!: () => void;
      const held = new Promise<void>((resolve) => (holdScan = resolve));
      const scan = engine.storage.scan.bind(engine.storage);
      const spy = vi.spyOn(engine.storage, "scan").mockImplementationOnce(async (request) => {
        const entries = await scan(request);
        await held;
        return entries;
      });
      const counting = notesCount();
      // A write lands meanwhile, after the count's snapshot (a page told of it asks now, and
      // gets this same count: it joins the one running).
      await engine.runMutation("notes:add", { text: "written while counting" });
      holdScan();
      expect(await counting).toBe(before + 1);
      spy.mockRestore();
      // The count must not stay one short: the page is told to ask again, and each time it is
      // told it asks, until the count is exact.
      let seen = 0;
      let shown = 0;
      for (let round = 0; round < 5 && shown !== before + 2; round++) {
        await vi.waitFor(() => expect(told).toBeGreaterThan(seen), { timeout: 5_000 });
        seen = told;
        shown = await notesCount();
      }
      expect(shown).toBe(before + 2);
    } finally {
      stopListening();
      counts.close();
    }
  });
});

describe("the Scheduler screen", () => {
  it("shows a cron's last run however many other jobs ran since", { timeout: 60_000 }, async () => {
    const backend = await ownBackend(schema);
    const e = backend.engine;
    try {
      // A cron that runs daily, and since its last run many thousand jobs of other functions (an
      // app that schedules a job per message, say): more than one transaction may read.
      const day = 86_400_000;
      const start = Date.now() - 2 * day;
      const daily = await e.runSystemMutation(async (txn) => {
        const run = await txn.insertSystem("_scheduled_functions", { name: "notes:add", args: { text: "daily" }, scheduledTime: start, state: "success", completedTime: start + 5 });
        await txn.insertSystem("_cron_jobs", { name: "daily note", spec: JSON.stringify({ functionName: "notes:add", args: { text: "daily" }, schedule: { type: "interval", ms: day } }), nextRun: start + day, lastRun: run });
        return run;
      });
      for (let batch = 0; batch < 3; batch++) {
        await e.runSystemMutation(async (txn) => {
          for (let i = 0; i < 6_000; i++) {
            const time = start + 1_000 + batch * 6_000 + i;
            await txn.insertSystem("_scheduled_functions", { name: "notes:countOf", args: { text: "x" }, scheduledTime: time, state: "success", completedTime: time + 1 });
          }
        });
      }
      const answer = await backend.admin("scheduler");
      expect([answer.status, answer.text.slice(0, 300)]).toEqual([200, expect.any(String)]);
      const { crons } = JSON.parse(answer.text) as { crons: Array<{ name: string; lastRun: { _id: string; state: string } | null }> };
      expect(crons).toEqual([expect.objectContaining({ name: "daily note", lastRun: expect.objectContaining({ _id: daily, state: "success" }) })]);
    } finally {
      await backend.close();
    }
  });
});

describe("a user's page", () => {
  it("shows their data in a table whose reference to users may be null", async () => {
    const backend = await ownBackend(defineSchema({ ...authTables, tasks: defineTable({ assignee: v.union(v.id("users"), v.null()), title: v.string() }).index("by_assignee", ["assignee"]) }));
    const e = backend.engine;
    try {
      const me = await e.runSystemMutation(async (txn) => txn.insert(e.catalog.lookup("users")!, { name: "me" }));
      await e.runSystemMutation(async (txn) => {
        const tasks = e.catalog.lookup("tasks")!;
        await txn.insert(tasks, { assignee: me, title: "mine" });
        await txn.insert(tasks, { assignee: null, title: "nobody's" });
      });
      const answer = await backend.admin("users/get", { userId: me });
      expect(answer.status).toBe(200);
      const { data } = JSON.parse(answer.text) as { data: Array<{ table: string; field: string; index: string | null; count: number }> };
      expect(data).toEqual([expect.objectContaining({ table: "tasks", field: "assignee", index: "by_assignee", count: 1 })]);
    } finally {
      await backend.close();
    }
  });

  it("opens when a big table references users through a field with no index on it", { timeout: 60_000 }, async () => {
    // Likes point at a user, but the app only ever looks them up by post: no index on `user`.
    const backend = await ownBackend(defineSchema({ ...authTables, likes: defineTable({ user: v.id("users"), post: v.string() }).index("by_post", ["post"]) }));
    const e = backend.engine;
    try {
      const [me, other] = await e.runSystemMutation(async (txn) => {
        const users = e.catalog.lookup("users")!;
        return [await txn.insert(users, { name: "me" }), await txn.insert(users, { name: "other" })];
      });
      const likes = e.catalog.lookup("likes")!;
      await e.runSystemMutation(async (txn) => void (await txn.insert(likes, { user: me, post: "mine" })));
      for (let batch = 0; batch < 3; batch++) {
        await e.runSystemMutation(async (txn) => {
          for (let i = 0; i < 6_000; i++) await txn.insert(likes, { user: other, post: `p${batch}-${i}` });
        });
      }
      const newest = await e.runSystemMutation(async (txn) => txn.insert(likes, { user: me, post: "newest" }));
      const answer = await backend.admin("users/get", { userId: me });
      expect([answer.status, answer.text.slice(0, 300)]).toEqual([200, expect.any(String)]);
      const { data } = JSON.parse(answer.text) as { data: Array<{ table: string; field: string; count: number; more: boolean; sample: Array<{ doc: { _id: string } }> }> };
      const mine = data.find((d) => d.table === "likes" && d.field === "user")!;
      // What the newest documents show, and a "+": the older ones were not all looked at.
      expect(mine.sample.map((view) => view.doc._id)).toContain(newest);
      expect(mine.more).toBe(true);
    } finally {
      await backend.close();
    }
  });
});

describe("the Users screen's search", () => {
  it("finds a user by email in a big users table of the app's own, with no email index", { timeout: 60_000 }, async () => {
    // walkin/auth lets an app define its own users table; this one keeps no "email" index.
    const ownUsers = defineTable({ name: v.optional(v.string()), email: v.optional(v.string()), isAnonymous: v.optional(v.boolean()) });
    const backend = await ownBackend(defineSchema({ ...authTables, users: ownUsers }));
    const e = backend.engine;
    try {
      const users = e.catalog.lookup("users")!;
      const me = await e.runSystemMutation(async (txn) => txn.insert(users, { name: "me", email: "me@example.com" }));
      for (let batch = 0; batch < 3; batch++) {
        await e.runSystemMutation(async (txn) => {
          for (let i = 0; i < 6_000; i++) await txn.insert(users, { isAnonymous: true });
        });
      }
      const answer = await backend.admin("users/list", { search: "me@example.com" });
      expect([answer.status, answer.text.slice(0, 300)]).toEqual([200, expect.any(String)]);
      expect((JSON.parse(answer.text) as { page: Array<{ _id: string }> }).page.map((u) => u._id)).toEqual([me]);
    } finally {
      await backend.close();
    }
  });
});

describe("the admin key given to new Dashboard", () => {
  it("is refused when it could be guessed or is missing, saying what a key needs", () => {
    for (const adminKey of ["admin", "", "a key with spaces in it 0123456789", undefined]) {
      expect(() => new Dashboard({ adminKey: adminKey as string }), String(adminKey)).toThrow(/adminKey .*(at least 24|whitespace|must be a string)/);
    }
    new Dashboard({ adminKey: KEY }).close();
  });
});
