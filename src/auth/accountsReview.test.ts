/**
 * A review of the account helpers and `ConvexCredentials` (accounts.ts, accountOps.ts,
 * authInstances.ts), as a Convex app would meet each case: a reset racing a sign-in with the old
 * secret, a free username probed before its owner signs up, a profile ported from Convex Auth
 * (`emailVerified`), a linked user's `isAnonymous`, two createAccount calls at once, bad input,
 * and two apps in one process. Run through `walkinTest` on the real engine.
 */
import { afterEach, describe, expect, it } from "vitest";
import { anyApi, defineSchema, internalAction, internalMutation, mutation } from "../server/index.js";
import { v, type Id } from "../values/index.js";
import { authTables, convexAuth, createAccount, invalidateSessions, modifyAccountCredentials, retrieveAccount } from "./index.js";
import { Anonymous } from "./providers/Anonymous/index.js";
import { Password } from "./providers/Password/index.js";
import ConvexCredentials from "./providers/ConvexCredentials/index.js";
import { hashPassword, verifyPassword } from "./passwordHash.js";
import type { SecretCrypto } from "./providers/types.js";
import { walkinTest, type WalkinTest } from "../testing/index.js";
import { caught } from "../engine/fixtures/caught.js";

const api: any = anyApi;
const internal: any = anyApi;
const FAST = { N: 2 ** 10, r: 8, p: 1 };
const schema = defineSchema({ ...authTables });

/** Held by a test: the next secret check waits for it, after saying it has begun. */
let held: { begun: () => void; until: Promise<void> } | null = null;
const heldCrypto: SecretCrypto = {
  hashSecret: (secret) => hashPassword(secret, FAST),
  verifySecret: async (secret, hash) => {
    const hold = held;
    held = null;
    if (hold) {
      hold.begun();
      await hold.until;
    }
    return verifyPassword(secret, hash);
  },
};

/** The docs' authorize: retrieveAccount, and createAccount on InvalidAccountId for a sign-up. */
const usernames = (id: string, crypto: SecretCrypto) =>
  ConvexCredentials({
    id,
    crypto,
    authorize: async (credentials, ctx) => {
      const account = { id: String(credentials.username), secret: String(credentials.password) };
      try {
        return { userId: (await retrieveAccount(ctx, { provider: id, account })).user._id };
      } catch (error) {
        if ((error as Error).message !== "InvalidAccountId" || credentials.flow !== "signUp") throw error;
        return { userId: (await createAccount(ctx, { provider: id, account, profile: { name: account.id } })).user._id };
      }
    },
  });

const auth = convexAuth({
  providers: [Anonymous, Password({ scrypt: FAST }), usernames("credentials", heldCrypto)],
  rateLimits: { passwordAttempts: { limit: 3, windowMs: 60_000 } },
});

const admin = {
  create: internalAction({
    args: { provider: v.string(), id: v.string(), secret: v.optional(v.string()), profile: v.any(), link: v.optional(v.boolean()) },
    handler: async (ctx, { provider, id, secret, profile, link }) => {
      const { user, account } = await createAccount(ctx, { provider, account: { id, secret }, profile, shouldLinkViaEmail: link });
      return { userId: user._id, accountId: account._id, secret: account.secret };
    },
  }),
  // A reset after a leak: the new secret, then every session ended.
  reset: internalAction({
    args: { provider: v.string(), id: v.string(), secret: v.string() },
    handler: async (ctx, { provider, id, secret }) => {
      await modifyAccountCredentials(ctx, { provider, account: { id, secret } });
      const { user } = await retrieveAccount(ctx, { provider, account: { id } });
      return invalidateSessions(ctx, { userId: user._id });
    },
  }),
  // An app's "change my password" mutation that checks the old one first, letting InvalidSecret go up.
  changeInMutation: mutation({
    args: { id: v.string(), old: v.string(), secret: v.string() },
    handler: async (ctx, { id, old, secret }) => {
      await retrieveAccount(ctx, { provider: "credentials", account: { id, secret: old } });
      await modifyAccountCredentials(ctx, { provider: "credentials", account: { id, secret } });
    },
  }),
  verifiedUser: internalMutation({
    args: { email: v.string() },
    handler: async (ctx, { email }) => ctx.db.insert("users", { email, emailVerificationTime: 1 }),
  }),
};

let t: WalkinTest<any> | undefined;
let other: WalkinTest<any> | undefined;
afterEach(async () => {
  held = null;
  await t?.close();
  await other?.close();
  t = other = undefined;
});

const table = (name: string, app = t!) => app.run((ctx) => ctx.db.query(name).collect());
const signIn = (provider: string, params: Record<string, unknown>) =>
  t!.action(api.auth.signIn, { provider, params }) as Promise<{ kind: string; token: string; userId: Id<"users"> }>;
const isSignedIn = (token: string) => t!.withToken(token).query(api.auth.isAuthenticated, {});

describe("a secret checked while a reset commits", () => {
  it("the old secret does not sign in once the reset has committed, and no session outlives the reset", async () => {
    t = walkinTest(schema, { auth, admin });
    await signIn("credentials", { flow: "signUp", username: "ada", password: "leaked" });
    // 1. A sign-in with the leaked secret reads the account's hash and starts checking it.
    let begun!: () => void;
    const started = new Promise<void>((resolve) => (begun = resolve));
    let release!: () => void;
    held = { begun, until: new Promise<void>((resolve) => (release = resolve)) };
    const attacker = caught(signIn("credentials", { username: "ada", password: "leaked" }));
    await started;
    // 2. Meanwhile the owner's reset commits: a new secret, every session ended.
    await t.action(internal.admin.reset, { provider: "credentials", id: "ada", secret: "fresh" });
    // 3. The leaked secret matches the hash read in 1: it must still not open the account.
    release();
    const refused = await attacker;
    expect([refused.code, refused.message]).toEqual(["UNAUTHENTICATED", "InvalidSecret"]);
    expect(await table("authSessions")).toEqual([]);
    const owner = await signIn("credentials", { username: "ada", password: "fresh" });
    expect(await isSignedIn(owner.token)).toBe(true);
  });
});

describe("attempts on an account that does not exist", () => {
  it("a few sign-ins on a free username do not lock its owner's sign-up out", async () => {
    t = walkinTest(schema, { auth, admin });
    for (let i = 0; i < 3; i++) expect((await caught(signIn("credentials", { username: "bob", password: "guess" }))).message).toBe("InvalidAccountId");
    const bob = await signIn("credentials", { flow: "signUp", username: "bob", password: "bob's own" });
    expect(bob.kind).toBe("signedIn");
    // The account's own limit still holds once it exists.
    for (let i = 0; i < 3; i++) expect((await caught(signIn("credentials", { username: "bob", password: "guess" }))).message).toBe("InvalidSecret");
    expect((await caught(signIn("credentials", { username: "bob", password: "bob's own" }))).message).toBe("TooManyFailedAttempts");
  });
});

describe("a secret checked from a mutation", () => {
  it("is refused, since a throwing mutation would undo its failed attempt (unlimited guesses)", async () => {
    t = walkinTest(schema, { auth, admin });
    await signIn("credentials", { flow: "signUp", username: "ada", password: "right" });
    // The limit is 3 failed attempts: a fourth guess from the mutation must not be checked.
    for (let i = 0; i < 4; i++) {
      const error = await caught(t.mutation(api.admin.changeInMutation, { id: "ada", old: `guess ${i}`, secret: "mine now" }));
      expect([error.code, error.message]).toEqual(["MISUSE", expect.stringContaining("call it from an action")]);
    }
    expect((await signIn("credentials", { username: "ada", password: "right" })).kind).toBe("signedIn");
  });
});

describe("createAccount's user", () => {
  it("takes Convex Auth's profile.emailVerified as a verification time (not a field), and links by it to the verified user", async () => {
    t = walkinTest(schema, { auth, admin });
    const fresh = await t.action(internal.admin.create, { provider: "password", id: "ada@example.com", secret: "long enough", profile: { email: "ada@example.com", emailVerified: true } });
    const [ada] = await table("users");
    expect(ada).toMatchObject({ _id: fresh.userId, email: "ada@example.com", isAnonymous: false });
    expect(typeof ada!.emailVerificationTime).toBe("number");
    expect(ada).not.toHaveProperty("emailVerified");
    // A second provider's account for the same verified email joins her user.
    const again = await t.action(internal.admin.create, { provider: "credentials", id: "ada", secret: "other", profile: { email: "ada@example.com", emailVerified: true } });
    expect(again.userId).toBe(fresh.userId);
    expect(await table("users")).toHaveLength(1);
  });

  it("a linked user stays a real user whatever isAnonymous the profile carries", async () => {
    t = walkinTest(schema, { auth, admin });
    const verified = await t.mutation(internal.admin.verifiedUser, { email: "cy@example.com" });
    const linked = await t.action(internal.admin.create, { provider: "password", id: "cy@example.com", secret: "long enough", profile: { email: "cy@example.com", isAnonymous: true }, link: true });
    expect(linked.userId).toBe(verified);
    expect((await table("users")).map((u) => [u._id, u.isAnonymous])).toEqual([[verified, false]]);
  });

  it("two createAccount calls for one ID at once: one account and one user, the other refused", async () => {
    t = walkinTest(schema, { auth, admin });
    const create = (secret: string) => t!.action(internal.admin.create, { provider: "password", id: "dee@example.com", secret, profile: { email: "dee@example.com" } }).then(() => "created", (e: Error) => e.message);
    const outcomes = await Promise.all([create("first secret"), create("second secret"), caught(signIn("password", { flow: "signUp", email: "dee@example.com", password: "third secret" })).then((e) => e.message, () => "created")]);
    expect(outcomes.filter((o) => o === "created")).toHaveLength(1);
    expect(await table("authAccounts")).toHaveLength(1);
    expect(await table("users")).toHaveLength(1);
  });
});

describe("a guest whose authorize creates the account", () => {
  it("is merged into the new user (not upgraded in place, not left behind): one user, the guest's token ended", async () => {
    t = walkinTest(schema, { auth, admin });
    const guest = await t.action(api.auth.signIn, { provider: "anonymous", params: {} });
    const up = await t.withToken(guest.token).action(api.auth.signIn, { provider: "credentials", params: { flow: "signUp", username: "ada", password: "pw" } });
    expect(up.userId).not.toBe(guest.userId);
    expect((await table("users")).map((u) => [u._id, u.isAnonymous])).toEqual([[up.userId, false]]);
    expect(await isSignedIn(guest.token)).toBe(false);
    expect((await table("authSessions")).map((s) => [s.userId, s.isAnonymous])).toEqual([[up.userId, false]]);
  });
});

describe("bad input changes nothing", () => {
  it("each wrong shape fails with a message, and no user or account is left behind", async () => {
    t = walkinTest(schema, { auth, admin });
    const create = (profile: unknown) => caught(t!.action(internal.admin.create, { provider: "password", id: "eve@example.com", secret: "long enough", profile }));
    expect((await create(null)).message).toContain("createAccount needs profile");
    expect((await create(["email"])).message).toContain("createAccount needs profile");
    expect((await create({ email: 42 })).message).toMatch(/email/);
    expect((await create({ email: "eve@example.com", role: "admin" })).message).toMatch(/role/);
    const wrongSecret = await caught(t.action(internal.admin.reset, { provider: "password", id: "nobody@example.com", secret: "x" }));
    expect([wrongSecret.code, wrongSecret.message]).toEqual(["NOT_FOUND", "InvalidAccountId"]);
    expect(await Promise.all(["users", "authAccounts", "authSessions"].map((name) => table(name)))).toEqual([[], [], []]);
  });
});

describe("two apps in one process", () => {
  it("each app's helpers use its own configuration (its providers' hashing), whatever the other made since", async () => {
    const slow = { N: 2 ** 11, r: 8, p: 1 };
    const authB = convexAuth({ providers: [Password({ scrypt: slow })] });
    t = walkinTest(schema, { auth, admin });
    other = walkinTest(schema, { auth: authB, admin });
    const a = await t.action(internal.admin.create, { provider: "password", id: "ada@example.com", secret: "long enough", profile: {} });
    const b = await other.action(internal.admin.create, { provider: "password", id: "ada@example.com", secret: "long enough", profile: {} });
    expect(a.secret).toMatch(/^scrypt\$1024\$/);
    expect(b.secret).toMatch(/^scrypt\$2048\$/);
    // App B has no "credentials" provider: its helper says so, naming B's providers only.
    const missing = await caught(other.action(internal.admin.create, { provider: "credentials", id: "ada", profile: {} }));
    expect(missing.message).toContain('no provider "credentials" is configured. walkinAuth\'s providers are "password".');
  });
});
