/**
 * The admin API's invariants on a real server (loopback): the key is needed on every
 * path variant and method, no CORS for other origins, edits and "run as" take IDs of the right
 * table only, hidden fields never leave the server (not even inside a cursor), bad input gets a
 * clear error, and a page's live queries end with its stream.
 */
import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Engine } from "../../engine/engine.js";
import { openSqliteStorage } from "../../storage/sqlite/index.js";
import { startServer, type WalkinServer } from "../../transport/index.js";
import { defineSchema, defineTable, mutation, query } from "../../server/index.js";
import { v } from "../../values/index.js";
import { vSessionId } from "../../sessions/sessionId.js";
import { Dashboard } from "./dashboard.js";
import { startAdminBackend, type AdminBackend } from "./fixtures/adminBackend.js";

const KEY = "probe-admin-key-0123456789abcdefghij";
let backend: AdminBackend;
let engine: Engine;
let server: WalkinServer;
let user: AdminBackend["user"];
let messageId: string;

beforeAll(async () => {
  backend = await startAdminBackend(KEY);
  ({ engine, server, user, messageId } = backend);
});

afterAll(() => backend.close());

const call = (path: string, body?: unknown, key: string | null = KEY) => backend.call(path, body, key);

/** A raw request: the path is sent exactly as written (fetch would normalize it). */
function raw(method: string, path: string, headers: Record<string, string> = {}, body?: Buffer | string) {
  const { port } = new URL(server.url);
  return new Promise<{ status: number; text: string; headers: Record<string, unknown> } | { error: string }>((resolve) => {
    // An explicit length: without it Node's client sends a DELETE body unframed.
    const framed = body === undefined ? headers : { ...headers, "Content-Length": String(Buffer.byteLength(body)) };
    const req = httpRequest({ host: "127.0.0.1", port, method, path, headers: framed, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8"), headers: res.headers }));
      res.on("error", (e) => resolve({ error: e.message }));
    });
    req.on("error", (e) => resolve({ error: (e as NodeJS.ErrnoException).code ?? e.message }));
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

describe("the key on every path variant and method", () => {
  const variants = [
    "/api/admin/tables",
    "/api/admin/tables/",
    "/api/admin/tables?x=1",
    "/api/admin//tables",
    "/api/admin/./tables",
    "/api/admin/x/../tables",
    "/_dashboard/../api/admin/tables",
    "/_dashboard/%2e%2e/api/admin/tables",
    "/api/admin/%74ables",
    "/api/admin%2Ftables",
    "/api%2fadmin%2ftables",
    "/API/admin/tables",
    "/api/ADMIN/tables",
    "/api/admin\\tables",
    "/api\\admin\\tables",
    "http://evil.example/api/admin/tables",
    "/api/admin",
    "/api/admin/",
    "/api/admin/stream",
    "/api/admin/documents/list",
    "/api/admin/documents/insert",
  ];
  const methods = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "DELETE", "PATCH"];

  it("never answers with data without the key", async () => {
    for (const path of variants) {
      for (const method of methods) {
        const body = method === "GET" || method === "HEAD" || method === "OPTIONS" ? undefined : JSON.stringify({ table: "messages", document: { author: user.userId, body: "csrf" } });
        for (const auth of <Record<string, string>[]>[{}, { Authorization: `Bearer ${KEY}x` }, { Authorization: `Basic ${Buffer.from(`admin:${KEY}`).toString("base64")}` }, { Authorization: KEY }]) {
          const answer = await raw(method, path, { ...auth, "Content-Type": "application/json", Origin: "http://evil.example" }, body);
          expect("error" in answer ? answer.error : "", `${method} ${path}`).toBe("");
          if ("error" in answer) continue;
          // What the server sees as an admin path gets 401 before anything else; any other variant is not the admin API.
          const seen = new URL(path, "http://localhost").pathname;
          if (seen === "/api/admin" || seen.startsWith("/api/admin/")) expect(`${method} ${path} → ${answer.status}`).toBe(`${method} ${path} → 401`);
          else expect([404, 405].includes(answer.status) || (answer.status === 204 && method === "OPTIONS"), `${method} ${path} → ${answer.status}`).toBe(true);
          expect(answer.text).not.toMatch(/"count"|hello|"page"|streamId/);
          // Never a CORS grant from the admin API (the public /api/* 404 for a variant it does not own has one, and no data).
          if (answer.text.startsWith('{"error"')) expect(answer.headers["access-control-allow-origin"], `${method} ${path}`).toBeUndefined();
        }
      }
    }
    // Nothing was written by any of them.
    expect((await call("documents/list", { table: "messages", filters: [{ field: "body", value: "csrf" }] })).json.page).toHaveLength(0);
  });

  it("a browser preflight from another origin gets no CORS grant, with or without the key", async () => {
    for (const auth of <Record<string, string>[]>[{}, { Authorization: `Bearer ${KEY}` }]) {
      const answer = await raw("OPTIONS", "/api/admin/documents/insert", { ...auth, Origin: "http://evil.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type" });
      if ("error" in answer) throw new Error(answer.error);
      expect(answer.headers["access-control-allow-origin"]).toBeUndefined();
      expect(answer.headers["access-control-allow-headers"]).toBeUndefined();
    }
  });

  it("with the key, a path variant is not found, a wrong method is refused, and no answer carries the key", async () => {
    for (const path of ["/api/admin/tables/", "/api/admin/%74ables", "/api/admin/TABLES", "/api/admin/__proto__", "/api/admin/constructor", "/api/admin/hasOwnProperty"]) {
      const answer = await raw("GET", path, { Authorization: `Bearer ${KEY}` });
      if ("error" in answer) throw new Error(answer.error);
      expect([path, answer.status]).toEqual([path, 404]);
      expect(answer.text).not.toContain(KEY);
    }
    for (const method of ["HEAD", "PUT", "DELETE", "OPTIONS"]) {
      const answer = await raw(method, "/api/admin/tables", { Authorization: `Bearer ${KEY}` });
      if ("error" in answer) throw new Error(answer.error);
      expect([method, answer.status]).toEqual([method, 405]);
    }
    const bad = await raw("POST", "/api/admin/documents/get", { Authorization: `Bearer ${KEY}` }, "{not json");
    if ("error" in bad) throw new Error(bad.error);
    expect(bad.status).toBe(400);
    expect(bad.text).not.toContain(KEY);
  });
});

describe("IDs of the right table", () => {
  it("refuses to run a function as a 'user' whose ID is not of the users table", async () => {
    // A message's _id is not a user: getAuthUserId must never return it.
    const ran = await call("functions/run", { path: "messages:mine", as: { kind: "user", userId: messageId } });
    expect(ran.status).toBe(400);
    expect(ran.json.error.message).toMatch(/user/);
  });

  it("refuses to watch a query as a 'user' whose ID is not of the users table", async () => {
    const controller = new AbortController();
    const streamId = await backend.openStream(controller);
    const watched = await call("functions/watch", { streamId, path: "messages:mine", as: { kind: "user", userId: messageId } });
    controller.abort();
    expect(watched.status).toBe(400);
  });

  it("refuses documents/get, replace and delete of a system table's document, and session 'run as' of another table", async () => {
    const asSession = await call("functions/run", { path: "auth:currentSession", as: { kind: "session", authSessionId: messageId } });
    expect(asSession.status).toBe(400);
    const cancel = await call("scheduler/cancel", { id: messageId });
    expect(cancel.status).toBe(400);
    const revoke = await call("sessions/revoke", { authSessionId: messageId });
    expect(revoke.status).toBe(400);
    const getUser = await call("users/get", { userId: messageId });
    expect(getUser.status).toBe(400);
    expect((await call("documents/get", { id: messageId })).json.doc.body).toBe("hello");
  });
});

describe("hidden fields never leave the server", () => {
  it("not even as the key of a cursor over an index on a hidden field", async () => {
    const secret = "HIDDEN-KEYHASH-0123456789abcdef";
    await engine.runSystemMutation(async (txn) => {
      await txn.insert(engine.catalog.lookup("authVerifiers")!, { keyHash: secret, provider: "p", value: "v", expiresAt: Date.now() + 60_000 });
      await txn.insert(engine.catalog.lookup("authVerifiers")!, { keyHash: "other-hash", provider: "p", value: "v", expiresAt: Date.now() + 60_000 });
    });
    const listed = await call("documents/list", { table: "authVerifiers", index: "by_keyHash", numItems: 1 });
    // Newest first by the index: the page holds the verifier with the greater hash ("other-hash").
    for (const hidden of [secret, "other-hash"]) {
      expect(listed.text).not.toContain(hidden);
      const cursorBytes = listed.status === 200 && listed.json.continueCursor ? Buffer.from(listed.json.continueCursor, "base64url").toString("latin1") : "";
      expect(cursorBytes).not.toContain(hidden);
    }
  });

  it("an edit cannot set a hidden field and keeps its stored value", async () => {
    const [row] = (await call("documents/list", { table: "authVerifiers" })).json.page;
    const refused = await call("documents/replace", { id: row.doc._id, document: { ...row.doc, keyHash: "chosen" } });
    expect(refused.status).toBe(400);
    const kept = await call("documents/replace", { id: row.doc._id, document: { provider: "q", expiresAt: 1 } });
    expect(kept.status).toBe(200);
    const stored = await engine.read((txn) => txn.get(row.doc._id));
    expect(stored).toMatchObject({ provider: "q", value: "v" });
    expect(typeof stored!.keyHash).toBe("string");
  });
});

describe("bad input gets a clear error and changes nothing", () => {
  it("refuses odd documents with 400", async () => {
    const count = async () => (await call("documents/list", { table: "messages", numItems: 200 })).json.page.length;
    const before = await count();
    for (const document of [
      { author: user.userId, body: "x", _secret: 1 },
      { author: user.userId, body: "x", $weird: 1 },
      JSON.parse(`{"author": "${user.userId}", "body": "x", "__proto__": {"_id": "x"}}`),
      { author: messageId, body: "wrong table id" },
      { author: user.userId, body: "x", _creationTime: 5 },
      [],
      "text",
      null,
    ]) {
      const answer = await call("documents/insert", { table: "messages", document });
      expect([JSON.stringify(document), answer.status]).toEqual([JSON.stringify(document), 400]);
      expect(answer.json.error.message.length).toBeGreaterThan(0);
    }
    for (const bad of [{ numItems: 0 }, { numItems: 201 }, { numItems: 1.5 }, { numItems: "10" }, { filters: "x" }, { filters: Array(11).fill({ field: "body", value: "x" }) }, { index: "nope" }, { cursor: 5 }, { cursor: "garbage!" }]) {
      const answer = await call("documents/list", { table: "messages", ...bad });
      expect([JSON.stringify(bad).slice(0, 80), answer.status]).toEqual([JSON.stringify(bad).slice(0, 80), 400]);
    }
    expect(await count()).toBe(before);
  });

  it("answers a body over the limit with 413, not a reset connection", async () => {
    const big = JSON.stringify({ table: "messages", document: { author: user.userId, body: "x".repeat(5 * 1024 * 1024) } });
    const answer = await raw("POST", "/api/admin/documents/insert", { Authorization: `Bearer ${KEY}`, "Content-Type": "application/json", "Content-Length": String(Buffer.byteLength(big)) }, big);
    expect(answer).toMatchObject({ status: 413 });
  });
});

describe("a page's live queries end with its stream", () => {
  it("closes the watches when the page goes away", async () => {
    const before = engine.subscriptions.size;
    const controller = new AbortController();
    const streamId = await backend.openStream(controller);
    expect((await call("functions/watch", { streamId, path: "messages:mine", args: {}, as: { kind: "user", userId: user.userId } })).status).toBe(200);
    expect((await call("functions/watch", { streamId, path: "messages:mine", args: {} })).status).toBe(200);
    expect(engine.subscriptions.size).toBe(before + 2);
    controller.abort();
    await expect.poll(() => engine.subscriptions.size, { timeout: 5_000 }).toBe(before);
    // The stream is gone: a watch on it is refused and starts nothing.
    expect((await call("functions/watch", { streamId, path: "messages:mine" })).status).toBe(404);
    expect(engine.subscriptions.size).toBe(before);
  });
});

describe("a field validated by vSessionId inside another validator", () => {
  const appSchema = defineSchema({
    notes: defineTable({ owner: v.nullable(vSessionId), text: v.string() }),
  });
  const modules = {
    notes: {
      add: mutation({ args: { sessionId: vSessionId }, handler: async (ctx, { sessionId }) => (await ctx.db.insert("notes", { owner: sessionId, text: "t" }), sessionId as string) }),
      all: query({ args: {}, handler: async (ctx) => (await ctx.db.query("notes").collect()).length }),
    },
  };

  it("is hidden as well, and an insert cannot set it", async () => {
    const board = new Dashboard({ adminKey: KEY });
    const e = await Engine.open({ storage: await openSqliteStorage({ filename: ":memory:" }), schema: appSchema, modules, runScheduler: false, observeRun: board.observeRun });
    const s = await startServer({ engine: e, port: 0, log: () => {}, dashboard: board });
    try {
      const digest = (await e.runMutation("notes:add", { sessionId: crypto.randomUUID() }, { fromClient: true })).value as string;
      expect(digest).toMatch(/^sd1_/);
      const response = await fetch(`${s.url}/api/admin/documents/list`, { method: "POST", headers: { Authorization: `Bearer ${KEY}` }, body: JSON.stringify({ table: "notes" }) });
      expect(response.status).toBe(200);
      expect(await response.text()).not.toContain(digest);
      // Nor can an insert set one: the document would hold a value of the admin's choosing
      // where the app's code expects a digest it made.
      const before = await e.runQuery("notes:all", {});
      const insert = await fetch(`${s.url}/api/admin/documents/insert`, {
        method: "POST",
        headers: { Authorization: `Bearer ${KEY}` },
        body: JSON.stringify({ table: "notes", document: { owner: "sd1_chosen", text: "t" } }),
      });
      expect(insert.status).toBe(400);
      expect(((await insert.json()) as { error: { message: string } }).error.message).toMatch(/"owner" is a hidden field and cannot be set here/);
      expect(await e.runQuery("notes:all", {})).toBe(before);
      // Set to null, it holds no secret: that insert goes through.
      const plain = await fetch(`${s.url}/api/admin/documents/insert`, {
        method: "POST",
        headers: { Authorization: `Bearer ${KEY}` },
        body: JSON.stringify({ table: "notes", document: { owner: null, text: "t" } }),
      });
      expect(plain.status).toBe(200);
      expect(await e.runQuery("notes:all", {})).toBe((before as number) + 1);
    } finally {
      board.close();
      await s.close();
      await e.close();
    }
  });
});

