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
 * Other processes on the file are covered by its `read_floors` table: each process keeps a row
 * there with the lowest floor of its connections, and each connection prunes below those rows
 * too (`processFloors.ts` says how, step by step).
 */
import { realpathSync } from "node:fs";
import path from "node:path";
import { anotherProcessCounts, OtherProcessFloors, ProcessFloorRow, type RowWriter } from "./processFloors.js";

/**
 * What a registered connection shows of itself: its floor, Infinity once its database is
 * closed, and how the process's row can be written through it.
 */
export interface FloorHolder extends RowWriter {
  readonly readFloor: number;
}

/** This process's connections on one file, and the row that speaks for them to other processes. */
interface FileMembers {
  readonly holders: Set<FloorHolder>;
  readonly row: ProcessFloorRow;
}

const membersByFile = new Map<string, FileMembers>();

export class FileFloors {
  private left = false;

  private constructor(
    private readonly members: FileMembers | null,
    private readonly file: string,
    private readonly own: FloorHolder,
    private readonly others: OtherProcessFloors | null,
  ) {}

  /**
   * Registers `holder` for the file its connection opened, before the connection reads
   * anything (`processFloors.ts`, step 1). An in-memory or temporary database (`:memory:`, `""`)
   * is private to its connection: nothing to share.
   */
  static join(holder: FloorHolder): FileFloors {
    const filename = holder.db.name;
    if (isPrivate(filename)) return new FileFloors(null, "", holder, null);
    const file = realPath(filename);
    let members = membersByFile.get(file);
    if (members === undefined) {
      const holders = new Set<FloorHolder>();
      const row = new ProcessFloorRow(
        () => lowestOf(holders),
        () => [...holders].find((member) => member.db.open) ?? null,
      );
      membersByFile.set(file, (members = { holders, row }));
    }
    // Every connection refreshes the row as it opens: the process's earlier connections may
    // all have been closed without `close`, leaving a row no heartbeat kept fresh.
    members.row.register(holder.db);
    members.holders.add(holder);
    return new FileFloors(members, file, holder, new OtherProcessFloors(holder.db, members.row.instance));
  }

  /** The highest timestamp at or below `ts` that every connection on the file, in any process, may prune at. */
  below(ts: number): number {
    if (this.members === null) return ts;
    let floor = ts;
    const holders = this.members.holders;
    if (holders.size > 1) {
      for (const holder of holders) {
        if (holder === this.own) continue;
        const other = holder.readFloor;
        if (other === Infinity) holders.delete(holder); // closed without `close`: gone for good
        else if (other < floor) floor = other;
      }
    }
    const others = this.others!.lowest();
    return others < floor ? others : floor;
  }

  /**
   * Whether this connection is the only one that can be reading the file. Call it under the
   * write lock, in the transaction that depends on the answer: why that makes it hold until
   * the transaction ends, step by step.
   *
   *  1. Another connection of this process joins its file's holders as it opens, before it
   *     reads anything (`join`, synchronous), and counts until it closes.
   *  2. Another process writes its row before its connection reads anything (processFloors.ts,
   *     step 1), and that write needs the write lock: if it wrote before this transaction, its
   *     row counts here (step 4); if after, everything it reads comes after this transaction.
   * So with no other holder and no other row that counts, no other connection has read the
   * file or can read it before this transaction commits.
   */
  alone(): boolean {
    if (this.members === null) return true;
    for (const holder of this.members.holders) {
      if (holder !== this.own && holder.readFloor !== Infinity) return false;
    }
    return !anotherProcessCounts(this.own.db, this.members.row.instance);
  }

  /**
   * Unregisters the connection (at close, while its database is still open if it can be: the
   * last connection of the process deletes the process's row through it).
   */
  leave(): void {
    if (this.members === null || this.left) return;
    this.left = true;
    const { holders, row } = this.members;
    holders.delete(this.own);
    if (holders.size > 0 && [...holders].some((holder) => holder.readFloor !== Infinity)) return;
    row.remove(this.own.db);
    if (membersByFile.get(this.file) === this.members) membersByFile.delete(this.file);
  }
}

/**
 * An in-memory or temporary database (`:memory:`, `""`), which no other connection can open.
 * better-sqlite3 takes no URI filenames: "file::memory:" is a file on disk, shared like any.
 */
export function isPrivate(filename: string): boolean {
  return filename === "" || filename === ":memory:";
}

/** The lowest floor among `holders` (Infinity if none is open). */
function lowestOf(holders: Set<FloorHolder>): number {
  let lowest = Infinity;
  for (const holder of holders) if (holder.readFloor < lowest) lowest = holder.readFloor;
  return lowest;
}

/** The file's one name, however it was reached (relative path, symlink). */
function realPath(filename: string): string {
  try {
    return realpathSync(filename);
  } catch {
    return path.resolve(filename); // not there (cannot happen once SQLite has created it): as given
  }
}
