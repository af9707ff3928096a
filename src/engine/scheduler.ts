/**
 * The durable scheduler: `ctx.scheduler.runAfter / runAt / cancel` and the loop that runs
 * what is due.
 *
 * A scheduled call is a document in the system table `_scheduled_functions`, inserted by the
 * scheduling transaction itself: if that mutation aborts, nothing was scheduled; once it
 * commits, the call survives restarts. Running one:
 *  - a mutation runs in a transaction that also flips its job from "pending" to "success", so
 *    it runs exactly once even across crashes and concurrent runners;
 *  - an action is first marked "inProgress" in its own transaction, then run, then marked
 *    "success" or "failed". Actions may have side effects, so one interrupted by a crash is
 *    marked "failed", never re-run: at most once.
 * Several nodes may run schedulers over one database. Claiming a job is a transaction that
 * reads its state, so two nodes racing for it conflict and only one claims it. A running
 * action holds a lease that its node renews; a node that dies stops renewing, and once the
 * lease has expired any node marks the job "failed". (A node that starts must not fail jobs
 * that other nodes are running, so "interrupted" means "lease expired", not "in progress".)
 * Crons (cron.ts) feed the same table, so they inherit the same guarantees.
 *
 * Clocks. Node clocks may differ by seconds, and a job's times are compared across nodes: one
 * node schedules a job and another finds it due; one holds an action's lease and another
 * judges it expired. So due times and leases are all read on one clock, the database's, where
 * the storage tells it (`Storage.currentTime`; SQLite's processes share one machine's clock).
 * Each node running the loop reads the database's time at start and at each pass, and counts from
 * it on the monotonic clock from when the answer arrived: the server read its clock before
 * that, so `clock()` is never ahead of the database's time, and a step of the node's own clock
 * (NTP) changes nothing. A node with a fast clock therefore runs no job early and fails no
 * lease still held (it may be late by a round trip); one with a slow clock counts `runAfter`
 * from the database's now, and writes leases that last their 30 s by the database's clock.
 *
 * Finished jobs ("success", "failed", "canceled") stay readable for a week by default, then
 * the loop deletes them (`deleteExpired`), so the table holds about a week of history however
 * long the app runs, not every job ever scheduled.
 */
import { performance } from "node:perf_hooks";
// The real interval, not the global: a test's fake timers would fire a lease renewal pending on
// them for ever (`vi.runAllTimers()` never returns), and a lease is about time that really passes.
import { clearInterval, setInterval } from "node:timers";
import { walkinError } from "../values/index.js";
import { getFunctionName } from "../server/api.js";
import type { Engine } from "./engine.js";
import type { Transaction } from "./transaction.js";
import type { Crons } from "./cron.js";
import { checkArgs } from "./functions.js";
import type { createDatabaseReader } from "./database.js";
import type { Doc } from "./documents.js";
import { QueryImpl } from "./query.js";
import { nextFileSweep, sweepFiles } from "./fileStore.js";
import { isStorageFailure } from "./storageGuard.js";
import { isCommitOutcomeUnknown, storageStoppedBy } from "../storage/types.js";

export interface SchedulerCtx {
  db: ReturnType<typeof createDatabaseReader>;
}

const SYSTEM = { system: true };

/** How many scheduled calls run at once. */
const CONCURRENCY = 8;
/** How long a running action's claim lasts unless its node renews it (every third of it). */
export const ACTION_LEASE_MS = 30_000;
/** The longest a timer may wait (setTimeout's limit), after which the loop just looks again. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** How soon the loop tries again after a pass that failed (it armed no timer of its own). */
const PASS_RETRY_MS = 1_000;
/** How long a finished job stays in `_scheduled_functions` by default: a week. */
export const DEFAULT_SCHEDULED_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;
/** Expired jobs are looked for at most this often (each look is a system transaction). */
const EXPIRY_CHECK_MS = 60_000;
/** Expired jobs deleted per transaction, so one stays small; a full one looks again at once. */
const EXPIRY_BATCH = 256;
const FINISHED_STATES = ["success", "failed", "canceled"] as const;
/** The longest error text kept in a job's `error` (the whole error goes to the server's log). */
const MAX_ERROR_CHARS = 8 * 1024;
/** A failed job's `error` when its args leave no room under the document limit for the error's text. */
const ERROR_TOO_LARGE = "The error is too large to keep with this job's arguments; it is in the server's log.";

/** What a failed job records in `error`: any thrown value's text, bounded so the job stays under the document limit. */
function errorText(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.length > MAX_ERROR_CHARS ? `${text.slice(0, MAX_ERROR_CHARS)}… (truncated; the full error is in the server's log)` : text;
}

/**
 * Cancels job `id` inside `txn`, for `ctx.scheduler.cancel` and the dashboard's Cancel alike;
 * returns false when the job was over already (finished, failed, canceled, or deleted by
 * retention), which is left as it is. A running action cannot be stopped: it is marked
 * "canceled" (its end leaves that state alone, see `finish`), which cancels what it schedules
 * from then on (`schedule`), and it keeps its lease until it ends (see `isJobRunning`).
 */
export async function cancelScheduledJob(txn: Transaction, id: string): Promise<boolean> {
  const job = await txn.get(id, SYSTEM);
  if (job?.state !== "pending" && job?.state !== "inProgress") return false;
  await txn.patch(id, { state: "canceled", completedTime: txn.now }, SYSTEM);
  return true;
}

/**
 * Whether `job` is waiting or its function is still running at `now`: "pending", "inProgress",
 * or an action canceled while it ran that has not ended yet. Such an action shows "canceled"
 * (with its `completedTime`) from the cancel on, as Convex shows it, so its state alone cannot
 * say it still runs: its lease can. The node running it renews `leaseUntil` until the action
 * ends, then removes it; a node that died stops renewing, and the lease runs out.
 */
export function isJobRunning(job: Doc, now: number): boolean {
  if (job.state === "pending" || job.state === "inProgress") return true;
  return job.state === "canceled" && typeof job.leaseUntil === "number" && job.leaseUntil > now;
}

/** Jobs in `state`, oldest first, optionally only those due by `dueBy`. */
function jobsIn(engine: Engine, txn: Transaction, state: "pending" | "inProgress", dueBy?: number) {
  const table = engine.catalog.lookup("_scheduled_functions", { system: true })!;
  return new QueryImpl(txn, table).withIndex("by_state_time", (q) =>
    dueBy === undefined ? q.eq("state", state) : q.eq("state", state).lte("scheduledTime", dueBy),
  );
}

export function createScheduler(engine: Engine, crons: Crons, retentionMs = DEFAULT_SCHEDULED_RETENTION_MS) {
  if (!(retentionMs > 0)) {
    throw new RangeError(`scheduledFunctionRetentionMs must be a positive number of milliseconds (Infinity keeps finished jobs), got ${retentionMs}.`);
  }
  let running = false;
  /** When the loop last looked for expired jobs (see deleteExpired). */
  let expiryCheckedAt = -Infinity;
  /** When the earliest pending file is due for the sweep (fileStore.ts): read at the end of each pass (`armTimer`). */
  let filesDueAt = Infinity;
  let timer: NodeJS.Timeout | undefined;
  let pass: Promise<void> | null = null;
  let again = false;
  /** When the earliest running action's lease ends (see failAbandoned). */
  let leaseCheck = Infinity;
  const inFlight = new Set<Promise<void>>();
  /** The database's time, and this process's monotonic time when its answer came (see "Clocks"). */
  let clockBase: { server: number; local: number } | undefined;
  /** Now by the database's clock, never ahead of it (see "Clocks" above); `Date.now()` where the storage has no clock. */
  const clock = () => (clockBase ? clockBase.server + (performance.now() - clockBase.local) : Date.now());
  async function syncClock(): Promise<void> {
    const serverTime = engine.storage.currentTime;
    if (!serverTime) return;
    const server = await serverTime();
    clockBase = { server, local: performance.now() };
  }
  /** The jobs running here: "pending" until their run commits, and not to be started again meanwhile. */
  const startedIds = new Set<string>();

  /**
   * Inserts a job inside `txn` (validates the target and args now, not when it fires).
   * `parentJob` is the scheduled action this call comes from, if any. As Convex documents for
   * `cancel`, an action canceled while it runs goes on, but what it schedules from then on is
   * canceled: the job is inserted "canceled", so it never runs and its ID still works. The
   * rule is read here, in the database, because the cancel may come from another node:
   *  1. this transaction reads the parent's state, and inserts "canceled" if it reads "canceled";
   *  2. a cancel that commits after that read but before this commit wrote the parent job this
   *     transaction read, so this commit conflicts and starts over from 1, and reads "canceled";
   *  3. a cancel that commits after this commit is "afterwards" only for later calls: the job
   *     scheduled before it runs, as any job scheduled before a cancel does.
   */
  async function schedule(txn: Transaction, scheduledTime: number, ref: unknown, args: unknown, parentJob?: string): Promise<string> {
    if (!Number.isFinite(scheduledTime)) {
      throw walkinError("INVALID_ARGUMENT", `scheduler: the time must be a finite number of milliseconds; received ${scheduledTime}.`);
    }
    const name = getFunctionName(ref as never);
    const fn = resolveJob(name);
    const checked = checkArgs(fn, args ?? {}, engine.isIdOfTable);
    const parentCanceled = parentJob !== undefined && (await txn.get(parentJob, SYSTEM))?.state === "canceled";
    const state = parentCanceled ? { state: "canceled", completedTime: txn.now } : { state: "pending" };
    return txn.insertSystem("_scheduled_functions", { name, args: checked, scheduledTime, ...state });
  }

  function resolveJob(name: string) {
    for (const type of ["mutation", "action"] as const) {
      try {
        return engine.functions.resolve(name, type);
      } catch (error) {
        if ((error as { code?: string }).code === "UNKNOWN_FUNCTION") {
          throw walkinError("UNKNOWN_FUNCTION", `scheduler: unknown function "${name}"; a mutation or an action (internal ones too) can be scheduled.`);
        }
      }
    }
    throw walkinError("WRONG_FUNCTION_TYPE", `scheduler: "${name}" is a query; only mutations and actions can be scheduled.`);
  }

  function api(run: (work: (txn: Transaction) => Promise<string | void>) => Promise<string | void>, now: () => number, parentJob?: string) {
    return {
      runAfter: (delayMs: number, ref: unknown, args?: unknown) =>
        run((txn) => {
          // Typed, but plain JS or an `any` can pass anything: `Math.max(0, date)` was its epoch ms.
          const given: unknown = delayMs;
          if (typeof given !== "number") {
            const got = given instanceof Date ? "a Date (runAt takes a point in time)" : typeof given;
            throw walkinError("INVALID_ARGUMENT", `scheduler.runAfter: the delay must be a number of milliseconds; received ${got}.`);
          }
          return schedule(txn, now() + Math.max(0, delayMs), ref, args, parentJob);
        }),
      runAt: (when: number | Date, ref: unknown, args?: unknown) =>
        run((txn) => schedule(txn, when instanceof Date ? when.getTime() : when, ref, args, parentJob)),
      cancel: (id: string) =>
        run(async (txn) => {
          const table = txn.tableOfId(id, SYSTEM).name;
          if (table !== "_scheduled_functions") {
            throw walkinError("NOT_FOUND", `scheduler.cancel: "${id}" is the ID of a document in "${table}", not of a scheduled function; pass the ID that runAfter or runAt returned.`);
          }
          // As Convex: canceling a job that is over does nothing, including one that finished so
          // long ago that retention deleted it (code canceling a reminder it scheduled last month).
          await cancelScheduledJob(txn, id);
        }),
    };
  }

  /** Runs `job`; "retry" when storage failed before its run was decided (it stays pending). */
  async function runJob(job: Doc): Promise<"retry" | void> {
    const name = job.name as string;
    const finish = (state: "success" | "failed", error?: string) =>
      engine.runSystemMutation(async (txn) => {
        const current = await txn.get(job._id, { system: true });
        if (current && (current.state === "inProgress" || current.state === "pending")) {
          const done = { state, completedTime: clock() };
          try {
            await txn.patch(job._id, { ...done, ...(error !== undefined ? { error } : {}) }, SYSTEM);
          } catch (tooLarge) {
            // Args near the document limit leave less room than the error text takes (up to
            // MAX_ERROR_CHARS). Unrecorded, the failure would leave the job "pending", run again
            // on every later pass; the job is recorded failed with a short note instead.
            if (error === undefined || (tooLarge as { code?: string }).code !== "LIMIT_EXCEEDED") throw tooLarge;
            await txn.patch(job._id, { ...done, error: ERROR_TOO_LARGE }, SYSTEM);
          }
        } else if (current?.state === "canceled" && current.leaseUntil !== undefined) {
          // Canceled while it ran: it stays "canceled", and is no longer running (`isJobRunning`).
          // This write is also what a cron's due-time transaction that read the job conflicts with.
          await txn.patch(job._id, { leaseUntil: undefined }, SYSTEM);
        }
      });
    let fn;
    try {
      fn = resolveJob(name);
    } catch (error) {
      return finish("failed", errorText(error));
    }
    if (fn.type === "mutation") {
      // The job's own state change commits with the mutation's writes: exactly once.
      try {
        await engine.executeMutation(fn, name, job.args, { kind: "scheduler" }, {
          before: async (txn) => {
            const current = await txn.get(job._id, { system: true });
            if (current?.state !== "pending") return false;
            await txn.patch(job._id, { state: "success", completedTime: txn.now }, SYSTEM);
            return true;
          },
        });
      } catch (error) {
        if (isStorageFailure(error) || isCommitOutcomeUnknown(error)) {
          // Storage failed, not the mutation: its run wrote nothing (or, outcome unknown, it
          // committed and flipped the job to "success"). Recording "failed" now, once storage is
          // back, would leave a mutation that never ran: the job stays as the database has it,
          // and a later pass runs it if it is still pending (`retrySoon`). Each try spends the
          // storage retry budget first, so an outage is not a tight loop.
          engine.logError(`Scheduled mutation ${name} could not reach storage; it stays pending and is tried again`, error);
          return "retry";
        }
        engine.logError(`Scheduled mutation ${name} failed`, error);
        await finish("failed", errorText(error));
      }
      return;
    }
    const claimed = await engine.runSystemMutation(async (txn) => {
      const current = await txn.get(job._id, { system: true });
      if (current?.state !== "pending") return false;
      await txn.patch(job._id, { state: "inProgress", leaseUntil: clock() + ACTION_LEASE_MS }, SYSTEM);
      return true;
    });
    if (!claimed) return;
    const renew = setInterval(() => {
      void engine
        .runSystemMutation(async (txn) => {
          const current = await txn.get(job._id, { system: true });
          // Canceled while it runs, it still runs: the lease says so until it ends (`isJobRunning`).
          const stillOurs = current?.state === "inProgress" || (current?.state === "canceled" && current.leaseUntil !== undefined);
          if (stillOurs) await txn.patch(job._id, { leaseUntil: clock() + ACTION_LEASE_MS }, SYSTEM);
        })
        .catch((error) => engine.logError(`Renewing the lease of scheduled action ${name} failed`, error));
    }, ACTION_LEASE_MS / 3);
    renew.unref?.();
    try {
      await engine.runAction(name, job.args, { kind: "scheduler", scheduledJob: job._id });
      await finish("success");
    } catch (error) {
      engine.logError(`Scheduled action ${name} failed`, error);
      await finish("failed", errorText(error));
    } finally {
      clearInterval(renew);
    }
  }

  /**
   * Marks "failed" the actions whose node stopped renewing their lease (it crashed or was
   * killed): at most once means they are not run again. Returns the earliest lease still
   * running, so the loop can look again then.
   *
   * A lease is how other nodes learn that a runner is alive; this one knows it of its own
   * actions (`startedIds`), and leaves them alone whatever their lease says. Their lease can
   * read expired here though they run: where the storage has no clock, leases are on the
   * wall clock, which jumps (a machine waking from sleep, an NTP step), and a pass can come
   * before the renewal that follows the jump. Failed then, the action would still run to its
   * end unrecorded, and its cron would start the next run beside it.
   */
  async function failAbandoned(): Promise<number> {
    return engine.runSystemMutation(async (txn) => {
      let earliest = Infinity;
      const now = clock();
      for (const job of await jobsIn(engine, txn, "inProgress").collect()) {
        if (startedIds.has(job._id)) continue;
        const lease = typeof job.leaseUntil === "number" ? job.leaseUntil : 0;
        if (lease > now) {
          earliest = Math.min(earliest, lease);
          continue;
        }
        const error = "The server running this action stopped before it finished; actions run at most once.";
        await txn.patch(job._id, { state: "failed", completedTime: now, error }, SYSTEM);
      }
      return earliest;
    });
  }

  /**
   * Deletes jobs that finished more than `retentionMs` ago, a batch per state; true if a batch
   * was full (more may be left). Found through `by_state_time`: a job that ran was due before
   * it finished, so every expired one has `scheduledTime` before the cutoff. Each look reads at
   * most a batch per state, oldest due first, and deletes those of them that finished before
   * the cutoff: ones due before it that finished after it (they waited long for a runner) stay
   * until they expire too. A canceled job expires a retention after the time it was due, not
   * after it was canceled (usually sooner).
   */
  async function deleteExpired(): Promise<boolean> {
    return engine.runSystemMutation(async (txn) => {
      const cutoff = txn.now - retentionMs;
      let full = false;
      const table = engine.catalog.lookup("_scheduled_functions", { system: true })!;
      for (const state of FINISHED_STATES) {
        const oldest = await new QueryImpl(txn, table)
          .withIndex("by_state_time", (q) => q.eq("state", state).lt("scheduledTime", cutoff))
          .take(EXPIRY_BATCH);
        const expired = oldest.filter((job) => (job.completedTime as number) < cutoff);
        for (const job of expired) await txn.delete(job._id, SYSTEM);
        if (expired.length === EXPIRY_BATCH) full = true;
      }
      return full;
    });
  }

  /** Runs everything due now (and due crons), then sets a timer for the next due job. */
  async function runDue(): Promise<void> {
    await syncClock();
    leaseCheck = await failAbandoned();
    if (retentionMs !== Infinity && Date.now() - expiryCheckedAt >= EXPIRY_CHECK_MS) {
      expiryCheckedAt = Date.now();
      // Housekeeping: its failure must not stop due jobs from running (it is tried next minute).
      const more = await deleteExpired().catch((error: unknown) => {
        engine.logError("Deleting expired scheduled functions failed", error);
        return false;
      });
      if (more) {
        expiryCheckedAt = -Infinity;
        again = true;
      }
    }
    if (filesDueAt <= Date.now()) {
      // The bytes of deleted files and abandoned uploads (fileStore.ts). Housekeeping too.
      const more = await sweepFiles(engine).catch((error: unknown) => {
        engine.logError("Deleting the bytes of deleted files failed", error);
        return false;
      });
      if (more) again = true;
    }
    await crons.enqueueDue(engine, schedule, clock());
    const now = clock();
    const limit = CONCURRENCY * 4 + startedIds.size;
    const due = await engine.read((txn) => jobsIn(engine, txn, "pending", now).take(limit));
    for (const job of due) {
      if (startedIds.has(job._id)) continue; // running here already: pending until its run commits
      if (inFlight.size >= CONCURRENCY) await Promise.race(inFlight);
      if (!running) break; // stopped meanwhile (a hot reload's old engine): due jobs are the serving engine's
      if (startedIds.has(job._id)) continue;
      startedIds.add(job._id);
      let retry = false;
      const started = runJob(job)
        .then((outcome) => void (retry = outcome === "retry"))
        .catch((error) => {
          engine.logError("Scheduler failure", error);
          // An action's claim that storage failed: the job is still pending.
          retry = isStorageFailure(error) || isCommitOutcomeUnknown(error);
        })
        .finally(() => {
          inFlight.delete(started);
          startedIds.delete(job._id);
          // Storage failed before the job's run was decided: nothing committed, so no commit
          // pokes the loop, and the last pass skipped the job (it was running here). Look
          // again in a second (not at once: a database refusing writes would make that a loop).
          if (retry) retrySoon();
        });
      inFlight.add(started);
    }
    if (due.length === limit) again = true;
    await armTimer();
  }

  async function armTimer() {
    clearTimeout(timer);
    if (!running) return;
    // The earliest pending job not running here (one running here pokes the loop when it commits).
    const [pending, filesDue] = await engine.read(async (txn) => [await jobsIn(engine, txn, "pending").take(startedIds.size + 1), await nextFileSweep(engine, txn)] as const);
    filesDueAt = filesDue;
    const next = pending.find((job) => !startedIds.has(job._id));
    const wake = Math.min(next ? (next.scheduledTime as number) : Infinity, crons.nextDue(), leaseCheck, filesDue);
    if (wake === Infinity) return;
    timer = setTimeout(poke, Math.min(Math.max(0, wake - clock()), MAX_TIMER_MS));
    timer.unref?.();
  }

  let retryTimer: NodeJS.Timeout | undefined;
  function retrySoon(): void {
    if (retryTimer !== undefined) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      poke();
    }, PASS_RETRY_MS);
    retryTimer.unref?.();
  }

  /** Starts a pass, or asks the running one to go again. */
  function poke(): void {
    if (!running) return;
    if (pass) {
      again = true;
      return;
    }
    pass = (async () => {
      do {
        again = false;
        await runDue();
      } while (again && running);
    })()
      .catch((error) => {
        // A failed pass (a storage outage, say) armed no timer, and only a commit that writes
        // `_scheduled_functions` would poke again: crons and jobs already scheduled would stop.
        engine.logError("Scheduler pass failed", error);
        clearTimeout(timer);
        // A stopped storage refuses every call until the process restarts: trying again
        // would only fail again, once a second, for as long as the process runs.
        if (!running || storageStoppedBy(error) !== undefined) return;
        timer = setTimeout(poke, PASS_RETRY_MS);
        timer.unref?.();
      })
      .finally(() => {
        pass = null;
        // A poke that came after the loop's last look at `again` would be lost: go again now.
        if (again && running) poke();
      });
  }

  return {
    /** For `ctx.scheduler` in a mutation: jobs are part of the transaction. */
    forTransaction: (txn: Transaction, parentJob?: string) => api((work) => work(txn), () => (clockBase ? clock() : txn.now), parentJob),
    /** For `ctx.scheduler` in an action: each call is its own small transaction. */
    forAction: (parentJob?: string) => api((work) => engine.runSystemMutation((txn) => work(txn)), clock, parentJob),

    async start(autoRun: boolean): Promise<void> {
      // Only an engine running the loop takes the database's clock: one without it (tests that
      // drive it with runUntilIdle, on their own time, faked or not) keeps Date.now().
      if (autoRun) await syncClock();
      // Actions whose node died are not retried (at most once); see failAbandoned.
      leaseCheck = await failAbandoned();
      await crons.sync(engine, clock());
      if (!autoRun) return;
      running = true;
      engine.onCommit((_record, tables) => {
        // A file deleted, or an upload begun, makes chunks due for the sweep now or later.
        if (tables.has("_scheduled_functions") || tables.has("_storage_pending")) poke();
      });
      poke();
    },

    /**
     * Runs pending jobs due by `dueBy` until none are left, including jobs they schedule
     * (tests; with the loop stopped, this is the only runner).
     */
    async runUntilIdle(dueBy: () => number = Date.now): Promise<void> {
      for (let pass = 0; ; pass++) {
        if (pass > 1000) throw walkinError("INTERNAL", "Scheduled functions kept scheduling more work (1000 rounds). Check for infinitely recursive scheduled functions: is one rescheduling itself?");
        await crons.enqueueDue(engine, schedule, clock());
        const due = await engine.read((txn) => jobsIn(engine, txn, "pending", dueBy()).collect());
        if (due.length === 0) return;
        for (let i = 0; i < due.length; i++) {
          await runJob(due[i]!);
          // A job may have scheduled one due before the rest of this round (or canceled one):
          // time order is what production would follow, so a new round starts from the earliest.
          const next = await engine.read((txn) => jobsIn(engine, txn, "pending", dueBy()).first());
          if (next?._id !== due[i + 1]?._id) break;
        }
      }
    },

    /**
     * Runs, in time order, the pending jobs due by `dueBy` when it is called, each once; the
     * jobs they schedule wait for the next call, even when due (tests stepping through a chain).
     */
    async runDueOnce(dueBy: () => number = Date.now): Promise<void> {
      await crons.enqueueDue(engine, schedule, clock());
      const due = await engine.read((txn) => jobsIn(engine, txn, "pending", dueBy()).collect());
      // A job one of these cancels is no longer pending when its turn comes: runJob skips it.
      for (const job of due) await runJob(job);
    },

    /** The time the earliest pending job is due, if any (tests that move a fake clock to it). */
    async nextDueTime(): Promise<number | undefined> {
      const next = await engine.read((txn) => jobsIn(engine, txn, "pending").first());
      return next ? (next.scheduledTime as number) : undefined;
    },

    async stop(): Promise<void> {
      running = false;
      clearTimeout(timer);
      clearTimeout(retryTimer);
      await pass;
      await Promise.all(inFlight);
    },
  };
}
