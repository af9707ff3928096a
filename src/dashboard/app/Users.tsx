/**
 * Users and sessions (apps on walkin/auth): how many users are anonymous and signed up, the
 * last day's anonymous sign-ins and upgrades, the cleanup of abandoned anonymous users; and
 * for one user, their sessions (revocable: the device is signed out at once), linked
 * accounts and their data by table. No token, hash or session digest ever reaches the page.
 */
import { useState, type FormEvent } from "react";
import { formatCount, formatRelative, formatTime } from "./format.js";
import { useRoute } from "./router.js";
import { UserDetail } from "./UserDetail.js";
import { Badge, Empty, ErrorText, Figure, useAdminData } from "./ui.js";

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

export const AUTH_TABLES = ["users", "authSessions", "authAccounts"];

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
