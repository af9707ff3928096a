/**
 * CAPTCHA checks for anonymous sign-in: Cloudflare Turnstile and hCaptcha, which share one
 * protocol ("siteverify": POST a form with `secret`, `response` and `remoteip`; the answer is
 * JSON with `success` and `error-codes`). The verify URL is configurable so that tests run
 * against a local server speaking the same protocol.
 *
 * A check that fails, times out or cannot reach the service refuses the sign-in (fail closed):
 * an anonymous user is never created without a passed check.
 */
import { walkinError } from "../values/index.js";

export interface CaptchaVerifier {
  readonly name: string;
  /** Resolves if `token` passes, throws a WalkinError (UNAUTHENTICATED) saying why if not. */
  verify(token: unknown, clientIp: string | null): Promise<void>;
}

export interface SiteverifyOptions {
  /** The secret key from the CAPTCHA service's dashboard. */
  secret: string;
  /** Where to POST the check (override for tests or a proxy). */
  verifyUrl?: string;
  /** Give up after this long (default 5000 ms); the sign-in is refused. */
  timeoutMs?: number;
  /** hCaptcha: the site key the token must have been issued for. */
  sitekey?: string;
}

function siteverify(name: string, defaultUrl: string, options: SiteverifyOptions): CaptchaVerifier {
  if (typeof options?.secret !== "string" || options.secret.length === 0) {
    throw new TypeError(`${name}: pass the secret key, e.g. ${name}({ secret: process.env.CAPTCHA_SECRET! }).`);
  }
  const url = options.verifyUrl ?? defaultUrl;
  const timeoutMs = options.timeoutMs ?? 5000;
  const refuse = (reason: string, message: string) => walkinError("UNAUTHENTICATED", message, { captcha: reason });
  return {
    name,
    async verify(token, clientIp) {
      if (typeof token !== "string" || token.length === 0 || token.length > 4096) {
        throw refuse("missing", `Complete the CAPTCHA first: signIn("anonymous", { token }) needs the ${name} token from the widget.`);
      }
      const form = new URLSearchParams({ secret: options.secret, response: token });
      if (clientIp) form.set("remoteip", clientIp);
      if (options.sitekey) form.set("sitekey", options.sitekey);
      let answer: { success?: unknown; "error-codes"?: unknown };
      try {
        const response = await fetch(url, { method: "POST", body: form, signal: AbortSignal.timeout(timeoutMs) });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        answer = (await response.json()) as typeof answer;
      } catch (error) {
        const timedOut = (error as Error)?.name === "TimeoutError";
        throw refuse("unavailable", `The ${name} check could not be completed (${timedOut ? `no answer within ${timeoutMs} ms` : "the service could not be reached"}). Try again in a moment.`);
      }
      if (answer?.success !== true) {
        const codes = Array.isArray(answer?.["error-codes"]) ? ` (${answer["error-codes"].map(String).join(", ")})` : "";
        throw refuse("failed", `The CAPTCHA was not passed${codes}. Solve it again and retry.`);
      }
    },
  };
}

/**
 * Cloudflare Turnstile.
 * @example
 * Anonymous({ captcha: turnstile({ secret: process.env.TURNSTILE_SECRET! }) })
 */
export function turnstile(options: SiteverifyOptions): CaptchaVerifier {
  return siteverify("turnstile", "https://challenges.cloudflare.com/turnstile/v0/siteverify", options);
}

/**
 * hCaptcha.
 * @example
 * Anonymous({ captcha: hCaptcha({ secret: process.env.HCAPTCHA_SECRET!, sitekey: "…" }) })
 */
export function hCaptcha(options: SiteverifyOptions): CaptchaVerifier {
  return siteverify("hCaptcha", "https://api.hcaptcha.com/siteverify", options);
}
