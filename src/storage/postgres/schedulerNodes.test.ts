/**
 * The durable scheduler with several nodes on one PostgreSQL database (docs/scheduling.md,
 * docs/scaling.md): a scheduled mutation runs exactly once and a scheduled action at most once
 * when a node is killed mid-job, when nodes race for a due job, when their clocks disagree, when
 * a job's connection is terminated mid-commit, and when a job is canceled while a node starts it.
 * Nodes are real engines on one real database, in this process or in child processes
 * (`engine/fixtures/schedulerNode.ts`: a child can be killed with SIGKILL, or given a wrong
 * clock); interleavings are forced with storage hooks or server-side triggers, never sleeps.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { Engine } from "../../engine/engine.js";
import { SharedHookedStorage } from "./sharedHookedStorage.js";
import { actionRuns, holdRef, recordRef, release, releaseAll, schedulerModules, schedulerSchema, started } from "../../engine/fixtures/schedulerNode.js";
import { QueryImpl } from "../../engine/query.js";
import type { Doc } from "../../engine/documents.js";
import { quoteIdentifier } from "./schema.js";
import { openTestSchema } from "./testDatabase.js";
import { makeFunctionReference } from "../../server/index.js";

const childScript = fileURLToPath(new URL("../../engine/fixtures/schedulerNode.ts", import.meta.url));
const countRef = makeFunctionReference<"action", { key: string }>("jobs:count");

const cleanups: (() => Promise<void>)[] = [];
afterEach(async (context) => {
  if (waitingFor !== undefined && context.task.result?.state === "fail") console.error(`The test was waiting for ${waitingFor}.`);
  waitingFor = undefined;
  releaseAll();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

type Target = Awaited<ReturnType<typeof openTestSchema>>;

async function fresh(): Promise<Target> {
  const target = await openTestSchema();
  cleanups.push(async () => {
    await target.storage.close();
    await target.drop();
  });
  return target;
}

/** A node in this process: an engine on its own storage (its own pool) of `target`'s schema. */
async function node(
  target: Target,
  name: string,
  options: { runScheduler?: boolean; hooked?: boolean; crons?: boolean; storageRetryMs?: number; logError?: (message: string) => void } = {},
) {
  const pgStorage = await target.open();
  const storage = options.hooked ? new SharedHookedStorage(pgStorage) : pgStorage;
  const engine = await Engine.open({
    storage,
    schema: schedulerSchema,
    modules: schedulerModules(name, { crons: options.crons ?? false }),
    runScheduler: options.runScheduler ?? true,
    pollIntervalMs: 20,
    ...(options.storageRetryMs !== undefined ? { storageRetryMs: options.storageRetryMs } : {}),
    logError: options.logError ?? (() => {}),
  });
  cleanups.push(async () => {
    await engine.close().catch(() => {});
    await pgStorage.close().catch(() => {});
  });
  return { engine, storage };
}

/** A node in a child process; `line(text)` resolves once it has printed that line. */
function childNode(target: Target, name: string, env: Record<string, string> = {}) {
  const proc: ChildProcess = spawn(process.execPath, ["--import", "tsx", childScript, target.url, target.schema, name], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  proc.stderr!.on("data", (chunk) => (stderr += String(chunk)));
  const seen: string[] = [];
  const waiting: { text: string; resolve: () => void }[] = [];
  createInterface({ input: proc.stdout! }).on("line", (text) => {
    seen.push(text);
    for (const w of waiting.filter((w) => w.text === text)) w.resolve();
  });
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  cleanups.push(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
    await exited;
  });
  return {
    proc,
    exited,
    line: (text: string) =>
      new Promise<void>((resolve, reject) => {
        if (seen.includes(text)) return resolve();
        waiting.push({ text, resolve });
        void exited.then(() => reject(new Error(`node ${name} exited before printing "${text}": ${stderr}`)));
      }),
  };
}

/** The database server's clock, in ms since the epoch. */
async function dbNow(target: Target): Promise<number> {
  const { rows } = await target.storage.pool.query<{ ms: number }>("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS ms");
  return Number(rows[0]!.ms);
}

/** Every document of `table` as `engine` sees the database now (other nodes' commits included). */
async function all(engine: Engine, table: "events" | "_scheduled_functions"): Promise<Doc[]> {
  await engine.refreshFromStorage();
  const system = table === "_scheduled_functions";
  return engine.read((txn) => new QueryImpl(txn, engine.catalog.lookup(table, { system })!).collect());
}

async function jobState(engine: Engine, id: string): Promise<string | undefined> {
  await engine.refreshFromStorage();
  return engine.read(async (txn) => (await txn.get(id, { system: true }))?.state as string | undefined);
}

/** What the test is waiting for, in its timeout's report (see afterEach). */
let waitingFor: string | undefined;

/** Polls `condition` every 10 ms until it holds (the test's timeout ends a wait that never does). */
async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  waitingFor = what;
  while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 10));
  waitingFor = undefined;
}

/** Schedules `ref(args)` at `when` through `engine`, in a transaction of its own. */
function scheduleAt(engine: Engine, when: number, ref: unknown, args: unknown): Promise<string> {
  return engine.runSystemMutation(async (txn) => (await engine.scheduler.forTransaction(txn).runAt(when, ref, args)) as string);
}

/** How many events each key has. */
function countByKey(events: Doc[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of events) counts.set(e.key as string, (counts.get(e.key as string) ?? 0) + 1);
  return counts;
}

describe("nodes whose clocks differ: due times and leases are judged by the database's clock", () => {
  it("a node whose clock is a minute fast does not run a job before it is due", async () => {
    const target = await fresh();
    const { engine: a } = await node(target, "A", { runScheduler: false });
    const due = (await dbNow(target)) + 3_000;
    const id = await scheduleAt(a, due, recordRef, { key: "early?" });
    const fast = childNode(target, "fast", { SKEW_MS: "60000" });
    await fast.line("ready");
    // Look until the job has run; the database's time read *after* seeing it done is later than
    // the run's commit, so if that time is before `due`, the job ran early.
    await until(async () => (await jobState(a, id)) === "success", "the job to run");
    expect(await dbNow(target)).toBeGreaterThanOrEqual(due);
    expect((await all(a, "events")).map((e) => e.node)).toEqual(["fast"]);
  });

  it("a node whose clock is a minute fast does not run a cron's tick before it is due", async () => {
    const target = await fresh();
    // A, with a right clock, declares the cron: its first tick is due 5 s after A started.
    const { engine: a } = await node(target, "A", { runScheduler: false, crons: true });
    await a.refreshFromStorage();
    const table = a.catalog.lookup("_cron_jobs", { system: true })!;
    const due = (await a.read((txn) => new QueryImpl(txn, table).first()))!.nextRun as number;
    const fast = childNode(target, "fast", { SKEW_MS: "60000", CRONS: "1" });
    await fast.line("ready");
    // As above: the database's time read after seeing the tick is later than the tick's commit.
    await until(async () => (await all(a, "events")).length > 0, "the first tick");
    expect(await dbNow(target)).toBeGreaterThanOrEqual(due);
  });

  it("runAfter on a node whose clock is a minute slow is counted from the database's now", async () => {
    const target = await fresh();
    await node(target, "A"); // a runner with a right clock (the slow node runs jobs too)
    const before = await dbNow(target);
    const slow = childNode(target, "slow", { SKEW_MS: "-60000", SCHEDULE_AFTER_MS: "3000" });
    await slow.line("scheduled");
    const { engine: observer } = await node(target, "observer", { runScheduler: false });
    // The job was scheduled after `before`, 3 s ahead: seeing it done at a database time before
    // `before + 3000` means it ran early (on the slow node's clock it was due a minute ago).
    await until(async () => (await all(observer, "events")).length === 1, "the job to run");
    expect(await dbNow(target)).toBeGreaterThanOrEqual(before + 3_000);
  });

  it("a node whose clock is a minute fast does not fail an action another node is running (its lease is held)", async () => {
    const target = await fresh();
    const { engine: a } = await node(target, "A");
    const running = started("lease");
    const id = await scheduleAt(a, 0, holdRef, { key: "lease" });
    await running;
    expect(await jobState(a, id)).toBe("inProgress");
    // The fast node's start looks for abandoned actions (lease expired by its clock) and fails them.
    const fast = childNode(target, "fast", { SKEW_MS: "60000" });
    await fast.line("ready");
    expect(await jobState(a, id)).toBe("inProgress");
    release("lease");
    await until(async () => (await jobState(a, id)) === "success", "the action to finish");
  });
});

describe("a node killed (SIGKILL) while it runs jobs", () => {
  it("its action is not run again anywhere, and is marked failed once its lease runs out", { timeout: 90_000 }, async () => {
    const target = await fresh();
    const { engine: a } = await node(target, "A", { runScheduler: false });
    const id = await scheduleAt(a, 0, holdRef, { key: "doomed" });
    const child = childNode(target, "child");
    await child.line("started doomed");
    child.proc.kill("SIGKILL");
    await child.exited;
    // A node that starts now sees the action in progress under a lease nobody renews: it must
    // neither run it (at most once) nor fail it before the lease has run out.
    const { engine: b } = await node(target, "B");
    expect(await jobState(b, id)).toBe("inProgress");
    await until(async () => (await jobState(b, id)) === "failed", "the abandoned action to be marked failed");
    const job = (await all(b, "_scheduled_functions"))[0]!;
    expect(job.completedTime as number).toBeGreaterThanOrEqual(job.leaseUntil as number);
    expect(actionRuns.get("doomed")).toBeUndefined();
  });

  it("each of its mutation jobs runs exactly once: the ones it committed are not run again, the rest run elsewhere", { timeout: 60_000 }, async () => {
    const target = await fresh();
    const { engine: a } = await node(target, "A", { runScheduler: false });
    const keys = Array.from({ length: 300 }, (_, i) => `m${i}`);
    await a.runSystemMutation(async (txn) => {
      for (const key of keys) await a.scheduler.forTransaction(txn).runAt(0, recordRef, { key });
    });
    const child = childNode(target, "child");
    await until(async () => (await all(a, "events")).length >= 30, "the child to run some jobs");
    child.proc.kill("SIGKILL");
    await child.exited;
    const { engine: b } = await node(target, "B");
    await until(async () => (await all(b, "_scheduled_functions")).every((job) => job.state === "success"), "every job to run");
    const events = await all(b, "events");
    expect([...countByKey(events).entries()].filter(([, n]) => n !== 1)).toEqual([]);
    expect(events.length).toBe(keys.length);
    expect(events.some((e) => e.node === "child") && events.some((e) => e.node === "B")).toBe(true);
  });
});

describe("nodes racing for the same due jobs", () => {
  it("three nodes: every mutation job runs exactly once, every action job once, and all finish", { timeout: 60_000 }, async () => {
    const target = await fresh();
    const nodes = [await node(target, "A"), await node(target, "B"), await node(target, "C")];
    const a = nodes[0]!.engine;
    const keys = Array.from({ length: 200 }, (_, i) => `r${i}`);
    // Scheduled in a few commits while all three run, so every pass of each node sees them due.
    for (let i = 0; i < keys.length; i += 50) {
      await a.runSystemMutation(async (txn) => {
        for (const key of keys.slice(i, i + 50)) {
          await a.scheduler.forTransaction(txn).runAfter(0, recordRef, { key });
          await a.scheduler.forTransaction(txn).runAfter(0, countRef, { key });
        }
      });
    }
    await until(async () => (await all(a, "_scheduled_functions")).every((job) => job.state === "success"), "every job to finish");
    const events = await all(a, "events");
    expect([...countByKey(events).entries()].filter(([, n]) => n !== 1)).toEqual([]);
    expect(events.length).toBe(keys.length);
    expect(keys.filter((key) => actionRuns.get(key) !== 1)).toEqual([]);
  });
});

/**
 * Makes the next `count` COMMITs of `target`'s schema wait inside the server (2 s each), where
 * the test can find the backend (its application_name is set to `marker`) and terminate it.
 * A sequence counts them, since it is not rolled back with the terminated transaction.
 */
async function armSlowCommits(target: Target, marker: string) {
  const s = quoteIdentifier(target.schema);
  await target.storage.pool.query(`
    CREATE SEQUENCE ${s}.slow_commits START 1000000;
    CREATE FUNCTION ${s}.slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF nextval('${s}.slow_commits') = 1 THEN
          PERFORM set_config('application_name', '${marker}', false);
          PERFORM pg_sleep(5);
        END IF;
        RETURN NULL;
      END $$;
    CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON ${s}.commit_log DEFERRABLE INITIALLY DEFERRED
      FOR EACH ROW EXECUTE FUNCTION ${s}.slow_commit();`);
  return {
    /** The next commit (of any node) will wait, until terminated. */
    arm: () => target.storage.pool.query(`SELECT setval('${s}.slow_commits', 1, false)`),
    /** Waits for the armed commit to be sleeping in COMMIT, then terminates its backend. */
    async terminate(): Promise<void> {
      for (;;) {
        const { rows } = await target.storage.pool.query<{ ok: boolean }>(
          `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1 AND wait_event = 'PgSleep'`,
          [marker],
        );
        if (rows.some((row) => row.ok)) return;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
  };
}

describe("a job whose database connection is terminated mid-commit (pg_terminate_backend)", () => {
  it("a scheduled mutation whose run's COMMIT is cut runs exactly once", { timeout: 60_000 }, async () => {
    const target = await fresh();
    const cut = await armSlowCommits(target, `cut_${target.schema}`);
    const { engine: a } = await node(target, "A", { runScheduler: false });
    const { engine: b } = await node(target, "B");
    // B runs nothing until the job is due, and the job is due only after the next commit is armed:
    // the first commit after `arm` is the job's run (B's only work) or a lease/cron write it has none of.
    const due = (await dbNow(target)) + 1_000;
    const id = await scheduleAt(a, due, recordRef, { key: "cut" });
    await cut.arm();
    await cut.terminate();
    await until(async () => (await jobState(b, id)) === "success", "the job to run");
    expect((await all(a, "events")).map((e) => e.key)).toEqual(["cut"]);
  });

  it("a scheduled action whose end is cut mid-commit is recorded once, as a success, and not run again", { timeout: 60_000 }, async () => {
    const target = await fresh();
    const cut = await armSlowCommits(target, `cut_${target.schema}`);
    const { engine: a } = await node(target, "A");
    const running = started("cut-action");
    const id = await scheduleAt(a, 0, holdRef, { key: "cut-action" });
    await running;
    // The action's next commit is its end ("success"): that COMMIT is the one cut.
    await cut.arm();
    release("cut-action");
    await cut.terminate();
    await until(async () => (await jobState(a, id)) === "success", "the action to be recorded");
    expect(actionRuns.get("cut-action")).toBe(1);
  });
});

describe("a scheduled mutation whose node loses the database for longer than it retries", () => {
  it("is not recorded as failed when the outage ends before its failure is written: it stays pending and runs once", async () => {
    const target = await fresh();
    const { engine: b } = await node(target, "B", { runScheduler: false });
    let outage = false;
    let gaveUp = false;
    const a = await node(target, "A", {
      hooked: true,
      storageRetryMs: 200,
      logError: (message) => {
        if (message.startsWith("Scheduled mutation")) gaveUp = true;
      },
    });
    // Every commit of A fails (nothing written: a lost connection) until A's run of the job has
    // given up on storage; then the database is back, in time for whatever A writes next.
    (a.storage as SharedHookedStorage).hooks.commitBatch = async (commit) => {
      if (outage && !gaveUp) throw new Error("Connection terminated unexpectedly");
      return commit();
    };
    outage = true;
    const id = await scheduleAt(b, 0, recordRef, { key: "outage" });
    // The mutation never committed: the job must still run, exactly once, not be "failed". Its
    // node's loop must also come back to it, though no commit tells it to.
    await until(async () => (await jobState(a.engine, id)) !== "pending", "the job to run");
    expect(gaveUp).toBe(true);
    expect(await jobState(a.engine, id)).toBe("success");
    expect((await all(a.engine, "events")).map((e) => e.key)).toEqual(["outage"]);
  });
});

describe("a scheduled action whose claim fails because the database is briefly unreachable", () => {
  it("stays pending and is claimed and run once storage is back, though no commit wakes the scheduler", async () => {
    const target = await fresh();
    const { engine: b } = await node(target, "B", { runScheduler: false });
    let outage = false;
    let claimFailed = false;
    const a = await node(target, "A", {
      hooked: true,
      logError: (message) => {
        if (message === "Scheduler failure") claimFailed = true;
      },
    });
    // A's commits fail (nothing written) until its claim of the action has failed.
    (a.storage as SharedHookedStorage).hooks.commitBatch = async (commit) => {
      if (outage && !claimFailed) throw new Error("Connection terminated unexpectedly");
      return commit();
    };
    outage = true;
    const id = await scheduleAt(b, 0, countRef, { key: "claim-outage" });
    await until(async () => (await jobState(a.engine, id)) === "success", "the action to run");
    expect(claimFailed).toBe(true);
    expect(actionRuns.get("claim-outage")).toBe(1);
  });
});

describe("a job canceled on one node while another starts it", () => {
  for (const kind of ["mutation", "action"] as const) {
    it(`a ${kind} job whose cancel commits between the runner's read of the job and its commit is not run`, async () => {
      const target = await fresh();
      const a = await node(target, "A", { runScheduler: false, hooked: true });
      const { engine: b } = await node(target, "B", { runScheduler: false });
      const ref = kind === "mutation" ? recordRef : countRef;
      const key = `cancel-${kind}`;
      const id = await scheduleAt(b, 0, ref, { key });
      // 1. A reads the due job and, in the transaction that runs it (mutation) or claims it
      //    (action), reads it "pending";
      // 2. before that transaction commits, B's cancel commits;
      // 3. A's commit then conflicts (it read the job B wrote) and A starts over, reads
      //    "canceled", and neither runs nor claims it.
      let canceled = false;
      (a.storage as SharedHookedStorage).hooks.commitBatch = async (commit) => {
        if (!canceled) {
          canceled = true;
          await b.runSystemMutation((txn) => b.scheduler.forTransaction(txn).cancel(id));
        }
        return commit();
      };
      await a.engine.refreshFromStorage(); // A sees the job B scheduled
      await a.engine.scheduler.runUntilIdle();
      expect(canceled).toBe(true);
      expect(await jobState(a.engine, id)).toBe("canceled");
      expect(await all(a.engine, "events")).toEqual([]);
      expect(actionRuns.get(key)).toBeUndefined();
    });
  }
});

describe("runAt at the edges of time", () => {
  it("a time in the past runs at once; one in the far future waits without holding up later-scheduled jobs", async () => {
    const target = await fresh();
    const { engine: a } = await node(target, "A");
    const far = await scheduleAt(a, Number.MAX_VALUE, recordRef, { key: "far" });
    const future = await scheduleAt(a, 8.64e15, recordRef, { key: "year 275760" });
    const past = await scheduleAt(a, -1_000, recordRef, { key: "past" });
    const epoch = await scheduleAt(a, 0, recordRef, { key: "epoch" });
    await until(async () => (await jobState(a, past)) === "success" && (await jobState(a, epoch)) === "success", "the past jobs to run");
    const soon = await scheduleAt(a, (await dbNow(target)) + 200, recordRef, { key: "soon" });
    await until(async () => (await jobState(a, soon)) === "success", "the job due soon to run");
    expect([await jobState(a, far), await jobState(a, future)]).toEqual(["pending", "pending"]);
    expect((await all(a, "events")).map((e) => e.key).sort()).toEqual(["epoch", "past", "soon"]);
  });
});

describe("10,000 jobs at once on three nodes", () => {
  it("every one runs exactly once, about in due order, and every node takes a share", { timeout: 300_000 }, async () => {
    const target = await fresh();
    const { engine: a } = await node(target, "A", { runScheduler: false });
    const count = 10_000;
    const base = (await dbNow(target)) - count;
    // Due one ms apart, all in the past; scheduled in a shuffled order (so only due times order them).
    const order = Array.from({ length: count }, (_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = (i * 7919) % (i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (let i = 0; i < count; i += 1_000) {
      await a.runSystemMutation(async (txn) => {
        for (const n of order.slice(i, i + 1_000)) await a.scheduler.forTransaction(txn).runAt(base + n, recordRef, { key: String(n) });
      });
    }
    const runners = ["B", "C", "D"];
    await Promise.all(runners.map((name) => node(target, name)));
    // Done when no job is pending (a cheap look at the state index, not a read of 10,000 rows).
    const table = a.catalog.lookup("_scheduled_functions", { system: true })!;
    await until(async () => {
      await a.refreshFromStorage();
      return (await a.read((txn) => new QueryImpl(txn, table).withIndex("by_state_time", (q) => q.eq("state", "pending")).first())) === null;
    }, "every job to run");
    const events = await all(a, "events");
    const jobs = await all(a, "_scheduled_functions");
    expect(jobs.filter((job) => job.state !== "success")).toEqual([]);
    expect([...countByKey(events).entries()].filter(([, n]) => n !== 1)).toEqual([]);
    expect(events.length).toBe(count);
    // No node takes them all: each runs the earliest due jobs it finds, and loses the race for
    // the ones another node's commit took first, so the work spreads over every runner.
    expect(runners.filter((name) => !events.some((e) => e.node === name))).toEqual([]);
    // Due order: rank the jobs by when they finished (by the database's clock, ms; ties by due
    // time) and compare with their due rank. A node takes the earliest due jobs, at most 40 at
    // once, so only jobs in flight together can swap (a run retried after a conflict finishes
    // later); none may run a tenth of the whole queue away from its turn.
    const byEnd = [...jobs].sort((x, y) => (x.completedTime as number) - (y.completedTime as number) || (x.scheduledTime as number) - (y.scheduledTime as number));
    const displacement = Math.max(...byEnd.map((job, rank) => Math.abs(rank - ((job.scheduledTime as number) - base))));
    expect(displacement).toBeLessThan(count / 10);
  });
});
