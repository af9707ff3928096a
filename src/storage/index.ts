/**
 * `walkin/storage`: the storage contract every Walk-in database implements, and the tools to
 * choose, wrap and test one. The conformance suite, which needs vitest, is its own entry:
 * `walkin/storage/conformance`.
 */
export type {
  Commit,
  CommitBatchResult,
  CommitLogView,
  CommitPlanner,
  DocumentVersion,
  DocumentWrite,
  IndexEntry,
  IndexWrite,
  KeyBound,
  KeyRange,
  LoggedCommit,
  PruneReport,
  Receipt,
  ScanRequest,
  Storage,
  StoredReceipt,
  Timestamp,
} from "./types.js";
export {
  CommitOutcomeUnknownError,
  isCommitOutcomeUnknown,
  RepeatedReceiptError,
  isRepeatedReceipt,
  SnapshotFencedError,
  isSnapshotFenced,
  StorageStoppedError,
  storageStoppedBy,
} from "./types.js";
export { checkPlannedCommits } from "./plannedCommits.js";
export { withLatency, type Delay, type LatencyOptions } from "./latency.js";
export { openStorage, parseStorageUrl, redactUrl, StorageUrlError, SUPPORTED_STORAGE_URLS, type StorageLocation } from "./url.js";
