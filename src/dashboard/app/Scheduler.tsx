/**
 * Scheduler and health: live figures of the server (from the stream, once a second), the
 * scheduled jobs by state with cancel for pending and running ones (as `ctx.scheduler.cancel`:
 * a running action finishes, but what it schedules from then on is canceled), and the crons
 * with their last and next runs.
 */
import { useState } from "react";
import { admin, type Health } from "./api.js";
import { formatBytes, formatCount, formatRelative, formatTime } from "./format.js";
import { Badge, Empty, ErrorText, Figure, useAdminData, useStream } from "./ui.js";

interface Job {
  _id: string;
  name: string;
  args: string;
  scheduledTime: number;
  state: string;
  error: string | null;
  completedTime: number | null;
}

interface SchedulerData {
  jobs: Record<string, Job[]>;
  crons: Array<{ name: string; functionName: string | null; schedule: unknown; nextRun: number; lastRun: Job | null }>;
}

const STATES = [
  ["pending", "Pending"],
  ["inProgress", "Running"],
  ["success", "Done"],
  ["failed", "Failed"],
  ["canceled", "Canceled"],
] as const;

export function SchedulerScreen() {
  return (
    <div className="stack">
      <HealthFigures />
      <Jobs />
    </div>
  );
}

function HealthFigures() {
  const { data: first, error } = useAdminData<Health>("health", undefined, null);
  const [live, setLive] = useState<Health | null>(null);
  useStream((event) => {
    if (event.type === "health") setLive(event.health);
  });
  const health = live ?? first;
  return (
    <div className="card figures health" aria-label="Health" aria-live="off">
      <ErrorText error={error} />
      {health && (
        <>
          <Figure label="Connected clients" value={formatCount(health.connectedClients)} />
          <Figure label="Live queries" value={formatCount(health.liveQueries)} />
          <Figure label="Commits / s" value={String(health.commitsPerSecond)} note={`${formatCount(health.commits)} since start`} />
          <Figure label="Conflict retries / s" value={String(health.conflictRetriesPerSecond)} note={`${formatCount(health.conflictRetries)} since start`} />
          <Figure label="Function p50" value={health.p50 === null ? "—" : `${health.p50.toFixed(1)} ms`} />
          <Figure label="Function p99" value={health.p99 === null ? "—" : `${health.p99.toFixed(1)} ms`} />
          <Figure label="Storage" value={formatBytes(health.storageBytes)} />
        </>
      )}
    </div>
  );
}

function describeSchedule(schedule: unknown): string {
  const s = schedule as { kind?: string; ms?: number; cron?: string } | null;
  if (!s) return "—";
  if (s.kind === "interval" && typeof s.ms === "number") {
    const ms = s.ms;
    return ms % 3_600_000 === 0 ? `every ${ms / 3_600_000} h` : ms % 60_000 === 0 ? `every ${ms / 60_000} min` : `every ${ms / 1000} s`;
  }
  return typeof s.cron === "string" ? s.cron : JSON.stringify(s);
}

function Jobs() {
  const { data, error } = useAdminData<SchedulerData>("scheduler", undefined, ["_scheduled_functions", "_cron_jobs"]);
  const [state, setState] = useState<string>("pending");
  const [cancelError, setCancelError] = useState<unknown>(null);
  const jobs = data?.jobs[state] ?? [];
  async function cancel(id: string) {
    setCancelError(null);
    try {
      await admin("scheduler/cancel", { id });
    } catch (caught) {
      setCancelError(caught);
    }
  }
  return (
    <>
      <div className="card">
        <h2>Scheduled jobs</h2>
        <div className="tabs" role="tablist" aria-label="Job state">
          {STATES.map(([id, label]) => (
            <button key={id} role="tab" aria-selected={state === id} className={state === id ? "on" : ""} onClick={() => setState(id)}>
              {label} <span className="count">{data ? formatCount(data.jobs[id]?.length ?? 0) : ""}{data && (data.jobs[id]?.length ?? 0) >= 50 ? "+" : ""}</span>
            </button>
          ))}
        </div>
        <ErrorText error={error ?? cancelError} />
        <div className="table-wrap">
          <table className="jobs">
            <thead>
              <tr>
                <th scope="col">Function</th>
                <th scope="col">Arguments</th>
                <th scope="col">{state === "pending" ? "Due" : "Scheduled for"}</th>
                {state !== "pending" && <th scope="col">Finished</th>}
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {jobs.map((job) => (
                <tr key={job._id} data-job-id={job._id}>
                  <td className="mono">
                    {job.name}
                    {job.error && <div className="error-inline small">{job.error}</div>}
                  </td>
                  <td className="mono small args">{job.args}</td>
                  <td className="nowrap">
                    {formatTime(job.scheduledTime)} <span className="muted small">({formatRelative(job.scheduledTime)})</span>
                  </td>
                  {state !== "pending" && <td className="nowrap">{job.completedTime ? formatTime(job.completedTime) : "—"}</td>}
                  <td>
                    {(job.state === "pending" || job.state === "inProgress") && (
                      <button
                        className="danger"
                        title={job.state === "inProgress" ? "The action finishes, but what it schedules from now on is canceled" : undefined}
                        onClick={() => void cancel(job._id)}
                      >
                        Cancel
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {data && jobs.length === 0 && <Empty>No {STATES.find(([id]) => id === state)![1].toLowerCase()} jobs.</Empty>}
        </div>
      </div>
      <div className="card">
        <h2>Crons</h2>
        {data && data.crons.length === 0 && <Empty>No crons. Declare them in functions/crons.ts with cronJobs().</Empty>}
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Function</th>
                <th scope="col">Schedule</th>
                <th scope="col">Last run</th>
                <th scope="col">Next run</th>
              </tr>
            </thead>
            <tbody>
              {data?.crons.map((cron) => (
                <tr key={cron.name}>
                  <td>{cron.name}</td>
                  <td className="mono small">{cron.functionName}</td>
                  <td>{describeSchedule(cron.schedule)}</td>
                  <td className="nowrap">
                    {cron.lastRun ? (
                      <>
                        {formatTime(cron.lastRun.scheduledTime)} <Badge tone={cron.lastRun.state === "failed" ? "bad" : "ok"}>{cron.lastRun.state}</Badge>
                      </>
                    ) : (
                      <span className="muted">not yet</span>
                    )}
                  </td>
                  <td className="nowrap">
                    {formatTime(cron.nextRun)} <span className="muted small">({formatRelative(cron.nextRun)})</span>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </div>
    </>
  );
}
