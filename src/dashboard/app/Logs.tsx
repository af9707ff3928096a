/**
 * Logs: the live stream of function runs, newest first, with the caller kind, duration,
 * conflict retries, outcome, error and console lines; filters by function, outcome and text;
 * pause and resume. Bounded so that 100 runs a second never freeze the page: the stream
 * arrives in batches (5 a second), the page keeps the newest MAX_KEPT runs and draws the
 * newest MAX_SHOWN of those that pass the filters.
 */
import { useEffect, useMemo, useRef, useState } from "react";
import { admin, type RunEntry } from "./api.js";
import { formatCount, formatTime } from "./format.js";
import { Badge, Empty, ErrorText, useStream } from "./ui.js";

const MAX_KEPT = 5_000;
const MAX_SHOWN = 300;

export function LogsScreen() {
  const [entries, setEntries] = useState<RunEntry[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [paused, setPaused] = useState(false);
  const held = useRef<RunEntry[]>([]);
  const [heldCount, setHeldCount] = useState(0);
  const [missed, setMissed] = useState(0);
  const [fn, setFn] = useState("");
  const [outcome, setOutcome] = useState("");
  const [caller, setCaller] = useState("");
  const [text, setText] = useState("");
  const [open, setOpen] = useState<number | null>(null);
  const lastId = useRef(0);

  useEffect(() => {
    admin<RunEntry[]>("logs").then(
      (recent) => {
        setEntries((current) => merge(current, recent));
      },
      setError,
    );
  }, []);

  useStream((event) => {
    if (event.type !== "runs") return;
    if (event.missed > 0) setMissed((n) => n + event.missed);
    if (event.runs.length === 0) return;
    if (paused) {
      held.current = [...held.current, ...event.runs].slice(-MAX_KEPT);
      setHeldCount(held.current.length);
    } else {
      setEntries((current) => merge(current, event.runs));
    }
  });

  function resume() {
    setEntries((current) => merge(current, held.current));
    held.current = [];
    setHeldCount(0);
    setPaused(false);
  }

  const functions = useMemo(() => [...new Set(entries.map((e) => e.path))].sort(), [entries]);
  const shown = useMemo(() => {
    const needle = text.trim().toLowerCase();
    const out: RunEntry[] = [];
    for (let i = entries.length - 1; i >= 0 && out.length < MAX_SHOWN; i--) {
      const e = entries[i]!;
      if (fn && e.path !== fn) continue;
      if (outcome && e.outcome !== outcome) continue;
      if (caller && e.caller !== caller) continue;
      if (needle && !`${e.path} ${e.error ?? ""} ${e.logs.join("\n")}`.toLowerCase().includes(needle)) continue;
      out.push(e);
    }
    return out;
  }, [entries, fn, outcome, caller, text]);
  lastId.current = entries.at(-1)?.id ?? 0;

  return (
    <div className="card">
      <div className="heading-row">
        <h2>
          Function runs <span className="muted small">{formatCount(entries.length)} kept</span>
        </h2>
        <div className="row-actions">
          {paused ? (
            <button className="primary" onClick={resume}>
              Resume{heldCount > 0 ? ` (${formatCount(heldCount)} new)` : ""}
            </button>
          ) : (
            <button onClick={() => setPaused(true)}>Pause</button>
          )}
          <button className="link" onClick={() => setEntries([])}>
            Clear
          </button>
        </div>
      </div>
      <div className="filters" role="search" aria-label="Filter runs">
        <label>
          Function
          <select value={fn} onChange={(e) => setFn(e.target.value)}>
            <option value="">All functions</option>
            {functions.map((path) => (
              <option key={path} value={path}>
                {path}
              </option>
            ))}
          </select>
        </label>
        <label>
          Outcome
          <select value={outcome} onChange={(e) => setOutcome(e.target.value)}>
            <option value="">Any</option>
            <option value="success">Success</option>
            <option value="error">Error</option>
          </select>
        </label>
        <label>
          Caller
          <select value={caller} onChange={(e) => setCaller(e.target.value)}>
            <option value="">Any</option>
            {["client", "http", "scheduler", "cron", "dashboard", "server"].map((kind) => (
              <option key={kind} value={kind}>
                {kind}
              </option>
            ))}
          </select>
        </label>
        <label className="grow">
          Text
          <input type="search" placeholder="in function, error or console lines" value={text} onChange={(e) => setText(e.target.value)} />
        </label>
      </div>
      <ErrorText error={error} />
      {missed > 0 && <p className="muted small">{formatCount(missed)} runs were not sent to this page while it fell behind.</p>}
      <div className="table-wrap">
        <table className="logs">
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Function</th>
              <th scope="col">Caller</th>
              <th scope="col" className="num">
                Duration
              </th>
              <th scope="col" className="num">
                Retries
              </th>
              <th scope="col">Outcome</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((e) => (
              <LogRow key={e.id} entry={e} open={open === e.id} onToggle={() => setOpen(open === e.id ? null : e.id)} />
            ))}
          </tbody>
        </table>
        {shown.length === 0 && <Empty>{entries.length === 0 ? "No function has run yet. Use the app, and its calls appear here." : "No run matches these filters."}</Empty>}
      </div>
    </div>
  );
}

function merge(current: RunEntry[], incoming: RunEntry[]): RunEntry[] {
  const last = current.at(-1)?.id ?? 0;
  const fresh = incoming.filter((e) => e.id > last);
  if (fresh.length === 0) return current;
  const next = current.concat(fresh);
  return next.length > MAX_KEPT ? next.slice(-MAX_KEPT) : next;
}

function LogRow({ entry: e, open, onToggle }: { entry: RunEntry; open: boolean; onToggle: () => void }) {
  const details = e.error !== null || e.logs.length > 0;
  return (
    <>
      <tr className={`log ${e.outcome}`}>
        <td className="nowrap mono small">{formatTime(e.time)}</td>
        <td>
          {details ? (
            <button className="link mono" aria-expanded={open} onClick={onToggle}>
              {open ? "▾" : "▸"} {e.path}
            </button>
          ) : (
            <span className="mono">{e.path}</span>
          )}{" "}
          <span className={`type-tag ${e.type}`}>{e.type[0]!.toUpperCase()}</span>
          {e.logs.length > 0 && <span className="muted small"> · {e.logs.length} log line{e.logs.length === 1 ? "" : "s"}</span>}
          {e.error && !open && <div className="error-inline small">{e.error.length > 140 ? `${e.error.slice(0, 140)}…` : e.error}</div>}
        </td>
        <td>
          <Badge tone={e.caller}>{e.caller}</Badge>
        </td>
        <td className="num mono small">{e.durationMs.toFixed(1)} ms</td>
        <td className="num mono small">{e.retries || ""}</td>
        <td>
          <Badge tone={e.outcome === "success" ? "ok" : "bad"}>{e.outcome}</Badge>
        </td>
      </tr>
      {open && (
        <tr className="log-details">
          <td colSpan={6}>
            {e.error && <p className="error-text">{e.error}</p>}
            {e.logs.length > 0 && <pre className="console">{e.logs.join("\n")}</pre>}
          </td>
        </tr>
      )}
    </>
  );
}
