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

/** The URL with any password replaced, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*):[^@/]*@/i, "$1:***@");
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
    throw new StorageUrlError(`PostgreSQL storage (${redactUrl(location.url)}) is not available in this version yet. Use sqlite:<file>.`);
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
