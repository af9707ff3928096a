/**
 * The durable scheduler and crons: exactly-once across engines, transactional
 * scheduling under conflicts, leases, cron catch-up, what stops the scheduler loop, and the
 * cron evaluator against a brute-force minute-by-minute crontab(5) matcher.
 */
import { describe, expect, it } from "vitest";
import { cronJobs, defineSchema, defineTable, internalAction, internalMutation, makeFunctionReference, mutation, query } from "../server/index.js";
import { v } from "../values/index.js";
import { Engine } from "./engine.js";
import { seededRandom } from "../storage/conformance/history.js";
import type { Storage } from "../storage/types.js";
import { nextCronTime, parseCron } from "../server/cronExpression.js";
import { sleep, useSchedulerEngines, waitFor } from "./fixtures/schedulerEngines.js";

const ref = {
  record: makeFunctionReference<"mutation", { kind: string }>("jobs:record"),
  recordAt: makeFunctionReference<"mutation", { kind: string; due: number }>("jobs:recordAt"),
  act: makeFunctionReference<"action", { key: string }>("jobs:act"),
  missing: makeFunctionReference<"mutation">("jobs:doesNotExist"),
};

const schema = defineSchema({
  events: defineTable({ kind: v.string(), at: v.optional(v.number()), due: v.optional(v.number()) }),
  counters: defineTable({ n: v.number() }),
});

/** How many times each action key ran, in this process (actions run at most once). */
const actionRuns = new Map<string, number>();

const jobs = {
  record: internalMutation({ args: { kind: v.string() }, handler: (ctx, { kind }) => ctx.db.insert("events", { kind }) }),
  recordAt: internalMutation({
    args: { kind: v.string(), due: v.number() },
    handler: (ctx, { kind, due }) => ctx.db.insert("events", { kind, due, at: Date.now() }),
  }),
  act: internalAction({
    args: { key: v.string() },
    handler: async (_ctx, { key }) => {
      actionRuns.set(key, (actionRuns.get(key) ?? 0) + 1);
      await new Promise((resolve) => setTimeout(resolve, 5));
    },
  }),
  /** Read-modify-write of one counter, so that concurrent calls conflict and are retried. */
  bumpAndSchedule: mutation({
    args: { id: v.id("counters"), kind: v.string() },
    handler: async (ctx, { id, kind }) => {
      const counter = await ctx.db.get(id);
      await ctx.db.patch(id, { n: (counter!.n as number) + 1 });
      await ctx.scheduler.runAfter(0, ref.record, { kind });
    },
  }),
  scheduleAt: mutation({
    args: { kind: v.string(), at: v.number() },
    handler: (ctx, { kind, at }) => ctx.scheduler.runAt(at, ref.recordAt, { kind, due: at }),
  }),
  cancelFromAction: internalAction({
    args: { id: v.string() },
    handler: (ctx, { id }) => ctx.scheduler.cancel(id as never),
  }),
  list: query({ args: {}, handler: async (ctx) => (await ctx.db.query("events").collect()).map((e) => e.kind as string) }),
};

const modules = { jobs };

const { tempFile, open } = useSchedulerEngines(schema, modules);

async function allJobs(engine: Engine) {
  return engine.read(async (txn) => {
    const table = engine.catalog.lookup("_scheduled_functions", { system: true })!;
    const { QueryImpl } = await import("./query.js");
    return new QueryImpl(txn, table).collect();
  });
}

async function cronRows(engine: Engine) {
  return engine.read(async (txn) => {
    const table = engine.catalog.lookup("_cron_jobs", { system: true })!;
    const { QueryImpl } = await import("./query.js");
    return new QueryImpl(txn, table).collect();
  });
}

async function events(engine: Engine): Promise<string[]> {
  return (await engine.runQuery("jobs:list", {})) as string[];
}

describe("scheduler, transactions and exactly once", () => {
  it("a mutation retried after conflicts leaves exactly one job per commit", async () => {
    const engine = await open(":memory:", { runScheduler: false });
    const id = (await engine.runSystemMutation((txn) => txn.insert(engine.catalog.lookup("counters")!, { n: 0 }))) as string;
    const calls = 20;
    await Promise.all(Array.from({ length: calls }, (_, i) => engine.runMutation("jobs:bumpAndSchedule", { id, kind: `k${i}` })));
    expect(engine.stats.conflictRetries).toBeGreaterThan(0); // the scenario really retried
    const rows = await allJobs(engine);
    expect(rows.length).toBe(calls);
    expect(new Set(rows.map((r) => (r.args as { kind: string }).kind)).size).toBe(calls);
    await engine.scheduler.runUntilIdle();
    expect((await events(engine)).sort()).toEqual(Array.from({ length: calls }, (_, i) => `k${i}`).sort());
  });

  it("runs a job no earlier than its time, and each once", async () => {
    const engine = await open(":memory:");
    const base = Date.now();
    for (let i = 0; i < 10; i++) await engine.runMutation("jobs:scheduleAt", { kind: `t${i}`, at: base + 50 + i * 30 });
    await waitFor(async () => (await events(engine)).length === 10);
    await sleep(100);
    const rows = (await engine.runSystemMutation(async (txn) => {
      const { QueryImpl } = await import("./query.js");
      return new QueryImpl(txn, engine.catalog.lookup("events")!).collect();
    })) as unknown as Array<{ at: number; due: number }>;
    expect(rows.length).toBe(10);
    for (const row of rows) expect(row.at).toBeGreaterThanOrEqual(row.due);
    expect((await allJobs(engine)).map((j) => j.state)).toEqual(Array(10).fill("success"));
  });

  it("two engines on one SQLite file run every mutation job exactly once and every action job at most once, and finish them all", async () => {
    const file = tempFile();
    actionRuns.clear();
    // The jobs are in the file before either engine opens, so both see them and race for them
    // (engines on one SQLite file learn of each other's commits only when they commit).
    const setup = await open(file, { runScheduler: false });
    const due = Date.now() + 400;
    await setup.runSystemMutation(async (txn) => {
      for (let i = 0; i < 30; i++) {
        await txn.insertSystem("_scheduled_functions", { name: "jobs:record", args: { kind: `m${i}` }, scheduledTime: due + (i % 5), state: "pending" });
        await txn.insertSystem("_scheduled_functions", { name: "jobs:act", args: { key: `a${i}` }, scheduledTime: due + (i % 5), state: "pending" });
      }
    });
    await setup.close();
    const [a, b] = await Promise.all([open(file), open(file)]);
    await sleep(2000);
    await a.close();
    await b.close();
    const check = await open(file, { runScheduler: false });
    const kinds = await events(check);
    expect(kinds.length).toBe(30);
    expect(new Set(kinds).size).toBe(30);
    for (let i = 0; i < 30; i++) expect(actionRuns.get(`a${i}`)).toBe(1);
    expect((await allJobs(check)).map((j) => j.state)).toEqual(Array(60).fill("success"));
  });

  it("cancel: from an action, after the job ran (no-op), and of an ID that is not a job", async () => {
    const engine = await open(":memory:", { runScheduler: false });
    const [first, second] = (await engine.runSystemMutation(async (txn) => [
      await txn.insertSystem("_scheduled_functions", { name: "jobs:record", args: { kind: "canceled" }, scheduledTime: 0, state: "pending" }),
      await txn.insertSystem("_scheduled_functions", { name: "jobs:record", args: { kind: "ran" }, scheduledTime: 0, state: "pending" }),
    ])) as [string, string];
    await engine.runAction("jobs:cancelFromAction", { id: first });
    await engine.scheduler.runUntilIdle();
    await engine.runAction("jobs:cancelFromAction", { id: second });
    expect(await events(engine)).toEqual(["ran"]);
    const states = Object.fromEntries((await allJobs(engine)).map((j) => [(j.args as { kind: string }).kind, j.state]));
    expect(states).toEqual({ canceled: "canceled", ran: "success" });
    const userId = (await engine.runSystemMutation((txn) => txn.insert(engine.catalog.lookup("counters")!, { n: 0 }))) as string;
    await expect(engine.runAction("jobs:cancelFromAction", { id: userId })).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("a running scheduler fails an action whose lease runs out later (not only at start)", async () => {
    const engine = await open(":memory:");
    const now = Date.now();
    const id = (await engine.runSystemMutation((txn) =>
      txn.insertSystem("_scheduled_functions", { name: "jobs:act", args: { key: "x" }, scheduledTime: now, state: "inProgress", leaseUntil: now + 300 }),
    )) as string;
    await waitFor(async () => (await engine.read((txn) => txn.get(id, { system: true })))?.state === "failed", 3000);
  });
});

describe("scheduler, crons", () => {
  it("after downtime a cron runs once, not once per missed interval", async () => {
    const file = tempFile();
    const crons = cronJobs();
    crons.interval("hourly tick", { hours: 1 }, ref.record, { kind: "tick" });
    const first = await open(file, { runScheduler: false, extraModules: { crons: { default: crons } } });
    // The node was down for ten intervals.
    await first.runSystemMutation(async (txn) => {
      const { QueryImpl } = await import("./query.js");
      const row = await new QueryImpl(txn, first.catalog.lookup("_cron_jobs", { system: true })!).first();
      await txn.patch(row!._id as string, { nextRun: Date.now() - 10 * 3_600_000 }, { system: true });
    });
    await first.close();
    const second = await open(file, { extraModules: { crons: { default: crons } } });
    await waitFor(async () => (await events(second)).length >= 1);
    await sleep(300);
    expect(await events(second)).toEqual(["tick"]);
    const [row] = await cronRows(second);
    expect(row!.nextRun as number).toBeGreaterThan(Date.now() + 3_500_000);
  });

  it("two engines starting together on one file keep one _cron_jobs row per job, and fire each due time once", async () => {
    const file = tempFile();
    const crons = cronJobs();
    crons.interval("tick", { seconds: 1 }, ref.record, { kind: "tick" });
    // Create the file first, so that both engines only race on the cron rows.
    await (await open(file, { runScheduler: false })).close();
    const [a, b] = await Promise.all([open(file, { extraModules: { crons: { default: crons } } }), open(file, { extraModules: { crons: { default: crons } } })]);
    expect((await cronRows(a)).length).toBe(1);
    await waitFor(async () => (await events(a)).length >= 2, 6000);
    await a.close();
    await b.close();
    const check = await open(file, { runScheduler: false });
    const jobsRun = (await allJobs(check)).filter((j) => j.state === "success");
    const times = jobsRun.map((j) => j.scheduledTime as number);
    expect(new Set(times).size).toBe(times.length); // no due time enqueued twice
    expect((await events(check)).length).toBe(jobsRun.length);
  });

  it("a cron whose arguments no longer validate does not stop the other scheduled functions", async () => {
    const crons = cronJobs();
    crons.interval("bad args", { seconds: 1 }, ref.record, { kind: 5 } as never);
    const engine = await open(":memory:", { extraModules: { crons: { default: crons } } });
    await sleep(1200); // the bad cron falls due
    await engine.runMutation("jobs:scheduleAt", { kind: "unrelated", at: Date.now() });
    await sleep(1000);
    expect(await events(engine)).toEqual(["unrelated"]);
  });

  it("a cron whose function was removed does not stop the other scheduled functions", async () => {
    const crons = cronJobs();
    crons.interval("removed target", { seconds: 1 }, ref.missing);
    const engine = await open(":memory:", { extraModules: { crons: { default: crons } } });
    await sleep(1200);
    await engine.runMutation("jobs:scheduleAt", { kind: "unrelated", at: Date.now() });
    await sleep(1000);
    expect(await events(engine)).toEqual(["unrelated"]);
  });

  it("the scheduler keeps running after a storage failure during a pass", async () => {
    let failing = false;
    const flaky = (storage: Storage): Storage =>
      new Proxy(storage, {
        get(target, prop, receiver) {
          const value = Reflect.get(target, prop, receiver);
          if (prop === "commitBatch" && typeof value === "function") {
            return (...args: unknown[]) => (failing ? Promise.reject(new Error("connection reset (test)")) : value.apply(target, args));
          }
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
    const crons = cronJobs();
    crons.interval("tick", { seconds: 1 }, ref.record, { kind: "tick" });
    const errors: string[] = [];
    const engine = await open(":memory:", { storage: flaky, extraModules: { crons: { default: crons } }, logError: (m) => errors.push(m) });
    await waitFor(async () => (await events(engine)).length >= 1, 3000);
    failing = true;
    await waitFor(async () => errors.includes("Scheduler pass failed"), 3000, "the outage never reached the scheduler loop");
    failing = false;
    // Storage is back: ordinary writes work again...
    await engine.runSystemMutation((txn) => txn.insert(engine.catalog.lookup("counters")!, { n: 1 }));
    const before = (await events(engine)).length;
    // ...and the cron goes on ticking.
    await sleep(2500);
    expect((await events(engine)).length).toBeGreaterThan(before);
  });
});

// ---------------------------------------------------------------------------------------------
// The cron evaluator against a brute-force crontab(5) matcher.

const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DOWS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
type Field = { set: Set<number>; star: boolean };
interface Brute {
  min: Field;
  hour: Field;
  dom: Field;
  mon: Field;
  dow: Field;
}
interface Fields {
  minute: number;
  hour: number;
  day: number;
  month: number;
  weekday: number;
}

function bruteField(text: string, min: number, max: number, names?: string[], dow = false): Field {
  const set = new Set<number>();
  const num = (s: string) => {
    const i = names ? names.indexOf(s.toLowerCase()) : -1;
    return i >= 0 ? i + (names === MONTHS ? 1 : 0) : Number(s);
  };
  for (const part of text.split(",")) {
    const [range, stepText] = part.split("/");
    const step = stepText === undefined ? 1 : Number(stepText);
    let lo: number, hi: number;
    if (range === "*") [lo, hi] = [min, max];
    else if (range!.includes("-")) [lo, hi] = range!.split("-").map(num) as [number, number];
    else lo = hi = num(range!);
    for (let x = lo; x <= hi; x += step) set.add(dow && x === 7 ? 0 : x);
  }
  return { set, star: text.startsWith("*") };
}

function bruteParse(expression: string): Brute {
  const [mi, h, dm, mo, dw] = expression.trim().split(/\s+/) as [string, string, string, string, string];
  return { min: bruteField(mi, 0, 59), hour: bruteField(h, 0, 23), dom: bruteField(dm, 1, 31), mon: bruteField(mo, 1, 12, MONTHS), dow: bruteField(dw, 0, 7, DOWS, true) };
}

/** crontab(5): both day fields restricted (neither starts with "*") means either matches. */
function bruteMatches(b: Brute, f: Fields): boolean {
  if (!b.min.set.has(f.minute) || !b.hour.set.has(f.hour) || !b.mon.set.has(f.month)) return false;
  const d = b.dom.set.has(f.day);
  const w = b.dow.set.has(f.weekday);
  return b.dom.star || b.dow.star ? d && w : d || w;
}

function utcFields(t: number): Fields {
  const d = new Date(t);
  return { minute: d.getUTCMinutes(), hour: d.getUTCHours(), day: d.getUTCDate(), month: d.getUTCMonth() + 1, weekday: d.getUTCDay() };
}

/** The first minute strictly after `after` that matches in UTC, looking at most `limitDays` ahead (day by day, then hour and minute). */
function bruteNextUtc(b: Brute, after: number, limitDays: number): number | null {
  const day0 = Math.floor(after / 86_400_000) * 86_400_000;
  const hours = [...b.hour.set].sort((x, y) => x - y);
  const minutes = [...b.min.set].sort((x, y) => x - y);
  for (let d = 0; d <= limitDays; d++) {
    const start = day0 + d * 86_400_000;
    const f = utcFields(start);
    if (!b.mon.set.has(f.month)) continue;
    const dm = b.dom.set.has(f.day);
    const dw = b.dow.set.has(f.weekday);
    if (!(b.dom.star || b.dow.star ? dm && dw : dm || dw)) continue;
    for (const h of hours) for (const m of minutes) {
      const t = start + h * 3_600_000 + m * 60_000;
      if (t > after) return t;
    }
  }
  return null;
}

const zoneFormats = new Map<string, Intl.DateTimeFormat>();
function zonedFields(t: number, timeZone: string): Fields & { key: string } {
  let format = zoneFormats.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", { timeZone, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric", weekday: "short" });
    zoneFormats.set(timeZone, format);
  }
  const p = Object.fromEntries(format.formatToParts(new Date(t)).map((x) => [x.type, x.value]));
  return {
    minute: Number(p["minute"]),
    hour: Number(p["hour"]),
    day: Number(p["day"]),
    month: Number(p["month"]),
    weekday: ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"].indexOf(p["weekday"]!),
    key: `${p["year"]}-${p["month"]}-${p["day"]} ${p["hour"]}:${p["minute"]}`,
  };
}

/**
 * In a time zone: the first instant strictly after `after` whose wall time matches and that
 * wall time has not occurred already (a repeated hour when clocks go back fires once).
 * Wall times that do not exist (clocks going forward) never match here.
 */
function bruteNextZoned(b: Brute, after: number, timeZone: string, limitMinutes: number): number | null {
  let t = Math.floor(after / 60_000) * 60_000 + 60_000;
  const seen = new Set<string>();
  for (let s = t - 3 * 3_600_000; s < t; s += 60_000) seen.add(zonedFields(s, timeZone).key);
  for (let i = 0; i < limitMinutes; i++, t += 60_000) {
    const f = zonedFields(t, timeZone);
    if (!seen.has(f.key) && bruteMatches(b, f)) return t;
    seen.add(f.key);
  }
  return null;
}

function randomExpression(rand: () => number): string {
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const atom = (lo: number, hi: number, names?: string[], nameBase = 0): string => {
    const show = (x: number) => (names && rand() < 0.3 && names[x - nameBase] !== undefined ? names[x - nameBase]! : String(x));
    switch (int(0, 5)) {
      case 0:
        return "*";
      case 2: {
        const a = int(lo, hi);
        return `${show(a)}-${show(int(a, hi))}`;
      }
      case 3:
        return `*/${int(1, hi - lo)}`;
      case 4: {
        const a = int(lo, hi);
        return `${a}-${int(a, hi)}/${int(1, hi - lo)}`;
      }
      default:
        return show(int(lo, hi));
    }
  };
  const field = (lo: number, hi: number, names?: string[], nameBase = 0) => {
    const parts = Array.from({ length: rand() < 0.7 ? 1 : int(2, 3) }, () => atom(lo, hi, names, nameBase));
    return parts.length > 1 ? parts.filter((p) => p !== "*").join(",") || "*" : parts[0]!;
  };
  return [
    field(0, 59),
    field(0, 23),
    rand() < 0.4 ? "*" : field(1, 31),
    rand() < 0.6 ? "*" : field(1, 12, MONTHS, 1),
    rand() < 0.4 ? "*" : field(0, 7, DOWS, 0),
  ].join(" ");
}

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString().slice(0, 16));

describe("cron evaluator against brute force", () => {
  it("agrees with a minute-by-minute crontab(5) matcher on random expressions in UTC", () => {
    const rand = seededRandom(20260101);
    const mismatches: string[] = [];
    for (let i = 0; i < 2000; i++) {
      const expression = randomExpression(rand);
      const parsed = parseCron(expression);
      const brute = bruteParse(expression);
      let at = Date.UTC(2020, 0, 1) + Math.floor(rand() * 8 * 365 * 86_400_000) + Math.floor(rand() * 60_000);
      for (let k = 0; k < 4; k++) {
        const want = bruteNextUtc(brute, at, 366 * 3);
        let got: number | null = null;
        try {
          got = nextCronTime(parsed, at);
        } catch {
          // never matches
        }
        if (want === null) break; // rarer than every 3 years: not compared
        if (want !== got) {
          mismatches.push(`${expression} after ${iso(at)}: want ${iso(want)}, got ${iso(got)}`);
          break;
        }
        at = want;
      }
    }
    expect(mismatches).toEqual([]);
  });

  it("agrees with the matcher in time zones with daylight saving, away from month ends", () => {
    const rand = seededRandom(7);
    const zones = ["Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "America/Santiago", "Pacific/Chatham", "Europe/London", "America/St_Johns"];
    const mismatches: string[] = [];
    for (let i = 0; i < 40; i++) {
      // Day fields without 29-31, so that the month-end problem below does not show here.
      let expression = randomExpression(rand);
      const parts = expression.split(" ");
      if (/(29|30|31)/.test(parts[2]!)) parts[2] = "*";
      expression = parts.join(" ");
      const timeZone = zones[i % zones.length]!;
      const parsed = parseCron(expression, timeZone);
      const brute = bruteParse(expression);
      let at = Date.UTC(2024, 0, 1) + Math.floor(rand() * 4 * 365 * 86_400_000);
      for (let k = 0; k < 3; k++) {
        const want = bruteNextZoned(brute, at, timeZone, 60 * 24 * 40);
        const got = nextCronTime(parsed, at);
        if (want === null) break;
        // A wall time that does not exist (clocks going forward) is moved, not dropped: the
        // matcher skips it, so only compare when the evaluator's answer is a real matching wall time.
        if (want !== got && bruteMatches(brute, zonedFields(got, timeZone)) ) {
          mismatches.push(`${timeZone} ${expression} after ${iso(at)}: want ${iso(want)}, got ${iso(got)}`);
          break;
        }
        at = Math.max(want, got);
      }
    }
    expect(mismatches).toEqual([]);
  }, 90_000);

  it("fires a fixed time once when clocks go back, and once (late) on the day clocks go forward", () => {
    const zone = "America/New_York";
    const times = (expression: string, from: string, count: number) => {
      const parsed = parseCron(expression, zone);
      const out: string[] = [];
      for (let at = Date.parse(from), i = 0; i < count; i++) out.push(iso((at = nextCronTime(parsed, at)))!);
      return out;
    };
    // 1 November 2026: 01:00-01:59 happens twice (EDT, then EST).
    expect(times("30 1 * * *", "2026-10-31T12:00Z", 3)).toEqual(["2026-11-01T05:30", "2026-11-02T06:30", "2026-11-03T06:30"]);
    // 8 March 2026: 02:30 does not exist; the run still happens that day, once.
    const spring = times("30 2 * * *", "2026-03-07T12:00Z", 3);
    expect(spring[0]!.startsWith("2026-03-08")).toBe(true);
    expect(spring.slice(1)).toEqual(["2026-03-09T06:30", "2026-03-10T06:30"]);
  });

  it("does not skip the first days of March when the day-of-month list has days February lacks", () => {
    const expressions = ["0 3 1,31 * *", "0 3 1,30 * *", "0 3 2,31 * *", "0 0 1,15,31 * *", "0 0 31 * mon", "30 12 1-2,30 * *"];
    const mismatches: string[] = [];
    for (const expression of expressions) {
      const parsed = parseCron(expression);
      const brute = bruteParse(expression);
      for (const year of [2025, 2026, 2027, 2028]) {
        for (let day = 1; day <= 28; day++) {
          const at = Date.UTC(year, 1, day, 12);
          const want = bruteNextUtc(brute, at, 62);
          const got = nextCronTime(parsed, at);
          if (want !== got) mismatches.push(`${expression} after ${iso(at)}: want ${iso(want)}, got ${iso(got)}`);
        }
      }
    }
    // The first mismatch of each expression.
    expect(expressions.map((e) => mismatches.find((m) => m.startsWith(e + " "))).filter(Boolean)).toEqual([]);
  });

  it('reads "sun-sun" as Sunday only (crontab: a range from 0 to 0)', () => {
    const parsed = parseCron("0 12 * * sun-sun");
    const days: number[] = [];
    for (let at = Date.parse("2026-01-01T00:00Z"), i = 0; i < 3; i++) days.push(new Date((at = nextCronTime(parsed, at))).getUTCDay());
    expect(days).toEqual([0, 0, 0]);
  });
});
