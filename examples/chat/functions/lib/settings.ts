/**
 * The chat's server settings, read once from the environment when the functions load.
 *
 * CAPTCHA for anonymous sign-in is off unless `CHAT_CAPTCHA=turnstile`, which needs
 * `TURNSTILE_SECRET` and `TURNSTILE_SITE_KEY` (the widget's key, handed to the page by
 * `settings:client`), and optionally `TURNSTILE_VERIFY_URL` (a proxy, or a test fake).
 */
const env: Record<string, string | undefined> = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ?? {};

export interface CaptchaSettings {
  provider: "turnstile";
  secret: string;
  siteKey: string;
  verifyUrl: string | undefined;
}

function captchaSettings(): CaptchaSettings | null {
  const choice = env.CHAT_CAPTCHA?.trim();
  if (!choice || choice === "off") return null;
  if (choice !== "turnstile") throw new Error(`CHAT_CAPTCHA=${choice} is not supported; use CHAT_CAPTCHA=turnstile (or leave it unset).`);
  const secret = env.TURNSTILE_SECRET;
  const siteKey = env.TURNSTILE_SITE_KEY;
  if (!secret || !siteKey) throw new Error("CHAT_CAPTCHA=turnstile needs TURNSTILE_SECRET and TURNSTILE_SITE_KEY (see examples/chat/README.md).");
  return { provider: "turnstile", secret, siteKey, verifyUrl: env.TURNSTILE_VERIFY_URL || undefined };
}

export const captcha = captchaSettings();

/** Anonymous sign-ins per client IP and hour (walkin/auth's default is 30). */
export const anonymousSignInsPerHour = Number(env.CHAT_ANONYMOUS_SIGNINS_PER_HOUR) > 0 ? Number(env.CHAT_ANONYMOUS_SIGNINS_PER_HOUR) : 30;
