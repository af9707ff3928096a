/**
 * The rules a planner's commits must follow (see `Storage.commitBatch`), checked the same way by
 * every storage before it writes anything, so that each one refuses a bad batch with the same
 * clear message.
 */
import type { Commit, Timestamp } from "./types.js";

/** Throws, naming the storage and the broken rule, unless `commits` may be written after `latest`. */
export function checkPlannedCommits(commits: readonly Commit[], latest: Timestamp, storageName: string): void {
  if (!Array.isArray(commits)) {
    throw new TypeError(`Walk-in storage ${storageName}: a commit planner must return an array of commits. Nothing was written.`);
  }
  let previous = latest;
  const ids = new Set<string>();
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
    ids.add(commit.id);
    previous = commit.ts;
  }
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
