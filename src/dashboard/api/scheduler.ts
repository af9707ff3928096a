/**
 * The Scheduler and health screen's API: scheduled jobs by state with cancel, crons with
 * their last and next runs, and live figures of the server.
 */
import { stat } from "node:fs/promises";
import { convertToJson, type Value } from "../../values/index.js";
import type { Engine } from "../../engine/engine.js";
import { QueryImpl } from "../../engine/query.js";
import { cancelScheduledJob } from "../../engine/scheduler.js";
import type { EngineSwitch } from "../../transport/engineSwitch.js";
import { badRequest, notFound, stringField } from "./httpJson.js";
import type { RunLog } from "./runLog.js";
import { maskSecrets } from "./secrets.js";

const STATES = ["pending", "inProgress", "success", "failed", "canceled"] as const;
const PER_STATE = 50;
const SYSTEM = { system: true };

function jobView(job: Record<string, unknown>) {
  let args = maskSecrets(JSON.stringify(convertToJson((job.args ?? {}) as Value)));
  if (args.length > 300) args = `${args.slice(0, 300)}…`;
  return {
    _id: job._id as string,
    _creationTime: job._creationTime as number,
    name: job.name as string,
    args,
    scheduledTime: job.scheduledTime as number,
    state: job.state as string,
    error: typeof job.error === "string" ? maskSecrets(job.error) : null,
    completedTime: (job.completedTime as number | undefined) ?? null,
  };
}

type Spec = { functionName?: string; schedule?: unknown };

/** The functions crons run (their `_cron_jobs` rows name them): runs of these by the scheduler are shown as `cron`. */
export async function cronTargets(engine: Engine): Promise<Set<string>> {
  const crons = engine.catalog.lookup("_cron_jobs", SYSTEM);
  if (!crons) return new Set();
  const rows = await engine.read((txn) => new QueryImpl(txn, crons).take(500));
  return new Set(rows.map((row) => (JSON.parse(row.spec as string) as Spec).functionName).filter((n): n is string => typeof n === "string"));
}

/** `GET /api/admin/scheduler`. */
export async function schedulerOverview(engine: Engine) {
  const jobs = engine.catalog.lookup("_scheduled_functions", SYSTEM)!;
  const crons = engine.catalog.lookup("_cron_jobs", SYSTEM)!;
  // Shown once durable: a job scheduled or canceled by a commit a crash would undo is not shown.
  return engine.readDurable(async (txn) => {
    const byState: Record<string, ReturnType<typeof jobView>[]> = {};
    for (const state of STATES) {
      const query = new QueryImpl(txn, jobs).withIndex("by_state_time", (q) => q.eq("state", state));
      // What is next comes first for waiting jobs; what happened last for finished ones.
      const rows = await query.order(state === "pending" ? "asc" : "desc").take(PER_STATE);
      byState[state] = rows.map((row) => jobView(row));
    }
    const cronRows = await new QueryImpl(txn, crons).take(500);
    const cronList = [];
    for (const row of cronRows) {
      const spec = JSON.parse(row.spec as string) as Spec;
      // The row names its latest run (cron.ts): one read, where looking for the newest job of
      // the cron's function would scan every newer job of any function, and on a busy app
      // exceed what one read may (the whole screen failed), or find a run the app scheduled.
      // Null before its first run, or once retention deleted the run.
      const latest = typeof row.lastRun === "string" ? await txn.get(row.lastRun, SYSTEM) : null;
      const lastRun = latest ? jobView(latest) : null;
      cronList.push({ name: row.name as string, functionName: spec.functionName ?? null, schedule: spec.schedule ?? null, nextRun: row.nextRun as number, lastRun });
    }
    return { jobs: byState, crons: cronList };
  });
}

/**
 * `POST /api/admin/scheduler/cancel`: as `ctx.scheduler.cancel` does. A pending job never runs;
 * a running action cannot be stopped midway, so it finishes, but it is marked canceled and what
 * it schedules from then on is canceled. A job that is over already is left as it is
 * (`canceled: false`, with its state): it may have finished while the page showed it.
 */
export async function cancelJob(engines: EngineSwitch, body: Record<string, unknown>) {
  const id = stringField(body, "id");
  return engines.mutate(async (engine) => {
    if (!engine.catalog.isIdOfTable("_scheduled_functions", id)) throw badRequest(`"${id}" is not the _id of a scheduled job.`);
    return engine.runSystemMutation(async (txn) => {
      const job = await txn.get(id, SYSTEM);
      if (!job) throw notFound(`No scheduled job ${id}.`);
      if (await cancelScheduledJob(txn, id)) return { canceled: true };
      return { canceled: false, state: job.state as string };
    });
  });
}

/** Samples the engine's counters once a second, for per-second rates. */
export class HealthSampler {
  private last: { at: number; commits: number; retries: number; engine: Engine | null } = { at: 0, commits: 0, retries: 0, engine: null };
  private rates = { commitsPerSecond: 0, conflictRetriesPerSecond: 0 };

  sample(engine: Engine): void {
    const now = performance.now();
    const { commits, conflictRetries } = engine.stats;
    if (this.last.engine === engine && now > this.last.at) {
      const seconds = (now - this.last.at) / 1000;
      this.rates = {
        commitsPerSecond: Math.round(((commits - this.last.commits) / seconds) * 10) / 10,
        conflictRetriesPerSecond: Math.round(((conflictRetries - this.last.retries) / seconds) * 10) / 10,
      };
    }
    this.last = { at: now, commits, retries: conflictRetries, engine };
  }

  async figures(engine: Engine, runs: RunLog, connectedClients: number) {
    return {
      connectedClients,
      liveQueries: engine.subscriptions.size,
      ...this.rates,
      commits: engine.stats.commits,
      conflictRetries: engine.stats.conflictRetries,
      ...runs.percentiles(),
      storageBytes: await storageBytes(engine.storage.name),
    };
  }
}

/** The SQLite file and its WAL, for `sqlite:<path>` storages; null for others. */
async function storageBytes(name: string): Promise<number | null> {
  if (!name.startsWith("sqlite:")) return null;
  const file = name.slice("sqlite:".length);
  let total = 0;
  for (const suffix of ["", "-wal"]) total += await stat(file + suffix).then((s) => s.size, () => 0);
  return total;
}
