/**
 * `PostgresStorage`: the `Storage` interface on PostgreSQL (node-postgres), for several Walk-in
 * nodes sharing one database.
 *
 * One `pg.Pool` per storage serves reads and commits; one more connection, opened by the first
 * `watchCommits`, LISTENs for other nodes' commits (`watch.ts`). Scans are in `scan.ts`,
 * pruning in `prune.ts`, the tables and migrations in `schema.ts`, connection settings and
 * open errors in `connect.ts`.
 *
 * ## A commit, round trip by round trip
 *
 * 1. `BEGIN; SET LOCAL ...; SELECT ... FROM clock FOR UPDATE; SELECT ... FROM commit_log WHERE
 *    ts > since`: one simple-protocol message (the integer `since` is checked, then spliced in).
 *    The clock row lock is the commit lock: every writer on every node takes it first, so from
 *    here until COMMIT no other commit can land. The log is read by a later statement than the
 *    lock, so under READ COMMITTED its snapshot includes every commit that finished before the
 *    lock was granted.
 * 2. The planner runs (synchronously, once) on that view; `checkPlannedCommits` checks it.
 * 3. One statement writes everything: documents, index entries, commit-log rows and receipts, each from
 *    `unnest` of arrays (a multi-row insert however big the batch), the clock update and
 *    `pg_notify` (delivered at COMMIT, to every node listening). `COMMIT` is sent right behind
 *    it without waiting (the pool's connections pipeline), so steps 3 and 4 are one round trip:
 *    two round trips per batch in all. If the statement fails, the server answers the COMMIT of
 *    the aborted transaction with ROLLBACK.
 *    READ COMMITTED is named in the BEGIN, not left to the server: under a default of
 *    REPEATABLE READ or SERIALIZABLE (`default_transaction_isolation`, set on a database or a
 *    role), a FOR UPDATE that waited for a commit in flight fails with a serialization error
 *    instead of reading the row that commit left, and about half of concurrent commits would.
 *    The same holds for `findCommits` and the log's trim, which take the same lock.
 * 4. `COMMIT`. PostgreSQL makes a transaction visible before it releases its row locks, so the
 *    next writer can only take the clock after this commit is visible to everyone: timestamp
 *    order, commit order and visibility order are one order.
 *
 * Outcomes: a failure in steps 1–2 (including a lost connection) leaves nothing written, since
 * PostgreSQL rolls back a transaction whose connection ends; it is an ordinary error. Once the
 * writes and COMMIT are sent, only an answer proving a rollback (an ERROR from a live server,
 * COMMIT answered with ROLLBACK, the session ended for idling in the transaction) is an ordinary
 * error; a lost connection or another FATAL (say, the backend was terminated while committing)
 * may come after the commit became durable, so it is a `CommitOutcomeUnknownError` and
 * `findCommits` gives the answer.
 */
import pg from "pg";
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type {
  CommitBatchResult,
  CommitLogView,
  CommitPlanner,
  DocumentVersion,
  IndexEntry,
  IndexVersion,
  LoggedCommit,
  ScanRequest,
  Storage,
  StoredReceipt,
  Timestamp,
  ReclaimGuard,
} from "../types.js";
import { CommitOutcomeUnknownError } from "../types.js";
import { checkLogLimit, checkPlannedCommits, checkPruneReceipts, repeatedReceiptError, repeatedWriteError } from "../plannedCommits.js";
import { redactUrl } from "../url.js";
import { BEGIN_READ_COMMITTED, clientConfig, describeConnectError, describeConnectionLimit, parsePostgresUrl, SESSION_READ_COMMITTED } from "./connect.js";
import { DEFAULT_PRUNE_BATCH_SIZE, Pruner } from "./prune.js";
import { SnapshotFloors } from "./snapshotFloors.js";
import { scanSql, toBytes } from "./scan.js";
import { sqlBounds, toBuffer } from "../sqlBounds.js";
import { checkSchemaName, commitChannel, migrate, quoteIdentifier } from "./schema.js";
import { CommitWatcher } from "./watch.js";

export interface PostgresStorageOptions {
  /** `postgres://user:password@host:5432/database` (or `postgresql://`). */
  url: string;
  /** The PostgreSQL schema holding Walk-in's tables, created if missing. Default `public`. */
  schema?: string;
  /** Connections in the pool (reads and commits). Default 10. */
  poolSize?: number;
  /**
   * How long a commit (or `findCommits`, or a log trim) waits for the commit lock before it
   * fails, and how long a transaction may sit idle holding it before PostgreSQL ends its
   * session: a stalled node cannot block the others for longer. Also how long any other
   * statement waits for a lock an outside session holds (a LOCK TABLE, a migration's ALTER
   * TABLE) before it fails. Default 10 000 ms.
   */
  lockTimeoutMs?: number;
  /**
   * How long any statement may go unanswered before its connection is given up and closed
   * (node-postgres' `query_timeout`): a connection whose network path died silently (a
   * failover, a NAT dropping its state) would otherwise hold its pool slot until TCP gives up,
   * a quarter of an hour. A commit cut off this way has an unknown outcome, as after any lost
   * connection. Must exceed lockTimeoutMs. Default 30 000 ms (the engine's own deadline for a
   * call), or twice lockTimeoutMs if that is longer.
   */
  queryTimeoutMs?: number;
  /** Rows examined per pruning statement. Default 1000. */
  pruneBatchSize?: number;
  /** This node's name in the commit log (for operators). Default `<hostname>:<pid>`. */
  node?: string;
  /** Where to report background errors (the LISTEN connection dropping). Default `console.warn`. */
  onError?: (error: unknown) => void;
  /**
   * For tests only: how long a node's snapshot floor counts after its last refresh, instead of
   * two minutes (snapshotFloors.ts), so that a test can let one lapse. Every storage on a schema
   * must use the same.
   * @internal
   */
  snapshotFloorStaleMs?: number;
}

const DEFAULT_POOL_SIZE = 10;
const DEFAULT_LOCK_TIMEOUT_MS = 10_000;
const DEFAULT_QUERY_TIMEOUT_MS = 30_000;

/**
 * Opens PostgreSQL storage: connects, creates the schema's tables if needed (or migrates them)
 * and returns the storage. Fails within a few seconds, with a message that says what to fix,
 * when the URL, the server, the credentials or the database are wrong.
 *
 * @example
 * import { openPostgresStorage } from "walkin/storage/postgres";
 * const storage = await openPostgresStorage({ url: "postgres://app:secret@db.internal:5432/app" });
 * console.log(await storage.latestTimestamp());
 * await storage.close();
 */
export async function openPostgresStorage(options: PostgresStorageOptions): Promise<PostgresStorage> {
  const { url } = options;
  parsePostgresUrl(url); // a malformed URL fails here, before any connection is tried
  const schema = options.schema ?? "public";
  checkSchemaName(schema);
  const poolSize = options.poolSize ?? DEFAULT_POOL_SIZE;
  if (!Number.isSafeInteger(poolSize) || poolSize < 1) {
    throw new RangeError(`Walk-in storage: poolSize must be a positive integer, got ${poolSize}.`);
  }
  const lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  if (!Number.isSafeInteger(lockTimeoutMs) || lockTimeoutMs < 1) {
    throw new RangeError(`Walk-in storage: lockTimeoutMs must be a positive integer, got ${lockTimeoutMs}.`);
  }
  const queryTimeoutMs = options.queryTimeoutMs ?? Math.max(DEFAULT_QUERY_TIMEOUT_MS, 2 * lockTimeoutMs);
  if (!Number.isSafeInteger(queryTimeoutMs) || queryTimeoutMs <= lockTimeoutMs) {
    throw new RangeError(`Walk-in storage: queryTimeoutMs must be an integer above lockTimeoutMs (${lockTimeoutMs}), got ${queryTimeoutMs}.`);
  }
  const config = clientConfig(url, "walkin");
  const pool = new pg.Pool({ ...config, max: poolSize, idleTimeoutMillis: 30_000, pipeline: true, query_timeout: queryTimeoutMs });
  // An idle pooled connection that dies (server restart) emits "error" on the pool; the pool
  // drops it and opens another when needed. Without a listener Node would crash the process.
  pool.on("error", () => {});
  // A client checked out of the pool has no "error" listener of the pool's: a connection lost
  // while a commit holds it would otherwise be an uncaught exception. The query in flight fails
  // with the same error (that is where it is handled); the event itself can be ignored.
  pool.on("connect", (client) => {
    client.on("error", () => {});
    // Statements outside the lock-taking transactions (pruning's batch DELETEs, reads) run in
    // READ COMMITTED too, whatever the server's default: under REPEATABLE READ two nodes
    // pruning the same old version would fail one DELETE with a serialization error. Queued
    // before anything the pool hands this client out for (node-postgres runs a client's
    // queries in order). The lock-taking transactions name the level themselves as well.
    //
    // Every statement also waits at most lockTimeoutMs for a lock (the lock-taking transactions
    // set it again, locally). Reads take no lock of their own, but an outside session's LOCK
    // TABLE or DDL (ALTER TABLE in a migration) blocks them; without a server-side bound they
    // would wait for queryTimeoutMs, and node-postgres giving up then only closes the socket:
    // the backend, asleep in the lock queue, does not notice, and keeps its connection slot
    // until the lock is released. Every retry left one more, until max_connections was reached.
    void client.query(`${SESSION_READ_COMMITTED}; SET lock_timeout = ${lockTimeoutMs}`).catch(() => {});
  });
  try {
    const client = await pool.connect().catch((error: unknown) => {
      throw describeConnectError(error, url);
    });
    try {
      await migrate(client, schema);
      client.release();
    } catch (error) {
      client.release(error as Error);
      const code = (error as { code?: string }).code;
      throw code === "42501" || code === "25006" ? describeConnectError(error, url) : error;
    }
    const storage = new PostgresStorage(pool, { ...options, schema, lockTimeoutMs, config });
    await storage.floors.register().catch((error: unknown) => {
      throw describeRegistrationError(error, storage.name, schema, lockTimeoutMs);
    });
    return storage;
  } catch (error) {
    await pool.end().catch(() => {});
    throw error;
  }
}

/**
 * A failed registration in the floors table at open, named as such: the one way it fails
 * while the database is otherwise fine is a lock that another session holds on the table (a
 * node reclaiming a dropped index's entries, or one stalled while doing it), which PostgreSQL
 * reports only as "canceling statement due to lock timeout".
 */
function describeRegistrationError(error: unknown, storageName: string, schema: string, lockTimeoutMs: number): Error {
  const message = error instanceof Error ? error.message : String(error);
  const lockTimeout = (error as { code?: unknown } | null)?.code === "55P03";
  return new Error(
    `Walk-in storage ${storageName}: could not register this node in ${schema}.snapshot_floors (${message}).` +
      (lockTimeout
        ? ` Another session held a lock on that table for more than lockTimeoutMs (${lockTimeoutMs} ms): another node ` +
          `reclaiming a dropped index's entries, or one stalled while doing it. Start again; if it persists, look for ` +
          `that session in pg_stat_activity.`
        : " Nothing was written; start again."),
    { cause: error },
  );
}

interface DocumentRow {
  id: string;
  ts: number;
  table_name: string;
  body: string | null;
}

interface ClockRow {
  latest_ts: number;
  log_trimmed_through: number;
}

interface LogRow {
  ts: number;
  id: string;
  log: Buffer;
}

/** Entries `reclaimIndex` deletes per transaction. */
const RECLAIM_BATCH_ROWS = 5_000;

export class PostgresStorage implements Storage {
  readonly name: string;
  /** The schema's name, as given (unquoted). */
  readonly schema: string;
  /**
   * The connection pool, for tests and operational tools. Writing through it bypasses the
   * storage's invariants.
   */
  readonly pool: pg.Pool;
  private readonly s: string;
  private readonly node: string;
  private readonly channel: string;
  private readonly lockTimeoutMs: number;
  private readonly url: string;
  private readonly pruner: Pruner;
  private readonly watcher: CommitWatcher;
  /** Where this node's oldest snapshot is, for every node's pruning (see snapshotFloors.ts). */
  readonly floors: SnapshotFloors;
  private readonly sql: ReturnType<typeof statements>;
  private closed = false;

  /** Use `openPostgresStorage`, which connects and migrates first. */
  constructor(
    pool: pg.Pool,
    options: PostgresStorageOptions & { schema: string; lockTimeoutMs: number; config: pg.ClientConfig },
  ) {
    this.pool = pool;
    this.schema = options.schema;
    this.s = quoteIdentifier(options.schema);
    this.name = `postgres:${redactUrl(options.url)}${options.schema === "public" ? "" : `#${options.schema}`}`;
    this.node = options.node ?? `${hostname()}:${process.pid}`;
    this.channel = commitChannel(options.schema);
    this.lockTimeoutMs = options.lockTimeoutMs;
    this.url = options.url;
    this.sql = statements(this.s);
    this.pruner = new Pruner(pool, this.s, () => this.closed, options.pruneBatchSize ?? DEFAULT_PRUNE_BATCH_SIZE, this.lockTimeoutMs);
    const onError = options.onError ?? ((error: unknown) => console.warn(`Walk-in storage ${this.name}: ${(error as Error)?.message ?? error}`));
    this.watcher = new CommitWatcher(options.config, this.channel, onError);
    this.floors = new SnapshotFloors(pool, this.s, `${this.node}:${randomBytes(6).toString("hex")}`, onError, options.snapshotFloorStaleMs);
  }

  private query<R extends pg.QueryResultRow>(name: keyof ReturnType<typeof statements>, values: unknown[]): Promise<pg.QueryResult<R>> {
    return retryOnLostConnection(() => this.pool.query<R>({ name: `walkin_${name}`, text: this.sql[name], values })).catch((error: unknown) => {
      // The pool growing under load may be refused a connection: say which limit and what to do.
      const limit = describeConnectionLimit(error, this.url, this.name);
      if (limit !== null) throw limit;
      if ((error as { code?: unknown } | null)?.code !== "55P03") throw error;
      throw new Error(
        `Walk-in storage ${this.name}: a statement waited more than ${this.lockTimeoutMs} ms for a lock that another session holds ` +
          `on a Walk-in table (a LOCK TABLE, or DDL such as ALTER TABLE, run outside Walk-in). Nothing was changed; it can be ` +
          `retried once that lock is released.`,
        { cause: error },
      );
    });
  }

  /**
   * Round trip 1 of a commit on a connection of its own. A connection found dead here (the
   * server restarted since it was last used) is replaced once: nothing was written and the
   * planner has not run, so trying again is safe.
   */
  private beginCommit(since: Timestamp): Promise<{ client: pg.PoolClient; results: pg.QueryResult[] }> {
    return retryOnLostConnection(async () => {
      const client = await this.pool.connect();
      try {
        return { client, results: (await client.query(this.beginCommitSql(since))) as unknown as pg.QueryResult[] };
      } catch (error) {
        // The transaction may be open (a lock timeout) or the connection dead: never reuse it.
        client.release(error as Error);
        throw error;
      }
    });
  }

  async latestTimestamp(): Promise<Timestamp> {
    return (await this.query<ClockRow>("selectClock", [])).rows[0]!.latest_ts;
  }

  /** The server's clock (`clock_timestamp()`, not the transaction's start), in ms since the epoch. */
  async currentTime(): Promise<number> {
    return Number((await this.query<{ ms: number }>("selectTime", [])).rows[0]!.ms);
  }

  async getDocument(id: string, readTs: Timestamp): Promise<DocumentVersion | null> {
    // Fenced as every snapshot read is (snapshotFloors.ts, "Fencing", d): only an answer that
    // arrived while this node's floor still counted can be trusted; else it goes round again.
    if (!this.floors.readable(readTs)) await this.floors.beforeRead(readTs);
    const row = (await this.query<DocumentRow>("selectDocument", [id, readTs])).rows[0];
    if (!this.floors.readable(readTs)) return this.getDocument(id, readTs);
    if (row === undefined || row.body === null) return null;
    return { id: row.id, table: row.table_name, ts: row.ts, body: row.body };
  }

  async scan(request: ScanRequest): Promise<IndexEntry[]> {
    const rows = await this.scanRows(request, "scan");
    return rows.map((row) => ({
      key: toBytes(row.key),
      doc: { id: row.id, table: row.table_name, ts: row.ts, body: row.body! },
    }));
  }

  async scanVersions(request: ScanRequest): Promise<IndexVersion[]> {
    const rows = await this.scanRows(request, "versions");
    return rows.map((row) => ({ key: toBytes(row.key), id: row.id, table: row.table_name, ts: row.ts }));
  }

  /** The rows of a scan (`scan`) or of one without bodies (`versions`, whose rows have none). */
  private async scanRows(request: ScanRequest, kind: "scan" | "versions"): Promise<Array<DocumentRow & { key: Buffer }>> {
    const { limit } = request;
    if (!(limit >= 0)) throw new RangeError(`Walk-in storage: scan limit must be a number >= 0, got ${limit}.`);
    if (limit === 0) return [];
    const { lower, upper } = sqlBounds(request.range);
    // LIMIT is a bigint parameter: an "infinite" limit becomes the largest one PostgreSQL takes.
    const sqlLimit = Number.isSafeInteger(limit) ? limit : Number.MAX_SAFE_INTEGER;
    const values: unknown[] = [request.indexId, lower, request.readTs, sqlLimit];
    if (upper !== undefined) values.push(upper);
    const name = `${kind}_${request.order}_${upper === undefined ? "open" : "bounded"}` as const;
    // Fenced as getDocument is.
    if (!this.floors.readable(request.readTs)) await this.floors.beforeRead(request.readTs);
    const rows = (await this.query<DocumentRow & { key: Buffer }>(name, values)).rows;
    if (!this.floors.readable(request.readTs)) return this.scanRows(request, kind);
    return rows;
  }

  async commitBatch(since: Timestamp, plan: CommitPlanner): Promise<CommitBatchResult> {
    if (!Number.isSafeInteger(since) || since < 0) {
      throw new RangeError(`Walk-in storage ${this.name}: commitBatch's since must be an integer >= 0, got ${since}.`);
    }
    const { client, results } = await this.beginCommit(since).catch((error: unknown) => {
      throw this.describeCommitError(error);
    });
    let commitSent = false;
    try {
      // The last two statements' rows: the clock row, then the log since `since`.
      const [clockResult, logResult] = results.slice(-2);
      const clock = clockResult!.rows[0] as ClockRow;
      const view: CommitLogView = {
        latest: clock.latest_ts,
        commits: (logResult!.rows as LogRow[]).map(toLoggedCommit),
        trimmedThrough: clock.log_trimmed_through,
      };
      const written = plan(view);
      checkPlannedCommits(written, view.latest, this.name);
      if (written.length === 0) {
        await client.query("ROLLBACK");
        client.release();
        return { view, written };
      }
      // The batch as column arrays, for one multi-row insert per table.
      const documents = { id: [] as string[], ts: [] as number[], table: [] as string[], body: [] as (string | null)[] };
      const entries = { index: [] as string[], key: [] as Buffer[], ts: [] as number[], doc: [] as (string | null)[] };
      const log = { ts: [] as number[], id: [] as string[], log: [] as Buffer[] };
      const receipts = { key: [] as string[], ts: [] as number[], body: [] as string[] };
      for (const commit of written) {
        for (const doc of commit.documents) {
          documents.id.push(doc.id);
          documents.ts.push(commit.ts);
          documents.table.push(doc.table);
          documents.body.push(doc.body);
        }
        for (const entry of commit.indexes) {
          entries.index.push(entry.indexId);
          entries.key.push(toBuffer(entry.key));
          entries.ts.push(commit.ts);
          entries.doc.push(entry.docId);
        }
        log.ts.push(commit.ts);
        log.id.push(commit.id);
        log.log.push(toBuffer(commit.log));
        for (const receipt of commit.receipts ?? []) {
          receipts.key.push(receipt.key);
          receipts.ts.push(commit.ts);
          receipts.body.push(receipt.body);
        }
      }
      const latest = written[written.length - 1]!.ts;
      // Round trip 2: the writes and COMMIT, sent together (the connection pipelines them). If
      // the writes fail, the server answers the COMMIT of the aborted transaction with ROLLBACK.
      const writing = client.query({
        name: "walkin_write_batch",
        text: this.sql.writeBatch,
        values: [
          documents.id, documents.ts, documents.table, documents.body,
          entries.index, entries.key, entries.ts, entries.doc,
          log.ts, log.id, this.node, log.log,
          latest, this.channel,
          receipts.key, receipts.ts, receipts.body, Date.now(),
        ],
      });
      commitSent = true;
      const committing = client.query("COMMIT");
      const [wrote, committed] = await Promise.allSettled([writing, committing]);
      // A write's error outranks the COMMIT's: if it came from a live server, nothing landed.
      if (wrote.status === "rejected") throw wrote.reason;
      if (committed.status === "rejected") throw committed.reason;
      if (committed.value.command !== "COMMIT") {
        throw new RolledBackError(`Walk-in storage ${this.name}: PostgreSQL answered COMMIT with ${committed.value.command}. Nothing was written.`);
      }
      client.release();
      return { view, written };
    } catch (error) {
      const connectionFine = isErrorFromLiveServer(error) || isOurError(error) || (!isDatabaseError(error) && !isConnectionError(error));
      if (!commitSent && connectionFine) {
        // An SQL error or a planner's refusal: the connection is fine, roll back and reuse it.
        await client.query("ROLLBACK").then(() => client.release(), (rollbackError: Error) => client.release(rollbackError));
      } else {
        // A client in an unknown state is never reused: the pool opens a fresh one.
        client.release(error as Error);
      }
      if (commitSent && !provesNothingCommitted(error)) {
        throw new CommitOutcomeUnknownError(
          `Walk-in storage ${this.name}: the connection failed while COMMIT was in flight ` +
            `(${(error as Error)?.message ?? error}); the batch may or may not have landed.`,
          { cause: error },
        );
      }
      throw this.describeCommitError(error);
    }
  }

  /** A commit's error (nothing written) with a message that says what happened, when we know. */
  private describeCommitError(error: unknown): unknown {
    const code = (error as { code?: unknown } | null)?.code;
    if (code === "53300") return describeConnectionLimit(error, this.url, this.name)!;
    if (code === "55P03") {
      return new Error(
        `Walk-in storage ${this.name}: waited more than ${this.lockTimeoutMs} ms for the commit lock; another node ` +
          `holds it (or is stalled holding it). Nothing was written; the commit can be retried.`,
        { cause: error },
      );
    }
    if (code === "23505") {
      const constraint = (error as { constraint?: unknown }).constraint;
      return constraint === "receipts_pkey" ? repeatedReceiptError(this.name, null, error) : repeatedWriteError(this.name, error);
    }
    return error;
  }

  async commitsSince(since: Timestamp, limit: number): Promise<CommitLogView> {
    checkLogLimit(limit);
    // One statement, so the clock and the log rows come from the same snapshot.
    const rows = (await this.query<ClockRow & { ts: number | null; id: string | null; log: Buffer | null }>("selectLogSince", [since, limit])).rows;
    const clock = rows[0]!;
    const commits = rows.filter((row) => row.ts !== null).map((row) => toLoggedCommit(row as LogRow));
    const latest = commits.length === limit ? commits[commits.length - 1]!.ts : clock.latest_ts;
    return { latest, commits, trimmedThrough: clock.log_trimmed_through };
  }

  findCommits(ids: readonly string[]): Promise<Map<string, Timestamp>> {
    // Read-only, so a connection found dead is simply replaced.
    return retryOnLostConnection(() => this.findCommitsOnce(ids)).catch((error: unknown) => {
      throw describeConnectionLimit(error, this.url, this.name) ?? error;
    });
  }

  private async findCommitsOnce(ids: readonly string[]): Promise<Map<string, Timestamp>> {
    const client = await this.pool.connect();
    try {
      // Taking the commit lock waits out a commit in flight on any node; the lookup is a later
      // statement, so its snapshot includes that commit if it landed. Bounded idle as a
      // commit is: a lookup cut off between the lock and its SELECT (after a commit whose
      // outcome a network fault hid, exactly when this runs) would otherwise leave its session
      // holding every node's commit lock until the server's TCP keepalive noticed, hours.
      await client.query(
        `${BEGIN_READ_COMMITTED}; SET LOCAL lock_timeout = ${this.lockTimeoutMs}; ` +
          `SET LOCAL idle_in_transaction_session_timeout = ${this.lockTimeoutMs}; ` +
          `SELECT 1 FROM ${this.s}.clock WHERE singleton = 1 FOR UPDATE`,
      );
      const rows = (await client.query<{ ts: number; id: string }>({
        name: "walkin_find_commits",
        text: this.sql.findCommits,
        values: [ids],
      })).rows;
      await client.query("ROLLBACK");
      client.release();
      return new Map(rows.map((row) => [row.id, row.ts]));
    } catch (error) {
      client.release(error as Error);
      throw error;
    }
  }

  watchCommits(listener: (latest?: Timestamp) => void): () => void {
    return this.watcher.watch(listener);
  }

  async dropIndex(indexId: string): Promise<void> {
    // One statement, so a rebuild that starts right after never has its new entries deleted.
    await this.query("deleteIndex", [indexId]);
  }

  async reclaimIndex(indexId: string, guard: ReclaimGuard): Promise<boolean> {
    // A batch at a time, each in a transaction of its own with the checks: the floors table
    // stays locked, and nodes that start wait, only for one batch. Stopping between batches is
    // safe: the index is not listed as built, so an engine that declares it rebuilds it.
    for (;;) {
      let more = false;
      const reclaimed = await this.floors.whileAlone(async (client) => {
        const meta = await client.query<{ value: string }>(this.sql.selectMeta, [guard.metaKey]);
        if (!guard.allows(meta.rows[0]?.value ?? null)) return false;
        const { rowCount } = await client.query(this.sql.reclaimBatch, [indexId, RECLAIM_BATCH_ROWS]);
        more = (rowCount ?? 0) >= RECLAIM_BATCH_ROWS;
        return true;
      }, this.lockTimeoutMs);
      if (!reclaimed) return false;
      if (!more) return true;
    }
  }

  async pruneHistory(ts: Timestamp): Promise<void> {
    // Never below a snapshot another node may be reading (see snapshotFloors.ts).
    await this.pruner.prune(await this.floors.agree(ts));
  }

  async getMeta(key: string): Promise<string | null> {
    return (await this.query<{ value: string }>("selectMeta", [key])).rows[0]?.value ?? null;
  }

  async setMeta(key: string, value: string): Promise<void> {
    await this.query("upsertMeta", [key, value]);
  }

  async getReceipt(key: string): Promise<StoredReceipt | null> {
    return (await this.query<StoredReceipt>("selectReceipt", [key])).rows[0] ?? null;
  }

  async pruneReceipts(writtenBefore: number, limit: number): Promise<number> {
    checkPruneReceipts(writtenBefore, limit);
    return (await this.query("deleteOldReceipts", [Math.floor(writtenBefore), limit])).rowCount ?? 0;
  }

  /** How many versions are stored (all snapshots), e.g. to watch history grow and get pruned. */
  async stats(): Promise<{ documents: number; indexEntries: number }> {
    const row = (await this.query<{ documents: number; index_entries: number }>("countVersions", [])).rows[0]!;
    return { documents: row.documents, indexEntries: row.index_entries };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.watcher.close();
    await this.floors.close();
    await this.pool.end();
  }

  private beginCommitSql(since: number): string {
    // `since` was checked to be a safe integer: splicing it in cannot inject anything.
    // synchronous_commit is checked for the reason the isolation level is named: an
    // acknowledged commit must survive a crash of the server, and a database or role may set
    // `off` as its default (a common tuning). Only `off` is raised: `local` flushes here too,
    // and the remote settings of a synchronous standby ask for more than `on`.
    return `${BEGIN_READ_COMMITTED};
      SET LOCAL lock_timeout = ${this.lockTimeoutMs};
      SET LOCAL idle_in_transaction_session_timeout = ${this.lockTimeoutMs};
      DO $$ BEGIN IF current_setting('synchronous_commit') = 'off' THEN SET LOCAL synchronous_commit = on; END IF; END $$;
      SELECT latest_ts, log_trimmed_through FROM ${this.s}.clock WHERE singleton = 1 FOR UPDATE;
      SELECT ts, id, log FROM ${this.s}.commit_log
        WHERE ts > ${since} AND ts <= (SELECT latest_ts FROM ${this.s}.clock WHERE singleton = 1)
        ORDER BY ts`;
  }
}

function toLoggedCommit(row: LogRow): LoggedCommit {
  return { ts: row.ts, id: row.id, log: toBytes(row.log) };
}

/**
 * Whether an error is an ERROR answer from a server that is still there: the transaction was
 * rolled back and nothing of it landed. A FATAL (the backend is going away) or a network error
 * says nothing about whether COMMIT had already become durable.
 */
function isErrorFromLiveServer(error: unknown): boolean {
  const e = error as { code?: unknown; severity?: unknown } | null;
  return typeof e?.code === "string" && /^[0-9A-Z]{5}$/.test(e.code) && e.severity === "ERROR";
}

/**
 * Whether an error from the writes-and-COMMIT round trip proves that the transaction did not
 * commit: an ERROR from a live server (it rolled back; the COMMIT behind it answers ROLLBACK),
 * our own "COMMIT answered ROLLBACK", or the server ending the session for sitting idle in the
 * transaction (it was idle, so it had not received the writes, let alone the COMMIT).
 */
function provesNothingCommitted(error: unknown): boolean {
  return isErrorFromLiveServer(error) || isOurError(error) || (error as { code?: unknown } | null)?.code === "25P03";
}

/** The server answered COMMIT with ROLLBACK: a definite "nothing was written". */
class RolledBackError extends Error {}

function isOurError(error: unknown): boolean {
  return error instanceof RolledBackError;
}

/**
 * Runs `attempt`, and once more if it failed because its connection was lost (a socket error,
 * or the server ending the session): for work that wrote nothing when it failed, so that
 * connections that died while idle in the pool (a server restart) cost no caller an error.
 */
async function retryOnLostConnection<T>(attempt: () => Promise<T>): Promise<T> {
  try {
    return await attempt();
  } catch (error) {
    if (!isConnectionLoss(error)) throw error;
    return attempt();
  }
}

function isConnectionLoss(error: unknown): boolean {
  return isConnectionError(error) || (error as { severity?: unknown } | null)?.severity === "FATAL";
}

/** Whether an error came from the server (it has an SQLSTATE), as opposed to the planner or the network. */
function isDatabaseError(error: unknown): boolean {
  return error instanceof pg.DatabaseError;
}

/** Whether an error is the connection failing (a socket error, or node-postgres noticing a dead connection). */
function isConnectionError(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | null;
  return (typeof e?.code === "string" && /^E[A-Z]+$/.test(e.code)) ||
    (typeof e?.message === "string" && /Connection terminated|not queryable|connection error|Query read timeout/i.test(e.message));
}

/** Every statement of the storage but the commit's first round trip; `s` is the quoted schema. */
function statements(s: string) {
  return {
    selectClock: `SELECT latest_ts, log_trimmed_through FROM ${s}.clock WHERE singleton = 1`,
    selectTime: `SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS ms`,
    selectDocument: `SELECT id, ts, table_name, body FROM ${s}.documents WHERE id = $1 AND ts <= $2 ORDER BY ts DESC LIMIT 1`,
    scan_asc_open: scanSql(s, "asc", false),
    scan_asc_bounded: scanSql(s, "asc", true),
    scan_desc_open: scanSql(s, "desc", false),
    scan_desc_bounded: scanSql(s, "desc", true),
    versions_asc_open: scanSql(s, "asc", false, false),
    versions_asc_bounded: scanSql(s, "asc", true, false),
    versions_desc_open: scanSql(s, "desc", false, false),
    versions_desc_bounded: scanSql(s, "desc", true, false),
    writeBatch: `
      WITH new_documents AS (
        INSERT INTO ${s}.documents (id, ts, table_name, body)
        SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[])
      ), new_entries AS (
        INSERT INTO ${s}.index_entries (index_id, key, ts, doc_id)
        SELECT * FROM unnest($5::text[], $6::bytea[], $7::bigint[], $8::text[])
      ), new_log AS (
        INSERT INTO ${s}.commit_log (ts, id, node, log)
        SELECT ts, id, $11::text, log FROM unnest($9::bigint[], $10::text[], $12::bytea[]) AS batch(ts, id, log)
      ), new_receipts AS (
        INSERT INTO ${s}.receipts (key, ts, written_at, body)
        SELECT key, ts, $18::bigint, body FROM unnest($15::text[], $16::bigint[], $17::text[]) AS batch(key, ts, body)
      ), new_clock AS (
        UPDATE ${s}.clock SET latest_ts = $13 WHERE singleton = 1
      )
      SELECT pg_notify($14, $13::text)`,
    selectLogSince: `
      SELECT clock.latest_ts, clock.log_trimmed_through, entry.ts, entry.id, entry.log
      FROM ${s}.clock
      LEFT JOIN LATERAL (
        SELECT ts, id, log FROM ${s}.commit_log
        WHERE ts > $1 AND ts <= clock.latest_ts
        ORDER BY ts
        LIMIT $2
      ) AS entry ON true
      WHERE clock.singleton = 1
      ORDER BY entry.ts`,
    findCommits: `SELECT ts, id FROM ${s}.commit_log WHERE id = ANY($1::text[])`,
    deleteIndex: `DELETE FROM ${s}.index_entries WHERE index_id = $1`,
    reclaimBatch: `DELETE FROM ${s}.index_entries WHERE ctid IN (SELECT ctid FROM ${s}.index_entries WHERE index_id = $1 LIMIT $2)`,
    selectMeta: `SELECT value FROM ${s}.meta WHERE key = $1`,
    upsertMeta: `INSERT INTO ${s}.meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
    selectReceipt: `SELECT ts, body FROM ${s}.receipts WHERE key = $1`,
    deleteOldReceipts: `DELETE FROM ${s}.receipts WHERE key IN (
      SELECT key FROM ${s}.receipts WHERE written_at < $1 ORDER BY written_at LIMIT $2)`,
    countVersions: `SELECT (SELECT count(*) FROM ${s}.documents) AS documents, (SELECT count(*) FROM ${s}.index_entries) AS index_entries`,
  };
}
