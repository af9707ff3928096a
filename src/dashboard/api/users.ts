/**
 * The Users and sessions screen's API (apps on walkin/auth): user counts and the last day's
 * anonymous sign-ins and upgrades, users newest first, one user's sessions, linked accounts
 * and data, revoking a session, and the anonymous-user cleanup.
 *
 * Figures come from the data itself, so they survive restarts:
 *  - an anonymous sign-in is a user created anonymous: still `isAnonymous`, or upgraded since
 *    (its first account came later than the user);
 *  - an upgrade is an account created for a user that existed before it (signing up keeps an
 *    anonymous user's `_id`, so its new account is younger than the user).
 * Anonymous users merged into an account or cleaned up are gone from both counts.
 * Sessions are described without their token hashes or client session digests (secrets.ts).
 * Every read here is shown once its snapshot is durable (`readDurable`), as the Data screen's:
 * a page must not show a sign-up or a revoke that a crash would undo.
 */
import type { Engine } from "../../engine/engine.js";
import { isPlainIndex, type TableInfo } from "../../engine/catalog.js";
import type { Doc } from "../../engine/documents.js";
import { decodeDocument } from "../../engine/documents.js";
import { createDatabaseWriter } from "../../engine/database.js";
import { QueryImpl } from "../../engine/query.js";
import { endAuthSession, endedForGood, type AuthSessionDoc } from "../../auth/authSessions.js";
import type { EngineSwitch } from "../../transport/engineSwitch.js";
import { viewOf } from "./documents.js";
import { appTables, COUNT_LIMIT } from "./tables.js";
import { AdminError, badRequest, notFound, optionalString, stringField } from "./httpJson.js";
import type { RunLog } from "./runLog.js";

const HOUR = 3_600_000;
/** An account this much younger than its user was added later: an upgrade, not a sign-up. */
const UPGRADE_GAP_MS = 1_000;
const CLEANUP_CRON = "walkin auth cleanup";

function authTable(engine: Engine, name: string): TableInfo {
  const table = engine.catalog.lookup(name);
  if (!table) throw new AdminError(404, "NOT_FOUND", `This app does not use walkin/auth (no "${name}" table): add ...authTables to the schema to see users and sessions here.`);
  return table;
}

/** Users by kind, counted from storage in batches (a count may read more than a transaction may). */
async function countUsers(engine: Engine, users: TableInfo) {
  const index = users.indexes.get("by_creation_time")!;
  const readTs = engine.latestTimestamp;
  const release = engine.pinSnapshot(readTs);
  try {
    let anonymous = 0;
    let total = 0;
    let lower: { key: Uint8Array; inclusive: boolean } | undefined;
    for (;;) {
      const entries = await engine.storage.scan({ indexId: index.id, range: lower ? { lower } : {}, order: "asc", readTs, limit: 1_000 });
      for (const entry of entries) if (decodeDocument(entry.doc.body).isAnonymous === true) anonymous++;
      total += entries.length;
      if (entries.length < 1_000 || total >= COUNT_LIMIT) {
        // Shown once the snapshot it counted is durable, as a table's count (tables.ts).
        await engine.durableThrough(readTs);
        return { anonymous, signedUp: total - anonymous, capped: entries.length === 1_000 };
      }
      lower = { key: entries[entries.length - 1]!.key, inclusive: false };
    }
  } finally {
    release();
  }
}

/** `GET /api/admin/users/overview`. */
export async function usersOverview(engine: Engine, runs: RunLog) {
  const users = authTable(engine, "users");
  const accounts = authTable(engine, "authAccounts");
  const counts = await countUsers(engine, users);
  const now = Date.now();
  const since = now - 24 * HOUR;
  const buckets = Array.from({ length: 24 }, (_, i) => ({ hour: since + i * HOUR, anonymousSignIns: 0, upgrades: 0 }));
  const bucketOf = (time: number) => buckets[Math.min(23, Math.max(0, Math.floor((time - since) / HOUR)))]!;
  await engine.readDurable(async (txn) => {
    const recentAccounts = await new QueryImpl(txn, accounts).withIndex("by_creation_time", (q) => q.gte("_creationTime", since)).take(4_000);
    const firstAccount = new Map<string, number>();
    for (const account of recentAccounts) {
      const user = await txn.get(account.userId as string);
      if (!user) continue;
      const gap = account._creationTime - user._creationTime;
      if (gap > UPGRADE_GAP_MS) bucketOf(account._creationTime).upgrades++;
      const seen = firstAccount.get(user._id);
      if (seen === undefined || account._creationTime < seen) firstAccount.set(user._id, account._creationTime);
    }
    const recentUsers = await new QueryImpl(txn, users).withIndex("by_creation_time", (q) => q.gte("_creationTime", since)).take(8_000);
    for (const user of recentUsers) {
      const upgradedLater = (firstAccount.get(user._id) ?? 0) - user._creationTime > UPGRADE_GAP_MS;
      if (user.isAnonymous === true || upgradedLater) bucketOf(user._creationTime).anonymousSignIns++;
    }
  });
  return { ...counts, trend: buckets, cleanup: await cleanupInfo(engine, runs) };
}

async function cleanupInfo(engine: Engine, runs: RunLog) {
  const crons = engine.catalog.lookup("_cron_jobs", { system: true });
  const row = crons ? await engine.readDurable((txn) => new QueryImpl(txn, crons).withIndex("by_name", (q) => q.eq("name", CLEANUP_CRON)).first()) : null;
  return { nextRun: row ? (row.nextRun as number) : null, lastRuns: runs.cleanupReports };
}

/** `POST /api/admin/users/list`: newest first; `search` is an exact email or a user _id. */
export async function listUsers(engine: Engine, body: Record<string, unknown>) {
  const users = authTable(engine, "users");
  const sessions = authTable(engine, "authSessions");
  const search = optionalString(body, "search")?.trim() || null;
  const cursor = optionalString(body, "cursor");
  const searchById = search !== null && engine.catalog.isIdOfTable("users", search);
  // An app may define its own users table without the "email" index: then a scan finds it.
  const scanned = search !== null && !searchById && !users.indexes.has("email") ? await usersByEmailScan(engine, users, search) : null;
  return engine.readDurable(async (txn) => {
    let page: Doc[];
    let isDone = true;
    let continueCursor = "";
    if (search) {
      const byId = searchById ? await txn.get(search) : null;
      page = byId ? [byId] : (scanned ?? (await new QueryImpl(txn, users).withIndex("email", (q) => q.eq("email", search)).take(20)));
    } else {
      const result = await new QueryImpl(txn, users).order("desc").paginate({ numItems: 25, cursor });
      ({ page, isDone, continueCursor } = result);
    }
    const now = Date.now();
    const rows = [];
    for (const user of page) {
      const theirs = await new QueryImpl(txn, sessions).withIndex("by_userId", (q) => q.eq("userId", user._id)).take(100);
      rows.push({
        _id: user._id,
        _creationTime: user._creationTime,
        name: typeof user.name === "string" ? user.name : null,
        email: typeof user.email === "string" ? user.email : null,
        isAnonymous: user.isAnonymous === true,
        liveSessions: theirs.filter((s) => (s.expiresAt as number) > now).length,
      });
    }
    return { page: rows, isDone, continueCursor };
  });
}

/**
 * Users whose email is `email`, newest first (at most 20), without an index: the table in
 * chunks of 1,000, each its own read, as countUsers counts it (one read may not take more than
 * 16,384 documents, and the search failed on a bigger table); at most COUNT_LIMIT are looked at.
 */
async function usersByEmailScan(engine: Engine, users: TableInfo, email: string): Promise<Doc[]> {
  const found: Doc[] = [];
  let cursor: string | null = null;
  for (let looked = 0; looked < COUNT_LIMIT && found.length < 20; looked += 1_000) {
    const chunk = await engine.readDurable((txn) => new QueryImpl(txn, users).order("desc").paginate({ numItems: 1_000, cursor }));
    found.push(...chunk.page.filter((user) => user.email === email));
    if (chunk.isDone) break;
    cursor = chunk.continueCursor;
  }
  return found.slice(0, 20);
}

type FieldShape = { kind?: string; tableName?: string; members?: readonly FieldShape[] };

/** A reference to users: `v.id("users")`, optional or not, or a union with one (`v.union(v.id("users"), v.null())`). */
const refersToUsers = (field: FieldShape): boolean =>
  (field.kind === "id" && field.tableName === "users") || (field.kind === "union" && (field.members ?? []).some(refersToUsers));

/** Top-level fields of `table` that reference users (arrays of references are skipped). */
function userReferenceFields(table: TableInfo): string[] {
  const shape = table.validator as { kind?: string; fields?: Record<string, FieldShape> } | null;
  if (shape?.kind !== "object" || !shape.fields) return [];
  return Object.entries(shape.fields)
    .filter(([, field]) => refersToUsers(field))
    .map(([name]) => name);
}

const AUTH_TABLES = new Set(["users", "authSessions", "authAccounts", "authVerificationCodes", "authVerifiers", "authRateLimits"]);

/** `POST /api/admin/users/get`: the user, their sessions, accounts and data by table. */
export async function getUser(engine: Engine, body: Record<string, unknown>) {
  const users = authTable(engine, "users");
  const sessionsTable = authTable(engine, "authSessions");
  const accountsTable = authTable(engine, "authAccounts");
  const userId = stringField(body, "userId");
  if (!engine.catalog.isIdOfTable("users", userId)) throw badRequest(`"${userId}" is not the _id of a user.`);
  const now = Date.now();
  const detail = await engine.readDurable(async (txn) => {
    const user = await txn.get(userId);
    if (!user) throw notFound(`No user ${userId} (merged into another account, or cleaned up).`);
    const sessionRows = (await new QueryImpl(txn, sessionsTable).withIndex("by_userId", (q) => q.eq("userId", userId)).take(200)) as unknown as AuthSessionDoc[];
    const sessions = sessionRows
      .map((s) => ({
        _id: s._id,
        provider: s.provider,
        isAnonymous: s.isAnonymous,
        createdAt: s.createdAt,
        lastUsedAt: s.lastUsedAt,
        expiresAt: s.expiresAt,
        userAgent: s.userAgent ?? null,
        live: s.expiresAt > now,
      }))
      .sort((a, b) => b.lastUsedAt - a.lastUsedAt);
    const accountRows = await new QueryImpl(txn, accountsTable).withIndex("by_userId", (q) => q.eq("userId", userId)).take(50);
    const accounts = accountRows.map((a) => ({ _id: a._id, _creationTime: a._creationTime, provider: a.provider as string, providerAccountId: a.providerAccountId as string }));
    return { user: viewOf(engine, users, user), sessions, accounts };
  });
  const data = [];
  for (const table of appTables(engine)) {
    if (AUTH_TABLES.has(table.name)) continue;
    for (const field of userReferenceFields(table)) data.push(await userData(engine, table, field, userId));
  }
  return { ...detail, data };
}

/** Documents looked at, newest first, for a reference to users on a field no index starts with. */
const UNINDEXED_SCAN = 1_000;

/**
 * A user's documents in `table` by `field`, each lookup its own read: by an index on the field
 * if there is one (the first 100), else among the table's newest UNINDEXED_SCAN documents
 * (`more` then says there may be others). A filter over the whole table would read every
 * document of a big one, past what a read may, and the user's page would not open at all.
 */
async function userData(engine: Engine, table: TableInfo, field: string, userId: string) {
  const index = [...table.indexes.values()].find((i) => isPlainIndex(i) && i.fields[0] === field);
  const { docs, more } = await engine.readDurable(async (txn) => {
    if (index) {
      const found = await new QueryImpl(txn, table).withIndex(index.name, (q) => q.eq(field, userId)).order("desc").take(101);
      return { docs: found.slice(0, 100), more: found.length > 100 };
    }
    const newest = await new QueryImpl(txn, table).order("desc").take(UNINDEXED_SCAN + 1);
    const found = newest.slice(0, UNINDEXED_SCAN).filter((doc) => doc[field] === userId);
    return { docs: found.slice(0, 20), more: found.length > 20 || newest.length > UNINDEXED_SCAN };
  });
  return { table: table.name, field, index: index?.name ?? null, count: docs.length, more, sample: docs.slice(0, 5).map((doc) => viewOf(engine, table, doc)) };
}

/**
 * `POST /api/admin/sessions/revoke`: ends the session as walkin/auth's own revoke does, in one
 * transaction; its live queries re-run signed out at once and its token stops working.
 */
export async function revokeSession(engines: EngineSwitch, body: Record<string, unknown>) {
  const authSessionId = stringField(body, "authSessionId");
  return engines.mutate(async (engine) => {
    authTable(engine, "authSessions");
    if (!engine.catalog.isIdOfTable("authSessions", authSessionId)) throw badRequest(`"${authSessionId}" is not the _id of an auth session.`);
    return engine.runSystemMutation(async (txn) => {
      const session = (await txn.get(authSessionId)) as AuthSessionDoc | null;
      if (!session) throw notFound(`No auth session ${authSessionId}: it was already revoked or cleaned up.`);
      // Past its expiry is not ended for good: a late activity write could still extend it
      // (`endedForGood` in auth/authSessions.ts), so it is ended here like a live one.
      if (endedForGood(session)) return { revoked: false };
      await endAuthSession(createDatabaseWriter(txn, engine.catalog) as never, session);
      return { revoked: true };
    });
  });
}
