/**
 * The Password provider: email and password, with sign-up, sign-in and reset by a one-time
 * code sent through a pluggable sender. `signIn("password", { flow, email, password, … })`:
 *   - `flow: "signUp"`   { email, password, name? }: a new account; an anonymous caller keeps
 *                        their user ID (upgraded in place) and everything pointing at it;
 *   - `flow: "signIn"`   { email, password }: an anonymous caller is merged into the account;
 *   - `flow: "reset"`    { email }: sends a code if the account exists (same answer if not);
 *   - `flow: "reset-verification"` { email, code, newPassword }: sets the password, ends every
 *                        other session of the user, and signs in.
 *
 * Guessing is bounded: every sign-in attempt takes a token from the account's bucket before
 * the password is checked (a success refills it), every code attempt likewise. Every sign-up
 * takes one from its network's bucket before the password is hashed, so that the scrypt work a
 * client can cause by signing up is bounded as well. Sign-in errors never say whether an
 * account exists, and an unknown email still pays for one scrypt verification against a dummy
 * hash, so timing does not tell either (sign-up does say it: docs/auth.md).
 */
import { randomInt } from "node:crypto";
import { walkinError, type Value } from "../../values/index.js";
import type { ActionCtx } from "../config.js";
import { DEFAULT_SCRYPT, dummyPasswordHash, hashPassword, scryptCrypto, verifyPassword, type ScryptParams } from "../passwordHash.js";
import { passwordAttemptKey } from "../store.js";
import { accountExists } from "../users.js";
import type { AuthProvider, SignInContext } from "./types.js";

/** Delivers a one-time code; in development, `consoleCodeSender` prints it. */
export type CodeSender = (message: { email: string; code: string; expiresAt: number; purpose: "reset" }) => Promise<void>;

/** Prints codes to the server's console: for development only. */
export const consoleCodeSender: CodeSender = async ({ email, code, purpose }) => {
  console.log(`[walkin auth] ${purpose} code for ${email}: ${code}`);
};

export interface PasswordOptions {
  /** The provider's ID (default "password"). */
  id?: string;
  /** Sends reset codes (default: none, and the reset flows are refused with a hint). */
  sendCode?: CodeSender;
  /** How long a reset code works (default 15 minutes). */
  codeTtlMs?: number;
  /** Throw to refuse a password (default: 8 to 256 characters). */
  validatePassword?: (password: string) => void;
  /** Fields for a new user from the sign-up params (default: `email`, and `name` if given). */
  profile?: (params: Record<string, Value>, ctx: ActionCtx) => Record<string, Value> | Promise<Record<string, Value>>;
  /** scrypt cost (default N=2^17, r=8, p=1). */
  scrypt?: ScryptParams;
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function invalid(message: string): never {
  throw walkinError("INVALID_ARGUMENT", message);
}

function emailOf(params: Record<string, Value>): string {
  const email = params.email;
  if (typeof email !== "string" || email.length > 254 || !EMAIL.test(email.trim())) invalid("Enter a valid email address (like ada@example.com).");
  return normalizedEmail(email);
}

/** How a password account's ID (its email) is stored and looked up. */
function normalizedEmail(email: string): string {
  return email.trim().toLowerCase();
}

function stringParam(params: Record<string, Value>, name: string): string {
  const value = params[name];
  if (typeof value !== "string" || value.length === 0) invalid(`signIn("password") needs params.${name} (a non-empty string).`);
  return value;
}

function defaultValidatePassword(password: string): void {
  if (password.length < 8) invalid("Choose a password of at least 8 characters.");
  if (password.length > 256) invalid("Choose a password of at most 256 characters.");
}

export function Password(options: PasswordOptions = {}): AuthProvider {
  const id = options.id ?? "password";
  const scrypt = options.scrypt ?? DEFAULT_SCRYPT;
  const validatePassword = options.validatePassword ?? defaultValidatePassword;
  const codeTtlMs = options.codeTtlMs ?? 15 * 60_000;
  // What an unknown email is verified against (passwordHash.ts): made once, without scrypt.
  const dummyHash = dummyPasswordHash(scrypt);
  const refused = () => walkinError("UNAUTHENTICATED", "Invalid email or password.");

  async function signIn(context: SignInContext) {
    const email = emailOf(context.params);
    const password = stringParam(context.params, "password");
    const { secret } = (await context.store({ type: "passwordAttempt", provider: id, providerAccountId: email })) as { secret: string | null };
    // No account: verify against a dummy hash anyway, so the answer takes as long as a real one.
    const matches = await verifyPassword(password, secret ?? dummyHash);
    if (!secret || !matches) throw refused();
    return context.completeSignIn({ mode: "signIn", providerAccountId: email, resetRateLimit: passwordAttemptKey(id, email), verifiedSecret: secret });
  }

  async function signUp(context: SignInContext) {
    const email = emailOf(context.params);
    const password = stringParam(context.params, "password");
    validatePassword(password);
    // Before the hash: each sign-up costs a scrypt run, so the network's bucket is taken first,
    // and an email that is taken is refused without one (the sign-in transaction asks again).
    const { exists } = (await context.store({ type: "signUpAttempt", provider: id, providerAccountId: email })) as { exists: boolean };
    if (exists) throw accountExists();
    const name = context.params.name;
    const profile = options.profile ? await options.profile(context.params, context.ctx) : { email, ...(typeof name === "string" && name.trim() ? { name: name.trim().slice(0, 100) } : {}) };
    const secret = await hashPassword(password, scrypt);
    return context.completeSignIn({ mode: "signUp", providerAccountId: email, secret, profile });
  }

  function sender(): CodeSender {
    if (!options.sendCode) invalid(`Password reset is not set up. Pass a sender: Password({ sendCode: consoleCodeSender }) in development, your email service in production.`);
    return options.sendCode;
  }

  async function requestReset(context: SignInContext) {
    const send = sender();
    const email = emailOf(context.params);
    const code = String(randomInt(0, 100_000_000)).padStart(8, "0");
    const expiresAt = Date.now() + codeTtlMs;
    const { exists } = (await context.store({ type: "createCode", provider: id, providerAccountId: email, purpose: "reset", code, expiresAt })) as { exists: boolean };
    // Not awaited: waiting on the email service only for real accounts would tell them apart by timing.
    if (exists) void send({ email, code, expiresAt, purpose: "reset" }).catch((error) => console.error("[walkin auth] sending a reset code failed:", error));
    return { kind: "started" as const };
  }

  async function verifyReset(context: SignInContext) {
    sender();
    const email = emailOf(context.params);
    const code = stringParam(context.params, "code").trim();
    const newPassword = stringParam(context.params, "newPassword");
    validatePassword(newPassword);
    const { ok } = (await context.store({ type: "verifyCode", provider: id, providerAccountId: email, purpose: "reset", code })) as { ok: boolean };
    if (!ok) throw walkinError("UNAUTHENTICATED", "The code is wrong or has expired. Check it, or ask for a new one.");
    // Hashed only once the code is proven: a guess (a wrong code, a locked account, an unknown
    // email alike) costs no scrypt run, so the attempt limit also bounds the work guesses cause.
    const newSecret = await hashPassword(newPassword, scrypt);
    // The code, the new password and the end of the account's other sessions commit with the
    // sign-in or not at all (codes.ts).
    // A proven reset is a successful sign-in: it refills the failed-attempt bucket as one does,
    // so the new password works at once on the owner's other devices after a lock-out.
    return context.completeSignIn({
      mode: "signIn",
      providerAccountId: email,
      resetRateLimit: passwordAttemptKey(id, email),
      consumeCode: { provider: id, providerAccountId: email, purpose: "reset", code, newSecret },
    });
  }

  return {
    id,
    type: "credentials",
    // createAccount({ provider: "password", … }) stores what a sign-up would: an scrypt hash with
    // this provider's cost, under the email as sign-ins look it up.
    crypto: scryptCrypto(scrypt),
    normalizeAccountId: normalizedEmail,
    signIn(context) {
      const flow = context.params.flow;
      switch (flow) {
        case "signIn":
          return signIn(context);
        case "signUp":
          return signUp(context);
        case "reset":
          return requestReset(context);
        case "reset-verification":
          return verifyReset(context);
        default:
          invalid(`signIn("${id}") needs params.flow: "signIn", "signUp", "reset" or "reset-verification".`);
      }
    },
  };
}
