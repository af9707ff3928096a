/**
 * Logs: the live stream of function runs, newest first, with the caller kind, duration,
 * conflict retries, outcome, error and console lines; filters by function, outcome and text;
 * pause and resume. Bounded so that 100 runs a second never freeze the page: the stream
 * arrives in batches, the page applies them at most every APPLY_MS, keeps the newest MAX_KEPT
 * runs and draws the newest `shown` (MAX_SHOWN at first) that pass the filters, in a table
 * of fixed layout whose rows, once drawn, are never drawn again.
 */
import { memo, useCallback, useEffect, useMemo, useRef, useState } from "react";
import { admin, type RunEntry } from "./api.js";
import { formatCount, formatTime } from "./format.js";
import { Badge, Empty, ErrorText, useStream } from "./ui.js";

const MAX_KEPT = 5_000;
const MAX_SHOWN = 100;
const APPLY_MS = 500;

export function LogsScreen() {
  const [entries, setEntriesState] = useState<RunEntry[]>([]);
  // The latest entries, for callbacks that outlive a render (the reconnect catch-up).
  const entriesRef = useRef<RunEntry[]>([]);
  const setEntries = useCallback((update: (current: RunEntry[]) => RunEntry[]) => {
    setEntriesState((current) => (entriesRef.current = update(current)));
  }, []);
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
  const [limit, setLimit] = useState(MAX_SHOWN);
  const incoming = useRef<RunEntry[]>([]);
  const toggle = useCallback((id: number) => setOpen((current) => (current === id ? null : id)), []);

  // Runs arriving meanwhile are applied together, at most every APPLY_MS: one render for many batches.
  useEffect(() => {
    const timer = setInterval(() => {
      if (incoming.current.length === 0) return;
      const runs = incoming.current;
      incoming.current = [];
      setEntries((current) => merge(current, runs));
    }, APPLY_MS);
    return () => clearInterval(timer);
  }, []);

  // The server's recent runs: on arrival, and after a reconnect (to fill the gap).
  const catchUp = useCallback(() => {
    admin<RunEntry[]>("logs").then((recent) => {
      setError(null);
      // Numbers restart with the server: older than what the page holds means a new server.
      const restarted = (recent.at(-1)?.id ?? Infinity) < (entriesRef.current.at(-1)?.id ?? 0);
      setEntries((current) => (restarted ? recent : merge(current, recent)));
    }, setError);
  }, [setEntries]);
  useEffect(catchUp, [catchUp]);

  useStream((event) => {
    if (event.type === "hello") catchUp();
    if (event.type !== "runs") return;
    if (event.missed > 0) setMissed((n) => n + event.missed);
    if (event.runs.length === 0) return;
    if (paused) {
      held.current = [...held.current, ...event.runs].slice(-MAX_KEPT);
      setHeldCount(held.current.length);
    } else {
      incoming.current = incoming.current.concat(event.runs).slice(-MAX_KEPT);
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
    for (let i = entries.length - 1; i >= 0 && out.length < limit; i--) {
      const e = entries[i]!;
      if (fn && e.path !== fn) continue;
      if (outcome && e.outcome !== outcome) continue;
      if (caller && e.caller !== caller) continue;
      if (needle && !`${e.path} ${e.error ?? ""} ${e.logs.join("\n")}`.toLowerCase().includes(needle)) continue;
      out.push(e);
    }
    return out;
  }, [entries, fn, outcome, caller, text, limit]);

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
          <button className="link" onClick={() => setEntries(() => [])}>
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
              <LogRow key={e.id} entry={e} open={open === e.id} onToggle={toggle} />
            ))}
          </tbody>
        </table>
        {shown.length === limit && (
          <button className="link" onClick={() => setLimit((n) => n + MAX_SHOWN)}>
            Show {MAX_SHOWN} more
          </button>
        )}
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

const LogRow = memo(function LogRow({ entry: e, open, onToggle }: { entry: RunEntry; open: boolean; onToggle: (id: number) => void }) {
  const details = e.error !== null || e.logs.length > 0;
  return (
    <>
      <tr className={`log ${e.outcome}`}>
        <td className="nowrap mono small">{formatTime(e.time)}</td>
        <td>
          {details ? (
            <button className="link mono" aria-expanded={open} onClick={() => onToggle(e.id)}>
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
});
