/** One user: their profile, sessions (revocable), linked accounts and data by table. */
import { useState } from "react";
import { admin } from "./api.js";
import { formatRelative, formatTime } from "./format.js";
import { navigate } from "./router.js";
import { Badge, DocLink, Empty, ErrorText, JsonView, useAdminData } from "./ui.js";

interface UserDetailData {
  user: { doc: Record<string, unknown>; refs: Record<string, string> };
  sessions: Array<{ _id: string; provider: string; isAnonymous: boolean; createdAt: number; lastUsedAt: number; expiresAt: number; userAgent: string | null; live: boolean }>;
  accounts: Array<{ _id: string; _creationTime: number; provider: string; providerAccountId: string }>;
  data: Array<{ table: string; field: string; index: string | null; count: number; more: boolean; sample: Array<{ doc: Record<string, unknown>; refs: Record<string, string> }> }>;
}

export function UserDetail({ userId }: { userId: string }) {
  const { data, error } = useAdminData<UserDetailData>("users/get", { userId }, "*");
  const [revokeError, setRevokeError] = useState<unknown>(null);
  const [revoking, setRevoking] = useState<string | null>(null);
  if (error) return <div className="card"><ErrorText error={error} /></div>;
  if (!data) return <div className="card placeholder" aria-busy="true" />;
  const name = (data.user.doc.name as string | undefined) ?? "(no name)";
  async function revoke(authSessionId: string) {
    setRevoking(authSessionId);
    setRevokeError(null);
    try {
      await admin("sessions/revoke", { authSessionId });
    } catch (caught) {
      setRevokeError(caught);
    } finally {
      setRevoking(null);
    }
  }
  return (
    <>
      <div className="card">
        <div className="heading-row">
          <h2>
            {name} {data.user.doc.isAnonymous ? <Badge tone="soft">guest</Badge> : <Badge tone="ok">account</Badge>}
          </h2>
          <div className="row-actions">
            <button onClick={() => navigate(`/functions?asUser=${userId}`)}>Run a function as this user</button>
            <DocLink id={userId} table="users" label="Open in Data" />
          </div>
        </div>
        <JsonView value={data.user.doc} refs={data.user.refs} />
      </div>
      <div className="card">
        <h2>Sessions</h2>
        <ErrorText error={revokeError} />
        {data.sessions.length === 0 ? (
          <Empty>No sessions.</Empty>
        ) : (
          <div className="table-wrap">
            <table className="sessions-table">
              <thead>
                <tr>
                  <th scope="col">Provider</th>
                  <th scope="col">Created</th>
                  <th scope="col">Last used</th>
                  <th scope="col">Expires</th>
                  <th scope="col">Device</th>
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {data.sessions.map((s) => (
                  <tr key={s._id} className={s.live ? "" : "ended"} data-session-id={s._id}>
                    <td>
                      {s.provider} {s.live ? <Badge tone="ok">live</Badge> : <Badge tone="plain">ended</Badge>}
                    </td>
                    <td className="nowrap">{formatTime(s.createdAt)}</td>
                    <td className="nowrap">{formatRelative(s.lastUsedAt)}</td>
                    <td className="nowrap">{s.live ? (s.expiresAt > 8e15 ? "when idle" : formatRelative(s.expiresAt)) : formatTime(s.expiresAt)}</td>
                    <td className="agent" title={s.userAgent ?? ""}>
                      {describeAgent(s.userAgent)}
                    </td>
                    <td className="nowrap">
                      <div className="row-actions">
                      {s.live && (
                        <>
                          <button className="link" onClick={() => navigate(`/functions?asSession=${s._id}&ofUser=${userId}`)}>
                            Run as
                          </button>
                          <button className="danger" disabled={revoking === s._id} onClick={() => void revoke(s._id)}>
                            {revoking === s._id ? "Revoking…" : "Revoke"}
                          </button>
                        </>
                      )}
                    </div>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </div>
      <div className="card">
        <h2>Linked accounts</h2>
        {data.accounts.length === 0 ? (
          <Empty>None: {data.user.doc.isAnonymous ? "an anonymous user signs in with its session alone." : "this user has no sign-in method left."}</Empty>
        ) : (
          <ul className="plain">
            {data.accounts.map((a) => (
              <li key={a._id}>
                <Badge tone="soft">{a.provider}</Badge> <span className="mono">{a.providerAccountId}</span> <span className="muted small">since {formatTime(a._creationTime)}</span>
              </li>
            ))}
          </ul>
        )}
      </div>
      <div className="card">
        <h2>Their data</h2>
        {data.data.length === 0 && <Empty>No table has a field that references users.</Empty>}
        {data.data.map((d) => (
          <div key={`${d.table}.${d.field}`} className="their-data">
            <h3>
              {d.table}.{d.field}: {d.count}
              {d.more ? "+" : ""} document{d.count === 1 ? "" : "s"}{" "}
              {d.index && (
                <a className="small" href={`#/data/${d.table}?index=${d.index}&value=${userId}`}>
                  browse all
                </a>
              )}
            </h3>
            <ul className="plain small">
              {d.sample.map(({ doc }) => (
                <li key={doc._id as string}>
                  <DocLink id={doc._id as string} table={d.table} label={(doc._id as string).slice(0, 10) + "…"} /> <span className="muted">{JSON.stringify(withoutSystem(doc)).slice(0, 100)}</span>
                </li>
              ))}
            </ul>
          </div>
        ))}
      </div>
    </>
  );
}

function withoutSystem(doc: Record<string, unknown>) {
  const { _id, _creationTime, ...rest } = doc;
  return rest;
}

/** "Chrome on Linux" from a user agent, or the raw text when it is unusual. */
function describeAgent(agent: string | null): string {
  if (!agent) return "—";
  const browser = /Edg\//.test(agent) ? "Edge" : /Firefox\//.test(agent) ? "Firefox" : /Chrom(e|ium)\//.test(agent) ? "Chrome" : /Safari\//.test(agent) ? "Safari" : null;
  const os = /Android/.test(agent) ? "Android" : /iPhone|iPad/.test(agent) ? "iOS" : /Mac OS X/.test(agent) ? "macOS" : /Windows/.test(agent) ? "Windows" : /Linux/.test(agent) ? "Linux" : null;
  return browser ? `${browser}${os ? ` on ${os}` : ""}` : agent.slice(0, 40);
}
