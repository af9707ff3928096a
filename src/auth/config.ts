/**
 * What `walkinAuth(config)` takes, and its defaults. Every duration is in milliseconds.
 */
import type { CallerRequest, GenericActionCtx, GenericMutationCtx } from "../server/registration.js";
import type { AnyDataModel } from "../server/dataModel.js";
import type { SessionTables } from "../sessions/anonymousUsers.js";
import type { AuthProvider } from "./providers/types.js";
import { checkConfigKeys, type AuthCallbacks } from "./callbacks.js";

export type { AuthCallbacks };

export type MutationCtx = GenericMutationCtx<AnyDataModel>;
export type ActionCtx = GenericActionCtx<AnyDataModel>;

/** A token-bucket limit: `limit` events per `windowMs`, refilled evenly. */
export interface RateLimit {
  limit: number;
  windowMs: number;
}

export interface WalkinAuthConfig {
  providers: ReadonlyArray<AuthProvider | (() => AuthProvider)>;
  session?: {
    /** Absolute lifetime of a session (default 30 days). */
    totalDurationMs?: number;
    /** A session unused this long ends (default 7 days). */
    inactiveDurationMs?: number;
    /** Use is recorded at most this often per session: the bound on sliding-expiry writes (default 1 hour). */
    activityResolutionMs?: number;
    /**
     * Live sessions one user may have (default 100, at most 1,000): a sign-in past it ends the
     * user's least recently used session. It keeps "end every session" (a password reset,
     * revokeOtherSessions) within what one transaction may write.
     */
    maxPerUser?: number;
    /**
     * How long a client session ID that an anonymous sign-in rotated away from (`newSessionId`)
     * still leads to its guest (default 2 minutes; 0: never): long enough for a retry whose
     * answer was lost, or another tab still on the old ID, to find the same guest; short enough
     * that an old ID seen somewhere (a log, a copied tab) stops being a key to it (guests.ts).
     */
    rotatedIdGraceMs?: number;
  };
  /** Convex Auth's form of `rateLimits.passwordAttempts`: failed password attempts per account per hour (the bucket refills over the hour). */
  signIn?: { maxFailedAttempsPerHour?: number };
  rateLimits?: {
    /**
     * Anonymous sign-ins per client IP (default 30 per hour). The same limit counts, per guest,
     * the new sessions sign-ins with a client session ID get for the guest it already has.
     */
    anonymousSignIn?: RateLimit;
    /** Password sign-ins per account (default 10 per 15 minutes; a success refills it). */
    passwordAttempts?: RateLimit;
    /**
     * Failed password sign-ins per client network, whatever the account (default 100 per 15
     * minutes): what holds back one machine trying leaked passwords against many accounts,
     * which the per-account limit cannot see. A correct password gives back the attempt it took,
     * so many people signing in from behind one address are not counted against each other.
     */
    passwordAttemptsPerNetwork?: RateLimit;
    /** One-time code attempts per account (default 5 per 15 minutes). */
    codeAttempts?: RateLimit;
    /** One-time codes sent per email address, known or not (default 5 per 15 minutes). */
    codeSends?: RateLimit;
    /**
     * One-time codes asked for per client network, whatever the address (default 20 per 15
     * minutes): one machine cannot make the app email address after address.
     */
    codeSendsPerNetwork?: RateLimit;
    /**
     * Password sign-ups per client network (default 20 per 15 minutes), counted before the
     * password is hashed: each one costs a full scrypt run (about 100 ms and 128 MiB at the
     * default cost, on the threads every password sign-in shares), whether it then creates an
     * account or finds the email taken.
     */
    signUpsPerNetwork?: RateLimit;
    /**
     * Redirect sign-ins (OAuth, OIDC) started per client network (default 100 per 15 minutes):
     * each start stores its state for ten minutes, so without a limit one machine calling
     * `signIn("github")` in a loop could fill the database. Finishing one costs nothing more.
     */
    redirectSignInsPerNetwork?: RateLimit;
  };
  /** The client's IP for rate limits. Default: the socket's peer address (set this behind a proxy). */
  clientIp?: (request: CallerRequest) => string | null;
  cleanup?: {
    /**
     * An anonymous session unused this long ends, and with its user's last session the user is
     * deleted (default 30 days). Anonymous sessions have no absolute lifetime: they are the
     * user's only key.
     */
    anonymousUserInactiveMs?: number;
    /** How often the cleanup runs (default every 10 minutes). */
    intervalMs?: number;
  };
  /**
   * With `walkin/sessions`: the app's per-session tables (table → index on `sessionId`), moved
   * to the client's new session ID on sign-in and deleted on sign-out. Needs `sessionTables` in the schema.
   */
  sessions?: { tables?: SessionTables };
  callbacks?: AuthCallbacks;
}

const DAY = 86_400_000;

export function resolveConfig(config: WalkinAuthConfig) {
  if (!config || !Array.isArray(config.providers) || config.providers.length === 0) {
    throw new TypeError("walkinAuth needs at least one provider: walkinAuth({ providers: [Anonymous] }).");
  }
  checkConfigKeys(config);
  const maxFailed = config.signIn?.maxFailedAttempsPerHour;
  if (maxFailed !== undefined && config.rateLimits?.passwordAttempts !== undefined) {
    throw new TypeError("walkinAuth: signIn.maxFailedAttempsPerHour and rateLimits.passwordAttempts set the same limit; keep one.");
  }
  const passwordAttempts = maxFailed === undefined ? config.rateLimits?.passwordAttempts : { limit: maxFailed, windowMs: 3_600_000 };
  const providers: AuthProvider[] = config.providers.map((p) => (typeof p === "function" ? p() : p));
  const ids = new Set<string>();
  for (const provider of providers) {
    if (ids.has(provider.id)) throw new TypeError(`walkinAuth: two providers have the id "${provider.id}"; give one another id.`);
    ids.add(provider.id);
  }
  const inactiveDurationMs = positive(config.session?.inactiveDurationMs, 7 * DAY, "session.inactiveDurationMs");
  const anonymousUserInactiveMs = positive(config.cleanup?.anonymousUserInactiveMs, 30 * DAY, "cleanup.anonymousUserInactiveMs");
  // Use is recorded at most once per resolution, so a resolution at or past an idle limit would
  // let a session in constant use expire; the default stays well inside a short idle limit.
  const shortestIdle = Math.min(inactiveDurationMs, anonymousUserInactiveMs);
  const activityResolutionMs = positive(config.session?.activityResolutionMs, Math.min(3_600_000, shortestIdle / 2), "session.activityResolutionMs");
  if (activityResolutionMs >= shortestIdle) {
    const name = shortestIdle === inactiveDurationMs ? "session.inactiveDurationMs" : "cleanup.anonymousUserInactiveMs";
    throw new TypeError(`walkinAuth: session.activityResolutionMs (${activityResolutionMs}) must be shorter than ${name} (${shortestIdle}), ` +
      "or a session in use would still expire; half of it, or leave it out for the default.");
  }
  return {
    providers,
    session: {
      totalDurationMs: positive(config.session?.totalDurationMs, 30 * DAY, "session.totalDurationMs"),
      inactiveDurationMs,
      activityResolutionMs,
      maxPerUser: sessionCount(config.session?.maxPerUser, 100, "session.maxPerUser"),
      rotatedIdGraceMs: notNegative(config.session?.rotatedIdGraceMs, 2 * 60_000, "session.rotatedIdGraceMs"),
    },
    rateLimits: {
      anonymousSignIn: rateLimit(config.rateLimits?.anonymousSignIn, { limit: 30, windowMs: 3_600_000 }, "anonymousSignIn"),
      passwordAttempts: rateLimit(passwordAttempts, { limit: 10, windowMs: 15 * 60_000 }, "passwordAttempts"),
      passwordAttemptsPerNetwork: rateLimit(config.rateLimits?.passwordAttemptsPerNetwork, { limit: 100, windowMs: 15 * 60_000 }, "passwordAttemptsPerNetwork"),
      codeAttempts: rateLimit(config.rateLimits?.codeAttempts, { limit: 5, windowMs: 15 * 60_000 }, "codeAttempts"),
      codeSends: rateLimit(config.rateLimits?.codeSends, { limit: 5, windowMs: 15 * 60_000 }, "codeSends"),
      codeSendsPerNetwork: rateLimit(config.rateLimits?.codeSendsPerNetwork, { limit: 20, windowMs: 15 * 60_000 }, "codeSendsPerNetwork"),
      signUpsPerNetwork: rateLimit(config.rateLimits?.signUpsPerNetwork, { limit: 20, windowMs: 15 * 60_000 }, "signUpsPerNetwork"),
      redirectSignInsPerNetwork: rateLimit(config.rateLimits?.redirectSignInsPerNetwork, { limit: 100, windowMs: 15 * 60_000 }, "redirectSignInsPerNetwork"),
    },
    clientIp: config.clientIp ?? ((request: CallerRequest) => request.remoteAddress),
    cleanup: {
      anonymousUserInactiveMs,
      intervalMs: positive(config.cleanup?.intervalMs, 10 * 60_000, "cleanup.intervalMs"),
    },
    sessions: config.sessions ?? null,
    callbacks: config.callbacks ?? {},
  };
}

export type ResolvedAuthConfig = ReturnType<typeof resolveConfig>;

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new TypeError(`walkinAuth: ${name} must be a positive number of milliseconds; received ${String(value)}.`);
  }
  return value;
}

function notNegative(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new TypeError(`walkinAuth: ${name} must be a number of milliseconds, 0 or more; received ${String(value)}.`);
  }
  return value;
}

/**
 * A whole number of sessions from 1 to 1,000: ending that many in one transaction (a reset) stays
 * far inside its limits (8,192 documents written), whatever else the transaction does.
 */
function sessionCount(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 1_000) {
    throw new TypeError(`walkinAuth: ${name} must be a whole number of sessions from 1 to 1000; received ${String(value)} (e.g. session: { maxPerUser: ${fallback} }).`);
  }
  return value;
}

/** A limit of at least one event per positive window: anything else refuses everyone or no one. */
function rateLimit(value: RateLimit | undefined, fallback: RateLimit, name: string): RateLimit {
  if (value === undefined) return fallback;
  const example = `e.g. rateLimits: { ${name}: { limit: ${fallback.limit}, windowMs: ${fallback.windowMs} } }`;
  if (typeof value?.limit !== "number" || !Number.isFinite(value.limit) || value.limit < 1) {
    throw new TypeError(`walkinAuth: rateLimits.${name}.limit must be a number of events, at least 1; received ${String(value?.limit)} (${example}).`);
  }
  if (typeof value.windowMs !== "number" || !Number.isFinite(value.windowMs) || value.windowMs <= 0) {
    throw new TypeError(`walkinAuth: rateLimits.${name}.windowMs must be a positive number of milliseconds; received ${String(value.windowMs)} (${example}).`);
  }
  return value;
}
