/**
 * Runs the app's `cronJobs()` (the default export of the `crons` module) on the scheduler.
 *
 * Each job has a row in `_cron_jobs` holding its next due time and its latest run. When a job is
 * due, one transaction schedules the run and advances the due time, so a restart neither skips nor
 * repeats a run. Changing a job's schedule, target or args resets its due time.
 *
 * At most one run of a cron is in flight, as Convex documents: a run that falls due while the
 * previous one is still pending or in progress is skipped (logged), and the due time moves on.
 * The rule is kept in the database, not in a node's memory, so it holds across restarts and
 * across nodes, by the same transactions that make a due time fire once:
 *  1. Node A's due-time transaction reads the cron's row and its latest run (`lastRun`).
 *  2. If that run is still running (`isJobRunning`: "pending", "inProgress", or an action
 *     canceled while it runs, which shows "canceled" at once but goes on until it ends), A only
 *     advances the due time; otherwise it schedules the new run and records it as `lastRun`,
 *     in the same commit.
 *  3. Whoever claims or finishes that run (this node or another) writes the run's document,
 *     which A read in 1: if that commit lands between A's read and A's commit, A's commit
 *     conflicts and A starts over from 1 with the run's new state. So A never acts on a state
 *     that was already stale when it committed, whichever node claimed or finished the run.
 * A run whose node died stays "inProgress" (or running though canceled) only until its lease
 * runs out (scheduler.ts), so a crash holds the cron back by at most one lease.
 */
import { walkinError, type Value } from "../values/index.js";
import { isCronJobs, nextRunAfter, type CronJob } from "../server/cron.js";
import type { Engine } from "./engine.js";
import type { Modules } from "./functions.js";
import type { Transaction } from "./transaction.js";
import type { Doc } from "./documents.js";
import { QueryImpl } from "./query.js";
import { isStorageFailure } from "./storageGuard.js";
import { isJobRunning } from "./scheduler.js";

const SYSTEM = { system: true };

type Schedule = (txn: Transaction, time: number, ref: string, args: Record<string, Value>) => Promise<string>;

export class Crons {
  /** name → next due time, mirrored from `_cron_jobs`. */
  private readonly due = new Map<string, number>();

  constructor(private readonly jobs: Map<string, CronJob>) {}

  /** The app's `crons` module plus jobs that engine hooks add (`extra`). */
  static fromModules(modules: Modules, extra: CronJob[] = []): Crons {
    const module = modules["crons"];
    const crons = module?.["default"];
    const named = module && !isCronJobs(crons) ? Object.keys(module).find((key) => isCronJobs(module[key])) : undefined;
    if (named !== undefined) {
      throw walkinError("MISUSE", `The crons module exports its cronJobs() as "${named}" instead of as its default, so none of its jobs would run: add \`export default ${named};\`.`);
    }
    const jobs = new Map(isCronJobs(crons) ? crons.jobs : []);
    for (const job of extra) {
      if (jobs.has(job.name)) throw walkinError("MISUSE", `Cron job "${job.name}" is declared twice; rename the app's job.`);
      jobs.set(job.name, job);
    }
    return new Crons(jobs);
  }

  /** Makes `_cron_jobs` match the declared jobs; `now` is the scheduler's clock (scheduler.ts, "Clocks"). */
  async sync(engine: Engine, now: number): Promise<void> {
    await engine.runSystemMutation(async (txn) => {
      const rows = await this.rows(engine, txn).collect();
      for (const row of rows) {
        const job = this.jobs.get(row.name as string);
        if (!job) await txn.delete(row._id, SYSTEM);
        else if (row.spec !== spec(job)) await txn.patch(row._id, { spec: spec(job), nextRun: nextRunAfter(job.schedule, now) }, SYSTEM);
      }
      for (const job of this.jobs.values()) {
        if (!rows.some((row) => row.name === job.name)) {
          await txn.insertSystem("_cron_jobs", { name: job.name, spec: spec(job), nextRun: nextRunAfter(job.schedule, now) });
        }
      }
    });
    await this.refresh(engine);
  }

  /** The earliest due time of any job (Infinity if none). */
  nextDue(): number {
    return Math.min(Infinity, ...this.due.values());
  }

  /**
   * Schedules every due job once and advances its due time, atomically per job; skips the run of
   * a job whose previous run is still in flight (see the header). `now` is the scheduler's
   * clock, the database's (scheduler.ts, "Clocks"), for due times and leases alike.
   */
  async enqueueDue(engine: Engine, schedule: Schedule, now: number): Promise<void> {
    for (const [name, due] of this.due) {
      if (due > now) continue;
      const job = this.jobs.get(name)!;
      const skipped = await engine.runSystemMutation(async (txn): Promise<{ previous: Doc; due: number } | undefined> => {
        const row = await this.rows(engine, txn, name).first();
        if (!row || (row.nextRun as number) > now) return undefined;
        await txn.patch(row._id, { nextRun: nextDueAfter(job.schedule, row.nextRun as number, now) }, SYSTEM);
        // A run deleted by retention finished long ago: reading it as null lets the cron run.
        const previous = typeof row.lastRun === "string" ? await txn.get(row.lastRun, SYSTEM) : null;
        if (previous && isJobRunning(previous, now)) return { previous, due: row.nextRun as number };
        try {
          const run = await schedule(txn, row.nextRun as number, job.functionName, job.args);
          await txn.patch(row._id, { lastRun: run }, SYSTEM);
        } catch (error) {
          if (isStorageFailure(error)) throw error;
          // The cron's function is gone or its arguments no longer pass its validator (code
          // deployed since the cron was defined). Thrown, this would fail the whole scheduler
          // pass, at this same cron every pass, and nothing scheduled would run again. This run
          // is recorded as failed instead, with why, and the cron moves on to its next time.
          engine.logError(`Cron "${name}" could not run ${job.functionName}`, error);
          await txn.insertSystem("_scheduled_functions", {
            name: job.functionName,
            args: job.args,
            scheduledTime: row.nextRun as number,
            state: "failed",
            completedTime: txn.now,
            error: error instanceof Error ? error.message : String(error),
          });
        }
        return undefined;
      });
      // Logged once the skip has committed (a transaction that is retried would log it twice).
      if (skipped) {
        engine.logError(
          `Cron "${name}" skipped its run due at ${new Date(skipped.due).toISOString()}`,
          `its previous run (${skipped.previous._id as string}, ${skipped.previous.state as string}) has not finished; a cron runs once at a time, so a run that falls due meanwhile is skipped`,
        );
      }
    }
    if (this.due.size > 0) await this.refresh(engine);
  }

  private async refresh(engine: Engine): Promise<void> {
    const rows = await engine.read((txn) => this.rows(engine, txn).collect());
    this.due.clear();
    for (const row of rows) this.due.set(row.name as string, row.nextRun as number);
  }

  private rows(engine: Engine, txn: Transaction, name?: string) {
    const table = engine.catalog.lookup("_cron_jobs", { system: true })!;
    return new QueryImpl(txn, table).withIndex("by_name", (q) => (name === undefined ? q : q.eq("name", name)));
  }
}

/**
 * The due time after `due`, reached at `now` (`due <= now`: a pass gets to a due job late,
 * after storage round trips or a wait for a free slot behind long actions). An interval
 * counts from its due times, as Convex's does, not from when a pass got there, which would
 * push every later run back by each delay; after downtime it is the first of them still
 * ahead, so the missed ones are not run in a burst. A cron expression names its times itself.
 */
function nextDueAfter(schedule: CronJob["schedule"], due: number, now: number): number {
  if (schedule.kind !== "interval") return nextRunAfter(schedule, now);
  return due + (Math.floor((now - due) / schedule.ms) + 1) * schedule.ms;
}

function spec(job: CronJob): string {
  return JSON.stringify({ schedule: job.schedule, functionName: job.functionName, args: job.args }, (_k, v) =>
    typeof v === "bigint" ? `${v}n` : v,
  );
}
