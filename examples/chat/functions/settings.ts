import { query } from "./_generated/server.js";
import { captcha } from "./lib/settings.js";

/** What the page needs to know before signing in: whether to show a CAPTCHA, and its site key (public). */
export const client = query({
  args: {},
  handler: async () => ({ captcha: captcha ? { provider: captcha.provider, siteKey: captcha.siteKey } : null }),
});
