/**
 * Connecting to PostgreSQL: the pool settings every connection shares (integer parsing, keep-alive,
 * a connect timeout), and the errors a user sees when the URL, the server, the credentials or
 * the database are wrong: each says what to fix, and never shows the password.
 */
import pg from "pg";
import { redactUrl } from "../url.js";
import { quoteIdentifier } from "./schema.js";

/** How long opening a connection may take before the open fails. */
export const CONNECT_TIMEOUT_MS = 5_000;

/** A clear error about reaching PostgreSQL: what went wrong, with the URL's password hidden. */
export class PostgresConnectError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PostgresConnectError";
  }
}

/** Where a URL points, for messages (no password). */
export interface ServerAddress {
  host: string;
  port: number;
  user: string;
  database: string;
}

/** Parses and checks a `postgres://` URL before any connection is tried. */
export function parsePostgresUrl(url: string): ServerAddress {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new PostgresConnectError(
      `${redactUrl(url)} is not a valid PostgreSQL URL. Use postgres://user:password@host:5432/database ` +
        `(percent-encode special characters in the password).`,
    );
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    throw new PostgresConnectError(`${redactUrl(url)} is not a PostgreSQL URL: it must start with postgres:// or postgresql://.`);
  }
  const port = parsed.port === "" ? 5432 : Number(parsed.port);
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ""));
  const user = decodeURIComponent(parsed.username) || process.env["PGUSER"] || process.env["USER"] || "postgres";
  const host = parsed.hostname || parsed.searchParams.get("host") || "localhost";
  return { host, port, user, database: database || user };
}

/** The integer type parser: bigint columns (timestamps) as numbers, refusing unsafe values. */
function parseTimestamp(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) {
    throw new RangeError(`Walk-in storage: the value ${text} read from PostgreSQL is not a safe JavaScript integer.`);
  }
  return value;
}

const INT8_OID = 20;

/** Type parsers for this storage's connections only (the global `pg.types` stay untouched). */
export const walkinTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === INT8_OID && format !== "binary" ? parseTimestamp : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig["getTypeParser"],
};

/**
 * How every transaction that takes the commit lock begins (a commit, `findCommits`, the log's
 * trim): their correctness is argued under READ COMMITTED (postgresStorage.ts, "A commit"), so
 * they name it rather than take the server's default, which a database or role may set higher.
 */
export const BEGIN_READ_COMMITTED = "BEGIN ISOLATION LEVEL READ COMMITTED";

/** The same level as the default of a session's every other transaction and statement. */
export const SESSION_READ_COMMITTED = "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED";

/** Connection settings shared by the pool and the listening client. */
export function clientConfig(url: string, applicationName: string): pg.ClientConfig {
  return {
    connectionString: url,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    // A dead server or a cut network is noticed within about half a minute, not hours.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    types: walkinTypes,
    application_name: applicationName,
  };
}

/**
 * A running node's error when the pool's new connection is refused for a connection limit
 * (SQLSTATE 53300, as the pool grows under load): the same advice as at open, the driver's
 * error as `cause`. Null for any other error.
 */
export function describeConnectionLimit(error: unknown, url: string, storageName: string): Error | null {
  const e = error as { code?: unknown; message?: unknown } | null;
  if (e?.code !== "53300") return null;
  let server = redactUrl(url);
  try {
    const address = parsePostgresUrl(url);
    server = `${address.host}:${address.port}`;
  } catch {
    // The URL was checked at open; keep the redacted form should it not parse here.
  }
  return new Error(`Walk-in storage ${storageName}: ${connectionLimitAdvice(String(e.message), server)}`, { cause: error });
}

/** What to do about SQLSTATE 53300; PostgreSQL's own wording names no setting, the message tells which limit was hit. */
function connectionLimitAdvice(message: string, server: string): string {
  const per = /too many connections for (role|database) (.+)$/.exec(message);
  if (per !== null) {
    const what = per[1] === "role" ? "ROLE" : "DATABASE";
    return (
      `PostgreSQL refused the connection: ${message}. The ${per[1]}'s connection limit is reached: raise it ` +
      `(ALTER ${what} ${per[2]} CONNECTION LIMIT n) or close other connections. Each Walk-in node uses its ` +
      `poolSize (default 10) plus one connection.`
    );
  }
  return (
    `PostgreSQL at ${server} refused the connection: ${message}. Its max_connections is reached: raise ` +
    `max_connections (a server restart), lower poolSize, close other connections, or put PgBouncer in session mode ` +
    `in front. Each Walk-in node uses its poolSize (default 10) plus one connection.`
  );
}

/**
 * Turns an error from connecting (or from the first query) into a message that names what to
 * fix. Errors it does not recognise keep their own message, prefixed with where it happened.
 */
export function describeConnectError(error: unknown, url: string): PostgresConnectError {
  const where = redactUrl(url);
  let address: ServerAddress | null = null;
  try {
    address = parsePostgresUrl(url);
  } catch {
    // Already reported by parsePostgresUrl when the URL is bad; keep the generic wording here.
  }
  const server = address ? `${address.host}:${address.port}` : where;
  const e = error as { code?: string; message?: string } | null;
  const code = e?.code;
  const message = e?.message ?? String(error);
  const fix = (text: string) => new PostgresConnectError(`Cannot open PostgreSQL storage ${where}: ${text}`, { cause: error });
  switch (code) {
    case "ECONNREFUSED":
      return fix(`nothing accepts connections at ${server}. Is PostgreSQL running there? Check the host and port in the URL.`);
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return fix(`the host ${address?.host ?? "in the URL"} cannot be resolved. Check the host name in the URL.`);
    case "ETIMEDOUT":
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return fix(`${server} cannot be reached (${code}). Check the host, the port and any firewall in between.`);
    case "28P01":
      return fix(`PostgreSQL refused the password for user "${address?.user}". Check the user and password in the URL.`);
    case "28000":
      return fix(`PostgreSQL refused user "${address?.user}" (${message}). Check the user in the URL and the server's pg_hba.conf.`);
    case "3D000":
      return fix(
        `the database "${address?.database}" does not exist on ${server}. Create it (createdb ${address?.database}, ` +
          `or CREATE DATABASE in psql) or fix the database name in the URL.`,
      );
    case "42501": {
      // PostgreSQL 15 and later let only the owner create in schema public: CREATE on the
      // database (what the other case needs) does not help there.
      const schema = /permission denied for schema (.+)$/.exec(message)?.[1];
      if (schema !== undefined && address !== null) {
        return fix(
          `user "${address.user}" may not create tables in schema ${schema} (${message}). As its owner or a superuser, run ` +
            `GRANT CREATE ON SCHEMA ${quoteIdentifier(schema)} TO ${quoteIdentifier(address.user)} (PostgreSQL 15 and later no ` +
            `longer allow every user to create in schema public), or use a schema this user owns.`,
        );
      }
      return fix(`user "${address?.user}" lacks a privilege Walk-in needs (${message}). Grant it CREATE on the database, or choose another schema.`);
    }
    case "25006":
      return fix(
        `${server} accepts no writes (${message}): it is a read replica (a hot standby), or the database or user is set to ` +
          `default_transaction_read_only. Point the URL at the primary.`,
      );
    case "53300":
      return fix(connectionLimitAdvice(message, server));
    case "57P03":
      return fix(`PostgreSQL at ${server} is starting up or shutting down. Try again in a moment.`);
  }
  if (/timeout/i.test(message)) {
    return fix(`${server} did not answer within ${CONNECT_TIMEOUT_MS / 1000} s. Check the host and port, and that the server is up.`);
  }
  if (/password must be a string|SASL/i.test(message)) {
    return fix(`the server asks for a password for user "${address?.user}" and the URL has none (or not a valid one). Add it: postgres://user:password@host/db.`);
  }
  return fix(message);
}
