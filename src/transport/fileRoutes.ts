/**
 * HTTP for stored files (`ctx.storage`, src/engine/fileStore.ts), under `/api/storage/`:
 *  - `POST /api/storage/upload?token=…`: the URL `generateUploadUrl()` made. The body is the
 *    file, its `Content-Type` the file's; the answer `{ "storageId": "…" }`, as Convex's.
 *  - `GET` / `HEAD /api/storage/<storageId>`: the URL `getUrl()` made. The file's bytes, with
 *    `Range` requests (a video seeks with them) and an `ETag` (its sha256).
 * Both allow any origin (CORS): an app served from another origin uploads with `fetch` and
 * shows files with `<img src>`. A download URL is a capability, as in Convex: whoever has the
 * URL can read the file, and its ID holds 72 random bits (ids.ts).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { CHUNK_BYTES } from "../engine/fileStore.js";
import type { Engine } from "../engine/engine.js";
import { isWalkinError, walkinError } from "../values/index.js";
import { CORS_HEADERS, sendJson } from "./http.js";
import type { EngineSwitch } from "./engineSwitch.js";
import { closedIfBodyUnread } from "./unreadBody.js";

export const STORAGE_PREFIX = "/api/storage/";

/**
 * Types a browser would show as a page that runs script as the server's origin: HTML, XML (an
 * XHTML `<script>` runs in any XML document, so every `+xml` type too, SVG included), XSLT, and
 * multipart/x-mixed-replace (each part shown with its own type). Files of these types are sent
 * sandboxed (no scripts, no same-origin access), so an uploaded page cannot act as the API's origin.
 */
const PAGE_TYPES = new Set(["text/html", "text/xml", "application/xml", "text/xsl", "multipart/x-mixed-replace"]);

/** Answers a request under `/api/storage/`. */
export async function handleStorage(request: IncomingMessage, response: ServerResponse, url: URL, method: string, engines: EngineSwitch): Promise<void> {
  const rest = url.pathname.slice(STORAGE_PREFIX.length);
  if (rest === "upload") {
    if (method !== "POST") return refuse(response, 405, "MISUSE", "Upload a file with POST to the URL from ctx.storage.generateUploadUrl().", { Allow: "POST, OPTIONS" });
    return engines.use((engine) => upload(request, response, url, engine));
  }
  if (method !== "GET" && method !== "HEAD") return refuse(response, 405, "MISUSE", "Download a file with GET (or HEAD) from the URL of ctx.storage.getUrl().", { Allow: "GET, HEAD, OPTIONS" });
  return engines.use((engine) => download(request, response, rest, method, engine));
}

async function upload(request: IncomingMessage, response: ServerResponse, url: URL, engine: Engine): Promise<void> {
  const files = engine.files;
  const declared = Number(request.headers["content-length"] ?? 0);
  if (declared > files.maxFileBytes) {
    // Refused before the token is used: the same URL can take a smaller file. The body is not
    // read, so the connection closes after the answer (unreadBody.ts).
    return refuse(response, 413, "LIMIT_EXCEEDED", `The file is ${declared} bytes; this server stores files up to ${files.maxFileBytes} bytes (maxFileBytes).`);
  }
  const token = url.searchParams.get("token") ?? "";
  try {
    // Read before the token is used, like the length: a malformed Digest leaves the URL usable.
    const expectedSha256 = announcedSha256(request);
    const claimed = await files.claimUpload(token);
    const storageId = await files.store(claimed, wholeBody(request), contentTypeOf(request), expectedSha256);
    sendJson(response, 200, { storageId }, CORS_HEADERS);
  } catch (error) {
    // The client left (its socket is gone): nobody to answer. (The request stream itself is
    // destroyed once it ends, whoever ended it, so it says nothing here.)
    if (!response.socket || response.socket.destroyed) return;
    if (!isWalkinError(error)) throw error; // a 500, from handleHttp
    const status = error.code === "UNAUTHENTICATED" ? 401 : error.code === "LIMIT_EXCEEDED" ? 413 : 400;
    // A URL refused before the body is read, a Digest that is malformed, a file over the limit
    // part-way: the rest of the body is not read, and the connection closes after the answer
    // (`sendJson` asks unreadBody.ts, as every answer here does).
    refuse(response, status, error.code, error.message);
  }
}

async function download(request: IncomingMessage, response: ServerResponse, storageId: string, method: string, engine: Engine): Promise<void> {
  const files = engine.files;
  const file = await files.find(storageId, "getUrl").catch((error: unknown) => {
    if (isWalkinError(error) && error.code === "INVALID_ID") return null;
    throw error;
  });
  if (!file) return refuse(response, 404, "NOT_FOUND", `No file is stored under ${storageId.slice(0, 60)}: it was deleted, or the URL is wrong.`);
  const etag = `"${file.sha256}"`;
  const headers: Record<string, string> = {
    ...CORS_HEADERS,
    // A GET may carry a body, which a download never reads: the answer then closes the connection (unreadBody.ts).
    ...closedIfBodyUnread(request),
    "Content-Type": file.contentType ?? "application/octet-stream",
    ETag: etag,
    // Revalidated on every use (an answer of 304 reads no bytes): a deleted file must stop being served.
    "Cache-Control": "no-cache",
    "Accept-Ranges": "bytes",
    "X-Content-Type-Options": "nosniff",
    // So that a page of another origin can read them with fetch(), not only show the file.
    "Access-Control-Expose-Headers": "Content-Range, Accept-Ranges, ETag, Content-Length, Digest",
  };
  if (file.contentType && mayRunAsPage(file.contentType)) headers["Content-Security-Policy"] = "sandbox";
  if (request.headers["if-none-match"] === etag) {
    response.writeHead(304, headers).end();
    return;
  }
  const range = byteRange(request.headers.range, file.size);
  if (range === "unsatisfiable") {
    response.writeHead(416, { ...headers, "Content-Range": `bytes */${file.size}` }).end();
    return;
  }
  const [start, end] = range ?? [0, file.size];
  if (range) headers["Content-Range"] = `bytes ${start}-${end - 1}/${file.size}`;
  // The whole file's hash (RFC 3230), as Convex's file URLs send it; a part has none.
  else headers.Digest = `sha-256=${file.sha256}`;
  response.writeHead(range ? 206 : 200, { ...headers, "Content-Length": String(end - start) });
  if (method === "HEAD" || end === start) {
    response.end();
    return;
  }
  await sendBytes(response, files.readBytes(file, Math.floor(start / CHUNK_BYTES)), start, end);
}

/** Writes bytes [start, end) of the file from its chunks (the first from chunk floor(start / CHUNK_BYTES)), waiting for a slow client. */
async function sendBytes(response: ServerResponse, chunks: AsyncGenerator<Uint8Array>, start: number, end: number): Promise<void> {
  let offset = Math.floor(start / CHUNK_BYTES) * CHUNK_BYTES;
  try {
    for await (const chunk of chunks) {
      const from = Math.max(start - offset, 0);
      const to = Math.min(end - offset, chunk.byteLength);
      offset += chunk.byteLength;
      if (response.destroyed) return;
      if (!response.write(chunk.subarray(from, to))) await drainedOrClosed(response);
      if (offset >= end) break;
    }
    response.end();
  } catch (error) {
    // Headers are out: the client sees the connection cut, not a file cut short that looks whole.
    response.destroy();
    // A file deleted while it was sent (its chunks swept) needs no log line; anything else does.
    if (!(isWalkinError(error) && error.code === "NOT_FOUND")) throw error;
  } finally {
    await chunks.return(undefined);
  }
}

/**
 * Until `response` takes more bytes, or is closed. Both listeners go once either fires: a large
 * file waits once per chunk, and listeners left each time would pile up for the whole download.
 */
function drainedOrClosed(response: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      response.off("drain", done).off("close", done);
      resolve();
    };
    response.on("drain", done).on("close", done);
  });
}

/**
 * `Range: bytes=a-b`, `bytes=a-` or `bytes=-n` as [start, end), null for no range (or one this
 * does not serve: several ranges, another unit; the whole file is sent, as RFC 9110 allows),
 * "unsatisfiable" for one that starts past the end.
 */
function byteRange(header: string | undefined, size: number): [number, number] | null | "unsatisfiable" {
  const match = header === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === "" && match[2] === "")) return null;
  if (match[1] === "") {
    const suffix = Number(match[2]);
    if (suffix === 0) return "unsatisfiable";
    // The last bytes of an empty file are no bytes: a 206 could not name them ("bytes 0--1/0"), the whole file can.
    return size === 0 ? null : [Math.max(size - suffix, 0), size];
  }
  const start = Number(match[1]);
  const last = match[2] === "" ? size - 1 : Math.min(Number(match[2]), size - 1);
  if (start >= size) return "unsatisfiable";
  if (last < start) return null;
  return [start, last + 1];
}

/**
 * The request's body, piece by piece, failing unless it arrived whole: a client that leaves
 * half-way must not leave a file cut short that looks complete.
 */
async function* wholeBody(request: IncomingMessage): AsyncGenerator<Uint8Array> {
  const declared = request.headers["content-length"] === undefined ? null : Number(request.headers["content-length"]);
  let size = 0;
  // Not destroyed when the store stops reading early (a file over the limit): the socket must
  // live to carry the answer that says so.
  for await (const piece of request.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    size += piece.byteLength;
    yield piece;
  }
  if (!request.complete || (declared !== null && size !== declared)) {
    throw walkinError("INVALID_ARGUMENT", `The upload ended after ${size} bytes${declared === null ? "" : ` of the ${declared} announced`}; nothing was stored. Upload the file again.`);
  }
}

/**
 * Whether a browser could show a file of `contentType` as a page of the server's origin. Each
 * type of a comma-separated list counts: a browser takes the last valid one (Fetch's "extract a
 * MIME type"), so "image/png, text/html" is shown as HTML.
 */
function mayRunAsPage(contentType: string): boolean {
  return contentType.split(",").some((type) => {
    const essence = type.split(";")[0]!.trim().toLowerCase();
    return PAGE_TYPES.has(essence) || essence.endsWith("+xml");
  });
}

/**
 * The base64 sha256 an upload's `Digest: sha-256=<base64>` header (RFC 3230) says its bytes
 * have, as Convex's upload URL takes it; undefined without one. Other algorithms are ignored.
 */
function announcedSha256(request: IncomingMessage): string | undefined {
  for (const entry of [request.headers.digest ?? []].flat().join(",").split(",")) {
    const equals = entry.indexOf("=");
    if (equals < 0 || entry.slice(0, equals).trim().toLowerCase() !== "sha-256") continue;
    const value = entry.slice(equals + 1).trim();
    if (!/^[A-Za-z0-9+/]{43}=?$/.test(value)) {
      throw walkinError("INVALID_ARGUMENT", `The upload's Digest header must be sha-256=<base64 SHA-256 of the bytes> (44 characters); got "${value.slice(0, 60)}". Send the file's hash, or no Digest header.`);
    }
    return Buffer.from(value, "base64").toString("base64");
  }
  return undefined;
}

/** The upload's Content-Type, without parameters' surrounding space; null when absent. */
function contentTypeOf(request: IncomingMessage): string | null {
  const type = request.headers["content-type"]?.trim();
  return type ? type.slice(0, 200) : null;
}

function refuse(response: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  sendJson(response, status, { status: "error", code, message }, { ...CORS_HEADERS, ...headers });
}
