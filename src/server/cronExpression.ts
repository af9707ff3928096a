/**
 * Standard five-field cron expressions (`minute hour day-of-month month day-of-week`, UTC),
 * with `*`, lists (`1,15`), ranges (`1-5`), steps (`*\/10`, `0-30/5`) and day/month names.
 * As in classic cron, when both day-of-month and day-of-week are restricted, a day matching
 * either one fires.
 */
import { walkinError } from "../values/errors.js";

interface Field {
  min: number;
  max: number;
  names?: string[];
}

const FIELDS: Field[] = [
  { min: 0, max: 59 },
  { min: 0, max: 23 },
  { min: 1, max: 31 },
  { min: 1, max: 12, names: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"] },
  { min: 0, max: 7, names: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"] },
];

export interface ParsedCron {
  minutes: Set<number>;
  hours: Set<number>;
  days: Set<number>;
  months: Set<number>;
  weekdays: Set<number>;
  dayRestricted: boolean;
  weekdayRestricted: boolean;
}

export function parseCron(expression: string): ParsedCron {
  const parts = typeof expression === "string" ? expression.trim().split(/\s+/) : [];
  if (parts.length !== 5) {
    throw walkinError("MISUSE", `Cron expression "${expression}" must have 5 fields: minute hour day-of-month month day-of-week (e.g. "0 9 * * mon-fri").`);
  }
  const sets = parts.map((part, i) => parseField(part, FIELDS[i]!, expression));
  const weekdays = sets[4]!;
  if (weekdays.has(7)) weekdays.add(0); // 7 is Sunday too
  return {
    minutes: sets[0]!,
    hours: sets[1]!,
    days: sets[2]!,
    months: sets[3]!,
    weekdays,
    dayRestricted: parts[2] !== "*",
    weekdayRestricted: parts[4] !== "*",
  };
}

function parseField(text: string, field: Field, expression: string): Set<number> {
  const values = new Set<number>();
  const bad = (why: string) => walkinError("MISUSE", `Cron expression "${expression}": "${text}" ${why}.`);
  const value = (token: string) => {
    const named = field.names?.indexOf(token.toLowerCase()) ?? -1;
    const n = named >= 0 ? named + (field.min === 1 ? 1 : 0) : Number(token);
    if (!Number.isInteger(n) || n < field.min || n > field.max) throw bad(`is out of range ${field.min}-${field.max}`);
    return n;
  };
  for (const item of text.split(",")) {
    const [range, stepText] = item.split("/");
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1) throw bad("has an invalid step");
    let from: number;
    let to: number;
    if (range === "*") [from, to] = [field.min, field.max];
    else if (range!.includes("-")) {
      const [a, b] = range!.split("-");
      [from, to] = [value(a!), value(b!)];
      if (from > to) throw bad("has a range that runs backwards");
    } else {
      from = value(range!);
      to = stepText === undefined ? from : field.max;
    }
    for (let n = from; n <= to; n += step) values.add(n);
  }
  return values;
}

/** The first matching minute strictly after `after` (ms since epoch, UTC). */
export function nextCronTime(cron: ParsedCron, after: number): number {
  const date = new Date(Math.floor(after / 60_000) * 60_000 + 60_000);
  // Bounded, so an expression that can never match (the 30th of February) fails instead of
  // looping; 30 years covers every satisfiable one (Feb 29 on a given weekday recurs within 28).
  for (let guard = 0; guard < 60 * 24 * 366 * 30; ) {
    if (!cron.months.has(date.getUTCMonth() + 1) || !dayMatches(cron, date)) {
      date.setUTCDate(date.getUTCDate() + 1);
      date.setUTCHours(0, 0, 0, 0);
      guard += 1440;
      continue;
    }
    if (!cron.hours.has(date.getUTCHours())) {
      date.setUTCHours(date.getUTCHours() + 1, 0, 0, 0);
      guard += 60;
      continue;
    }
    if (!cron.minutes.has(date.getUTCMinutes())) {
      date.setUTCMinutes(date.getUTCMinutes() + 1, 0, 0);
      guard += 1;
      continue;
    }
    return date.getTime();
  }
  throw walkinError("MISUSE", "This cron expression never matches a real date (e.g. February 30).");
}

function dayMatches(cron: ParsedCron, date: Date): boolean {
  const dom = cron.days.has(date.getUTCDate());
  const dow = cron.weekdays.has(date.getUTCDay());
  if (cron.dayRestricted && cron.weekdayRestricted) return dom || dow;
  return dom && dow;
}
