import { useState, type FormEvent } from "react";
import { useQuery } from "walkin/react";
import { useAuth, useAuthActions } from "walkin/auth/react";
import { api } from "../functions/_generated/api.js";
import { messageOf } from "./format";

type Flow = "signIn" | "signUp";

/** Guest or account; signing up keeps the cart, signing in merges it (see MERGE_RULE). */
export function Account({ hasCart }: { hasCart: boolean }) {
  const { isAuthenticated, isAnonymous } = useAuth();
  const { signIn, signOut } = useAuthActions();
  const me = useQuery(api.users.me);
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState<Flow | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const submitter = (event.nativeEvent as SubmitEvent).submitter as HTMLButtonElement | null;
    const flow: Flow = submitter?.value === "signUp" ? "signUp" : "signIn";
    const form = new FormData(event.currentTarget);
    setBusy(flow);
    setError(null);
    setNotice(null);
    try {
      await signIn("password", { flow, email: String(form.get("email") ?? ""), password: String(form.get("password") ?? "") });
      setOpen(false);
      setNotice(
        flow === "signUp"
          ? "Account created. Your cart came with you."
          : hasCart
            ? "Signed in. Your guest cart was merged into your account's cart: same items added up, other items appended."
            : "Signed in. Welcome back!",
      );
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(null);
    }
  }

  const signedIn = isAuthenticated && !isAnonymous;
  return (
    <section className="card account" aria-labelledby="account-title">
      <h2 id="account-title" className="sr-only">
        Account
      </h2>
      <div className="who">
        <span className={`avatar ${signedIn ? "member" : ""}`} aria-hidden="true">
          {signedIn ? (me?.email?.[0] ?? "?").toUpperCase() : "G"}
        </span>
        <div>
          <strong data-testid="who">{signedIn ? (me?.email ?? "Signed in") : "Guest"}</strong>
          <span className="muted small">{signedIn ? "Your cart is saved to your account." : "Shopping without an account."}</span>
        </div>
        {signedIn ? (
          <button type="button" className="link" onClick={() => void signOut().catch((e: unknown) => setError(messageOf(e)))}>
            Sign out
          </button>
        ) : (
          !open && (
            <button type="button" className="link" onClick={() => setOpen(true)}>
              Sign in
            </button>
          )
        )}
      </div>
      {notice && (
        <p className="notice" role="status">
          {notice}
        </p>
      )}
      {error && !(open && !signedIn) && (
        <p role="alert" className="field-error">
          {error}
        </p>
      )}
      {open && !signedIn && (
        <form className="auth-form" onSubmit={submit} noValidate>
          <label>
            Email
            <input name="email" type="email" autoComplete="email" required />
          </label>
          <label>
            Password
            <input name="password" type="password" autoComplete="current-password" minLength={8} required />
          </label>
          {error && (
            <p role="alert" className="field-error">
              {error}
            </p>
          )}
          <div className="actions">
            <button type="submit" className="primary" value="signIn" disabled={busy !== null}>
              {busy === "signIn" ? "Signing in…" : "Sign in"}
            </button>
            <button type="submit" value="signUp" disabled={busy !== null}>
              {busy === "signUp" ? "Creating…" : "Create account"}
            </button>
            <button type="button" className="link" onClick={() => setOpen(false)}>
              Cancel
            </button>
          </div>
          <p className="muted small rule">
            <strong>Create account</strong> keeps this cart. <strong>Sign in</strong> to an account that already has a cart merges the two:
            quantities of the same item are added (up to 99), other items are appended.
          </p>
        </form>
      )}
    </section>
  );
}
