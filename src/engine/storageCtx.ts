/**
 * `ctx.storage` for each kind of function, over the engine's files (fileStore.ts), as Convex
 * offers it: queries read (`getUrl`, `getMetadata`), mutations also make upload URLs and delete,
 * actions also read and write bytes (`get`, `store`).
 *
 * In queries and mutations the file's `_storage` document is read in the function's own
 * transaction: a live query that shows a file's URL re-runs when the file is deleted, and a
 * mutation that deletes a file conflicts with one that reads it. Actions have no transaction:
 * each call is one of its own.
 */
import type { Transaction } from "./transaction.js";
import type { Engine } from "./engine.js";
import { tooLarge, type FileMetadata, type FileStore, type StoredFile } from "./fileStore.js";
import { walkinError } from "../values/index.js";

/** `ctx.storage` of a query. */
export class QueryStorage {
  constructor(
    protected readonly files: FileStore,
    protected readonly txn: Transaction,
  ) {}

  /** A URL anyone can download the file from, or null if there is no such file. */
  async getUrl(storageId: string): Promise<string | null> {
    const file = await this.files.fileIn(this.txn, storageId, "getUrl");
    return file && this.files.urlOf(file.storageId);
  }

  /** `{ storageId, sha256 (hex), size, contentType }`, or null. Convex marks it deprecated in favour of `ctx.db.system.get(id)`. */
  async getMetadata(storageId: string): Promise<FileMetadata | null> {
    return metadataOf(await this.files.fileIn(this.txn, storageId, "getMetadata"));
  }
}

/** `ctx.storage` of a mutation. */
export class MutationStorage extends QueryStorage {
  /**
   * A URL to POST one file to, within an hour; the answer is `{ "storageId": … }`. Each URL
   * uploads one file.
   */
  generateUploadUrl(): Promise<string> {
    return this.files.newUploadUrl(this.txn);
  }

  /** Deletes the file, with this mutation's commit; its bytes are removed soon after. */
  delete(storageId: string): Promise<void> {
    return this.files.delete(this.txn, storageId);
  }
}

/** `ctx.storage` of an action (and an HTTP action): each call is a transaction of its own. */
export function actionStorage(engine: Engine) {
  const files = engine.files;
  return {
    getUrl: async (storageId: string): Promise<string | null> => {
      const file = await files.find(storageId, "getUrl");
      return file && files.urlOf(file.storageId);
    },
    getMetadata: async (storageId: string): Promise<FileMetadata | null> => metadataOf(await files.find(storageId, "getMetadata")),
    generateUploadUrl: (): Promise<string> => engine.runSystemMutation((txn) => files.newUploadUrl(txn)),
    delete: (storageId: string): Promise<void> => engine.runSystemMutation((txn) => files.delete(txn, storageId)),
    /** The file's bytes, or null if there is no such file. */
    get: (storageId: string): Promise<Blob | null> => files.blob(storageId),
    /**
     * Stores `blob` as a new file and returns its storage ID. With `sha256` (base64), the bytes
     * must hash to it, or nothing is stored.
     */
    store: async (blob: Blob, options?: { sha256?: string }): Promise<string> => {
      const sha256 = checkStoreCall(blob, options, files.maxFileBytes);
      return files.store(await files.startStore(), blobParts(blob), blob.type || null, sha256);
    },
  };
}

/**
 * `ctx.storage` of walkin/testing's `t.run`: a mutation's, with `store` and `get` inside its
 * transaction, as convex-test has them there (a file stored in a `t.run` that throws is gone).
 */
export class TestRunStorage extends MutationStorage {
  /** Over the transaction of the mutation `storage` belongs to. */
  static from(storage: MutationStorage): TestRunStorage {
    // Its own class's fields: read through the subclass, which TypeScript lets see them.
    const { files, txn } = storage as TestRunStorage;
    return new TestRunStorage(files, txn);
  }

  async store(blob: Blob, options?: { sha256?: string }): Promise<string> {
    const sha256 = checkStoreCall(blob, options, this.files.maxFileBytes);
    return this.files.storeIn(this.txn, new Uint8Array(await blob.arrayBuffer()), blob.type || null, sha256);
  }

  get(storageId: string): Promise<Blob | null> {
    return this.files.blobIn(this.txn, storageId);
  }
}

/** `store(blob, options)`'s arguments checked, before anything is written: the sha256 to check, if given. */
function checkStoreCall(blob: unknown, options: { sha256?: unknown } | undefined, maxFileBytes: number): string | undefined {
  if (!(blob instanceof Blob)) {
    throw walkinError("INVALID_ARGUMENT", `ctx.storage.store takes a Blob (e.g. new Blob([bytes], { type: "image/png" }) or await response.blob()); got ${blob === null ? "null" : typeof blob}.`);
  }
  const sha256 = options?.sha256;
  if (sha256 !== undefined && typeof sha256 !== "string") {
    throw walkinError("INVALID_ARGUMENT", `ctx.storage.store: options.sha256 must be the base64 SHA-256 of the bytes; got ${typeof sha256}.`);
  }
  if (blob.size > maxFileBytes) throw tooLarge(maxFileBytes);
  return sha256;
}

function metadataOf(file: StoredFile | null): FileMetadata | null {
  // Hex here, as Convex's getMetadata answers (its `_storage` documents, like ours, say base64).
  return file && { storageId: file.storageId, sha256: Buffer.from(file.sha256, "base64").toString("hex"), size: file.size, contentType: file.contentType };
}

/** A Blob's bytes, a piece at a time, without holding a second copy of the whole. */
async function* blobParts(blob: Blob): AsyncGenerator<Uint8Array> {
  const reader = blob.stream().getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    yield value;
  }
}
