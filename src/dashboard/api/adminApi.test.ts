/**
 * The admin API on a real server and engine (walkin/auth's test app): every route refuses a
 * missing or wrong key with 401 and nothing else; with the key, reads never carry secrets,
 * edits are validated and a refused one changes nothing, revocation ends the session, and
 * the admin API cannot be reached through the client protocol.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import type { Engine } from "../../engine/engine.js";
import type { WalkinServer } from "../../transport/index.js";
import { from } from "../../auth/fixtures/harness.js";
import { Dashboard } from "./dashboard.js";
import { startAdminBackend, type AdminBackend } from "./fixtures/adminBackend.js";
import { TableCounts } from "./tables.js";

const KEY = "test-admin-key-0123456789abcdefghij";
let backend: AdminBackend;
let engine: Engine;
let server: WalkinServer;
let user: AdminBackend["user"];

beforeAll(async () => {
  backend = await startAdminBackend(KEY);
  ({ engine, server, user } = backend);
});

afterAll(() => backend.close());

const call = (path: string, body?: unknown, key: string | null = KEY) => backend.call(path, body, key);

describe("the admin key", () => {
  const routes = () => new Dashboard({ adminKey: KEY }).routeList();

  it("lists every route, the stream included", () => {
    expect(routes().map(([, path]) => path)).toEqual(expect.arrayContaining(["/api/admin/tables", "/api/admin/sessions/revoke", "/api/admin/stream"]));
  });

  it.each([
    ["missing", null],
    ["wrong", "test-admin-key-0123456789abcdefghiX"],
    ["a prefix of the key", KEY.slice(0, -1)],
    ["empty", ""],
  ])("refuses a %s key on every route with 401 and nothing else", async (_what, key) => {
    for (const [method, path] of [...routes(), ["GET", "/api/admin/no-such-route"], ["POST", "/api/admin"]] as const) {
      const response = await fetch(`${server.url}${path}`, {
        method,
        headers: key === null ? {} : { Authorization: `Bearer ${key}` },
        body: method === "POST" ? JSON.stringify({ id: user.userId, table: "messages", document: { body: "x" } }) : undefined,
      });
      expect([path, response.status]).toEqual([path, 401]);
      expect(await response.json()).toEqual({ error: { code: "UNAUTHENTICATED", message: "The admin key is missing or wrong." } });
    }
    // Nothing was written by any of them.
    expect((await call("documents/list", { table: "messages" })).json.page).toHaveLength(1);
  });

  it("serves the page without any secret in it", async () => {
    for (const file of ["", "/app.js", "/app.css"]) {
      const response = await fetch(`${server.url}/_dashboard${file}`);
      expect(response.status).toBe(200);
      expect(await response.text()).not.toContain(KEY);
    }
  });

  it("cannot be reached through the client protocol", async () => {
    await expect(engine.runQuery("admin:tables", {}, { fromClient: true })).rejects.toThrow(/Unknown function/);
    const upgrade = new WebSocket(`${server.url.replace("http", "ws")}/api/admin/stream`, { headers: { Authorization: `Bearer ${KEY}` } });
    const status = await new Promise<number>((resolve) => upgrade.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0)).on("error", () => resolve(-1)));
    expect(status).toBe(404);
  });
});

describe("with the key", () => {
  it("lists tables with counts and hides secret fields everywhere", async () => {
    const tables = (await call("tables")).json as Array<{ name: string; count: number; hiddenFields: string[] }>;
    expect(tables.find((t) => t.name === "messages")?.count).toBe(1);
    expect(tables.find((t) => t.name === "authSessions")?.hiddenFields).toEqual(expect.arrayContaining(["keyHash", "secretHash", "clientSessionId"]));
    expect(tables.find((t) => t.name === "drafts")?.hiddenFields).toEqual(["sessionId"]);
    expect(tables.some((t) => t.name.startsWith("_"))).toBe(false);
    const sessions = await call("documents/list", { table: "authSessions" });
    expect(sessions.status).toBe(200);
    expect(sessions.text).not.toMatch(/keyHash|secretHash|clientSessionId/);
    const detail = await call("users/get", { userId: user.userId });
    expect(detail.status).toBe(200);
    expect(detail.text).not.toMatch(/keyHash|secretHash|clientSessionId|wk1\./);
    expect(detail.json.data).toEqual(expect.arrayContaining([expect.objectContaining({ table: "messages", field: "author", count: 1 })]));
    const probe = await call("documents/list", { table: "authSessions", filters: [{ field: "keyHash", value: "x" }] });
    expect(probe.status).toBe(400);
    expect(probe.json.error.message).toContain("hidden field");
  });

  it("filters by an index and marks references", async () => {
    const mine = await call("documents/list", { table: "messages", index: "by_author", indexValues: [user.userId] });
    expect(mine.json.page).toHaveLength(1);
    expect(mine.json.page[0].refs).toEqual({ author: "users" });
    const none = await call("documents/list", { table: "messages", filters: [{ field: "body", op: "eq", value: "nope" }] });
    expect(none.json.page).toHaveLength(0);
  });

  it("refuses an invalid edit with the validator's message and changes nothing", async () => {
    const [message] = (await call("documents/list", { table: "messages" })).json.page;
    const refused = await call("documents/replace", { id: message.doc._id, document: { author: user.userId, body: 5 } });
    expect(refused.status).toBe(400);
    expect(refused.json.error.message).toMatch(/body/);
    expect((await call("documents/get", { id: message.doc._id })).json.doc.body).toBe("hello");
    const moved = await call("documents/replace", { id: message.doc._id, document: { _id: "other", author: user.userId, body: "x" } });
    expect(moved.json.error.message).toContain("_id");
    const saved = await call("documents/replace", { id: message.doc._id, document: { author: user.userId, body: "edited" } });
    expect(saved.status).toBe(200);
    expect((await call("documents/get", { id: message.doc._id })).json.doc.body).toBe("edited");
  });

  it("inserts and deletes documents, validated, and counts follow", async () => {
    const refused = await call("documents/insert", { table: "messages", document: { author: user.userId } });
    expect(refused.status).toBe(400);
    expect(refused.json.error.message).toMatch(/body/);
    const chosenId = await call("documents/insert", { table: "messages", document: { _id: "mine", author: user.userId, body: "x" } });
    expect(chosenId.json.error.message).toContain("cannot be chosen");
    const count = async () => ((await call("tables")).json as Array<{ name: string; count: number }>).find((t) => t.name === "messages")!.count;
    const before = await count();
    const { json } = await call("documents/insert", { table: "messages", document: { author: user.userId, body: "from the dashboard" } });
    // Counted just before: the new count comes once the recount interval has passed.
    await expect.poll(count, { timeout: 10_000 }).toBe(before + 1);
    expect((await call("documents/delete", { id: json.id })).status).toBe(200);
    await expect.poll(count, { timeout: 10_000 }).toBe(before);
    expect((await call("documents/delete", { id: json.id })).status).toBe(404);
    expect((await call("documents/insert", { table: "_scheduled_functions", document: {} })).status).toBe(404);
  });

  it("recounts a busy table at most every two seconds, and says when the exact count is in", async () => {
    let recounted: (table: string) => void = () => {};
    // A stopped clock: every count is "recent", whatever this machine's pauses, so the order of
    // events is fixed; the recount comes 50 ms (real time) later.
    const counts = new TableCounts((table) => recounted(table), { recountMs: 50, now: () => 0 });
    const messages = async () => (await counts.summaries(engine)).find((t) => t.name === "messages")!.count;
    const before = await messages();
    const writes = 5;
    for (let i = 0; i < writes; i++) {
      await engine.runMutation("messages:send", { body: `busy ${i}` }, { identity: { subject: user.userId, issuer: "walkin", tokenIdentifier: `walkin|${user.userId}` } });
    }
    // Commits mark the table stale again and again; the answers come from the cache (they
    // resolve in microtasks, before the deferred recount's timer can fire): no scan per write.
    for (let i = 0; i < writes; i++) {
      counts.forget(["messages"]);
      expect(await messages()).toBe(before);
    }
    const table = await new Promise<string>((resolve) => (recounted = resolve));
    expect(table).toBe("messages");
    expect(await messages()).toBe(before + writes);
    counts.close();
  });

  it("streams runs, commits and live query results", async () => {
    const controller = new AbortController();
    const response = await fetch(`${server.url}/api/admin/stream`, { headers: { Authorization: `Bearer ${KEY}` }, signal: controller.signal });
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    const events: any[] = [];
    let buffer = "";
    const until = async (test: (event: any) => boolean) => {
      for (;;) {
        const found = events.find(test);
        if (found) return found;
        const { value, done } = await reader.read();
        if (done) throw new Error("stream ended");
        buffer += value;
        const parts = buffer.split("\n\n");
        buffer = parts.pop()!;
        for (const part of parts) if (part.startsWith("data: ")) events.push(JSON.parse(part.slice(6)));
      }
    };
    const { streamId } = await until((e) => e.type === "hello");
    const watched = await call("functions/watch", { streamId, path: "messages:mine", as: { kind: "user", userId: user.userId } });
    expect(watched.json.outcome).toEqual({ ok: true, value: expect.any(Array) });
    await engine.runMutation("messages:send", { body: "streamed" }, { identity: { subject: user.userId, issuer: "walkin", tokenIdentifier: `walkin|${user.userId}` } });
    await until((e) => e.type === "commit" && e.tables.includes("messages"));
    await until((e) => e.type === "runs" && e.runs.some((r: any) => r.path === "messages:send"));
    const update = await until((e) => e.type === "watch" && e.watchId === watched.json.watchId);
    expect(update.outcome.value).toContain("streamed");
    controller.abort();
  });

  it("runs a query as a chosen session, and revoking that session ends it at once", async () => {
    const { json } = await call("users/get", { userId: user.userId });
    const authSessionId = json.sessions[0]._id;
    const ran = await call("functions/run", { path: "auth:currentSession", as: { kind: "session", authSessionId } });
    expect(ran.json.value).toMatchObject({ authSessionId, userId: user.userId });
    expect((await call("sessions/revoke", { authSessionId })).json).toEqual({ revoked: true });
    expect(await engine.runQuery("auth:currentSession", {}, from("10.0.0.1", user.token))).toBeNull();
    const after = await call("functions/run", { path: "auth:currentSession", as: { kind: "session", authSessionId } });
    expect(after.status).toBe(400);
  });

  it("logs runs with their caller kind, and never their arguments", async () => {
    await call("functions/run", { path: "messages:send", args: { body: "a secret body" }, as: { kind: "user", userId: user.userId } });
    const logs = (await call("logs")).json as Array<{ path: string; caller: string; outcome: string }>;
    expect(logs).toEqual(expect.arrayContaining([expect.objectContaining({ path: "messages:send", caller: "dashboard", outcome: "success" })]));
    expect(JSON.stringify(logs)).not.toContain("a secret body");
  });

  it("answers users, scheduler and health", async () => {
    const overview = await call("users/overview");
    expect(overview.status).toBe(200);
    expect(overview.json.trend).toHaveLength(24);
    expect((await call("scheduler")).status).toBe(200);
    expect((await call("health")).json).toMatchObject({ liveQueries: expect.any(Number), connectedClients: expect.any(Number) });
  });

  it("filters a table bigger than one read in chunks, page after page, nothing missed or repeated", { timeout: 60_000 }, async () => {
    const bulk = (await call("documents/insert", { table: "users", document: { name: "bulk" } })).json.id;
    const rare = (await call("documents/insert", { table: "users", document: { name: "rare" } })).json.id;
    await engine.runSystemMutation(async (txn) => {
      const messages = engine.catalog.lookup("messages")!;
      for (let i = 0; i < 2_500; i++) await txn.insert(messages, { author: i % 100 === 0 ? rare : bulk, body: `n${i}` });
    });
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 10; pages++) {
      const { json } = await call("documents/list", { table: "messages", filters: [{ field: "author", value: rare }], numItems: 10, cursor });
      seen.push(...json.page.map((view: { doc: { body: string } }) => view.doc.body));
      if (json.isDone) break;
      cursor = json.continueCursor;
    }
    const expected = Array.from({ length: 25 }, (_, k) => `n${2_400 - k * 100}`);
    expect(seen).toEqual(expected);
  });
});
