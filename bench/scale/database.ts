/**
 * The benchmark's own database on the shared PostgreSQL server: `walkin_bench_<pid>`, created
 * at start and dropped at the end (also on Ctrl-C), so runs never see each other's tables or
 * other people's tests.
 *
 * Durability: `synchronous_commit` is set on the database (`ALTER DATABASE ... SET`), so every
 * connection opened afterwards, the engine's pool, the nodes' pools and the floors' clients
 * alike, runs with the same setting. `setSynchronousCommit` returns what a fresh connection
 * reports, which is what the run prints.
 */
import pg from "pg";

export const SERVER_URL = process.env.SCALE_POSTGRES_URL || "postgres://postgres@127.0.0.1:5432/postgres";

export type SynchronousCommit = "on" | "off";

export interface BenchDatabase {
  name: string;
  url: string;
  /** Sets `synchronous_commit` for new connections; resolves with what a new connection reports. */
  setSynchronousCommit(value: SynchronousCommit): Promise<string>;
  drop(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

export async function onServer<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => {});
    throw new Error(
      `bench/scale needs PostgreSQL at ${url} (${(error as Error).message}). Start it ` +
        `(pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) or set SCALE_POSTGRES_URL.`,
    );
  }
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

export async function createBenchDatabase(): Promise<BenchDatabase> {
  const name = `walkin_bench_${process.pid}`;
  await onServer(SERVER_URL, async (client) => {
    await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${name}`);
  });
  const url = withDatabase(SERVER_URL, name);
  let dropped: Promise<void> | null = null;
  // FORCE ends connections a crashed node may have left, so the drop never waits on them.
  const drop = () => (dropped ??= onServer(SERVER_URL, async (client) => void (await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))));
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      void drop().finally(() => process.exit(130));
    });
  }
  return {
    name,
    url,
    async setSynchronousCommit(value) {
      await onServer(SERVER_URL, (client) => client.query(`ALTER DATABASE ${name} SET synchronous_commit = ${value === "on" ? "on" : "off"}`));
      return onServer(url, async (client) => (await client.query<{ synchronous_commit: string }>("SHOW synchronous_commit")).rows[0]!.synchronous_commit);
    },
    drop,
  };
}
