/**
 * Convex Auth's account helpers and `ConvexCredentials` (accounts.ts, accountOps.ts,
 * providers/convexCredentials.ts), written as a Convex app using them would be: an internal
 * action that seeds an administrator, a credentials provider whose `authorize` finds or creates
 * accounts and branches on the helpers' error words, an admin action that changes a password
 * and signs the user out everywhere. Run through `walkinTest` on the real engine.
 */
import { afterEach, describe, expect, it } from "vitest";
import { anyApi, defineSchema, defineTable, internalAction, internalMutation, mutation, query } from "../server/index.js";
import { v, type Id } from "../values/index.js";
import { authTables, convexAuth, createAccount, getAuthUserId, invalidateSessions, modifyAccountCredentials, retrieveAccount } from "./index.js";
import { Anonymous } from "./providers/Anonymous/index.js";
import { Password } from "./providers/Password/index.js";
import ConvexCredentials from "./providers/ConvexCredentials/index.js";
import { hashPassword, verifyPassword } from "./passwordHash.js";
import { walkinTest, type WalkinTest } from "../testing/index.js";
import { caught } from "../engine/fixtures/caught.js";

const api: any = anyApi;
const internal: any = anyApi;
/** Cheap scrypt for tests; production keeps the default cost. */
const FAST = { N: 2 ** 10, r: 8, p: 1 };

const schema = defineSchema({
  ...authTables,
  notes: defineTable({ owner: v.id("users"), text: v.string() }).index("by_owner", ["owner"]),
});

/** Run by the "racy" provider's authorize after retrieveAccount answered: a test puts a reset here. */
let afterCheck: ((ctx: any) => Promise<void>) | null = null;
/** Run once by the "racy" provider's secret check, while it runs: a test puts a reset here. */
let duringCheck: (() => Promise<unknown>) | null = null;

const auth = convexAuth({
  providers: [
    ConvexCredentials({
      id: "racy",
      crypto: {
        hashSecret: (secret) => hashPassword(secret, FAST),
        verifySecret: async (secret, hash) => {
          const during = duringCheck;
          duringCheck = null;
          await during?.();
          return verifyPassword(secret, hash);
        },
      },
      authorize: async (credentials, ctx) => {
        const { user } = await retrieveAccount(ctx, { provider: "racy", account: { id: String(credentials.username), secret: String(credentials.password) } });
        await afterCheck?.(ctx);
        return { userId: user._id };
      },
    }),
    Anonymous,
    Password({ scrypt: FAST }),
    ConvexCredentials({
      id: "credentials",
      crypto: { hashSecret: (secret) => hashPassword(secret, FAST), verifySecret: verifyPassword },
      authorize: async (credentials, ctx) => {
        const username = String(credentials.username ?? "");
        if (username === "nobody") return null;
        if (username === "broken") return { id: "not a user ID" } as never;
        const account = { id: username, secret: String(credentials.password ?? "") };
        try {
          const { user } = await retrieveAccount(ctx, { provider: "credentials", account });
          return { userId: user._id };
        } catch (error) {
          // As ported code branches: on the exact word.
          if ((error as Error).message !== "InvalidAccountId" || credentials.flow !== "signUp") throw error;
          const { user } = await createAccount(ctx, { provider: "credentials", account, profile: { name: username } });
          return { userId: user._id };
        }
      },
    }),
  ],
  rateLimits: { passwordAttempts: { limit: 3, windowMs: 60_000 } },
  callbacks: {
    // The guest's notes go to the account it signs in to.
    async mergeAnonymousUser({ ctx, anonymousUserId, userId }) {
      for (const note of await ctx.db.query("notes").withIndex("by_owner", (q) => q.eq("owner", anonymousUserId)).collect()) {
        await ctx.db.patch(note._id, { owner: userId });
      }
    },
  },
});

const admin = {
  seed: internalAction({
    args: { email: v.string(), password: v.string(), name: v.optional(v.string()), link: v.optional(v.boolean()) },
    handler: async (ctx, { email, password, name, link }) => {
      const { user, account } = await createAccount(ctx, { provider: "password", account: { id: email, secret: password }, profile: { email, name }, shouldLinkViaEmail: link });
      return { userId: user._id, accountUserId: account.userId, storedSecret: account.secret };
    },
  }),
  check: internalAction({
    args: { provider: v.string(), id: v.string(), secret: v.optional(v.string()) },
    handler: async (ctx, { provider, id, secret }) => {
      try {
        const { user } = await retrieveAccount(ctx, { provider, account: { id, secret } });
        return { userId: user._id };
      } catch (error) {
        const { code, message, data } = error as { code: string; message: string; data?: { retryAfterMs?: number } };
        return { code, message, retryAfterMs: data?.retryAfterMs };
      }
    },
  }),
  changePassword: internalAction({
    args: { email: v.string(), password: v.string() },
    handler: async (ctx, { email, password }) => {
      await modifyAccountCredentials(ctx, { provider: "password", account: { id: email, secret: password } });
      const { user } = await retrieveAccount(ctx, { provider: "password", account: { id: email } });
      return invalidateSessions(ctx, { userId: user._id });
    },
  }),
  setRacySecret: internalAction({
    args: { id: v.string(), secret: v.string() },
    handler: async (ctx, { id, secret }) => modifyAccountCredentials(ctx, { provider: "racy", account: { id, secret } }),
  }),
  verifyEmail: internalMutation({
    args: { email: v.string() },
    handler: async (ctx, { email }) => ctx.db.insert("users", { email, emailVerificationTime: Date.now() }),
  }),
  unverifiedUser: internalMutation({
    args: { email: v.string() },
    handler: async (ctx, { email }) => ctx.db.insert("users", { email }),
  }),
  // As some Convex apps do: the helpers from a mutation (its runMutation runs the store as a sub-transaction).
  setPasswordInMutation: internalMutation({
    args: { email: v.string(), password: v.string() },
    handler: async (ctx, { email, password }) => {
      const existing = await retrieveAccount(ctx, { provider: "password", account: { id: email } }).catch(() => null);
      if (existing) await modifyAccountCredentials(ctx, { provider: "password", account: { id: email, secret: password } });
      else await createAccount(ctx, { provider: "password", account: { id: email, secret: password }, profile: { email } });
      return existing ? "modified" : "created";
    },
  }),
  lookupFromQuery: query({
    args: {},
    handler: async (ctx) => retrieveAccount(ctx as never, { provider: "password", account: { id: "m@example.com" } }),
  }),
  seedUnknownProvider: internalAction({
    args: {},
    handler: async (ctx) => createAccount(ctx, { provider: "pasword", account: { id: "x@example.com", secret: "long enough" }, profile: {} }),
  }),
  seedWithoutId: internalAction({
    args: {},
    handler: async (ctx) => createAccount(ctx, { provider: "password", account: { id: "" }, profile: {} }),
  }),
};

const notes = {
  add: mutation({
    args: { text: v.string() },
    handler: async (ctx, { text }) => {
      const owner = await getAuthUserId(ctx);
      if (!owner) throw new Error("Sign in first");
      return ctx.db.insert("notes", { owner, text });
    },
  }),
  mine: query({
    args: {},
    handler: async (ctx) => {
      const owner = await getAuthUserId(ctx);
      return owner ? (await ctx.db.query("notes").withIndex("by_owner", (q) => q.eq("owner", owner)).collect()).map((n) => n.text) : [];
    },
  }),
};

const modules = { auth, admin, notes };

let t: WalkinTest<any> | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const table = (name: string) => t!.run((ctx) => ctx.db.query(name).collect());
const signIn = (provider: string, params: Record<string, unknown>, token?: string) =>
  (token ? t!.withToken(token) : t!).action(api.auth.signIn, { provider, params }) as Promise<{ kind: string; token: string; userId: Id<"users">; isAnonymous: boolean }>;
const isSignedIn = (token: string) => t!.withToken(token).query(api.auth.isAuthenticated, {});

describe("createAccount from an internal action", () => {
  it("seeds a password account the Password provider then signs in to, keeping only a hash of the secret", async () => {
    t = walkinTest(schema, modules);
    const seeded = await t.action(internal.admin.seed, { email: "Ada@Example.com ", password: "correct horse", name: "Ada" });
    expect(seeded.accountUserId).toBe(seeded.userId);
    expect(seeded.storedSecret).toMatch(/^scrypt\$1024\$8\$1\$/);
    expect(seeded.storedSecret).not.toContain("correct horse");
    // Stored under the email as the provider's sign-ins look it up (trimmed, lower case).
    expect((await table("authAccounts")).map((a) => [a.provider, a.providerAccountId])).toEqual([["password", "ada@example.com"]]);

    const signedIn = await signIn("password", { flow: "signIn", email: "ada@example.com", password: "correct horse" });
    expect([signedIn.kind, signedIn.userId, signedIn.isAnonymous]).toEqual(["signedIn", seeded.userId, false]);
    expect((await table("users")).map((u) => [u.email, u.name, u.isAnonymous])).toEqual([["Ada@Example.com ", "Ada", false]]);
  });

  it("refuses an account that exists, changing nothing", async () => {
    t = walkinTest(schema, modules);
    await t.action(internal.admin.seed, { email: "ada@example.com", password: "correct horse" });
    const error = await caught(t.action(internal.admin.seed, { email: "ADA@example.com", password: "another one" }));
    expect(error.message).toContain("Account ada@example.com already exists");
    expect(error.message).toContain("modifyAccountCredentials");
    expect(await table("users")).toHaveLength(1);
    expect((await t.action(internal.admin.check, { provider: "password", id: "ada@example.com", secret: "correct horse" })).userId).toBeDefined();
  });

  it("links to the one user whose email is verified, never to one who only wrote it down", async () => {
    t = walkinTest(schema, modules);
    const unverified = await t.mutation(internal.admin.unverifiedUser, { email: "bob@example.com" });
    const bob = await t.action(internal.admin.seed, { email: "bob@example.com", password: "long enough", link: true });
    expect(bob.userId).not.toBe(unverified);

    const verified = await t.mutation(internal.admin.verifyEmail, { email: "cy@example.com" });
    const cy = await t.action(internal.admin.seed, { email: "cy@example.com", password: "long enough", name: "Cy", link: true });
    expect(cy.userId).toBe(verified);
    expect((await t.run((ctx) => ctx.db.get(verified)))!.name).toBe("Cy");
    // Without shouldLinkViaEmail, a new user even so.
    const dee = await t.mutation(internal.admin.verifyEmail, { email: "dee@example.com" });
    expect((await t.action(internal.admin.seed, { email: "dee@example.com", password: "long enough" })).userId).not.toBe(dee);
  });
});

describe("retrieveAccount", () => {
  it("answers the account's user, InvalidAccountId for no account and InvalidSecret for a wrong secret", async () => {
    t = walkinTest(schema, modules);
    const { userId } = await t.action(internal.admin.seed, { email: "ada@example.com", password: "correct horse" });
    expect(await t.action(internal.admin.check, { provider: "password", id: "ada@example.com" })).toEqual({ userId });
    expect(await t.action(internal.admin.check, { provider: "password", id: "ada@example.com", secret: "correct horse" })).toEqual({ userId });
    expect(await t.action(internal.admin.check, { provider: "password", id: "zed@example.com" })).toMatchObject({ code: "NOT_FOUND", message: "InvalidAccountId" });
    expect(await t.action(internal.admin.check, { provider: "password", id: "ada@example.com", secret: "wrong" })).toMatchObject({ code: "UNAUTHENTICATED", message: "InvalidSecret" });
  });

  it("limits wrong secrets per account (TooManyFailedAttempts, with when to retry), and a right one gives the attempts back", async () => {
    t = walkinTest(schema, modules);
    await t.action(internal.admin.seed, { email: "ada@example.com", password: "correct horse" });
    const check = (secret: string) => t!.action(internal.admin.check, { provider: "password", id: "ada@example.com", secret });
    for (let i = 0; i < 2; i++) expect((await check("wrong")).message).toBe("InvalidSecret");
    expect((await check("correct horse")).userId).toBeDefined(); // gives the two back
    for (let i = 0; i < 3; i++) expect((await check("wrong")).message).toBe("InvalidSecret");
    const refused = await check("correct horse");
    expect(refused).toMatchObject({ code: "RATE_LIMITED", message: "TooManyFailedAttempts" });
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    // The Password provider's sign-ins count against the same bucket.
    const error = await caught(signIn("password", { flow: "signIn", email: "ada@example.com", password: "correct horse" }));
    expect(error.code).toBe("RATE_LIMITED");
  });
});

describe("ConvexCredentials", () => {
  it("signs up and in through the app's authorize, which branches on the helpers' words", async () => {
    t = walkinTest(schema, modules);
    const up = await signIn("credentials", { flow: "signUp", username: "ada", password: "pw-1" });
    expect([up.kind, up.isAnonymous]).toEqual(["signedIn", false]);
    expect(await isSignedIn(up.token)).toBe(true);
    const again = await signIn("credentials", { username: "ada", password: "pw-1" });
    expect(again.userId).toBe(up.userId);
    expect(again.token).not.toBe(up.token);

    const wrong = await caught(signIn("credentials", { username: "ada", password: "pw-2" }));
    expect([wrong.code, wrong.message]).toEqual(["UNAUTHENTICATED", "InvalidSecret"]);
    const unknown = await caught(signIn("credentials", { username: "zed", password: "pw-1" }));
    expect([unknown.code, unknown.message]).toEqual(["NOT_FOUND", "InvalidAccountId"]);
    expect((await table("users")).length).toBe(1);
  });

  it("merges a guest into the account it signs in to: the guest's notes follow, the guest is gone", async () => {
    t = walkinTest(schema, modules);
    const account = await signIn("credentials", { flow: "signUp", username: "ada", password: "pw-1" });
    const guest = await signIn("anonymous", {});
    await t.withToken(guest.token).mutation(api.notes.add, { text: "written before signing in" });

    const merged = await signIn("credentials", { username: "ada", password: "pw-1" }, guest.token);
    expect(merged.userId).toBe(account.userId);
    expect(await t.withToken(merged.token).query(api.notes.mine, {})).toEqual(["written before signing in"]);
    expect((await table("users")).map((u) => u._id)).toEqual([account.userId]);
    expect(await isSignedIn(guest.token)).toBe(false); // rotated
  });

  it("refuses when authorize answers null, says what to return when it answers something else, and writes nothing", async () => {
    t = walkinTest(schema, modules);
    const before = await Promise.all(["users", "authSessions", "authAccounts"].map(table));
    const refused = await caught(signIn("credentials", { username: "nobody" }));
    expect([refused.code, refused.message]).toEqual(["UNAUTHENTICATED", "Invalid credentials."]);
    const broken = await caught(signIn("credentials", { username: "broken" }));
    expect(broken.code).toBe("MISUSE");
    expect(broken.message).toContain('authorize must return { userId } of the user to sign in, or null to refuse; it returned an object with "id"');
    expect(await Promise.all(["users", "authSessions", "authAccounts"].map(table))).toEqual(before);
  });
});

describe("a reset that commits while a credentials sign-in is under way", () => {
  it("during retrieveAccount's check of the old secret: InvalidSecret", async () => {
    t = walkinTest(schema, modules);
    await t.run(async (ctx) => {
      const userId = await ctx.db.insert("users", { name: "ada" });
      await ctx.db.insert("authAccounts", { userId, provider: "racy", providerAccountId: "ada", secret: await hashPassword("old secret", FAST) });
    });
    duringCheck = () => t!.action(internal.admin.setRacySecret, { id: "ada", secret: "new secret" });
    expect(await t.action(internal.admin.check, { provider: "racy", id: "ada", secret: "old secret" })).toMatchObject({ code: "UNAUTHENTICATED", message: "InvalidSecret" });
    expect(duringCheck).toBeNull(); // the reset ran inside the check
    expect((await t.action(internal.admin.check, { provider: "racy", id: "ada", secret: "new secret" })).userId).toBeDefined();
  });

  it("after retrieveAccount accepted the old secret and before the session is made: the sign-in is refused", async () => {
    t = walkinTest(schema, modules);
    await t.run(async (ctx) => {
      const userId = await ctx.db.insert("users", { name: "ada" });
      await ctx.db.insert("authAccounts", { userId, provider: "racy", providerAccountId: "ada", secret: await hashPassword("old secret", FAST) });
    });
    afterCheck = async (ctx) => modifyAccountCredentials(ctx, { provider: "racy", account: { id: "ada", secret: "new secret" } });
    try {
      const refused = await caught(signIn("racy", { username: "ada", password: "old secret" }));
      expect([refused.code, refused.message]).toEqual(["UNAUTHENTICATED", "InvalidSecret"]);
    } finally {
      afterCheck = null;
    }
    expect(await table("authSessions")).toEqual([]);
    expect((await signIn("racy", { username: "ada", password: "new secret" })).kind).toBe("signedIn");
  });
});

describe("modifyAccountCredentials and invalidateSessions from an action", () => {
  it("changes the password and signs every session out at once", async () => {
    t = walkinTest(schema, modules);
    await t.action(internal.admin.seed, { email: "ada@example.com", password: "old password" });
    const phone = await signIn("password", { flow: "signIn", email: "ada@example.com", password: "old password" });
    const laptop = await signIn("password", { flow: "signIn", email: "ada@example.com", password: "old password" });

    expect(await t.action(internal.admin.changePassword, { email: "ada@example.com", password: "new password" })).toBe(2);
    expect([await isSignedIn(phone.token), await isSignedIn(laptop.token)]).toEqual([false, false]);
    expect((await caught(signIn("password", { flow: "signIn", email: "ada@example.com", password: "old password" }))).code).toBe("UNAUTHENTICATED");
    expect((await signIn("password", { flow: "signIn", email: "ada@example.com", password: "new password" })).kind).toBe("signedIn");
  });
});

describe("the helpers from a mutation", () => {
  it("create, then modify, an account in the mutation's own transaction", async () => {
    t = walkinTest(schema, modules);
    expect(await t.mutation(internal.admin.setPasswordInMutation, { email: "m@example.com", password: "first one" })).toBe("created");
    expect(await t.mutation(internal.admin.setPasswordInMutation, { email: "m@example.com", password: "second one" })).toBe("modified");
    expect((await signIn("password", { flow: "signIn", email: "m@example.com", password: "second one" })).kind).toBe("signedIn");
  });
});

describe("the helpers' mistakes say what to fix, and change nothing", () => {
  it("names the configured providers, asks for the account ID, and says the helpers run in actions", async () => {
    t = walkinTest(schema, modules);
    const unknown = await caught(t.action(internal.admin.seedUnknownProvider, {}));
    expect([unknown.code, unknown.message]).toEqual(["INVALID_ARGUMENT", 'createAccount: no provider "pasword" is configured. walkinAuth\'s providers are "racy", "anonymous", "password", "credentials".']);
    const noId = await caught(t.action(internal.admin.seedWithoutId, {}));
    expect(noId.message).toContain("createAccount needs { provider, account: { id } }");
    const inQuery = await caught(t.query(internal.admin.lookupFromQuery, {}));
    expect([inQuery.code, inQuery.message]).toEqual(["MISUSE", "retrieveAccount calls walkinAuth's store mutation: call it from an action (a provider's authorize is one) or a mutation, not from a query."]);
    const missing = await caught(t.action(internal.admin.changePassword, { email: "zed@example.com", password: "long enough" }));
    expect([missing.code, missing.message]).toEqual(["NOT_FOUND", "InvalidAccountId"]);
    expect(await Promise.all(["users", "authAccounts"].map(table))).toEqual([[], []]);
  });
});
