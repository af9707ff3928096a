/**
 * The Anonymous provider: `signIn("anonymous")` gives a visitor a user with `isAnonymous: true`
 * and a session, with no credentials. Calling it again while signed in returns the same user
 * and keeps the token (no duplicate users). With `captcha`, the check runs before anything is
 * created; an async `profile` hook may reject (throw) or add fields to the new user.
 * Anonymous sign-ins are rate-limited per client IP (`rateLimits.anonymousSignIn`).
 *
 * @example
 * walkinAuth({ providers: [Anonymous] });
 * walkinAuth({ providers: [Anonymous({ captcha: turnstile({ secret: process.env.TURNSTILE_SECRET! }) })] });
 */
import type { Value } from "../../values/index.js";
import type { ActionCtx } from "../config.js";
import type { CaptchaVerifier } from "../captcha.js";
import type { AuthProvider } from "./types.js";

export interface AnonymousOptions {
  /** The provider's ID for `signIn(id)` (default "anonymous"). */
  id?: string;
  /** Checked with `params.token` before a user is created. */
  captcha?: CaptchaVerifier;
  /** Runs (awaited) before a user is created: throw to refuse; return extra fields for the user. */
  profile?: (params: Record<string, Value>, ctx: ActionCtx) => Promise<Record<string, Value> | void> | Record<string, Value> | void;
}

export function Anonymous(options: AnonymousOptions = {}): AuthProvider {
  const id = options.id ?? "anonymous";
  return {
    id,
    type: "anonymous",
    async signIn(context) {
      // Signed in already: the same user again, so no CAPTCHA and no new user. The sign-in's
      // transaction checks the session again (`onlyIfSignedIn`): it may end before that runs.
      if (await context.ctx.auth.getUserIdentity()) return context.completeSignIn({ mode: "anonymous", onlyIfSignedIn: true });
      await options.captcha?.verify(context.params.token, context.clientIp);
      const { isAnonymous: _ignored, ...profile } = (await options.profile?.(context.params, context.ctx)) ?? {};
      return context.completeSignIn({ mode: "anonymous", profile });
    },
  };
}
