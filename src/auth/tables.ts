/**
 * The tables auth keeps, to spread into the app's schema (`...authTables`). The app may
 * replace `users` with its own definition as long as it keeps the optional `isAnonymous`.
 *
 * Nothing a client could present is stored as given: auth sessions hold a sha256 hash of
 * their token's secret, password accounts a scrypt hash, verification codes a sha256 hash,
 * and OAuth state rows are found by a sha256 of their key (the PKCE verifier they hold is
 * useless without the client's own verifier, of which only a hash is kept).
 * Activity lives in `authSessions`, never in `users`: bumping a timestamp there would re-run
 * every query that shows a user's name.
 */
import { defineTable } from "../server/schema.js";
import { v } from "../values/index.js";
import { vSessionId } from "../sessions/sessionId.js";

export const authTables = {
  users: defineTable({
    name: v.optional(v.string()),
    email: v.optional(v.string()),
    image: v.optional(v.string()),
    emailVerificationTime: v.optional(v.number()),
    isAnonymous: v.optional(v.boolean()),
  }).index("email", ["email"]),

  /** A way to sign in to a user: a password, an OAuth identity. A user may have several. */
  authAccounts: defineTable({
    userId: v.id("users"),
    provider: v.string(),
    /** The provider's ID for the account: a normalized email, the OAuth subject. */
    providerAccountId: v.string(),
    /** A password hash (`scrypt$…`), for password accounts. */
    secret: v.optional(v.string()),
  })
    .index("by_provider_account", ["provider", "providerAccountId"])
    .index("by_userId", ["userId"]),

  /** A signed-in device or tab. The token is `wk2.<its _id>.<secret>`; only the secret's hash is kept. */
  authSessions: defineTable({
    userId: v.id("users"),
    /**
     * sha256 of the key part of a `wk1.<key>.<secret>` token, the format before `wk2`: how such a
     * token finds its row. Sessions made since have none (their token holds their `_id`).
     */
    keyHash: v.optional(v.string()),
    /** sha256 of the token's secret part, compared in constant time. */
    secretHash: v.string(),
    provider: v.string(),
    isAnonymous: v.boolean(),
    createdAt: v.number(),
    lastUsedAt: v.number(),
    /** The earlier of the idle and the absolute expiry; moves with use (sliding). */
    expiresAt: v.number(),
    /** Real users' sessions end by then whatever their use; anonymous ones never do (MAX_SAFE_INTEGER). */
    absoluteExpiresAt: v.number(),
    userAgent: v.optional(v.string()),
    /** The IP address that signed in (per the `clientIp` option), to tell devices apart in session lists. */
    ipAddress: v.optional(v.string()),
    /** The client session (walkin/sessions) that signed in, the ID it moved to if it rotated: one guest per client. */
    clientSessionId: v.optional(vSessionId),
    /**
     * The client session ID the sign-in rotated away from (`newSessionId`), which still leads to
     * the same guest (guests.ts). Optional and indexed: a database from before it just has none.
     */
    rotatedFromClientSessionId: v.optional(vSessionId),
    /**
     * Only on an ended anonymous session whose user's deletion failed (its onDeleteUser threw, or
     * read or wrote too much for one transaction): the cleanup passes over it until then.
     */
    cleanupRetryAt: v.optional(v.number()),
  })
    .index("by_keyHash", ["keyHash"])
    .index("by_userId", ["userId"])
    .index("by_expiresAt", ["expiresAt"])
    .index("by_clientSessionId", ["clientSessionId"])
    .index("by_rotatedFromClientSessionId", ["rotatedFromClientSessionId"]),

  /** One-time codes (password reset): a hash, an expiry, attempts limited in `authRateLimits`. */
  authVerificationCodes: defineTable({
    accountId: v.id("authAccounts"),
    purpose: v.string(),
    codeHash: v.string(),
    expiresAt: v.number(),
  })
    .index("by_accountId_purpose", ["accountId", "purpose"])
    .index("by_expiresAt", ["expiresAt"]),

  /** Short-lived sign-in state (OAuth state and PKCE verifier), found by a hash of its key. */
  authVerifiers: defineTable({
    keyHash: v.string(),
    provider: v.string(),
    value: v.any(),
    expiresAt: v.number(),
  })
    .index("by_keyHash", ["keyHash"])
    .index("by_expiresAt", ["expiresAt"]),

  /** Token buckets: `key` names the limit and who it limits (e.g. `anonymous|ip:…`). */
  authRateLimits: defineTable({
    key: v.string(),
    tokens: v.number(),
    updatedAt: v.number(),
  })
    .index("by_key", ["key"])
    .index("by_updatedAt", ["updatedAt"]),
};
