/**
 * The Better Auth side of the auth benchmark (bench/auth/run.ts): `better-auth` from npm with
 * its `anonymous` plugin, in-process, on a fresh better-sqlite3 file in WAL mode with the
 * `synchronous` setting the runner asks for, so that both sides write to the same kind of
 * SQLite with the same durability.
 *
 * One operation is what a new visitor's first write costs: an anonymous sign-in (a user row
 * and a session row), then one authenticated mutation: resolve the session from its cookie
 * (`getSession`, a database read, as on every request) and insert a `messages` row owned by
 * that user in the same database.
 *
 * Better Auth runs with its defaults (no session cookie cache, default rate-limit settings).
 * Its rate limiter lives in the HTTP router (`auth.handler`), which `auth.api.*` calls do not
 * go through, so it neither needs disabling nor limits this benchmark; each client still sends
 * its own x-forwarded-for, as distinct visitors would.
 */
import Database from "better-sqlite3";
import type { StorageClock } from "../engine/storageClock.js";
import { betterAuth } from "better-auth";
import { getMigrations } from "better-auth/db/migration";
import { anonymous } from "better-auth/plugins";
import { join } from "node:path";

export type Synchronous = "FULL" | "NORMAL";

export interface AuthSubject {
  /** One anonymous sign-in followed by one authenticated insert; `clientIndex` is 0..clients-1. */
  op(clientIndex: number): Promise<void>;
  close(): Promise<void>;
  /** Where the side's time goes, if it can tell: the main thread's time in storage (bench/engine/storageClock.ts). */
  storageClock?: StorageClock;
}

export async function setupBetterAuth(opts: { synchronous: Synchronous; dir: string }): Promise<AuthSubject> {
  const db = new Database(join(opts.dir, `better-auth-${opts.synchronous.toLowerCase()}.sqlite`));
  db.pragma("journal_mode = WAL");
  db.pragma(`synchronous = ${opts.synchronous}`);

  const options = {
    // better-auth detects a better-sqlite3 handle and wraps it in Kysely's SqliteDialect.
    database: db,
    // A fixed secret and base URL only keep it from warning; neither affects the work done.
    secret: "walkin-bench-secret-not-for-production-0123456789",
    baseURL: "http://localhost:3000",
    plugins: [anonymous()],
  };
  // Creates user/session/account/verification (with the plugin's isAnonymous column).
  const { runMigrations } = await getMigrations(options);
  await runMigrations();
  const auth = betterAuth(options);

  // The app's own table, next to Better Auth's in the same file.
  db.exec("CREATE TABLE messages (id INTEGER PRIMARY KEY, userId TEXT NOT NULL, body TEXT NOT NULL)");
  const insert = db.prepare("INSERT INTO messages (userId, body) VALUES (?, ?)");

  return {
    async op(clientIndex) {
      const ip = `10.${(clientIndex >> 16) & 255}.${(clientIndex >> 8) & 255}.${clientIndex & 255}`;
      const signIn = await auth.api.signInAnonymous({
        headers: new Headers({ "x-forwarded-for": ip }),
        returnHeaders: true,
      });
      // The browser would send back what Set-Cookie gave it: name=value pairs only.
      const cookie = signIn.headers
        .getSetCookie()
        .map((c) => c.slice(0, c.indexOf(";")))
        .join("; ");
      const session = await auth.api.getSession({ headers: new Headers({ cookie, "x-forwarded-for": ip }) });
      if (!session) throw new Error("better-auth: no session for the cookie signInAnonymous returned");
      insert.run(session.user.id, `hello from client ${clientIndex}`);
    },
    async close() {
      db.close();
    },
  };
}
