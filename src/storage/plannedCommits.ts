/**
 * The rules a planner's commits must follow (see `Storage.commitBatch`), checked the same way by
 * every storage before it writes anything, so that each one refuses a bad batch with the same
 * clear message.
 */
import { RepeatedReceiptError, type Commit, type Timestamp } from "./types.js";

/** Throws, naming the storage and the broken rule, unless `commits` may be written after `latest`. */
export function checkPlannedCommits(commits: readonly Commit[], latest: Timestamp, storageName: string): void {
  if (!Array.isArray(commits)) {
    throw new TypeError(`Walk-in storage ${storageName}: a commit planner must return an array of commits. Nothing was written.`);
  }
  let previous = latest;
  const ids = new Set<string>();
  const receiptKeys = new Set<string>();
  for (const commit of commits) {
    if (!Number.isSafeInteger(commit.ts) || commit.ts <= previous) {
      throw new Error(
        `Walk-in storage ${storageName}: commit timestamp ${commit.ts} must be an integer greater than ${previous} ` +
          `(${previous === latest ? "the latest commit's" : "the previous commit's in the batch"}); timestamps must ` +
          `strictly increase. Nothing was written.`,
      );
    }
    if (typeof commit.id !== "string" || commit.id.length === 0 || ids.has(commit.id)) {
      throw new Error(`Walk-in storage ${storageName}: every commit needs a unique, non-empty id (got ${JSON.stringify(commit.id)}). Nothing was written.`);
    }
    if (!(commit.log instanceof Uint8Array)) {
      throw new TypeError(`Walk-in storage ${storageName}: commit ${commit.ts}'s log must be a Uint8Array. Nothing was written.`);
    }
    if (commit.receipts !== undefined) checkReceipts(commit, receiptKeys, storageName);
    ids.add(commit.id);
    previous = commit.ts;
  }
}

/** Longest receipt key a storage must accept (and the most it may refuse above). */
export const MAX_RECEIPT_KEY_BYTES = 1024;

function checkReceipts(commit: Commit, keys: Set<string>, storageName: string): void {
  if (!Array.isArray(commit.receipts)) {
    throw new TypeError(`Walk-in storage ${storageName}: commit ${commit.ts}'s receipts must be an array. Nothing was written.`);
  }
  for (const receipt of commit.receipts) {
    const key: unknown = receipt?.key;
    if (typeof key !== "string" || key.length === 0 || Buffer.byteLength(key) > MAX_RECEIPT_KEY_BYTES || typeof receipt.body !== "string") {
      throw new TypeError(
        `Walk-in storage ${storageName}: commit ${commit.ts} has a receipt that is not { key, body } with a non-empty key of ` +
          `at most ${MAX_RECEIPT_KEY_BYTES} bytes and a string body (key ${JSON.stringify(key)}). Nothing was written.`,
      );
    }
    if (keys.has(key)) throw repeatedReceiptError(storageName, key);
    keys.add(key);
  }
}

/** The error for a batch that writes a receipt key twice, or one already stored. */
export function repeatedReceiptError(storageName: string, key: string | null, cause?: unknown): Error {
  return new RepeatedReceiptError(
    `Walk-in storage ${storageName}: a batch writes the receipt ${key === null ? "key" : JSON.stringify(key)} twice, or a ` +
      `receipt key that is already stored; receipt keys are unique. Nothing was written.`,
    { cause },
  );
}

/** The error for a commit that writes one document or index entry twice (a key clash in storage). */
export function repeatedWriteError(storageName: string, cause: unknown): Error {
  return new Error(
    `Walk-in storage ${storageName}: a commit writes the same document or index entry twice; ` +
      `a commit may write each at most once. Nothing was written.`,
    { cause },
  );
}

/** Checks `commitsSince`'s limit the same way in every storage. */
export function checkLogLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`commitsSince: limit must be a positive integer, got ${limit}.`);
}

/** Checks `pruneReceipts`' arguments the same way in every storage. */
export function checkPruneReceipts(writtenBefore: number, limit: number): void {
  if (!Number.isFinite(writtenBefore)) {
    throw new RangeError(`pruneReceipts: writtenBefore must be a time in milliseconds since the epoch, got ${writtenBefore}.`);
  }
  if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`pruneReceipts: limit must be a positive integer, got ${limit}.`);
}
