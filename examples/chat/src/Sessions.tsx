import { useState } from "react";
import { useMutation, useQuery } from "walkin/react";
import { api } from "../functions/_generated/api.js";
import { messageOf } from "./errors";
import type { SessionMode } from "./scope";

/** "Chrome on Linux" from a user agent; the full string is in the title. */
function device(userAgent: string | null): string {
  if (!userAgent) return "Unknown device";
  const browser = /Edg\//.test(userAgent) ? "Edge" : /Firefox\//.test(userAgent) ? "Firefox" : /Chrom(e|ium)\//.test(userAgent) ? "Chrome" : /Safari\//.test(userAgent) ? "Safari" : "A browser";
  const os = /Android/.test(userAgent) ? "Android" : /iPhone|iPad/.test(userAgent) ? "iOS" : /Windows/.test(userAgent) ? "Windows" : /Mac OS X/.test(userAgent) ? "macOS" : /Linux/.test(userAgent) ? "Linux" : null;
  return os ? `${browser} on ${os}` : browser;
}

const when = (ms: number) => new Date(ms).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });

/** The signed-up user's sessions (devices and tabs), each revocable at once. */
export function SessionsPanel({ mode }: { mode: SessionMode }) {
  const sessions = useQuery(api.auth.listSessions);
  const revoke = useMutation(api.auth.revokeSession);
  const [error, setError] = useState<string | null>(null);

  return (
    <aside className="sessions" aria-label="Your sessions">
      <h2>Your sessions</h2>
      <p className="hint">Every tab or device signed in to your account. Revoking one signs it out at once.</p>
      <ul>
        {sessions === undefined && <li className="empty">Loading…</li>}
        {sessions?.map((s) => (
          <li key={s._id} className={s.isCurrent ? "session current" : "session"}>
            <div className="session-head">
              <span className="device" title={s.userAgent ?? undefined}>
                {device(s.userAgent)}
              </span>
              {s.isCurrent && <span className="badge">{mode === "tab" ? "this tab" : "this browser"}</span>}
            </div>
            <dl>
              <dt>Signed in</dt>
              <dd>{when(s.createdAt)}</dd>
              <dt>Last used</dt>
              <dd>{when(s.lastUsedAt)}</dd>
            </dl>
            {!s.isCurrent && (
              <button
                type="button"
                className="danger"
                onClick={() => {
                  setError(null);
                  revoke({ authSessionId: s._id }).catch((e: unknown) => setError(messageOf(e)));
                }}
              >
                Revoke
              </button>
            )}
          </li>
        ))}
      </ul>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
    </aside>
  );
}
