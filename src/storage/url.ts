/**
 * Choosing a storage by URL: `walkin dev --db <url>`, `WALKIN_DB`, and `openStorage` for code
 * that starts an engine itself.
 *
 * - `sqlite:<path>` (or a plain path): an SQLite file, created with its folder if missing;
 * - `sqlite::memory:`: a private in-memory SQLite database (tests);
 * - `postgres://user:password@host:port/database` (or `postgresql://`): PostgreSQL.
 */
import { access, constants, mkdir, stat } from "node:fs/promises";
import path from "node:path";
import type { Storage } from "./types.js";

export type StorageLocation =
  | { kind: "sqlite"; filename: string }
  | { kind: "postgres"; url: string };

/** What `--db` accepts, for error messages and help. */
export const SUPPORTED_STORAGE_URLS =
  "sqlite:<file> (or just a file path; the default is .walkin/data.sqlite), sqlite::memory:, " +
  "or postgres://user:password@host:5432/database";

/** A clear error about a storage URL: what was wrong and what is accepted. */
export class StorageUrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StorageUrlError";
  }
}

/**
 * Parses a storage URL (see the module comment). Relative SQLite paths resolve against `cwd`.
 *
 * @example
 * parseStorageUrl("sqlite:data/app.sqlite", "/srv/app"); // { kind: "sqlite", filename: "/srv/app/data/app.sqlite" }
 */
export function parseStorageUrl(url: string, cwd: string = process.cwd()): StorageLocation {
  const trimmed = url.trim();
  if (trimmed === "") throw new StorageUrlError(`The database URL is empty. Use ${SUPPORTED_STORAGE_URLS}.`);
  const scheme = /^([a-z][a-z0-9+.-]+):/i.exec(trimmed)?.[1]?.toLowerCase();
  if (scheme === undefined) return { kind: "sqlite", filename: path.resolve(cwd, trimmed) };
  if (scheme === "sqlite") {
    let rest = trimmed.slice("sqlite:".length);
    if (rest === ":memory:") return { kind: "sqlite", filename: ":memory:" };
    if (rest.startsWith("//")) rest = rest.slice(2); // sqlite:///abs/path
    if (rest === "") throw new StorageUrlError(`"${trimmed}" names no file. Use sqlite:<file>, e.g. sqlite:.walkin/data.sqlite.`);
    return { kind: "sqlite", filename: path.resolve(cwd, rest) };
  }
  if (scheme === "postgres" || scheme === "postgresql") return { kind: "postgres", url: trimmed };
  throw new StorageUrlError(`Unknown database URL scheme "${scheme}:" in ${redactUrl(trimmed)}. Supported: ${SUPPORTED_STORAGE_URLS}.`);
}

/** Query parameters that may carry a secret (node-postgres reads `password` and `sslpassword` from the URL). */
const SECRET_PARAMETER = /pass|secret|token/i;

/**
 * The URL with its secrets masked, for messages, logs and storage names: the password, and
 * query parameters that may hold one (`?password=`). A string without `scheme://` (a file
 * path, `sqlite:<file>`) has no place for credentials and is returned as it is.
 *
 * A password with an unencoded `/`, `?` or `#` ends the URL's authority early, and the rest of
 * it lands in the path (`user:123/abc@host` reads as host `user`, port 123, path `/abc@host`).
 * Where such a password ends cannot be told, so for a URL with an `@` after its authority
 * nothing after the scheme is shown.
 */
export function redactUrl(url: string): string {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0];
  if (scheme === undefined) return url;
  const rest = url.slice(scheme.length);
  const authorityEnd = rest.search(/[/?#]/);
  if (authorityEnd !== -1 && rest.includes("@", authorityEnd)) return `${scheme}***`;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return redactUnparsed(scheme, rest, authorityEnd === -1 ? rest.length : authorityEnd);
  }
  let masked = false;
  if (parsed.password !== "") {
    parsed.password = "***";
    masked = true;
  }
  for (const name of new Set(parsed.searchParams.keys())) {
    if (!SECRET_PARAMETER.test(name)) continue;
    parsed.searchParams.set(name, "***");
    masked = true;
  }
  return masked ? parsed.toString() : url;
}

/**
 * `redactUrl` for a URL that does not parse (a port that is not a number, say), by its text:
 * the password is what follows the first `:` of the authority's part before its last `@`, and
 * secret query parameters are masked as in a parsed one.
 */
function redactUnparsed(scheme: string, rest: string, authorityEnd: number): string {
  const authority = rest.slice(0, authorityEnd);
  const at = authority.lastIndexOf("@");
  const colon = authority.indexOf(":");
  const host = at === -1 || colon === -1 || colon > at ? authority : `${authority.slice(0, colon)}:***${authority.slice(at)}`;
  const tail = rest.slice(authorityEnd).replace(/([?&][^=&#]*=)([^&#]*)/g, (whole, name: string) => (SECRET_PARAMETER.test(name) ? `${name}***` : whole));
  return `${scheme}${host}${tail}`;
}

/**
 * Opens the storage a URL names. For an SQLite file, the folder is created and checked first,
 * so a path that cannot work fails with a message that says why.
 *
 * @example
 * import { openStorage } from "walkin/storage";
 * const storage = await openStorage(process.env.WALKIN_DB ?? "sqlite:.walkin/data.sqlite");
 */
export async function openStorage(url: string, options: { cwd?: string } = {}): Promise<Storage> {
  const location = parseStorageUrl(url, options.cwd);
  if (location.kind === "postgres") {
    const { openPostgresStorage } = await import("./postgres/index.js");
    return openPostgresStorage({ url: location.url });
  }
  if (location.filename !== ":memory:") await checkSqlitePath(location.filename);
  const { openSqliteStorage } = await import("./sqlite/index.js");
  return openSqliteStorage({ filename: location.filename });
}

async function checkSqlitePath(filename: string): Promise<void> {
  const dir = path.dirname(filename);
  try {
    await mkdir(dir, { recursive: true });
  } catch (error) {
    throw new StorageUrlError(`Cannot create the folder ${dir} for the database ${filename}: ${(error as Error).message}. ` +
      `Choose another place with --db sqlite:<file>.`);
  }
  const info = await stat(filename).catch(() => null);
  if (info?.isDirectory()) throw new StorageUrlError(`${filename} is a folder, not a database file. Use --db sqlite:<file>.`);
  try {
    await access(info ? filename : dir, constants.R_OK | constants.W_OK);
  } catch {
    throw new StorageUrlError(`${info ? filename : `The folder ${dir}`} is not readable and writable by this process. ` +
      `Fix its permissions, or choose another file with --db sqlite:<file>.`);
  }
}
