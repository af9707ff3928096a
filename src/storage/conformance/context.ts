/**
 * What the parts of the conformance suite share: the storage under test for the running test,
 * and small builders for commits.
 */
import type { Commit, CommitBatchResult, DocumentWrite, IndexEntry, IndexWrite, Storage, Timestamp } from "../types.js";

export interface SuiteContext {
  /** The storage of the running test (the reopened one after `reopen`). */
  readonly storage: Storage;
  /** Closes the storage and opens the same data again; skips the test if the target cannot. */
  reopen(skip: (note?: string) => never): Promise<Storage>;
  /** A second connection to the same database; skips the test if the target cannot open one. */
  openSecond(skip: (note?: string) => never): Promise<Storage>;
  /** Stored version counts, if the target provides a hook for them. */
  countVersions(): Promise<{ documents: number; indexEntries: number }> | undefined;
}

export const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);

export const put = (id: string, body: string, table = "things"): DocumentWrite => ({ id, table, body });
export const remove = (id: string, table = "things"): DocumentWrite => ({ id, table, body: null });

export const entry = (indexId: string, key: number[], docId: string | null): IndexWrite => ({
  indexId,
  key: Uint8Array.from(key),
  docId,
});

/** The same write hinted `fresh` (no version of its document or index entry is stored). */
export const fresh = <W extends DocumentWrite | IndexWrite>(write: W): W => ({ ...write, fresh: true });

/** Scan results as plain data: keys as number arrays, so they compare with `toEqual`. */
export const plain = (entries: IndexEntry[]) => entries.map((e) => ({ key: Array.from(e.key), doc: e.doc }));

/** Just the keys of scan results. */
export const keysOf = (entries: IndexEntry[]) => entries.map((e) => Array.from(e.key));

/** A commit as tests write it: `id` and `log` are filled in when left out. */
export type TestCommit = Omit<Commit, "id" | "log"> & Partial<Pick<Commit, "id" | "log">>;

let commitCounter = 0;

/** A full `Commit`: a fresh unique id and an empty log unless given. */
export function toCommit(commit: TestCommit): Commit {
  return { ...commit, id: commit.id ?? `test-${process.pid}-${++commitCounter}`, log: commit.log ?? new Uint8Array() };
}

/**
 * Writes `commits` as one batch whatever the storage's latest timestamp is (the planner ignores
 * the view), so tests can also check that the storage refuses bad timestamps.
 */
export function commitAll(storage: Storage, commits: readonly TestCommit[], since: Timestamp = 0): Promise<CommitBatchResult> {
  const full = commits.map(toCommit);
  return storage.commitBatch(since, () => full);
}

/** Writes one commit (see `commitAll`). */
export function commit(storage: Storage, one: TestCommit, since: Timestamp = 0): Promise<CommitBatchResult> {
  return commitAll(storage, [one], since);
}
