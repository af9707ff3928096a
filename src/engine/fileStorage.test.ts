/**
 * File storage (`ctx.storage`, fileStore.ts) end to end: a real server on loopback, uploads
 * and downloads over HTTP, the functions a Convex app writes, and the sweep that removes the
 * bytes of deleted and abandoned files.
 */
import { createHash, randomBytes } from "node:crypto";
import { request as httpRequest } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { WalkinClient } from "../browser/index.js";
import { action, defineSchema, defineTable, makeFunctionReference, mutation, query } from "../server/index.js";
import { v, type Id } from "../values/index.js";
import { openTestStorage } from "../testing/testStorage.js";
import { startServer, type WalkinServer } from "../transport/server.js";
import { Engine } from "./engine.js";
import { CHUNK_BYTES, sweepFiles } from "./fileStore.js";
import { QueryImpl } from "./query.js";

const schema = defineSchema({
  messages: defineTable({ body: v.string(), file: v.id("_storage") }),
});

const modules = {
  files: {
    uploadUrl: mutation({ args: {}, handler: (ctx) => ctx.storage.generateUploadUrl() }),
    send: mutation({
      args: { body: v.string(), file: v.id("_storage") },
      handler: (ctx, message) => ctx.db.insert("messages", message),
    }),
    list: query({
      args: {},
      handler: async (ctx) => {
        const messages = await ctx.db.query("messages").collect();
        return Promise.all(messages.map(async (message) => ({ body: message.body, url: await ctx.storage.getUrl(message.file) })));
      },
    }),
    describe: query({
      args: { id: v.id("_storage") },
      handler: async (ctx, { id }) => ({ system: await ctx.db.system.get(id), metadata: await ctx.storage.getMetadata(id) }),
    }),
    listSystem: query({ args: {}, handler: (ctx) => ctx.db.system.query("_storage").collect() }),
    urlOf: query({ args: { id: v.string() }, handler: (ctx, { id }) => ctx.storage.getUrl(id) }),
    remove: mutation({ args: { id: v.id("_storage") }, handler: (ctx, { id }) => ctx.storage.delete(id) }),
    storeText: action({
      args: { text: v.string(), type: v.string(), sha256: v.optional(v.string()) },
      handler: (ctx, { text, type, sha256 }) => ctx.storage.store(new Blob([text], { type }), sha256 === undefined ? undefined : { sha256 }),
    }),
    readText: action({
      args: { id: v.id("_storage") },
      handler: async (ctx, { id }) => {
        const blob = await ctx.storage.get(id);
        return blob && { text: await blob.text(), type: blob.type };
      },
    }),
    removeInAction: action({ args: { id: v.id("_storage") }, handler: (ctx, { id }) => ctx.storage.delete(id) }),
    uploadUrlInAction: action({ args: {}, handler: (ctx) => ctx.storage.generateUploadUrl() }),
  },
};

let engine: Engine;
let server: WalkinServer;
const opened: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const close of opened.splice(0).reverse()) await close();
  delete process.env.WALKIN_URL;
});

async function start(options: { maxFileBytes?: number; runScheduler?: boolean } = {}): Promise<void> {
  const { runScheduler = false, maxFileBytes } = options;
  engine = await Engine.open({ storage: await openTestStorage(), schema, modules, runScheduler, logError: () => {}, maxFileBytes });
  opened.push(() => engine.close());
  server = await startServer({ engine, port: 0, log: () => {} });
  opened.push(() => server.close());
}

const call = {
  mutation: async (path: string, args: Record<string, unknown> = {}) => (await engine.runMutation(path, args)).value,
  query: (path: string, args: Record<string, unknown> = {}) => engine.runQuery(path, args),
  action: (path: string, args: Record<string, unknown> = {}) => engine.runAction(path, args),
};

function sha256Base64(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("base64");
}

async function upload(bytes: Uint8Array<ArrayBuffer>, type = "application/octet-stream", url?: string): Promise<Response> {
  const target = url ?? ((await call.mutation("files:uploadUrl")) as string);
  return fetch(target, { method: "POST", headers: { "Content-Type": type }, body: bytes });
}

/** Rows left in the file tables: what the sweep must bring to nothing. */
async function fileRows(): Promise<{ files: number; chunks: number; pending: number }> {
  return engine.read(async (txn) => {
    const count = async (table: string) => (await new QueryImpl(txn, engine.catalog.lookup(table, { system: true })!).collect()).length;
    return { files: await count("_storage"), chunks: await count("_storage_chunks"), pending: await count("_storage_pending") };
  });
}

describe("uploading and serving a file", () => {
  it("stores what was uploaded, shows its metadata as Convex does, and serves the same bytes at getUrl", async () => {
    await start();
    const bytes = new Uint8Array(randomBytes(2 * CHUNK_BYTES + 1234)); // three chunks, the last partial
    const answer = await upload(bytes, "image/png");
    expect(answer.status).toBe(200);
    expect(answer.headers.get("access-control-allow-origin")).toBe("*");
    const { storageId } = (await answer.json()) as { storageId: Id<"_storage"> };
    await call.mutation("files:send", { body: "look", file: storageId });

    const [message] = (await call.query("files:list")) as Array<{ body: string; url: string }>;
    expect(message!.url).toBe(`${server.url}/api/storage/${storageId}`);
    const download = await fetch(message!.url);
    expect(download.status).toBe(200);
    expect(download.headers.get("content-type")).toBe("image/png");
    expect(download.headers.get("content-length")).toBe(String(bytes.length));
    expect(download.headers.get("etag")).toBe(`"${sha256Base64(bytes)}"`);
    expect(new Uint8Array(await download.arrayBuffer())).toEqual(bytes);

    const { system, metadata } = (await call.query("files:describe", { id: storageId })) as Record<string, Record<string, unknown>>;
    expect(Object.keys(system!).sort()).toEqual(["_creationTime", "_id", "contentType", "sha256", "size"]);
    expect(system).toMatchObject({ _id: storageId, sha256: sha256Base64(bytes), size: bytes.length, contentType: "image/png" });
    // getMetadata's hash is hex, as Convex's is; the document's base64, as Convex's is.
    expect(metadata).toEqual({ storageId, sha256: createHash("sha256").update(bytes).digest("hex"), size: bytes.length, contentType: "image/png" });
    expect(await call.query("files:listSystem")).toHaveLength(1);
  });

  it("an empty file, and a file without a Content-Type (served as application/octet-stream)", async () => {
    await start();
    const url = (await call.mutation("files:uploadUrl")) as string;
    const empty = await fetch(url, { method: "POST", body: new Uint8Array(0) });
    const { storageId } = (await empty.json()) as { storageId: string };
    const download = await fetch(`${server.url}/api/storage/${storageId}`);
    expect([download.status, download.headers.get("content-type"), (await download.arrayBuffer()).byteLength]).toEqual([200, "application/octet-stream", 0]);
    expect(await call.query("files:describe", { id: storageId })).toMatchObject({ metadata: { size: 0, contentType: null } });
  });

  it("an upload URL uploads one file; a used, expired or mistyped one is refused and stores nothing", async () => {
    await start();
    const url = (await call.mutation("files:uploadUrl")) as string;
    expect((await upload(new Uint8Array([1, 2, 3]), "text/plain", url)).status).toBe(200);
    const again = await upload(new Uint8Array([4]), "text/plain", url);
    expect(again.status).toBe(401);
    expect(((await again.json()) as { message: string }).message).toMatch(/used already.*generateUploadUrl/);

    // While one upload is under way, its URL cannot start another (they would write one file's chunks).
    const shared = new URL((await call.mutation("files:uploadUrl")) as string).searchParams.get("token")!;
    await engine.files.claimUpload(shared);
    await expect(engine.files.claimUpload(shared)).rejects.toMatchObject({ code: "UNAUTHENTICATED" });

    const late = (await call.mutation("files:uploadUrl")) as string;
    const pendingId = new URL(late).searchParams.get("token")!.split(".")[0]!;
    await engine.runSystemMutation((txn) => txn.patch(pendingId, { until: Date.now() - 1 }, { system: true }));
    expect((await upload(new Uint8Array([5]), "text/plain", late)).status).toBe(401);

    const fresh = new URL((await call.mutation("files:uploadUrl")) as string);
    const token = fresh.searchParams.get("token")!;
    for (const bad of ["", "nodot", `${token}x`, `${token.split(".")[0]}.`, `garbage.${token.split(".")[1]}`]) {
      fresh.searchParams.set("token", bad);
      expect((await upload(new Uint8Array([6]), "text/plain", fresh.toString())).status, bad).toBe(401);
    }
    expect((await fileRows()).files).toBe(1);
  });

  it("a file over maxFileBytes gets 413 and stores nothing; announced by Content-Length, the URL still takes a smaller one", async () => {
    await start({ maxFileBytes: 1000 });
    const url = (await call.mutation("files:uploadUrl")) as string;
    const tooBig = await upload(new Uint8Array(1001), "text/plain", url);
    expect(tooBig.status).toBe(413);
    expect(((await tooBig.json()) as { message: string }).message).toMatch(/1001 bytes.*up to 1000 bytes \(maxFileBytes\)/);
    expect((await upload(new Uint8Array(1000), "text/plain", url)).status).toBe(200);

    // Without Content-Length (chunked), the limit is found while the bytes arrive.
    const streamed = await chunkedUpload((await call.mutation("files:uploadUrl")) as string, [new Uint8Array(600), new Uint8Array(600)]);
    expect(streamed.status).toBe(413);
    expect((await fileRows()).files).toBe(1);
  });

  it("serves byte ranges (within a chunk, across chunks, a suffix), 416 past the end and 304 for a known ETag", async () => {
    await start();
    const bytes = new Uint8Array(randomBytes(CHUNK_BYTES + 500));
    const { storageId } = (await (await upload(bytes)).json()) as { storageId: string };
    const url = `${server.url}/api/storage/${storageId}`;
    const ranged = async (range: string) => {
      const answer = await fetch(url, { headers: { Range: range } });
      return { status: answer.status, contentRange: answer.headers.get("content-range"), body: new Uint8Array(await answer.arrayBuffer()) };
    };
    expect(await ranged("bytes=100-199")).toEqual({ status: 206, contentRange: `bytes 100-199/${bytes.length}`, body: bytes.slice(100, 200) });
    const across = await ranged(`bytes=${CHUNK_BYTES - 10}-${CHUNK_BYTES + 9}`);
    expect(across.body).toEqual(bytes.slice(CHUNK_BYTES - 10, CHUNK_BYTES + 10));
    expect((await ranged("bytes=-5")).body).toEqual(bytes.slice(-5));
    expect((await ranged(`bytes=${CHUNK_BYTES}-`)).body).toEqual(bytes.slice(CHUNK_BYTES));
    expect(await ranged(`bytes=${bytes.length}-`)).toMatchObject({ status: 416, contentRange: `bytes */${bytes.length}` });
    const etag = (await fetch(url, { method: "HEAD" })).headers.get("etag")!;
    expect((await fetch(url, { headers: { "If-None-Match": etag } })).status).toBe(304);
  });

  it("an uploaded page or SVG is served sandboxed, so it cannot run as the API's origin", async () => {
    await start();
    const { storageId } = (await (await upload(new TextEncoder().encode("<script>alert(1)</script>"), "text/html")).json()) as { storageId: string };
    const page = await fetch(`${server.url}/api/storage/${storageId}`);
    expect([page.headers.get("content-security-policy"), page.headers.get("x-content-type-options")]).toEqual(["sandbox", "nosniff"]);
    const { storageId: png } = (await (await upload(new Uint8Array([1]), "image/png")).json()) as { storageId: string };
    expect((await fetch(`${server.url}/api/storage/${png}`)).headers.get("content-security-policy")).toBeNull();
  });

  it("answers bad requests with a clear error", async () => {
    await start();
    const notFound = await fetch(`${server.url}/api/storage/not-an-id`);
    expect(notFound.status).toBe(404);
    expect(((await notFound.json()) as { message: string }).message).toMatch(/No file is stored under not-an-id/);
    expect((await fetch(`${server.url}/api/storage/upload`)).status).toBe(405);
    expect((await fetch(`${server.url}/api/storage/upload`, { method: "POST", body: "x" })).status).toBe(401);
    const messageId = await call.mutation("files:send", { body: "x", file: await storeText("x") });
    await expect(call.query("files:urlOf", { id: messageId as string })).rejects.toMatchObject({ code: "INVALID_ID", message: expect.stringMatching(/takes a storage ID/) });
  });
});

describe("getUrl", () => {
  it("starts with WALKIN_URL when it is set (the address browsers reach the server at)", async () => {
    await start();
    const id = await storeText("hi");
    process.env.WALKIN_URL = "https://api.example.com/ignored/path";
    expect(await call.query("files:urlOf", { id })).toBe(`https://api.example.com/api/storage/${id}`);
    process.env.WALKIN_URL = "not a url";
    await expect(call.query("files:urlOf", { id })).rejects.toThrow(/WALKIN_URL must be this server's public URL/);
  });
});

describe("actions", () => {
  it("store() and get() round-trip bytes and type; a wrong sha256 stores nothing", async () => {
    await start();
    const text = "x".repeat(CHUNK_BYTES + 7);
    const id = (await call.action("files:storeText", { text, type: "text/plain", sha256: sha256Base64(new TextEncoder().encode(text)) })) as string;
    expect(await call.action("files:readText", { id })).toEqual({ text, type: "text/plain" });

    await expect(call.action("files:storeText", { text: "abc", type: "text/plain", sha256: sha256Base64(new TextEncoder().encode("abd")) })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      message: expect.stringMatching(/Nothing was stored/),
    });
    expect((await fileRows()).files).toBe(1);
    await sweepFiles(engine);
    expect(await fileRows()).toEqual({ files: 1, chunks: 2, pending: 0 });
  });

  it("delete() and generateUploadUrl() work from an action too; get() of a deleted file is null", async () => {
    await start();
    const id = await storeText("bye");
    await call.action("files:removeInAction", { id });
    expect(await call.action("files:readText", { id })).toBeNull();
    const url = (await call.action("files:uploadUrlInAction")) as string;
    expect((await upload(new Uint8Array([1]), "text/plain", url)).status).toBe(200);
  });
});

describe("deleting, and the sweep", () => {
  it("a deleted file is gone at once for readers; its bytes go with the next sweep; deleting it again is NOT_FOUND", async () => {
    await start();
    // 17 chunks: more than one sweep commit deletes, so the sweep must keep the owner to the last.
    const bytes = new Uint8Array(randomBytes(CHUNK_BYTES * 16 + 1));
    const { storageId } = (await (await upload(bytes)).json()) as { storageId: string };
    await call.mutation("files:remove", { id: storageId });
    expect(await call.query("files:urlOf", { id: storageId })).toBeNull();
    expect((await fetch(`${server.url}/api/storage/${storageId}`)).status).toBe(404);
    expect(await fileRows()).toEqual({ files: 0, chunks: 17, pending: 1 });
    await expect(call.mutation("files:remove", { id: storageId })).rejects.toMatchObject({ code: "NOT_FOUND" });

    await new Promise((resolve) => setTimeout(resolve, 2)); // `until` is the deletion's millisecond: the sweep takes what is past it
    await sweepFiles(engine);
    expect(await fileRows()).toEqual({ files: 0, chunks: 0, pending: 0 });
  });

  it("an unused upload URL and the chunks of an upload cut off half-way are swept once due, never a stored file's", async () => {
    await start();
    const kept = await storeText("keep me");
    await call.mutation("files:uploadUrl"); // never used
    const cutUrl = (await call.mutation("files:uploadUrl")) as string;
    await cutOffUpload(cutUrl, new Uint8Array(CHUNK_BYTES * 12));
    // The cut-off upload is due at once (once the server has seen the cut); the unused URL in an hour.
    await waitFor(async () => {
      await sweepFiles(engine);
      return (await fileRows()).chunks === 1; // the kept file's chunk only
    });
    expect(await fileRows()).toMatchObject({ files: 1, pending: 1 });
    await engine.runSystemMutation(async (txn) => {
      const table = engine.catalog.lookup("_storage_pending", { system: true })!;
      for (const row of await new QueryImpl(txn, table).collect()) await txn.patch(row._id, { until: 0 }, { system: true });
    });
    await sweepFiles(engine);
    expect(await fileRows()).toEqual({ files: 1, chunks: 1, pending: 0 });
    expect(await call.action("files:readText", { id: kept })).toEqual({ text: "keep me", type: "text/plain" });
  });

  it("an upload that outlived its window (its reservation swept) fails at the end instead of appearing", async () => {
    await start();
    const token = new URL((await call.mutation("files:uploadUrl")) as string).searchParams.get("token")!;
    const claimed = await engine.files.claimUpload(token);
    const written = await engine.files.writeBytes(claimed, [new Uint8Array(10)]);
    await engine.runSystemMutation((txn) => txn.patch(claimed.pendingId, { until: 0 }, { system: true }));
    await sweepFiles(engine);
    // Chunks written after that would belong to nothing (and never be deleted): refused.
    await expect(engine.files.writeBytes(claimed, [new Uint8Array(10)])).rejects.toMatchObject({ code: "LIMIT_EXCEEDED" });
    await expect(engine.files.finish(claimed.pendingId, claimed.chunks, written, null)).rejects.toMatchObject({ code: "LIMIT_EXCEEDED", message: expect.stringMatching(/upload the file again/) });
    expect(await fileRows()).toEqual({ files: 0, chunks: 0, pending: 0 });
  });

  it("a live query showing a file's URL updates when the file is deleted", async () => {
    await start();
    const id = await storeText("shown");
    await call.mutation("files:send", { body: "with file", file: id });
    const client = new WalkinClient(server.url, { webSocketConstructor: WebSocket as never });
    opened.push(() => client.close());
    const watch = client.watchQuery(makeFunctionReference<"query">("files:list"), {});
    const results: unknown[] = [];
    watch.onUpdate(() => results.push(watch.localQueryResult()));
    await waitFor(async () => results.length > 0);
    expect(results.at(-1)).toEqual([{ body: "with file", url: `${server.url}/api/storage/${id}` }]);
    await client.mutation(makeFunctionReference<"mutation">("files:remove"), { id });
    expect(watch.localQueryResult()).toEqual([{ body: "with file", url: null }]);
  });

  it("the scheduler's loop sweeps a deleted file's bytes by itself", async () => {
    await start({ runScheduler: true });
    const id = await storeText("soon gone");
    await call.mutation("files:remove", { id });
    await waitFor(async () => (await fileRows()).chunks === 0 && (await fileRows()).pending === 0);
  });
});

async function storeText(text: string): Promise<Id<"_storage">> {
  return (await call.action("files:storeText", { text, type: "text/plain" })) as Id<"_storage">;
}

/** Polls `done` until it holds (each look is a read; the test's timeout bounds it). */
async function waitFor(done: () => Promise<boolean>): Promise<void> {
  while (!(await done())) await new Promise((resolve) => setTimeout(resolve, 10));
}

/** POSTs `pieces` with chunked transfer encoding (no Content-Length); the answer. */
function chunkedUpload(url: string, pieces: Uint8Array[]): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    const sent = httpRequest(url, { method: "POST", headers: { "Content-Type": "text/plain" } }, (answer) => {
      answer.resume();
      resolve({ status: answer.statusCode ?? 0 });
    });
    sent.on("error", (error) => (/EPIPE|ECONNRESET/.test(String(error)) ? undefined : reject(error)));
    for (const piece of pieces) sent.write(piece);
    sent.end();
  });
}

/** Sends three quarters of `bytes` of a declared whole, then cuts the connection. */
async function cutOffUpload(url: string, bytes: Uint8Array): Promise<void> {
  const sent = httpRequest(url, { method: "POST", headers: { "Content-Type": "text/plain", "Content-Length": String(bytes.length) } });
  sent.on("error", () => {});
  sent.write(bytes.subarray(0, Math.floor((bytes.length * 3) / 4)));
  await waitFor(async () => (await fileRows()).chunks > 1); // the server has started writing chunks
  sent.destroy();
}
