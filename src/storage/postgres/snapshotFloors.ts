/**
 * Pruning across nodes: history is removed only below every node's oldest snapshot.
 *
 * Each engine prunes at its own oldest pinned snapshot, but on a shared database another
 * node may be reading an older one, and pruning under it would change what it reads. So each
 * open storage keeps a row `(instance, floor, seen_at)`:
 *
 *  1. On open it registers `floor = latest`: every snapshot this engine will read is at or
 *     after the latest commit it found when it opened. The row is written from the clock in one
 *     statement, so no prune can slip between reading `latest` and registering it.
 *  2. `pruneHistory(ts)` first records `floor = ts` (the engine's oldest pinned snapshot, a
 *     lower bound for everything it reads from now on: new snapshots start at its latest), then
 *     prunes at the lowest floor among rows seen in the last FLOOR_STALE_SECONDS.
 *  3. A timer refreshes `seen_at` every HEARTBEAT_MS, so an idle node keeps holding its floor.
 *     A node that died stops refreshing; its row stops counting after FLOOR_STALE_SECONDS and
 *     is deleted after FLOOR_FORGET_SECONDS. Closing deletes the row.
 * The one window left open: a node frozen for longer than FLOOR_STALE_SECONDS while holding an
 * old snapshot. Its storage calls time out (30 s by default) long before that.
 */
import type pg from "pg";

const HEARTBEAT_MS = 10_000;
const FLOOR_STALE_SECONDS = 120;
const FLOOR_FORGET_SECONDS = 3_600;

export class SnapshotFloors {
  private floor = 0;
  private heartbeat: NodeJS.Timeout | undefined;
  private closed = false;
  /**
   * Refreshes of the row in flight (the heartbeat's, pruning's). `close` waits for them before
   * it deletes the row: one that reached the server after the DELETE would insert the row
   * again, and for FLOOR_STALE_SECONDS the closed instance's floor would hold back every
   * node's pruning (and make every reclaimIndex answer false).
   */
  private readonly refreshes = new Set<Promise<void>>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly s: string,
    /** Unique per open storage (two storages in one process are two instances). */
    private readonly instance: string,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Step 1; then keeps the row fresh until `close`. */
  async register(): Promise<void> {
    const { rows } = await this.pool.query<{ floor: string }>(
      `INSERT INTO ${this.s}.snapshot_floors (instance, floor, seen_at) SELECT $1, latest_ts, now() FROM ${this.s}.clock
       ON CONFLICT (instance) DO UPDATE SET floor = excluded.floor, seen_at = now() RETURNING floor`,
      [this.instance],
    );
    this.floor = Number(rows[0]!.floor);
    this.heartbeat = setInterval(() => void this.touch().catch(this.onError), HEARTBEAT_MS);
    this.heartbeat.unref?.();
  }

  /** Step 2: records `ts` as this instance's floor; returns the timestamp it is safe to prune at. */
  async agree(ts: number): Promise<number> {
    this.floor = Math.max(this.floor, ts);
    await this.touch();
    const { rows } = await this.pool.query<{ horizon: string | null }>(
      `SELECT min(floor) AS horizon FROM ${this.s}.snapshot_floors WHERE seen_at > now() - make_interval(secs => $1)`,
      [FLOOR_STALE_SECONDS],
    );
    return Math.min(ts, Number(rows[0]?.horizon ?? ts));
  }

  /**
   * Runs `work` in a transaction only if no other storage has a row that counts (seen in the
   * last FLOOR_STALE_SECONDS), and commits it if `work` answers true; answers whether it did.
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
        [this.instance, FLOOR_STALE_SECONDS],
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

  /** Refreshes the row (re-creating it if it was forgotten), and forgets long-dead nodes. */
  private async refresh(): Promise<void> {
    await this.pool.query(
      `INSERT INTO ${this.s}.snapshot_floors (instance, floor, seen_at) VALUES ($1, $2, now())
       ON CONFLICT (instance) DO UPDATE SET floor = excluded.floor, seen_at = now()`,
      [this.instance, this.floor],
    );
    await this.pool.query(`DELETE FROM ${this.s}.snapshot_floors WHERE seen_at < now() - make_interval(secs => $1)`, [FLOOR_FORGET_SECONDS]);
  }
}
