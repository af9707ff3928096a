/**
 * File storage (`ctx.storage`): files kept in the database itself, as documents of system tables.
 *
 * A file is one `_storage` document (what app code sees: `sha256`, `size`, `contentType`) and
 * its bytes, cut into `_storage_chunks` documents of `CHUNK_BYTES` each under a random key. So
 * files live wherever the documents live: in the SQLite file (one file to back up), or in
 * PostgreSQL, where every node reads what any node stored. No second store to keep in step,
 * and a file's metadata and the app document naming it can be written in one transaction.
 *
 * Bytes are written before anyone can see the file, in transactions of their own (a file is
 * larger than one transaction may write), and a set of chunks nobody owns yet must not be lost
 * track of if the writer dies half-way. The rule: every chunk key is owned, at every commit,
 * by exactly one document, either
 *  - a `_storage` document (a stored file), or
 *  - a `_storage_pending` document with a deadline (`until`): an upload URL not used yet
 *    (`tokenHash`), an upload or `store()` under way, or the chunks of a deleted file.
 * Step by step, for an upload:
 *  1. `generateUploadUrl` inserts a pending document with a fresh chunk key and the hash of the
 *     URL's secret, `until` an hour on.
 *  2. The upload claims it (`claimUpload`): the token must match and be in time; the hash is
 *     removed in the same commit, so a URL uploads one file (a second upload finds no hash), and
 *     `until` moves an hour past the claim.
 *  3. Chunks are inserted under the key, a few per commit (`writeBytes`), each commit reading
 *     the pending document and failing without it: chunks are only ever written while owned.
 *  4. One commit deletes the pending document and inserts the `_storage` document with the same
 *     key (`finish`): ownership passes in one step, and the file appears whole or not at all.
 *     If the pending document is gone by then (the sweep took it, past `until`), the upload fails.
 *  5. `delete` removes the `_storage` document and inserts a pending one for its key with
 *     `until` now, in the same commit: the chunks are owned again, by something due.
 * The sweep (`sweepFiles`, run by the scheduler's loop when `nextFileSweep` comes) deletes the chunks of each
 * pending document past `until`, a batch per commit, then the pending document itself. A
 * writer that died between 1 and 4 leaves a pending document that comes due; nothing is
 * ever left with no owner, so nothing leaks.
 *
 * Reads of chunks bypass the read cache (`uncached` reads): a file served once would
 * otherwise push the app's hot documents out of it.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { walkinError, type Value } from "../values/index.js";
import type { Engine } from "./engine.js";
import type { Transaction } from "./transaction.js";
import type { Doc } from "./documents.js";
import { QueryImpl } from "./query.js";

/** Bytes per chunk document: well under the 1 MiB document limit. */
export const CHUNK_BYTES = 256 * 1024;
/** Chunks written per commit (2 MiB): well under a transaction's 16 MiB write limit. */
const CHUNKS_PER_COMMIT = 8;
/** Chunks deleted per commit by the sweep (it reads each one it deletes: 4 MiB). */
const CHUNKS_PER_SWEEP_COMMIT = 16;
/** How long an upload URL may wait to be used, and how long an upload may take once it starts (Convex: an hour). */
const UPLOAD_WINDOW_MS = 60 * 60 * 1000;
/** Default largest file, in bytes. */
const DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024;

const SYSTEM = { system: true };

/** A stored file's metadata, as `ctx.storage.getMetadata` returns it (Convex's shape). */
export interface FileMetadata {
  storageId: string;
  sha256: string;
  size: number;
  contentType: string | null;
}

/** A stored file as the server reads it: its metadata and where its bytes are. */
export interface StoredFile extends FileMetadata {
  chunks: string;
}

export class FileStore {
  /** This server's origin for file URLs when `WALKIN_URL` is not set: the server sets it once it listens. */
  servedAt: string | null = null;

  constructor(
    private readonly engine: Engine,
    readonly maxFileBytes: number = DEFAULT_MAX_FILE_BYTES,
  ) {
    if (!(Number.isSafeInteger(maxFileBytes) && maxFileBytes > 0)) {
      throw new RangeError(`maxFileBytes must be a whole number of bytes > 0, got ${maxFileBytes}.`);
    }
  }

  /** `https://app.example.com/api/storage/<id>`: where anyone holding it can download the file. */
  urlOf(storageId: string): string {
    return `${this.origin()}/api/storage/${storageId}`;
  }

  /** The origin file URLs start with: `WALKIN_URL`, else the address the server listens on. */
  origin(): string {
    const configured = process.env.WALKIN_URL;
    if (configured) {
      let url: URL;
      try {
        url = new URL(configured);
      } catch {
        throw walkinError("MISUSE", `WALKIN_URL must be this server's public URL, like https://api.example.com; got "${configured}".`);
      }
      return url.origin;
    }
    if (this.servedAt === null) {
      throw walkinError("MISUSE", "File URLs need this server's public URL: set WALKIN_URL (e.g. WALKIN_URL=https://api.example.com), or serve the engine with startServer.");
    }
    return this.servedAt;
  }

  /** Step 1: a pending upload and the URL that claims it. */
  async newUploadUrl(txn: Transaction): Promise<string> {
    const secret = randomBytes(24).toString("base64url");
    const pendingId = await txn.insertSystem("_storage_pending", {
      chunks: newChunkKey(),
      until: txn.now + UPLOAD_WINDOW_MS,
      tokenHash: sha256Hex(secret),
    });
    return `${this.origin()}/api/storage/upload?token=${pendingId}.${secret}`;
  }

  /** Step 2: the pending upload a token names, claimed for one upload; throws if the token is no good. */
  async claimUpload(token: string): Promise<{ pendingId: string; chunks: string }> {
    const dot = token.indexOf(".");
    const pendingId = token.slice(0, dot);
    const secret = token.slice(dot + 1);
    const refused = () =>
      walkinError("UNAUTHENTICATED", "This upload URL is not valid: it was used already, has expired (after an hour) or was mistyped. Get a new one from ctx.storage.generateUploadUrl().");
    if (dot <= 0 || secret.length === 0) throw refused();
    return this.engine.runSystemMutation(async (txn) => {
      const pending = txn.isIdOfTable("_storage_pending", pendingId) ? await txn.get(pendingId, SYSTEM) : null;
      if (!pending || typeof pending.tokenHash !== "string" || (pending.until as number) <= txn.now || !sameHash(pending.tokenHash, sha256Hex(secret))) {
        throw refused();
      }
      await txn.patch(pendingId, { tokenHash: undefined, until: txn.now + UPLOAD_WINDOW_MS }, SYSTEM);
      return { pendingId, chunks: pending.chunks as string };
    });
  }

  /** A pending document for a `store()` (steps 1 and 2 at once: no URL). */
  async startStore(): Promise<{ pendingId: string; chunks: string }> {
    const chunks = newChunkKey();
    const pendingId = await this.engine.runSystemMutation((txn) => txn.insertSystem("_storage_pending", { chunks, until: txn.now + UPLOAD_WINDOW_MS }));
    return { pendingId, chunks };
  }

  /**
   * Step 3: writes `source` as chunks under the claimed key; its size and base64 sha256. Throws
   * LIMIT_EXCEEDED past `maxFileBytes` (what was written is then the sweep's, via `abandon`).
   * Each commit of chunks reads the pending document that owns them and fails without it: a
   * write that outlived its window (the sweep took the document) must not leave chunks behind
   * that nothing owns, for nothing would ever delete them.
   */
  async writeBytes(claimed: { pendingId: string; chunks: string }, source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<{ size: number; sha256: string }> {
    const { pendingId, chunks } = claimed;
    const hash = createHash("sha256");
    let size = 0;
    let n = 0;
    let chunk = new Uint8Array(CHUNK_BYTES);
    let filled = 0;
    let batch: Uint8Array[] = [];
    const flush = async () => {
      const written = batch;
      batch = [];
      const first = n - written.length;
      await this.engine.runSystemMutation(async (txn) => {
        if ((await txn.get(pendingId, SYSTEM))?.chunks !== chunks) throw outOfTime();
        for (let i = 0; i < written.length; i++) {
          await txn.insertSystem("_storage_chunks", { chunks, n: first + i, data: toArrayBuffer(written[i]!) });
        }
      });
    };
    for await (const piece of source) {
      size += piece.byteLength;
      if (size > this.maxFileBytes) throw tooLarge(this.maxFileBytes);
      hash.update(piece);
      let offset = 0;
      while (offset < piece.byteLength) {
        const take = Math.min(CHUNK_BYTES - filled, piece.byteLength - offset);
        chunk.set(piece.subarray(offset, offset + take), filled);
        filled += take;
        offset += take;
        if (filled === CHUNK_BYTES) {
          batch.push(chunk);
          n += 1;
          chunk = new Uint8Array(CHUNK_BYTES);
          filled = 0;
          if (batch.length === CHUNKS_PER_COMMIT) await flush();
        }
      }
    }
    if (filled > 0) {
      batch.push(chunk.subarray(0, filled));
      n += 1;
    }
    if (batch.length > 0) await flush();
    return { size, sha256: hash.digest("base64") };
  }

  /** Step 4: the file, visible from this commit on; throws if the upload ran out of time. */
  async finish(pendingId: string, chunks: string, written: { size: number; sha256: string }, contentType: string | null): Promise<string> {
    return this.engine.runSystemMutation(async (txn) => {
      const pending = await txn.get(pendingId, SYSTEM);
      if (!pending || pending.chunks !== chunks) throw outOfTime();
      await txn.delete(pendingId, SYSTEM);
      const file: Record<string, Value | undefined> = { chunks, sha256: written.sha256, size: written.size };
      if (contentType) file.contentType = contentType;
      return txn.insertSystem("_storage", file);
    });
  }

  /** A write that failed between steps 2 and 4: its chunks are due for the sweep now. */
  async abandon(pendingId: string): Promise<void> {
    await this.engine.runSystemMutation(async (txn) => {
      if (await txn.get(pendingId, SYSTEM)) await txn.patch(pendingId, { until: txn.now }, SYSTEM);
    });
  }

  /** Stores `source` as a new file (an upload, or `ctx.storage.store` in an action): its storage ID. */
  async store(
    claimed: { pendingId: string; chunks: string },
    source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    contentType: string | null,
    expectedSha256?: string,
  ): Promise<string> {
    try {
      const written = await this.writeBytes(claimed, source);
      checkSha256(written.sha256, expectedSha256);
      return await this.finish(claimed.pendingId, claimed.chunks, written, contentType);
    } catch (error) {
      await this.abandon(claimed.pendingId).catch((cleanup: unknown) => this.engine.logError("Marking an unfinished upload for cleanup failed", cleanup));
      throw error;
    }
  }

  /**
   * `bytes` as a new file written in `txn` itself, chunks and all, so that it commits or rolls
   * back with the transaction: `ctx.storage.store` in walkin/testing's `t.run`, as convex-test
   * has it. Bounded by what one transaction may write (16 MiB), which test files stay under.
   */
  async storeIn(txn: Transaction, bytes: Uint8Array, contentType: string | null, expectedSha256?: string): Promise<string> {
    if (bytes.byteLength > this.maxFileBytes) throw tooLarge(this.maxFileBytes);
    const sha256 = createHash("sha256").update(bytes).digest("base64");
    checkSha256(sha256, expectedSha256);
    const chunks = newChunkKey();
    for (let n = 0; n * CHUNK_BYTES < bytes.byteLength; n++) {
      await txn.insertSystem("_storage_chunks", { chunks, n, data: toArrayBuffer(bytes.subarray(n * CHUNK_BYTES, (n + 1) * CHUNK_BYTES)) });
    }
    const file: Record<string, Value | undefined> = { chunks, sha256, size: bytes.byteLength };
    if (contentType) file.contentType = contentType;
    return txn.insertSystem("_storage", file);
  }

  /** The file's bytes read in `txn` (walkin/testing's `t.run`, with `storeIn`), or null. */
  async blobIn(txn: Transaction, storageId: string): Promise<Blob | null> {
    const file = await this.fileIn(txn, storageId, "get");
    if (!file) return null;
    const table = this.engine.catalog.lookup("_storage_chunks", SYSTEM)!;
    const parts = await new QueryImpl(txn, table).withIndex("by_chunks", (q) => q.eq("chunks", file.chunks)).collect();
    return new Blob(parts.map((part) => new Uint8Array(part.data as ArrayBuffer)), file.contentType ? { type: file.contentType } : {});
  }

  /** Step 5, in the caller's transaction. */
  async delete(txn: Transaction, storageId: string): Promise<void> {
    const file = await this.fileIn(txn, storageId, "delete");
    if (!file) throw walkinError("NOT_FOUND", `ctx.storage.delete: no file has the storage ID ${storageId} (it was deleted already, or never stored).`);
    await txn.delete(storageId, SYSTEM);
    await txn.insertSystem("_storage_pending", { chunks: file.chunks, until: txn.now });
  }

  /** The file `storageId` names, read in `txn` (so a live query follows it), or null. */
  async fileIn(txn: Transaction, storageId: unknown, operation: string): Promise<StoredFile | null> {
    if (typeof storageId !== "string" || !txn.isIdOfTable("_storage", storageId)) {
      throw walkinError("INVALID_ID", `ctx.storage.${operation} takes a storage ID (an Id<"_storage"> from generateUploadUrl's upload or store()); got ${describeId(storageId)}.`);
    }
    const doc = await txn.get(storageId, SYSTEM);
    return doc ? storedFile(doc) : null;
  }

  /** The file's metadata at the latest snapshot, or null (actions, and the server's download route). */
  async find(storageId: string, operation: string): Promise<StoredFile | null> {
    return this.engine.read((txn) => this.fileIn(txn, storageId, operation));
  }

  /**
   * The file's bytes, chunk by chunk, each read at the newest snapshot: a file never changes,
   * so chunks read at different snapshots still make one file. A file deleted while it is read
   * loses its chunks to the sweep, and the read then fails rather than returning a piece.
   * `firstChunk` skips the ones before it (a range request).
   */
  async *readBytes(file: StoredFile, firstChunk = 0): AsyncGenerator<Uint8Array<ArrayBuffer>> {
    const chunkCount = Math.ceil(file.size / CHUNK_BYTES);
    const table = this.engine.catalog.lookup("_storage_chunks", SYSTEM)!;
    for (let n = firstChunk; n < chunkCount; n++) {
      const doc = await this.engine.read(
        (txn) => new QueryImpl(txn, table).withIndex("by_chunks", (q) => q.eq("chunks", file.chunks).eq("n", n)).first(),
        { uncached: true },
      );
      if (!doc) throw walkinError("NOT_FOUND", `The file ${file.storageId} was deleted while it was being read.`);
      yield new Uint8Array(doc.data as ArrayBuffer);
    }
  }

  /** The whole file as a Blob (`ctx.storage.get` in an action), or null. */
  async blob(storageId: string): Promise<Blob | null> {
    const file = await this.find(storageId, "get");
    if (!file) return null;
    const parts: Uint8Array<ArrayBuffer>[] = [];
    for await (const part of this.readBytes(file)) parts.push(part);
    return new Blob(parts, file.contentType ? { type: file.contentType } : {});
  }
}

/**
 * Deletes the chunks of pending documents past their deadline, then the documents: abandoned
 * uploads and deleted files (see the top of this file). True if it stopped with work left.
 */
export async function sweepFiles(engine: Engine, batches = 64): Promise<boolean> {
  const pendingTable = engine.catalog.lookup("_storage_pending", SYSTEM)!;
  const chunkTable = engine.catalog.lookup("_storage_chunks", SYSTEM)!;
  for (let batch = 0; batch < batches; batch++) {
    const done = await engine.runSystemMutation(async (txn) => {
      const due = await new QueryImpl(txn, pendingTable).withIndex("by_until", (q) => q.lt("until", txn.now)).first();
      if (!due) return true;
      const chunks = await new QueryImpl(txn, chunkTable)
        .withIndex("by_chunks", (q) => q.eq("chunks", due.chunks as string))
        .take(CHUNKS_PER_SWEEP_COMMIT);
      for (const chunk of chunks) await txn.delete(chunk._id, SYSTEM);
      // The owner goes last, with the last of its chunks: until then the chunks stay owned.
      if (chunks.length < CHUNKS_PER_SWEEP_COMMIT) await txn.delete(due._id, SYSTEM);
      return false;
    }, { uncached: true });
    if (done) return false;
  }
  return true;
}

/** When the sweep next has work: the earliest `until` of a pending document, or Infinity. */
export async function nextFileSweep(engine: Engine, txn: Transaction): Promise<number> {
  const pendingTable = engine.catalog.lookup("_storage_pending", SYSTEM)!;
  const first = await new QueryImpl(txn, pendingTable).withIndex("by_until").first();
  return first ? (first.until as number) : Infinity;
}

export function tooLarge(maxFileBytes: number): Error {
  return walkinError("LIMIT_EXCEEDED", `The file is larger than this server's limit of ${maxFileBytes} bytes (maxFileBytes).`);
}

/** Refuses bytes that do not hash to the sha256 (base64) their sender gave. */
function checkSha256(actual: string, expected: string | undefined): void {
  if (expected !== undefined && expected !== actual) {
    throw walkinError("INVALID_ARGUMENT", `The file's sha256 is ${actual}, not the ${expected} given: it was changed or cut short on the way. Nothing was stored.`);
  }
}

/** A write whose pending document is gone: the sweep took it, past its window. */
function outOfTime(): Error {
  return walkinError("LIMIT_EXCEEDED", `The upload took longer than ${UPLOAD_WINDOW_MS / 60000} minutes and was dropped; upload the file again.`);
}

function storedFile(doc: Doc): StoredFile {
  return {
    storageId: doc._id,
    sha256: doc.sha256 as string,
    size: doc.size as number,
    contentType: (doc.contentType as string | undefined) ?? null,
    chunks: doc.chunks as string,
  };
}

/** A random key for a file's chunks: 128 bits, never reused. */
function newChunkKey(): string {
  return randomBytes(16).toString("base64url");
}

function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** Two hex hashes compared in constant time: how long a refusal takes says nothing of the secret. */
function sameHash(a: string, b: string): boolean {
  return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

/** The bytes of `view` as an ArrayBuffer of their own (what `v.bytes()` stores). */
function toArrayBuffer(view: Uint8Array): ArrayBuffer {
  return view.byteOffset === 0 && view.byteLength === view.buffer.byteLength ? (view.buffer as ArrayBuffer) : (view.slice().buffer as ArrayBuffer);
}

function describeId(value: unknown): string {
  if (typeof value === "string") return `"${value.length > 40 ? `${value.slice(0, 40)}…` : value}", which is not the ID of a stored file`;
  return value === null ? "null" : typeof value;
}
