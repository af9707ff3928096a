/**
 * File storage, reviewed (fileStore.ts, fileRoutes.ts): what an attacker uploading a page could
 * make the server's origin run, Convex's `Digest` header on uploads and downloads, byte ranges
 * of an empty file, and a large download's listeners.
 */
import { createHash, randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { action, defineSchema, mutation } from "../server/index.js";
import { v } from "../values/index.js";
import { openTestStorage } from "../testing/testStorage.js";
import { startServer, type WalkinServer } from "../transport/server.js";
import { Engine } from "./engine.js";
import { CHUNK_BYTES } from "./fileStore.js";
import { QueryImpl } from "./query.js";

const modules = {
  files: {
    uploadUrl: mutation({ args: {}, handler: (ctx) => ctx.storage.generateUploadUrl() }),
    storeText: action({
      args: { text: v.string(), type: v.string() },
      handler: (ctx, { text, type }) => ctx.storage.store(new Blob([text], { type })),
    }),
  },
};

let engine: Engine;
let server: WalkinServer;
const opened: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const close of opened.splice(0).reverse()) await close();
});

async function start(): Promise<void> {
  engine = await Engine.open({ storage: await openTestStorage(), schema: defineSchema({}), modules, runScheduler: false, logError: () => {} });
  opened.push(() => engine.close());
  server = await startServer({ engine, port: 0, log: () => {} });
  opened.push(() => server.close());
}

async function upload(bytes: Uint8Array<ArrayBuffer>, headers: Record<string, string>): Promise<Response> {
  const url = (await engine.runMutation("files:uploadUrl", {})).value as string;
  return fetch(url, { method: "POST", headers, body: bytes });
}

async function uploaded(bytes: Uint8Array<ArrayBuffer>, headers: Record<string, string>): Promise<string> {
  const answer = await upload(bytes, headers);
  expect(answer.status).toBe(200);
  return ((await answer.json()) as { storageId: string }).storageId;
}

function fileUrl(storageId: string): string {
  return `${server.url}/api/storage/${storageId}`;
}

function sha256Base64(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("base64");
}

async function storedFiles(): Promise<number> {
  return engine.read(async (txn) => (await new QueryImpl(txn, engine.catalog.lookup("_storage", { system: true })!).collect()).length);
}

describe("a file a browser could run as a page of the server's origin is served sandboxed", () => {
  const page = new TextEncoder().encode(`<html xmlns="http://www.w3.org/1999/xhtml"><script>alert(document.domain)</script></html>`);

  it("whatever Content-Type the upload claimed: a list a browser reads the last type of, any XML type, XSLT", async () => {
    await start();
    // A browser takes the last valid type of a comma-separated Content-Type (Fetch's "extract a MIME type"):
    // "image/png, text/html" is shown as HTML. Every +xml type is parsed as XML, which runs XHTML <script>.
    for (const type of ["image/png, text/html", "image/png,TEXT/HTML;charset=utf-8", "application/rss+xml", "application/atom+xml; charset=utf-8", "text/xsl", "multipart/x-mixed-replace;boundary=x"]) {
      const answer = await fetch(fileUrl(await uploaded(page, { "Content-Type": type })));
      expect(answer.headers.get("content-type"), type).toBe(type);
      expect(answer.headers.get("content-security-policy"), type).toBe("sandbox");
    }
  });

  it("stored by an action from a Blob whose type lists several", async () => {
    await start();
    const id = (await engine.runAction("files:storeText", { text: "<script>alert(1)</script>", type: "image/png, text/html" })) as string;
    expect((await fetch(fileUrl(id))).headers.get("content-security-policy")).toBe("sandbox");
  });

  it("while images, videos, PDFs and text are served as they are (a sandbox stops a PDF viewer)", async () => {
    await start();
    for (const type of ["image/png", "video/mp4", "application/pdf", "text/plain; charset=utf-8", "application/json"]) {
      expect((await fetch(fileUrl(await uploaded(page, { "Content-Type": type })))).headers.get("content-security-policy"), type).toBeNull();
    }
  });
});

describe("the Digest header, as Convex's upload URL and file URL have it", () => {
  it("an upload with a Digest is stored only if its bytes hash to it; a download carries the file's", async () => {
    await start();
    const bytes = new Uint8Array(randomBytes(CHUNK_BYTES + 10));
    const wrong = await upload(bytes, { "Content-Type": "image/png", Digest: `sha-256=${sha256Base64(new Uint8Array([1]))}` });
    expect(wrong.status).toBe(400);
    expect(((await wrong.json()) as { message: string }).message).toMatch(/sha256.*Nothing was stored/);
    expect(await storedFiles()).toBe(0);

    const id = await uploaded(bytes, { "Content-Type": "image/png", Digest: `SHA-256=${sha256Base64(bytes)}` });
    const download = await fetch(fileUrl(id));
    expect(download.headers.get("digest")).toBe(`sha-256=${sha256Base64(bytes)}`);
    expect(new Uint8Array(await download.arrayBuffer())).toEqual(bytes);
  });

  it("a Digest whose sha-256 is not a base64 SHA-256 is refused with what to send; other algorithms are ignored", async () => {
    await start();
    const bytes = new Uint8Array([1, 2, 3]);
    const malformed = await upload(bytes, { Digest: "sha-256=not-a-hash" });
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as { message: string }).message).toMatch(/Digest.*sha-256=<base64 SHA-256 of the bytes>/);
    expect(await storedFiles()).toBe(0);
    await uploaded(bytes, { Digest: "md5=AAAA" });
    expect(await storedFiles()).toBe(1);
  });
});

describe("byte ranges of an empty file", () => {
  it("a suffix range gets the whole (empty) file, not a 206 whose Content-Range says bytes 0--1", async () => {
    await start();
    const id = await uploaded(new Uint8Array(0), { "Content-Type": "text/plain" });
    const answer = await fetch(fileUrl(id), { headers: { Range: "bytes=-10" } });
    expect([answer.status, answer.headers.get("content-range"), (await answer.arrayBuffer()).byteLength]).toEqual([200, null, 0]);
  });
});

describe("a large download", () => {
  it("leaves no listener behind per chunk it waits to send (Node warns of a leak past 10)", async () => {
    await start();
    const bytes = new Uint8Array(randomBytes(CHUNK_BYTES * 16));
    const id = await uploaded(bytes, {});
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`);
    process.on("warning", onWarning);
    try {
      const download = await fetch(fileUrl(id));
      expect(sha256Base64(new Uint8Array(await download.arrayBuffer()))).toBe(sha256Base64(bytes));
      await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
    } finally {
      process.off("warning", onWarning);
    }
    expect(warnings.filter((warning) => warning.startsWith("MaxListenersExceededWarning"))).toEqual([]);
  });
});
