/**
 * Says so when this device is signed out by something other than its own Sign out button:
 * its session was revoked from another device, or expired. Without it the page would just
 * turn into a new guest (the visit signs in anonymously at once), which looks like a glitch.
 */
import { useEffect, useRef, useState } from "react";
import type { AuthState } from "walkin/auth/react";

export function useSignedOutNotice(auth: AuthState) {
  const [notice, setNotice] = useState<string | null>(null);
  /** Who this page was last signed in as. */
  const last = useRef<{ isAnonymous: boolean } | null>(null);
  /** Set by this page's own sign-out, which needs no notice. */
  const ownSignOut = useRef(false);

  useEffect(() => {
    if (auth.isLoading) return;
    if (auth.isAuthenticated) {
      last.current = { isAnonymous: auth.isAnonymous };
      return;
    }
    const was = last.current;
    last.current = null;
    if (was && !ownSignOut.current) {
      setNotice(
        was.isAnonymous
          ? "Its guest session ended, so you continue as a new guest."
          : "Its session was revoked from another device (or expired), so you continue as a guest. Sign in again to get back to your account.",
      );
    }
    ownSignOut.current = false;
  }, [auth.isLoading, auth.isAuthenticated, auth.isAnonymous]);

  return {
    notice,
    dismiss: () => setNotice(null),
    /** Wraps this page's own sign-out. */
    expect<T>(signingOut: Promise<T>): Promise<T> {
      ownSignOut.current = true;
      setNotice(null);
      return signingOut.catch((error: unknown) => {
        ownSignOut.current = false;
        throw error;
      });
    },
  };
}
