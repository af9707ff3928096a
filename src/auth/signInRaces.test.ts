/**
 * Sign-in edge cases found in a review of the auth flows: each test failed before its fix, against the real
 * engine, server and SQLite storage (the shared auth harness, as in auth.test.ts).
 */
import { describe, expect, it } from "vitest";
import type { Caller } from "../engine/engine.js";
import type { LiveBackend } from "../testing/liveBackend.js";
import { errorOf, from, listTable, signIn, signedIn, useAuthBackends, newGate } from "./fixtures/harness.js";
import { Anonymous } from "./providers/anonymous.js";
import { Password } from "./providers/password.js";
import type { AuthProvider } from "./providers/types.js";
import { mutation, v } from "../server/index.js";

const start = useAuthBackends();
const SCRYPT = { N: 1024, r: 8, p: 1 };


/**
 * The Password provider, except that a call may pause (once, on `gate`) between the provider's
 * own checks (password verified, code checked: the action part) and the sign-in transaction:
 * the time a real scrypt verification at N = 2^17 takes, made deterministic.
 */
function gatedPassword(codes: { email: string; code: string }[], holder: { gate: ReturnType<typeof newGate> | null }): AuthProvider {
  const inner = Password({ scrypt: SCRYPT, sendCode: async ({ email, code }) => void codes.push({ email, code }) });
  return {
    ...inner,
    signIn: (context) =>
      inner.signIn({
        ...context,
        completeSignIn: async (step) => {
          const gate = holder.gate;
          holder.gate = null;
          if (gate) {
            gate.reached();
            await gate.promise;
          }
          return context.completeSignIn(step);
        },
      }),
  };
}

/** Makes a user directly, as another provider (or an admin tool) would have. */
const existingUser = mutation({
  args: { email: v.string() },
  handler: async (ctx, { email }) => ctx.db.insert("users", { email, isAnonymous: false }),
});

const pw = (backend: LiveBackend, params: Record<string, unknown>, caller?: Caller) => signIn(backend, "password", params, caller);
const mine = (backend: LiveBackend, token: string) => backend.engine.runQuery("messages:mine", {}, { token, fromClient: true });

describe("password reset racing a sign-in with the old password", () => {
  it("a sign-in whose old password was checked before the reset committed does not get a session after it", async () => {
    const codes: { email: string; code: string }[] = [];
    const holder: { gate: ReturnType<typeof newGate> | null } = { gate: null };
    const backend = await start({ providers: [Anonymous(), gatedPassword(codes, holder)] });
    await signedIn(backend, "password", { flow: "signUp", email: "ada@example.com", password: "old password" });

    // Someone who knows the old password signs in; their password check passes, then (scrypt
    // takes a while) the owner, who noticed, resets the password: "ends every session".
    const gate = newGate();
    holder.gate = gate;
    const attacker = pw(backend, { flow: "signIn", email: "ada@example.com", password: "old password" }, from("203.0.113.9"));
    await gate.arrived;
    await pw(backend, { flow: "reset", email: "ada@example.com" });
    const owner = await signIn(backend, "password", { flow: "reset-verification", email: "ada@example.com", code: codes[0]!.code, newPassword: "brand new password" });
    expect(owner.kind).toBe("signedIn");
    gate.open();

    // The old password no longer opens the account: the in-flight sign-in must be refused.
    const outcome = await attacker.then((r) => r, (e: Error & { code?: string }) => e);
    expect((outcome as { kind?: string }).kind, "a session issued for the old password after the reset").not.toBe("signedIn");
    expect((outcome as { code?: string }).code).toBe("UNAUTHENTICATED");
    // Only the owner's session is left.
    expect(await listTable(backend, "authSessions")).toHaveLength(1);
  });
});

describe("password reset after a lock-out", () => {
  it("a completed reset refills the account's failed-attempt bucket: the new password works on another device", async () => {
    const codes: { email: string; code: string }[] = [];
    const holder = { gate: null };
    const backend = await start({ providers: [Anonymous(), gatedPassword(codes, holder)], rateLimits: { passwordAttempts: { limit: 3, windowMs: 15 * 60_000 } } });
    await signedIn(backend, "password", { flow: "signUp", email: "ada@example.com", password: "forgotten password" });
    // Ada cannot remember her password; a few guesses lock the account.
    for (const guess of ["guess one!", "guess two!", "guess three!"]) {
      expect((await errorOf(pw(backend, { flow: "signIn", email: "ada@example.com", password: guess }))).code).toBe("UNAUTHENTICATED");
    }
    expect((await errorOf(pw(backend, { flow: "signIn", email: "ada@example.com", password: "guess four!" }))).code).toBe("RATE_LIMITED");
    // So she resets it by email: proven, and signed in on the laptop.
    await pw(backend, { flow: "reset", email: "ada@example.com" });
    const laptop = await pw(backend, { flow: "reset-verification", email: "ada@example.com", code: codes[0]!.code, newPassword: "new password" });
    expect(laptop.kind).toBe("signedIn");
    // Then on her phone, with the new password: "a success refills it" (docs/auth.md).
    const phone = await pw(backend, { flow: "signIn", email: "ada@example.com", password: "new password" }, from("10.0.0.2")).catch((e: Error) => e);
    expect(phone, "the new password, right after a completed reset").toMatchObject({ kind: "signedIn" });
  });
});

describe("createOrUpdateUser that links a sign-up to an existing user", () => {
  it("a guest who signs up and is linked to an existing user is merged into it, not left behind with its data", async () => {
    // The pattern from Convex Auth's docs: one user per email, whatever the provider.
    const backend = await start(
      {
        callbacks: {
          async createOrUpdateUser(ctx, { existingUserId, profile, isAnonymous }) {
            const email = profile.email as string | undefined;
            const sameEmail = email ? await ctx.db.query("users").withIndex("email", (q) => q.eq("email", email)).first() : null;
            if (sameEmail) return sameEmail._id as never;
            if (existingUserId) {
              await ctx.db.patch(existingUserId, { ...(email ? { email } : {}), isAnonymous });
              return existingUserId;
            }
            return (await ctx.db.insert("users", { ...(email ? { email } : {}), isAnonymous })) as never;
          },
          async mergeAnonymousUser({ ctx, anonymousUserId, userId }) {
            for (const m of await ctx.db.query("messages").withIndex("by_author", (q) => q.eq("author", anonymousUserId)).collect()) {
              await ctx.db.patch(m._id, { author: userId });
            }
          },
        },
      },
      { setup: { existingUser } },
    );
    // Ada already has a user (made by another provider, say GitHub), with her email.
    const ada = (await backend.engine.runMutation("setup:existingUser", { email: "ada@example.com" })).value as string;
    // On a new device she starts as a guest and writes something.
    const guest = await signedIn(backend, "anonymous", {}, from("10.0.0.1"));
    await backend.engine.runMutation("messages:send", { body: "written as a guest" }, { token: guest.token, fromClient: true });
    // She signs up with a password; the app links the email to her existing user.
    const account = await signedIn(backend, "password", { flow: "signUp", email: "ada@example.com", password: "correct horse" }, from("10.0.0.1", guest.token));
    expect(account.userId).toBe(ada);
    // What she wrote as a guest must be hers now (mergeAnonymousUser), not stranded on a
    // guest user that no session, no sign-in and no cleanup can ever reach again.
    expect(await mine(backend, account.token)).toEqual(["written as a guest"]);
    expect((await listTable(backend, "users")).map((u) => u._id)).toEqual([ada]);
  });
});
