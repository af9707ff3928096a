/**
 * What the parts of the conformance suite share: the storage under test for the running test,
 * and small builders for commits.
 */
import type { DocumentWrite, IndexEntry, IndexWrite, Storage } from "../types.js";

export interface SuiteContext {
  /** The storage of the running test (the reopened one after `reopen`). */
  readonly storage: Storage;
  /** Closes the storage and opens the same data again; skips the test if the target cannot. */
  reopen(skip: (note?: string) => never): Promise<Storage>;
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

/** Scan results as plain data: keys as number arrays, so they compare with `toEqual`. */
export const plain = (entries: IndexEntry[]) => entries.map((e) => ({ key: Array.from(e.key), doc: e.doc }));

/** Just the keys of scan results. */
export const keysOf = (entries: IndexEntry[]) => entries.map((e) => Array.from(e.key));
