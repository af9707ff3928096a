/**
 * Every visitor is signed in at once, anonymously, with no form: on load, and again whenever
 * the page finds itself signed out (sign-out, a revoked session, a duplicated tab).
 */
import { useEffect, useState } from "react";
import { useQuery } from "walkin/react";
import { useAuth, useAuthActions } from "walkin/auth/react";
import { api } from "../functions/_generated/api.js";
import { captchaToken } from "./captcha";
import { messageOf } from "./errors";
import { oneTabAtATime, TOKEN_KEY, type SessionMode } from "./scope";

export function useAnonymousVisit(mode: SessionMode): { error: string | null; retry: () => void; needsCaptcha: boolean } {
  const { isLoading, isAuthenticated } = useAuth();
  const { signIn } = useAuthActions();
  const settings = useQuery(api.settings.client);
  const [error, setError] = useState<string | null>(null);
  const [attempt, setAttempt] = useState(0);
  const siteKey = settings?.captcha?.siteKey ?? null;

  useEffect(() => {
    if (isLoading || isAuthenticated || settings === undefined) return;
    let cancelled = false;
    const visit = async () => {
      // Per browser, every tab is signed out at once by a sign-out; the first one to get here
      // signs in and the others adopt its token (they hear about it from walkin/auth).
      if (mode === "browser" && localStorage.getItem(TOKEN_KEY)) return;
      const token = siteKey ? await captchaToken(siteKey) : undefined;
      await signIn("anonymous", token ? { token } : undefined);
    };
    oneTabAtATime(mode, visit).then(
      () => !cancelled && setError(null),
      (e: unknown) => !cancelled && setError(messageOf(e)),
    );
    return () => {
      cancelled = true;
    };
  }, [isLoading, isAuthenticated, settings, siteKey, mode, signIn, attempt]);

  return { error, retry: () => setAttempt((n) => n + 1), needsCaptcha: siteKey !== null && !isAuthenticated };
}
