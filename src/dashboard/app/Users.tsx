/**
 * Users and sessions (apps on walkin/auth): how many users are anonymous and signed up, the
 * last day's anonymous sign-ins and upgrades, the cleanup of abandoned anonymous users; and
 * for one user, their sessions (revocable: the device is signed out at once), linked
 * accounts and their data by table. No token, hash or session digest ever reaches the page.
 */
import { useState, type FormEvent } from "react";
import { admin } from "./api.js";
import { formatCount, formatRelative, formatTime } from "./format.js";
import { navigate, useRoute } from "./router.js";
import { Badge, DocLink, Empty, ErrorText, JsonView, useAdminData } from "./ui.js";

interface Overview {
  anonymous: number;
  signedUp: number;
  capped: boolean;
  trend: Array<{ hour: number; anonymousSignIns: number; upgrades: number }>;
  cleanup: { nextRun: number | null; lastRuns: Array<{ time: number; report: Record<string, number | boolean> }> };
}

interface UserRow {
  _id: string;
  _creationTime: number;
  name: string | null;
  email: string | null;
  isAnonymous: boolean;
  liveSessions: number;
}

const AUTH_TABLES = ["users", "authSessions", "authAccounts"];

export function UsersScreen() {
  const route = useRoute();
  const userId = route.rest[0] ?? null;
  return (
    <div className="stack">
      <OverviewCards />
      <div className="split wide-main">
        <UserList selected={userId} />
        <section className="main-column">{userId ? <UserDetail key={userId} userId={userId} /> : <div className="card"><Empty>Pick a user to see their sessions, accounts and data.</Empty></div>}</section>
      </div>
    </div>
  );
}

function OverviewCards() {
  // Counting users scans the table: with sign-ins pouring in, refresh every 5 s at most.
  const { data, error } = useAdminData<Overview>("users/overview", undefined, AUTH_TABLES, 5_000);
  if (error) return <div className="card"><ErrorText error={error} /></div>;
  if (!data) return <div className="card figures placeholder" aria-busy="true" />;
  const total = data.anonymous + data.signedUp;
  const signIns = data.trend.reduce((n, b) => n + b.anonymousSignIns, 0);
  const upgrades = data.trend.reduce((n, b) => n + b.upgrades, 0);
  return (
    <div className="overview">
      <div className="card figures">
        <Figure label="Users" value={formatCount(total) + (data.capped ? "+" : "")} />
        <Figure label="Anonymous" value={formatCount(data.anonymous)} note={total ? `${Math.round((data.anonymous / total) * 100)}%` : undefined} />
        <Figure label="Signed up" value={formatCount(data.signedUp)} />
      </div>
      <div className="card trend-card">
        <div className="heading-row">
          <h2>Last 24 hours</h2>
          <span className="legend">
            <span className="dot anon" /> {formatCount(signIns)} anonymous sign-ins <span className="dot up" /> {formatCount(upgrades)} upgrades
          </span>
        </div>
        <Trend buckets={data.trend} />
      </div>
      <div className="card">
        <h2>Anonymous-user cleanup</h2>
        <p className="small">
          Next run: <strong>{data.cleanup.nextRun ? `${formatRelative(data.cleanup.nextRun)} (${formatTime(data.cleanup.nextRun)})` : "not scheduled"}</strong>
        </p>
        {data.cleanup.lastRuns.length === 0 ? (
          <p className="muted small">No run since this server started.</p>
        ) : (
          <ul className="plain small">
            {data.cleanup.lastRuns.slice(0, 4).map((run) => (
              <li key={run.time}>
                {formatTime(run.time)}: removed {run.report.anonymousUsers} anonymous users, {run.report.sessions} sessions
              </li>
            ))}
          </ul>
        )}
      </div>
    </div>
  );
}

function Figure({ label, value, note }: { label: string; value: string; note?: string }) {
  return (
    <div className="figure">
      <span className="figure-label">{label}</span>
      <span className="figure-value">{value}</span>
      {note && <span className="figure-note">{note}</span>}
    </div>
  );
}

function Trend({ buckets }: { buckets: Overview["trend"] }) {
  const max = Math.max(1, ...buckets.map((b) => Math.max(b.anonymousSignIns, b.upgrades)));
  const width = 24 * 14;
  return (
    <svg className="trend" viewBox={`0 0 ${width} 80`} role="img" aria-label="Anonymous sign-ins and upgrades per hour over the last day" preserveAspectRatio="none">
      {buckets.map((b, i) => {
        const a = (b.anonymousSignIns / max) * 72;
        const u = (b.upgrades / max) * 72;
        return (
          <g key={b.hour}>
            <title>{`${formatTime(b.hour)}: ${b.anonymousSignIns} anonymous sign-ins, ${b.upgrades} upgrades`}</title>
            <rect className="bar anon" x={i * 14 + 1} y={78 - a} width={6} height={a} rx={1.5} />
            <rect className="bar up" x={i * 14 + 7} y={78 - u} width={6} height={u} rx={1.5} />
          </g>
        );
      })}
      <line x1="0" x2={width} y1="78.5" y2="78.5" className="axis" />
    </svg>
  );
}

function UserList({ selected }: { selected: string | null }) {
  const [search, setSearch] = useState("");
  const [applied, setApplied] = useState("");
  const [cursors, setCursors] = useState<Array<string | null>>([null]);
  const { data, error } = useAdminData<{ page: UserRow[]; isDone: boolean; continueCursor: string }>("users/list", { search: applied || null, cursor: cursors.at(-1) }, AUTH_TABLES);
  function submit(event: FormEvent) {
    event.preventDefault();
    setApplied(search.trim());
    setCursors([null]);
  }
  return (
    <aside className="sidebar card" aria-label="Users">
      <h2>Users</h2>
      <form onSubmit={submit} role="search">
        <input type="search" aria-label="Find a user by email or _id" placeholder="Email or _id, then Enter" value={search} onChange={(e) => setSearch(e.target.value)} />
      </form>
      <ErrorText error={error} />
      <ul className="nav-list users">
        {data?.page.map((u) => (
          <li key={u._id}>
            <a href={`#/users/${u._id}`} className={u._id === selected ? "active" : ""} aria-current={u._id === selected ? "page" : undefined}>
              <span>
                <span className="user-name">{u.name ?? u.email ?? "(no name)"}</span>
                <span className="muted small block">{u.email ?? formatRelative(u._creationTime)}</span>
              </span>
              <span className="user-badges">
                {u.isAnonymous ? <Badge tone="soft">guest</Badge> : <Badge tone="ok">account</Badge>}
                <span className="muted small">{u.liveSessions} live</span>
              </span>
            </a>
          </li>
        ))}
      </ul>
      {data && data.page.length === 0 && <Empty>{applied ? "No user with that email or _id." : "No users yet."}</Empty>}
      {!applied && (
        <div className="pager">
          <button disabled={cursors.length === 1} onClick={() => setCursors((c) => c.slice(0, -1))}>
            ← Newer
          </button>
          <button disabled={!data || data.isDone} onClick={() => data && setCursors((c) => [...c, data.continueCursor])}>
            Older →
          </button>
        </div>
      )}
    </aside>
  );
}

interface UserDetailData {
  user: { doc: Record<string, unknown>; refs: Record<string, string> };
  sessions: Array<{ _id: string; provider: string; isAnonymous: boolean; createdAt: number; lastUsedAt: number; expiresAt: number; userAgent: string | null; live: boolean }>;
  accounts: Array<{ _id: string; _creationTime: number; provider: string; providerAccountId: string }>;
  data: Array<{ table: string; field: string; index: string | null; count: number; more: boolean; sample: Array<{ doc: Record<string, unknown>; refs: Record<string, string> }> }>;
}

function UserDetail({ userId }: { userId: string }) {
  const { data, error } = useAdminData<UserDetailData>("users/get", { userId }, "*");
  const [revokeError, setRevokeError] = useState<unknown>(null);
  const [revoking, setRevoking] = useState<string | null>(null);
  if (error) return <div className="card"><ErrorText error={error} /></div>;
  if (!data) return <div className="card placeholder" aria-busy="true" />;
  const name = (data.user.doc.name as string | undefined) ?? "(no name)";
  async function revoke(sessionId: string) {
    setRevoking(sessionId);
    setRevokeError(null);
    try {
      await admin("sessions/revoke", { sessionId });
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
                    <td className="row-actions nowrap">
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
