/**
 * `cronJobs()`: recurring functions, declared in `functions/crons.ts`:
 *
 * ```ts
 * const crons = cronJobs();
 * crons.interval("clear presence", { minutes: 5 }, internal.presence.clear);
 * crons.daily("digest", { hourUTC: 9, minuteUTC: 0 }, internal.mail.digest, { kind: "daily" });
 * crons.cron("weekdays", "0 9 * * mon-fri", internal.reports.run);
 * crons.cron("paris mornings", { expression: "0 9 * * mon-fri", timeZone: "Europe/Paris" }, internal.reports.run);
 * export default crons;
 * ```
 * Each run is a scheduled function, so it is durable and runs once per due time even
 * across restarts.
 */
import { walkinError } from "../values/errors.js";
import { checkValue, type Value } from "../values/index.js";
import { getFunctionName, type FunctionReference, type OptionalRestArgs } from "./api.js";
import { nextCronTime, parseCron } from "./cronExpression.js";

export type CronSchedule = { kind: "interval"; ms: number } | { kind: "cron"; expression: string; timeZone?: string };

/** A cron expression in an IANA time zone (daylight saving followed); a plain string is UTC. */
export interface ZonedCronExpression {
  expression: string;
  timeZone: string;
}

export interface CronJob {
  name: string;
  schedule: CronSchedule;
  functionName: string;
  args: Record<string, Value>;
}

type Ref = FunctionReference<"mutation" | "action", any>;

const CRONS_BRAND = Symbol.for("walkin.cronJobs");

export class CronJobs {
  readonly jobs = new Map<string, CronJob>();
  /** Recognised by brand, so crons defined with another copy of the package still run. */
  readonly [CRONS_BRAND] = true;

  /** Every `seconds`/`minutes`/`hours` (summed), starting one interval after deployment. */
  interval<F extends Ref>(name: string, every: { seconds?: number; minutes?: number; hours?: number }, fn: F, ...args: OptionalRestArgs<F>) {
    const ms = ((every.hours ?? 0) * 3600 + (every.minutes ?? 0) * 60 + (every.seconds ?? 0)) * 1000;
    if (!Number.isFinite(ms) || ms < 1000) throw walkinError("MISUSE", `cron "${name}": the interval must be at least 1 second.`);
    return this.add(name, { kind: "interval", ms }, fn, args[0]);
  }
  hourly<F extends Ref>(name: string, at: { minuteUTC: number }, fn: F, ...args: OptionalRestArgs<F>) {
    return this.add(name, { kind: "cron", expression: `${at.minuteUTC} * * * *` }, fn, args[0]);
  }
  daily<F extends Ref>(name: string, at: { hourUTC: number; minuteUTC: number }, fn: F, ...args: OptionalRestArgs<F>) {
    return this.add(name, { kind: "cron", expression: `${at.minuteUTC} ${at.hourUTC} * * *` }, fn, args[0]);
  }
  weekly<F extends Ref>(name: string, at: { dayOfWeek: "sunday" | "monday" | "tuesday" | "wednesday" | "thursday" | "friday" | "saturday"; hourUTC: number; minuteUTC: number }, fn: F, ...args: OptionalRestArgs<F>) {
    return this.add(name, { kind: "cron", expression: `${at.minuteUTC} ${at.hourUTC} * * ${String(at.dayOfWeek).slice(0, 3)}` }, fn, args[0]);
  }
  monthly<F extends Ref>(name: string, at: { day: number; hourUTC: number; minuteUTC: number }, fn: F, ...args: OptionalRestArgs<F>) {
    return this.add(name, { kind: "cron", expression: `${at.minuteUTC} ${at.hourUTC} ${at.day} * *` }, fn, args[0]);
  }
  /**
   * A five-field crontab expression (see docs/scheduling.md), in UTC, or in the time zone given
   * with `{ expression, timeZone }`.
   */
  cron<F extends Ref>(name: string, expression: string | ZonedCronExpression, fn: F, ...args: OptionalRestArgs<F>) {
    const schedule: CronSchedule =
      typeof expression === "object" && expression !== null
        ? { kind: "cron", expression: expression.expression, timeZone: expression.timeZone }
        : { kind: "cron", expression };
    return this.add(name, schedule, fn, args[0]);
  }

  private add(name: string, schedule: CronSchedule, fn: Ref, args: unknown): this {
    if (typeof name !== "string" || name.length === 0) throw walkinError("MISUSE", "Every cron job needs a non-empty name.");
    if (this.jobs.has(name)) throw walkinError("MISUSE", `Cron job "${name}" is declared twice; names must be unique.`);
    if (schedule.kind === "cron") parseCron(schedule.expression, schedule.timeZone); // fail at definition, not at run time
    try {
      checkValue(args ?? {}, "args"); // as for a schedule call: a Date, a function… can never be sent
    } catch (error) {
      throw walkinError("MISUSE", `cron "${name}": ${(error as Error).message}`);
    }
    this.jobs.set(name, { name, schedule, functionName: getFunctionName(fn), args: (args ?? {}) as Record<string, Value> });
    return this;
  }
}

/** Convex's name for the type `cronJobs()` returns. */
export type Crons = CronJobs;

/** True for a `cronJobs()` value, from any copy of the package. */
export function isCronJobs(value: unknown): value is CronJobs {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[CRONS_BRAND] === true;
}

export function cronJobs(): CronJobs {
  return new CronJobs();
}

/** When a job with this schedule runs next, strictly after `after`. */
export function nextRunAfter(schedule: CronSchedule, after: number): number {
  return schedule.kind === "interval" ? after + schedule.ms : nextCronTime(parseCron(schedule.expression, schedule.timeZone), after);
}
