/**
 * Test fixture: a hooked PostgreSQL storage (`engine/fixtures/hookedStorage.ts`) that still
 * behaves as one node of a shared database: it passes on the other nodes' commits
 * (`watchCommits`) and the database's clock (`currentTime`), which the plain hooked storage
 * leaves out.
 */
import { HookedStorage } from "../../engine/fixtures/hookedStorage.js";
import type { Timestamp } from "../types.js";
import type { PostgresStorage } from "./postgresStorage.js";

export class SharedHookedStorage extends HookedStorage {
  constructor(readonly pg: PostgresStorage) {
    super(pg);
  }
  watchCommits(listener: (latest?: Timestamp) => void): () => void {
    return this.pg.watchCommits(listener);
  }
  currentTime(): Promise<number> {
    return this.pg.currentTime();
  }
}
