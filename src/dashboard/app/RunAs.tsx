/** Who a function run from the dashboard acts as: nobody, a user, or one of their auth sessions. */
import { useState } from "react";
import { useAdminData } from "./ui.js";

export type RunAs = { kind: "nobody" } | { kind: "user"; userId: string } | { kind: "session"; authSessionId: string };

export function RunAsPicker({ value, onChange, initialUser }: { value: RunAs; onChange: (value: RunAs) => void; initialUser: string }) {
  const id = value.kind === "user" ? value.userId : value.kind === "session" ? value.authSessionId : "";
  const [pickedUser, setPickedUser] = useState(initialUser);
  return (
    <fieldset className="run-as">
      <legend>Run as</legend>
      <div className="segmented" role="radiogroup" aria-label="Run as">
        {(["nobody", "user", "session"] as const).map((kind) => (
          <label key={kind} className={value.kind === kind ? "on" : ""}>
            <input
              type="radio"
              name="run-as"
              checked={value.kind === kind}
              onChange={() => onChange(kind === "nobody" ? { kind } : kind === "user" ? { kind, userId: "" } : { kind, authSessionId: "" })}
            />
            {kind === "nobody" ? "Nobody" : kind === "user" ? "A user" : "A session"}
          </label>
        ))}
      </div>
      {value.kind !== "nobody" && (
        <div className="pickers">
          <UserPicker
            value={value.kind === "user" ? value.userId : pickedUser}
            onPick={(userId) => (value.kind === "user" ? onChange({ kind: "user", userId }) : setPickedUser(userId))}
          />
          {value.kind === "session" && pickedUser && <SessionPicker userId={pickedUser} value={value.authSessionId} onPick={(authSessionId) => onChange({ kind: "session", authSessionId })} />}
        </div>
      )}
      {value.kind !== "nobody" && (
        <label>
          {value.kind === "user" ? "User _id" : "Auth session _id"}
          <input
            className="mono"
            value={id}
            placeholder={value.kind === "user" ? "pick above, or paste a user's _id" : "pick above, or paste an auth session's _id"}
            onChange={(e) => onChange(value.kind === "user" ? { kind: "user", userId: e.target.value } : { kind: "session", authSessionId: e.target.value })}
          />
        </label>
      )}
    </fieldset>
  );
}

interface UserOption {
  _id: string;
  name: string | null;
  email: string | null;
  isAnonymous: boolean;
  liveSessions: number;
}

/** The newest users (walkin/auth apps); nothing when the app has no users table. */
function UserPicker({ value, onPick }: { value: string; onPick: (userId: string) => void }) {
  const { data } = useAdminData<{ page: UserOption[] }>("users/list", {}, ["users"]);
  if (!data || data.page.length === 0) return null;
  return (
    <label>
      User
      <select value={data.page.some((u) => u._id === value) ? value : ""} onChange={(e) => onPick(e.target.value)}>
        <option value="">Choose a recent user…</option>
        {data.page.map((u) => (
          <option key={u._id} value={u._id}>
            {u.name ?? "(no name)"} · {u.email ?? (u.isAnonymous ? "guest" : "account")} · {u.liveSessions} live
          </option>
        ))}
      </select>
    </label>
  );
}

function SessionPicker({ userId, value, onPick }: { userId: string; value: string; onPick: (authSessionId: string) => void }) {
  const { data } = useAdminData<{ sessions: Array<{ _id: string; provider: string; live: boolean; lastUsedAt: number; userAgent: string | null }> }>("users/get", { userId }, ["authSessions"]);
  const live = data?.sessions.filter((s) => s.live) ?? [];
  if (!data) return null;
  return (
    <label>
      Session
      <select value={live.some((s) => s._id === value) ? value : ""} onChange={(e) => onPick(e.target.value)}>
        <option value="">{live.length === 0 ? "No live session" : "Choose one of their live sessions…"}</option>
        {live.map((s) => (
          <option key={s._id} value={s._id}>
            {s.provider} · last used {new Date(s.lastUsedAt).toLocaleString()} · {s._id.slice(0, 8)}…
          </option>
        ))}
      </select>
    </label>
  );
}
