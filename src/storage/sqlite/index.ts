/** `walkin/storage/sqlite`: the embedded SQLite storage, Walk-in's default. */
export { openSqliteStorage, SqliteStorage, type DeferredVersionsOptions, type SqliteStorageOptions } from "./sqliteStorage.js";
export type { SqliteSynchronous } from "./schema.js";
export type { CheckpointerOptions } from "./checkpointer.js";
export type { HistorySweepOptions, SqlitePruneReport } from "./prune.js";
