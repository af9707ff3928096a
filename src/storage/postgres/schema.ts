/**
 * The PostgreSQL layout of Walk-in storage and its migrations. Everything that depends on the
 * tables' shape starts here.
 *
 * All tables live in one PostgreSQL schema (`public` unless the storage is opened with another),
 * so several Walk-in apps, or test runs, can share a database. The schema is created and
 * migrated when a storage opens, inside one transaction that first takes an advisory lock named
 * after the schema: two nodes starting at the same moment migrate one after the other, and the
 * second finds the work done.
 */
import { createHash } from "node:crypto";
import type pg from "pg";

/**
 * The schema, one entry per version: `MIGRATIONS[n]` takes a database from version n to n + 1.
 * A new layout is a new entry appended here, never an edit of an old one. `$S` stands for the
 * quoted schema name.
 */
const MIGRATIONS: readonly string[] = [
  `
  -- Every version of every document. A NULL body is a tombstone. The primary key (id, ts) is the
  -- whole access path: "newest version of id at or before ts" is one backward index seek.
  -- COLLATE "C" compares ids bytewise, so the order never depends on the server's locale.
  CREATE TABLE $S.documents (
    id text COLLATE "C" NOT NULL,
    ts bigint NOT NULL,
    table_name text NOT NULL,
    body text,
    PRIMARY KEY (id, ts)
  );

  -- Every version of every index entry. A NULL doc_id means the entry was removed at ts. Keys are
  -- bytea, which PostgreSQL compares bytewise with a shorter prefix first: exactly the order of
  -- the encoded index keys. A scan wants, per key, the newest version at or before its snapshot:
  -- ascending scans read (key ASC, ts DESC) from the second index, descending scans read
  -- (key DESC, ts DESC) as a backward walk of the primary key. Neither sorts.
  CREATE TABLE $S.index_entries (
    index_id text COLLATE "C" NOT NULL,
    key bytea NOT NULL,
    ts bigint NOT NULL,
    doc_id text COLLATE "C",
    PRIMARY KEY (index_id, key, ts)
  );
  CREATE INDEX index_entries_newest_first ON $S.index_entries (index_id, key, ts DESC);

  -- The engine's small key/value registry (getMeta/setMeta). Not versioned.
  CREATE TABLE $S.meta (key text COLLATE "C" PRIMARY KEY, value text NOT NULL);

  -- The clock: the newest commit timestamp and how far the commit log was trimmed. Its single
  -- row is the commit lock: a commit holds it (SELECT ... FOR UPDATE) from reading the log until
  -- COMMIT, so commit order, timestamp order and visibility order are one order.
  CREATE TABLE $S.clock (
    singleton int PRIMARY KEY CHECK (singleton = 1),
    latest_ts bigint NOT NULL,
    log_trimmed_through bigint NOT NULL
  );
  INSERT INTO $S.clock (singleton, latest_ts, log_trimmed_through) VALUES (1, 0, 0);

  -- The commit log: one row per commit, written in the commit's own transaction. Its id lets a
  -- writer that lost track of a commit find out whether it landed (hence the index on id); node
  -- says which process wrote it (for operators); log holds the index keys it wrote
  -- (engine-encoded): how a node learns what the others changed.
  CREATE TABLE $S.commit_log (
    ts bigint PRIMARY KEY,
    id text NOT NULL,
    node text NOT NULL,
    log bytea NOT NULL
  );
  CREATE INDEX commit_log_by_id ON $S.commit_log (id);
  `,
  `
  -- Snapshot floors: per open storage (one per node), the oldest snapshot it may still read. A
  -- node prunes history only below the lowest floor of every node seen recently, never below a
  -- snapshot another node is reading (see snapshotFloors.ts).
  CREATE TABLE $S.snapshot_floors (
    instance text COLLATE "C" PRIMARY KEY,
    floor bigint NOT NULL,
    seen_at timestamptz NOT NULL DEFAULT now()
  );
  `,
  `
  -- Receipts (Storage.getReceipt): small records written in a commit's own transaction and read
  -- by key, not versioned. The engine keeps each client request's outcome here instead of in a
  -- versioned system table. written_at (ms since the epoch, the committing node's clock) is what
  -- pruneReceipts goes by.
  CREATE TABLE $S.receipts (
    key text COLLATE "C" PRIMARY KEY,
    ts bigint NOT NULL,
    written_at bigint NOT NULL,
    body text NOT NULL
  );
  CREATE INDEX receipts_by_age ON $S.receipts (written_at);
  `,
];

/** The schema version this code reads and writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** A PostgreSQL identifier, quoted (`"my ""schema"""`). */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Checks a schema name given by the user: PostgreSQL cuts identifiers at 63 bytes, silently. */
export function checkSchemaName(schema: string): void {
  if (typeof schema !== "string" || schema.length === 0 || Buffer.byteLength(schema) > 63 || schema.includes("\0")) {
    throw new RangeError(
      `Walk-in storage: the PostgreSQL schema name must be 1 to 63 bytes without NUL characters, got ${JSON.stringify(schema)}.`,
    );
  }
}

/**
 * The LISTEN/NOTIFY channel of a schema's commits. Channel names are identifiers (at most 63
 * bytes), so a long schema name is replaced by its hash rather than cut (two long names sharing
 * a prefix must not share a channel).
 */
export function commitChannel(schema: string): string {
  const plain = `walkin_commits:${schema}`;
  if (Buffer.byteLength(plain) <= 63) return plain;
  return `walkin_commits:${createHash("sha256").update(schema).digest("hex").slice(0, 40)}`;
}

/**
 * Creates the schema and its tables if missing and brings them to `SCHEMA_VERSION`, under an
 * advisory lock held until the migration commits. Refuses a database written by a newer version.
 */
export async function migrate(client: pg.ClientBase, schema: string): Promise<void> {
  const s = quoteIdentifier(schema);
  // No lock_timeout here (the storage's connections have one): a node that starts while another
  // migrates a large database waits for it, however long that takes.
  await client.query("BEGIN; SET LOCAL lock_timeout = 0");
  try {
    // hashtextextended gives a 64-bit key per schema; the lock is released at COMMIT/ROLLBACK.
    await client.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [`walkin:schema:${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${s}.walkin_schema_version (version int NOT NULL)`);
    const rows = (await client.query<{ version: number }>(`SELECT version FROM ${s}.walkin_schema_version`)).rows;
    const version = rows[0]?.version ?? 0;
    if (version > SCHEMA_VERSION) {
      throw new Error(
        `Walk-in storage: the PostgreSQL schema ${s} has Walk-in schema version ${version}, but this version of ` +
          `Walk-in only knows up to ${SCHEMA_VERSION}. Upgrade Walk-in on this node to open it.`,
      );
    }
    for (let v = version; v < SCHEMA_VERSION; v++) await client.query(MIGRATIONS[v]!.replaceAll("$S", s));
    if (rows.length === 0) await client.query(`INSERT INTO ${s}.walkin_schema_version (version) VALUES ($1)`, [SCHEMA_VERSION]);
    else if (version < SCHEMA_VERSION) await client.query(`UPDATE ${s}.walkin_schema_version SET version = $1`, [SCHEMA_VERSION]);
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  }
}
