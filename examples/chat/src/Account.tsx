import { useState, type FormEvent } from "react";
import { useAuthActions } from "walkin/auth/react";
import { messageOf } from "./errors";

export type Flow = "signUp" | "signIn";

/**
 * Email and password. Signing up keeps the visitor's user (name and messages); signing in
 * to an existing account brings what they wrote anonymously along. Errors are the server's.
 */
export function AccountForm({ flow, onFlow, onDone }: { flow: Flow; onFlow: (flow: Flow) => void; onDone: () => void }) {
  const { signIn } = useAuthActions();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function onSubmit(event: FormEvent) {
    event.preventDefault();
    setError(null);
    setBusy(true);
    try {
      await signIn("password", { flow, email, password });
      onDone();
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  }

  const signingUp = flow === "signUp";
  return (
    // noValidate: the server's validator is the one source of the rules and of their messages.
    <form className="account-form" onSubmit={onSubmit} noValidate aria-label={signingUp ? "Sign up" : "Sign in"}>
      <div className="account-form-head">
        <h2>{signingUp ? "Create an account" : "Sign in"}</h2>
        <p>
          {signingUp
            ? "Keep your name and your messages, on any device."
            : "Messages you wrote as a guest move into your account."}
        </p>
      </div>
      <label>
        Email
        <input name="email" type="text" inputMode="email" autoComplete="email" value={email} onChange={(e) => setEmail(e.target.value)} placeholder="ada@example.com" />
      </label>
      <label>
        Password
        <input
          name="password"
          type="password"
          autoComplete={signingUp ? "new-password" : "current-password"}
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          placeholder={signingUp ? "8 characters or more" : ""}
        />
      </label>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      <div className="account-form-actions">
        <button type="submit" disabled={busy}>
          {busy ? "One moment…" : signingUp ? "Create account" : "Sign in"}
        </button>
        <button type="button" className="link" onClick={() => onFlow(signingUp ? "signIn" : "signUp")}>
          {signingUp ? "I have an account" : "Create an account instead"}
        </button>
        <button type="button" className="link" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}
