/**
 * Dashboard review 5: a page that leaves while its stream is being set up leaves nothing behind;
 * closing the dashboard ends the pages' streams (so the server's close is not held by them); the
 * Users and Scheduler screens show a commit only once it is durable, as the Data screen does.
 */
import { request as httpRequest, type IncomingMessage } from "node:http";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Engine } from "../../engine/engine.js";
import { anyApi, defineSchema, defineTable, internalMutation, mutation } from "../../server/index.js";
import { openSqliteStorage } from "../../storage/sqlite/index.js";
import type { Storage, Timestamp } from "../../storage/types.js";
import { authTables } from "../../auth/tables.js";
import { v } from "../../values/index.js";
import { startAdminBackend, type AdminBackend } from "./fixtures/adminBackend.js";
import { RunLog } from "./runLog.js";
import { schedulerOverview } from "./scheduler.js";
import { getUser, listUsers, usersOverview } from "./users.js";

const KEY = "review5-admin-key-0123456789abcdefghij";
const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of cleanup.splice(0).reverse()) await close();
});

async function backend(): Promise<AdminBackend> {
  const started = await startAdminBackend(KEY);
  cleanup.push(() => started.close());
  return started;
}

/** The pages' streams the dashboard holds (private: nothing else shows a leaked one). */
const openStreams = (b: AdminBackend) => (b.dashboard as unknown as { stream: { size: number } }).stream.size;

describe("a page that leaves while its stream is being set up", () => {
  it("leaves no stream behind", async () => {
    const b = await backend();
    // The dashboard's first request binds the engine, which reads its crons: held here, so that
    // the page can leave while its stream request waits.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let binding!: () => void;
    const bindStarted = new Promise<void>((resolve) => (binding = resolve));
    const read = b.engine.read.bind(b.engine);
    const spy = vi.spyOn(b.engine, "read").mockImplementation(async (work) => {
      binding();
      await held;
      return read(work);
    });
    let serverRequest: IncomingMessage | null = null;
    let handled: Promise<boolean> | null = null;
    const handle = b.dashboard.handle.bind(b.dashboard);
    b.dashboard.handle = (request, ...rest) => ((serverRequest = request), (handled = handle(request, ...rest)));

    const { port } = new URL(b.server.url);
    const page = httpRequest({ host: "127.0.0.1", port, path: "/api/admin/stream", headers: { Authorization: `Bearer ${KEY}` }, agent: false });
    page.on("error", () => {});
    page.end();
    await bindStarted;
    const gone = new Promise((resolve) => serverRequest!.once("close", resolve));
    page.destroy(); // the page goes away (a reload, a closed tab) while the server binds
    await gone;
    spy.mockRestore();
    release();
    await handled;
    expect(openStreams(b)).toBe(0);
  });
});

describe("closing the dashboard", () => {
  it("ends the pages' streams, which would otherwise hold the server's close", async () => {
    const b = await backend();
    const controller = new AbortController();
    const response = await fetch(`${b.server.url}/api/admin/stream`, { headers: { Authorization: `Bearer ${KEY}` }, signal: controller.signal });
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    expect((await reader.read()).value).toContain('"hello"');
    b.dashboard.close();
    const serverClosed = b.server.close();
    // The page reads to the end of its stream: ended, not cut when the server's grace period ran out.
    let ended = false;
    while (!ended) ended = (await reader.read()).done;
    await serverClosed;
    expect(openStreams(b)).toBe(0);
  });
});

/**
 * Wraps a storage: commits land, but after `hold` none becomes durable until `release`
 * (SQLite under synchronous=FULL syncs its log after a commit lands).
 */
function heldDurability(inner: Storage) {
  let holding = false;
  let durable = 0;
  const asked: Timestamp[] = [];
  const waiters: Array<() => void> = [];
  const whenDurable = (ts: Timestamp): Promise<void> | null => {
    asked.push(ts);
    if (!holding || ts <= durable) return null;
    return new Promise<void>((resolve) => waiters.push(resolve));
  };
  const storage = new Proxy(inner, {
    get(target, property, receiver) {
      if (property === "whenDurable") return whenDurable;
      const value = Reflect.get(target, property, receiver) as unknown;
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return {
    storage,
    hold: () => void (holding = true),
    release() {
      holding = false;
      durable = Math.max(durable, ...asked);
      for (const resolve of waiters.splice(0)) resolve();
    },
  };
}

describe("the Users and Scheduler screens", () => {
  const schema = defineSchema({
    ...authTables,
    notes: defineTable({ author: v.id("users"), text: v.string() }).index("by_author", ["author"]),
  });
  const modules = {
    people: {
      add: mutation({ args: { name: v.string() }, handler: (ctx, { name }) => ctx.db.insert("users", { name, isAnonymous: true }) }),
      rename: mutation({
        args: { id: v.id("users"), name: v.string() },
        handler: async (ctx, { id, name }) => {
          await ctx.db.patch(id, { name });
          await ctx.db.insert("notes", { author: id, text: name });
          await ctx.scheduler.runAfter(60_000, anyApi.people!.later!, {});
        },
      }),
      later: internalMutation({ args: {}, handler: async () => {} }),
    },
  };

  it("show a commit only once it is durable, as the Data screen does", async () => {
    const held = heldDurability(await openSqliteStorage({ filename: ":memory:" }));
    const engine = await Engine.open({ storage: held.storage, schema, modules, runScheduler: false });
    cleanup.push(() => engine.close());
    const userId = (await engine.runMutation("people:add", { name: "ada" })).value as string;
    held.hold();
    const before = engine.latestTimestamp;
    const renamed = engine.runMutation("people:rename", { id: userId, name: "grace" });
    await expect.poll(() => engine.latestTimestamp).toBeGreaterThan(before); // landed, not durable

    let released = false;
    const shownEarly: string[] = [];
    const watch = <T>(name: string, read: Promise<T>) => read.then((value) => (released || shownEarly.push(name), value));
    const listed = watch("users/list", listUsers(engine, {}));
    const detail = watch("users/get", getUser(engine, { userId }));
    const overview = watch("users/overview", usersOverview(engine, new RunLog()));
    const scheduler = watch("scheduler", schedulerOverview(engine));
    await new Promise((resolve) => setTimeout(resolve, 50));
    released = true;
    held.release();
    await renamed;
    expect(shownEarly).toEqual([]);
    // Once durable, each shows the commit.
    expect((await listed).page[0]).toMatchObject({ _id: userId, name: "grace" });
    const { user, data } = await detail;
    expect(user.doc.name).toBe("grace");
    expect(data.find((d) => d.table === "notes")).toMatchObject({ count: 1 });
    expect(await overview).toMatchObject({ anonymous: 1 });
    expect((await scheduler).jobs.pending!.map((job) => job.name)).toEqual(["people:later"]);
  });
});
