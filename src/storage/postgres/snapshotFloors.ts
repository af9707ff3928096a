/**
 * Pruning across nodes: history is removed only below every node's oldest snapshot.
 *
 * Each engine prunes at its own oldest pinned snapshot, but on a shared database another
 * node may be reading an older one, and pruning under it would change what it reads. So each
 * open storage keeps a row `(instance, floor, seen_at)`:
 *
 *  1. On open it registers `floor = latest`: every snapshot this engine will read is at or
 *     after the latest commit it found when it opened. The row is written from the clock in one
 *     statement that holds the clock row (FOR SHARE) until it commits, so no prune can slip
 *     between reading `latest` and registering it (see `claim`).
 *  2. `pruneHistory(ts)` first records `floor = ts` (the engine's oldest pinned snapshot, a
 *     lower bound for everything it reads from now on: new snapshots start at its latest), then
 *     prunes at the lowest floor among rows seen in the last `staleMs` (FLOOR_STALE_MS).
 *  3. A timer refreshes `seen_at` every `staleMs / 12` (10 s), so an idle node keeps holding
 *     its floor. A node that died stops refreshing; its row stops counting after `staleMs` and
 *     is deleted after FLOOR_FORGET_SECONDS. Closing deletes the row.
 *
 * ## Fencing: a node whose row may have stopped counting
 *
 * A node that is alive but whose refreshes all fail for longer than `staleMs` (cut off from
 * the database, or its process frozen) stops counting too, and the others may prune above its
 * floor. Back in touch, it must not read at the snapshots it held: a document another node
 * updated meanwhile would read as missing, its older version pruned. (Its mutations are safe
 * anyway: the log they are checked against is trimmed past their snapshot, which is a
 * conflict.) So the node judges, by its own clocks, when its row may have lapsed, and fences
 * its reads:
 *
 *  a. `countedSince` is when the newest refresh that kept the row counting without a gap
 *     started. A refresh keeps it so if it returned before the row could have lapsed
 *     (`fenceAfterMs` after the previous one started): it landed at the server after it was
 *     sent, so its `seen_at` is no earlier than its start, and the row counted until then.
 *  b. The row may have lapsed once `fenceAfterMs` has passed since `countedSince`. That is
 *     `staleMs` less a margin (20 s of 120 s) for what our clocks cannot see: the server's
 *     clock, which `now()` reads, being stepped or running at another rate than ours. Both
 *     our monotonic clock and our wall clock are asked, and the longer time counts: the
 *     monotonic one stands still while a machine or VM is suspended, the wall one may be set
 *     back.
 *  c. Once it may have lapsed, the next refresh, and the next read, re-register the row as step
 *     1 does: `floor` and `fencedBelow` become the clock's latest commit. Every prune so far
 *     was at a timestamp at or below it (a node prunes at most at the latest commit it knows),
 *     and every later one sees the row. Reads at a snapshot below `fencedBelow` fail from then
 *     on with `SnapshotFencedError`; the engine learns the commits since and reads again at a
 *     newer snapshot (catchUp.ts, `learnPastFence`).
 *  d. A read is checked (`readable`: two clock reads, no SQL) before it is sent and again once
 *     its answer is in. The second check is the one that counts: the answer was read at the
 *     server before it arrived, so if the row still counted on arrival, it counted when the
 *     answer was read, however long the read waited for a connection or on the network. An
 *     answer that arrives after the row may have lapsed is thrown away and the read goes
 *     round again (it then re-registers, and is refused or read afresh).
 */
import { performance } from "node:perf_hooks";
import type pg from "pg";
import { SnapshotFencedError } from "../types.js";

/** How long a row counts after its last refresh (step 3). */
export const FLOOR_STALE_MS = 120_000;
const FLOOR_FORGET_SECONDS = 3_600;
/** Of FLOOR_STALE_MS, what a node keeps in hand before it treats its own row as lapsed (fencing, b). */
const FENCE_MARGIN_MS = 20_000;

export class SnapshotFloors {
  private floor = 0;
  /** Reads at a snapshot below this are refused (fencing, c). */
  private fencedBelow = 0;
  /** When the newest refresh that kept the row counting started, by each clock (fencing, a). */
  private countedSinceMono = -Infinity;
  private countedSinceWall = -Infinity;
  /** A re-registration in flight (fencing, c): every caller that finds the row lapsed waits for the same one. */
  private reclaiming: Promise<void> | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private closed = false;
  /**
   * Refreshes of the row in flight (the heartbeat's, pruning's, a read's re-registration).
   * `close` waits for them before it deletes the row: one that reached the server after the
   * DELETE would insert the row again, and for `staleMs` the closed instance's floor would
   * hold back every node's pruning (and make every reclaimIndex answer false).
   */
  private readonly refreshes = new Set<Promise<void>>();
  private readonly staleSeconds: number;
  private readonly fenceAfterMs: number;
  private readonly heartbeatMs: number;

  constructor(
    private readonly pool: pg.Pool,
    private readonly s: string,
    /** Unique per open storage (two storages in one process are two instances). */
    private readonly instance: string,
    private readonly onError: (error: unknown) => void,
    /** FLOOR_STALE_MS but in tests, which shorten it; every storage on a schema must use the same. */
    staleMs = FLOOR_STALE_MS,
  ) {
    this.staleSeconds = staleMs / 1_000;
    this.fenceAfterMs = staleMs - Math.min(FENCE_MARGIN_MS, staleMs / 6);
    this.heartbeatMs = staleMs / 12;
  }

  /** Step 1; then keeps the row fresh until `close`. */
  async register(): Promise<void> {
    await this.claim();
    this.heartbeat = setInterval(() => void this.touch().catch(this.onError), this.heartbeatMs);
    this.heartbeat.unref?.();
  }

  /** Step 2: records `ts` as this instance's floor; returns the timestamp it is safe to prune at. */
  async agree(ts: number): Promise<number> {
    this.floor = Math.max(this.floor, ts);
    await this.touch();
    const { rows } = await this.pool.query<{ horizon: string | null }>(
      `SELECT min(floor) AS horizon FROM ${this.s}.snapshot_floors WHERE seen_at > now() - make_interval(secs => $1)`,
      [this.staleSeconds],
    );
    return Math.min(ts, Number(rows[0]?.horizon ?? ts));
  }

  /**
   * Whether a read at `readTs` may be sent, or its answer kept, now (fencing, d): the row
   * still counts and `readTs` is not fenced off. The read path's whole cost: no SQL.
   */
  readable(readTs: number): boolean {
    return readTs >= this.fencedBelow && !this.mayHaveLapsed();
  }

  /**
   * For a read `readable` refused: re-registers the row if it may have lapsed (fencing, c),
   * then refuses the read if its snapshot is fenced off. Fails as the re-registration does
   * while the database cannot be reached.
   */
  async beforeRead(readTs: number): Promise<void> {
    if (this.mayHaveLapsed()) {
      if (this.closed) throw new Error("Walk-in storage: closed.");
      await this.touch();
    }
    if (readTs < this.fencedBelow) {
      throw new SnapshotFencedError(
        `snapshot ${readTs} is older than ${this.fencedBelow}, where this node registered its snapshot floor again: its ` +
          `floor stopped counting for the other nodes (no refresh for over ${this.fenceAfterMs / 1_000} s: cut off from ` +
          `the database, or frozen), and they may have pruned history that snapshot reads. Read at a newer snapshot.`,
      );
    }
  }

  /**
   * Runs `work` in a transaction only if no other storage has a row that counts (seen in the
   * last `staleMs`), and commits it if `work` answers true; answers whether it did.
   * Why "no other storage" holds until the transaction ends, step by step:
   *
   *  1. The transaction locks the floors table in SHARE ROW EXCLUSIVE mode, which conflicts
   *     with the lock every INSERT and UPDATE takes, so no storage registers (step 1 above) or
   *     refreshes its row until it ends.
   *  2. A storage registers before its engine reads anything (postgresStorage.ts, open). One
   *     that registered before this transaction has a row that counts here; one that registers
   *     after waits for the lock, so everything it reads comes after this transaction.
   * A lock that cannot be had within `lockTimeoutMs` (here or in `work`) fails the call, and
   * nothing is changed.
   */
  async whileAlone(work: (client: pg.PoolClient) => Promise<boolean>, lockTimeoutMs: number): Promise<boolean> {
    const client = await this.pool.connect();
    try {
      // Bounded like every lock this storage takes: a lock request that waits queues every
      // node's registration behind it, so a start would hang for as long as it waited. Idle
      // time too: a session cut off from this node while it holds the table would block
      // every registration until the server's TCP keepalive noticed, hours.
      await client.query(
        `BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = ${lockTimeoutMs}; ` +
          `SET LOCAL idle_in_transaction_session_timeout = ${lockTimeoutMs}; ` +
          `LOCK TABLE ${this.s}.snapshot_floors IN SHARE ROW EXCLUSIVE MODE`,
      );
      const { rows } = await client.query<{ others: number }>(
        `SELECT count(*)::int AS others FROM ${this.s}.snapshot_floors WHERE instance <> $1 AND seen_at > now() - make_interval(secs => $2)`,
        [this.instance, this.staleSeconds],
      );
      const done = rows[0]!.others === 0 && (await work(client));
      await client.query(done ? "COMMIT" : "ROLLBACK");
      client.release();
      return done;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {});
      client.release(error as Error);
      throw error;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.heartbeat);
    await Promise.allSettled([...this.refreshes]);
    await this.pool.query(`DELETE FROM ${this.s}.snapshot_floors WHERE instance = $1`, [this.instance]).catch(() => {});
  }

  /** Step 3, unless closed: refreshes the row, tracked for `close`. */
  private touch(): Promise<void> {
    if (this.closed) return Promise.resolve();
    const refresh = this.refresh();
    this.refreshes.add(refresh);
    const settled = () => void this.refreshes.delete(refresh);
    refresh.then(settled, settled);
    return refresh;
  }

  /**
   * Refreshes the row (re-creating it if it was forgotten), or registers it again if it may
   * have lapsed (fencing, c), and forgets long-dead nodes.
   */
  private async refresh(): Promise<void> {
    if (this.mayHaveLapsed()) {
      await (this.reclaiming ??= this.claim().finally(() => (this.reclaiming = undefined)));
    } else {
      const mono = performance.now();
      const wall = Date.now();
      await this.pool.query(
        `INSERT INTO ${this.s}.snapshot_floors (instance, floor, seen_at) VALUES ($1, $2, now())
         ON CONFLICT (instance) DO UPDATE SET floor = excluded.floor, seen_at = now()`,
        [this.instance, this.floor],
      );
      // Landed before the row could lapse: it kept the row counting (fencing, a). Otherwise
      // the row may have lapsed before it landed, and the next refresh or read registers again.
      if (!this.mayHaveLapsed()) this.counted(mono, wall);
    }
    await this.pool.query(`DELETE FROM ${this.s}.snapshot_floors WHERE seen_at < now() - make_interval(secs => $1)`, [FLOOR_FORGET_SECONDS]);
  }

  /**
   * Registers the row at the clock's latest commit (step 1, and fencing, c), reads below which
   * are refused from then on. Why no prune can remove a version a read at `floor` or later
   * sees, step by step:
   *
   *  1. The statement locks the clock row FOR SHARE before it reads `latest_ts`, and holds it
   *     until it commits. A commit takes that row FOR UPDATE first, so none lands in between:
   *     when the row becomes visible, `floor` is still the latest commit.
   *  2. A node prunes at most at the oldest snapshot it pins, at most the latest commit it
   *     knows of. A prune before the row became visible therefore pruned at `floor` or below,
   *     which changes no read at `floor` or later.
   *  3. A prune that knows of a later commit learned of it after that commit landed, so after
   *     the row became visible: its horizon query sees the row, which counts, and it prunes at
   *     `floor` or below.
   * Without the lock, a commit could land between the statement's snapshot and its commit, and
   * a node that learned of it at once could prune at it without seeing the row.
   */
  private async claim(): Promise<void> {
    const mono = performance.now();
    const wall = Date.now();
    const { rows } = await this.pool.query<{ floor: string }>(
      `INSERT INTO ${this.s}.snapshot_floors (instance, floor, seen_at)
       SELECT $1, latest_ts, now() FROM ${this.s}.clock WHERE singleton = 1 FOR SHARE
       ON CONFLICT (instance) DO UPDATE SET floor = excluded.floor, seen_at = now() RETURNING floor`,
      [this.instance],
    );
    const floor = Number(rows[0]!.floor);
    // On open, reads come only at or after it anyway; after a lapse, below it they are unsafe.
    if (this.countedSinceMono !== -Infinity) this.fencedBelow = Math.max(this.fencedBelow, floor);
    this.floor = Math.max(this.floor, floor);
    this.counted(mono, wall);
  }

  private counted(mono: number, wall: number): void {
    this.countedSinceMono = Math.max(this.countedSinceMono, mono);
    this.countedSinceWall = Math.max(this.countedSinceWall, wall);
  }

  /** Fencing, b. */
  private mayHaveLapsed(): boolean {
    return performance.now() - this.countedSinceMono >= this.fenceAfterMs || Date.now() - this.countedSinceWall >= this.fenceAfterMs;
  }
}
