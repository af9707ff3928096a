/**
 * The types of `ctx.storage` (Convex's `StorageReader`, `StorageWriter`, `StorageActionWriter`).
 * What they do is in src/engine/storageCtx.ts and fileStore.ts; docs/files.md shows the flow.
 */
import type { GenericId } from "../values/index.js";

/** A stored file's ID: the `_id` of its `_storage` document. */
export type StorageId = string;

/** `ctx.storage.getMetadata`'s answer. */
export interface FileMetadata {
  storageId: GenericId<"_storage">;
  /** hex SHA-256 of the bytes, as Convex's `getMetadata` gives it (the `_storage` document's is base64). */
  sha256: string;
  size: number;
  contentType: string | null;
}

/** `ctx.storage` in queries. */
export interface StorageReader {
  /** A URL anyone can download the file from (`<WALKIN_URL>/api/storage/<id>`), or null if there is no such file. */
  getUrl(storageId: GenericId<"_storage"> | StorageId): Promise<string | null>;
  /** @deprecated Read the `_storage` document instead: `ctx.db.system.get(storageId)`. */
  getMetadata(storageId: GenericId<"_storage"> | StorageId): Promise<FileMetadata | null>;
}

/** `ctx.storage` in mutations. */
export interface StorageWriter extends StorageReader {
  /** A URL to POST one file to within an hour; the answer is `{ "storageId": … }`. */
  generateUploadUrl(): Promise<string>;
  /** Deletes the file with this mutation's commit; NOT_FOUND if there is none. */
  delete(storageId: GenericId<"_storage"> | StorageId): Promise<void>;
}

/** `ctx.storage` in actions and HTTP actions. */
export interface StorageActionWriter extends StorageWriter {
  /** The file's bytes, or null if there is no such file. */
  get(storageId: GenericId<"_storage"> | StorageId): Promise<Blob | null>;
  /** Stores the bytes as a new file; with `sha256` (base64) they must hash to it. */
  store(blob: Blob, options?: { sha256?: string }): Promise<GenericId<"_storage">>;
}
