/**
 * The Turnstile widget, loaded only when the server asks for a CAPTCHA (`CHAT_CAPTCHA`).
 *
 * A page may set `window.walkinChatCaptchaToken` before the app starts to skip the widget and
 * send that token instead: the browser tests do, against a fake siteverify server, because
 * they must not load scripts from the internet.
 */
declare global {
  interface Window {
    walkinChatCaptchaToken?: string;
    turnstile?: {
      render(container: string | HTMLElement, options: { sitekey: string; callback: (token: string) => void; "error-callback"?: () => void }): string;
    };
  }
}

const SCRIPT = "https://challenges.cloudflare.com/turnstile/v0/api.js?render=explicit";
let loading: Promise<void> | undefined;

function loadTurnstile(): Promise<void> {
  return (loading ??= new Promise<void>((resolve, reject) => {
    const script = document.createElement("script");
    script.src = SCRIPT;
    script.async = true;
    script.onload = () => resolve();
    script.onerror = () => {
      loading = undefined;
      reject(new Error("The CAPTCHA could not be loaded. Check your connection and reload the page."));
    };
    document.head.appendChild(script);
  }));
}

/** A Turnstile token for `siteKey`, from the widget rendered into `#captcha`. */
export async function captchaToken(siteKey: string): Promise<string> {
  if (window.walkinChatCaptchaToken) return window.walkinChatCaptchaToken;
  await loadTurnstile();
  return new Promise<string>((resolve, reject) => {
    window.turnstile!.render("#captcha", {
      sitekey: siteKey,
      callback: resolve,
      "error-callback": () => reject(new Error("The CAPTCHA could not be completed. Reload the page to try again.")),
    });
  });
}
