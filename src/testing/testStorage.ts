/**
 * The storage `walkinTest` and `startLiveBackend` run on when a test does not pass one: a
 * private in-memory SQLite database, or the one `WALKIN_TEST_STORAGE` names, so that a whole
 * test suite can be run again on another storage without touching a test:
 *
 * - unset or `sqlite`: in-memory SQLite;
 * - `latency`: in-memory SQLite behind `withLatency` (reads 0–3 ms, commits 4 ms), the way a
 *   networked database answers. Walk-in's own CI runs the engine suite this way too.
 */
import { withLatency } from "../storage/latency.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import type { Storage } from "../storage/types.js";

/** A storage for a test, or a function that opens one. */
export type TestStorageOption = Storage | (() => Promise<Storage>);

export async function openTestStorage(option?: TestStorageOption): Promise<Storage> {
  if (option !== undefined) return typeof option === "function" ? option() : option;
  const kind = process.env["WALKIN_TEST_STORAGE"] ?? "sqlite";
  const memory = () => openSqliteStorage({ filename: ":memory:" });
  switch (kind) {
    case "sqlite":
      return memory();
    case "latency":
      return withLatency(await memory(), { read: [0, 3], commit: 4 });
    default:
      throw new Error(`WALKIN_TEST_STORAGE="${kind}" is not a test storage; use "sqlite" (the default) or "latency".`);
  }
}

/**
 * `storage` as the test environment wants it: behind `withLatency` when
 * `WALKIN_TEST_STORAGE=latency`, as it is otherwise. For tests that open a storage of their own
 * (a file, to reopen it) but should still run at latency in that suite.
 */
export function withTestLatency(storage: Storage): Storage {
  return process.env["WALKIN_TEST_STORAGE"] === "latency" ? withLatency(storage, { read: [0, 3], commit: 4 }) : storage;
}
