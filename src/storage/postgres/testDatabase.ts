/**
 * PostgreSQL for tests: every test run gets a database of its own, and every storage in it a
 * schema of its own, so runs on one server (CI jobs, several engineers) never see each other.
 *
 * - The server comes from `WALKIN_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/`,
 *   the CI machines' trust-auth server); the URL's database is where `CREATE DATABASE` runs.
 * - Under vitest, the "postgres" project's global setup (`testDatabase.setup.ts`) creates the
 *   run's database `walkin_test_<pid>_<random>` once, hands its URL to the workers through
 *   `WALKIN_TEST_POSTGRES_DATABASE_URL` and drops it when the run ends.
 * - Anywhere else (a script, another runner), the first call creates one for this process and
 *   drops it when the process is about to exit.
 * - If the server cannot be reached, tests fail with a message that says how to start it:
 *   nothing is skipped for want of PostgreSQL.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { redactUrl } from "../url.js";
import { openPostgresStorage, type PostgresStorage, type PostgresStorageOptions } from "./postgresStorage.js";
import { quoteIdentifier } from "./schema.js";

export const DEFAULT_TEST_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/";
const DATABASE_URL_ENV = "WALKIN_TEST_POSTGRES_DATABASE_URL";

/** The server tests use (any database on it). */
export function testServerUrl(): string {
  return process.env["WALKIN_TEST_POSTGRES_URL"] || DEFAULT_TEST_POSTGRES_URL;
}

/** `url` with another database name. */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

/** Runs `fn` on one connection to the test server, with a clear error if there is none. */
async function onServer<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const url = testServerUrl();
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => {});
    throw new Error(
      `The PostgreSQL tests need a server at ${redactUrl(url)} and cannot reach it (${(error as Error).message}). ` +
        `Start it (on the CI machines: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) ` +
        `or point WALKIN_TEST_POSTGRES_URL at one where this user may CREATE DATABASE.`,
      { cause: error },
    );
  }
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Creates a fresh database on the test server; returns its URL and how to drop it. */
export async function createTestDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `walkin_test_${process.pid}_${randomBytes(4).toString("hex")}`;
  await onServer((client) => client.query(`CREATE DATABASE ${quoteIdentifier(name)}`));
  return {
    url: withDatabase(testServerUrl(), name),
    // FORCE ends any connection a test left open, so the drop never waits or fails on one.
    drop: () => onServer(async (client) => void (await client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(name)} WITH (FORCE)`))),
  };
}

let processDatabase: Promise<string> | undefined;

/** The URL of this test run's database (see the module comment). */
export function testDatabaseUrl(): Promise<string> {
  const fromSetup = process.env[DATABASE_URL_ENV];
  if (fromSetup) return Promise.resolve(fromSetup);
  processDatabase ??= createTestDatabase().then(({ url, drop }) => {
    process.once("beforeExit", () => void drop().catch(() => {}));
    return url;
  });
  return processDatabase;
}

/** Vitest global setup body: one database for the whole run, dropped at the end. */
export async function setupRunDatabase(): Promise<() => Promise<void>> {
  const { url, drop } = await createTestDatabase();
  process.env[DATABASE_URL_ENV] = url;
  return async () => {
    delete process.env[DATABASE_URL_ENV];
    await drop();
  };
}

/** A schema name no other test uses. */
export function freshSchemaName(): string {
  return `t_${Date.now().toString(36)}_${randomBytes(5).toString("hex")}`;
}

/** Drops a schema and everything in it. */
export async function dropSchema(databaseUrl: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${quoteIdentifier(schema)} CASCADE`);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Opens a storage on a fresh schema of the run's database. `open` opens another storage on the
 * same schema (a second node, or the same data after a close); `drop` removes the schema.
 */
export async function openTestSchema(options: Partial<PostgresStorageOptions> = {}): Promise<{
  storage: PostgresStorage;
  url: string;
  schema: string;
  open: (more?: Partial<PostgresStorageOptions>) => Promise<PostgresStorage>;
  drop: () => Promise<void>;
}> {
  const url = await testDatabaseUrl();
  const schema = freshSchemaName();
  const open = (more: Partial<PostgresStorageOptions> = {}) =>
    openPostgresStorage({ url, poolSize: 4, ...options, ...more, schema });
  return { storage: await open(), url, schema, open, drop: () => dropSchema(url, schema) };
}

/**
 * A storage on a fresh schema of the run's database that drops its schema when it is closed:
 * what `WALKIN_TEST_STORAGE=postgres` gives every `walkinTest`.
 */
export async function openTemporaryTestStorage(options: Partial<PostgresStorageOptions> = {}): Promise<PostgresStorage> {
  const { storage, drop } = await openTestSchema(options);
  const close = storage.close.bind(storage);
  let dropped: Promise<void> | undefined;
  storage.close = () => (dropped ??= close().then(drop));
  return storage;
}
