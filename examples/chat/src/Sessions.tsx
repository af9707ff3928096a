import { useState } from "react";
import { useMutation, useQuery } from "walkin/react";
import { api } from "../functions/_generated/api.js";
import { messageOf } from "./errors";
import type { SessionMode } from "./scope";

const BROWSERS: Array<[name: string, version: RegExp]> = [
  ["Edge", /Edg\/(\d+)/],
  ["Firefox", /Firefox\/(\d+)/],
  ["Chrome", /Chrom(?:e|ium)\/(\d+)/],
  ["Safari", /Version\/(\d+)[\d.]* (?:Mobile\/\S+ )?Safari\//],
];
const SYSTEMS: Array<[name: string, test: RegExp]> = [
  ["Android", /Android/],
  ["iOS", /iPhone|iPad/],
  ["Windows", /Windows/],
  ["macOS", /Mac OS X/],
  ["ChromeOS", /CrOS/],
  ["Linux", /Linux/],
];

/** "Chrome 131 on Linux" from a user agent; the full string is in the title. */
function device(userAgent: string | null): string {
  if (!userAgent) return "Unknown device";
  const found = BROWSERS.map(([name, pattern]) => [name, pattern.exec(userAgent)?.[1]] as const).find(([, version]) => version !== undefined);
  const browser = found ? `${found[0]} ${found[1]}` : "A browser";
  const os = SYSTEMS.find(([, test]) => test.test(userAgent))?.[0];
  return os ? `${browser} on ${os}` : browser;
}

const when = (ms: number) => new Date(ms).toLocaleString([], { dateStyle: "medium", timeStyle: "medium" });

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
            {/* Two tabs of one browser share a user agent: the address, the sign-in time and the session's own tag tell them apart. */}
            <div className="session-meta">
              {s.ipAddress ? `IP ${s.ipAddress} · ` : ""}session #{s._id.slice(-4)}
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
                  revoke({ authSessionId: s._id }).then(
                    () => setError(null),
                    (e: unknown) => setError(messageOf(e)),
                  );
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
