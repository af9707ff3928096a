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

export function useAnonymousVisit(): { error: string | null; retry: () => void; needsCaptcha: boolean } {
  const { isLoading, isAuthenticated } = useAuth();
  const { signIn } = useAuthActions();
  const settings = useQuery(api.settings.client);
  const [error, setError] = useState<string | null>(null);
  const [attempt, setAttempt] = useState(0);
  const siteKey = settings?.captcha?.siteKey ?? null;

  useEffect(() => {
    if (isLoading || isAuthenticated || settings === undefined) return;
    let cancelled = false;
    // Per browser, every tab is signed out at once by a sign-out and each gets here: walkin/auth
    // lets them sign in one at a time, and the later ones find the first one's guest.
    const visit = async () => {
      const token = siteKey ? await captchaToken(siteKey) : undefined;
      await signIn("anonymous", token ? { token } : undefined);
    };
    visit().then(
      () => !cancelled && setError(null),
      (e: unknown) => !cancelled && setError(messageOf(e)),
    );
    return () => {
      cancelled = true;
    };
  }, [isLoading, isAuthenticated, settings, siteKey, signIn, attempt]);

  return { error, retry: () => setAttempt((n) => n + 1), needsCaptcha: siteKey !== null && !isAuthenticated };
}
