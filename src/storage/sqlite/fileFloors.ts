/**
 * Pruning on a file that several connections of this process have open.
 *
 * A hot reload runs two engines on one SQLite file for a while, each on its own connection: the
 * old one finishes the queries and actions it started, at its own snapshots, while the new one
 * commits and prunes. Each engine prunes at its own oldest snapshot, and every connection
 * prunes in three places: the history sweep (`pruneHistory`), the superseded versions a
 * commit deletes as it writes (`VersionWriter.write`), and the commit log's trim. Pruned at the
 * new engine's floor alone, the old engine's snapshots lost versions they still read (a
 * document updated since read as missing), and its commits' IDs left the log while it was
 * still asking `findCommits` about them.
 *
 * So each connection registers here by the file's real path, and prunes only below the lowest
 * read floor of every connection registered on the file. A connection's floor is what its
 * engine last promised (`raiseReadFloor`, `pruneHistory`), and at least the latest commit when
 * it opened (its engine reads nothing older): no read of it comes below. Closing a connection
 * removes it; one closed without `close` (a crashed tool, a test) counts as no floor at all.
 *
 * This covers one process. Engines in two processes on one file are not a supported setup
 * (docs/storage.md): their floors would need a table with heartbeats, as PostgreSQL's nodes
 * keep (`postgres/snapshotFloors.ts`).
 */
import { realpathSync } from "node:fs";
import path from "node:path";

/** What a registered connection shows of itself: its floor, Infinity once its database is closed. */
export interface FloorHolder {
  readonly readFloor: number;
}

const holdersByFile = new Map<string, Set<FloorHolder>>();

export class FileFloors {
  private constructor(
    private readonly holders: Set<FloorHolder> | null,
    private readonly file: string,
    private readonly own: FloorHolder,
  ) {}

  /**
   * Registers `holder` for `filename` (the path the connection opened). An in-memory or
   * temporary database (`:memory:`, `""`) is private to its connection: nothing to share.
   */
  static join(filename: string, holder: FloorHolder): FileFloors {
    // better-sqlite3 takes no URI filenames: "file::memory:" is a file on disk, shared like any.
    if (filename === "" || filename === ":memory:") return new FileFloors(null, "", holder);
    const file = realPath(filename);
    let holders = holdersByFile.get(file);
    if (holders === undefined) holdersByFile.set(file, (holders = new Set()));
    holders.add(holder);
    return new FileFloors(holders, file, holder);
  }

  /** The highest timestamp at or below `ts` that every connection on the file may prune at. */
  below(ts: number): number {
    if (this.holders === null || this.holders.size === 1) return ts;
    let floor = ts;
    for (const holder of this.holders) {
      if (holder === this.own) continue;
      const other = holder.readFloor;
      if (other === Infinity) this.holders.delete(holder); // closed without `close`: gone for good
      else if (other < floor) floor = other;
    }
    return floor;
  }

  /** Unregisters the connection (at close). */
  leave(): void {
    if (this.holders === null) return;
    this.holders.delete(this.own);
    if (this.holders.size === 0 && holdersByFile.get(this.file) === this.holders) holdersByFile.delete(this.file);
  }
}

/** The file's one name, however it was reached (relative path, symlink). */
function realPath(filename: string): string {
  try {
    return realpathSync(filename);
  } catch {
    return path.resolve(filename); // not there (cannot happen once SQLite has created it): as given
  }
}
