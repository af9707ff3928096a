/**
 * Five-field cron expressions (`minute hour day-of-month month day-of-week`) as crontab(5)
 * means them, in UTC or an IANA time zone. Matching and daylight-saving arithmetic are
 * croner's; this module fixes the format and the one rule where cron dialects differ.
 *
 * The day rule (crontab(5), Vixie cron): when both day fields are restricted, a day matching
 * either one fires; a field that starts with `*` is unrestricted, even with a step. So
 * `0 0 1,15 * mon` fires on the 1st, the 15th and every Monday, but `0 0 *\/2 * mon` fires
 * only on odd-numbered days that are Mondays (croner's own OR rule would fire on both).
 *
 * Accepted per field: `*`, numbers, lists (`1,15`), ranges (`1-5`), steps (`*\/10`, `0-30/5`),
 * month and day names (`jan`, `mon-fri`), 7 as Sunday; croner's `L`, `W` and `#` also work.
 */
import { Cron } from "croner";
import { walkinError } from "../values/errors.js";

/** A validated expression, ready to compute its next times. */
export interface ParsedCron {
  readonly expression: string;
  readonly timeZone: string;
  readonly cron: Cron;
}

const FORMAT = `5 fields: minute hour day-of-month month day-of-week (e.g. "0 9 * * mon-fri")`;

/**
 * Validates `expression` (and `timeZone`, default "UTC"); throws a MISUSE error that says
 * what is wrong.
 *
 * @example
 * nextCronTime(parseCron("0 9 * * mon-fri", "Europe/Paris"), Date.now()) // next weekday 09:00 in Paris
 */
export function parseCron(expression: string, timeZone = "UTC"): ParsedCron {
  const parts = typeof expression === "string" ? expression.trim().split(/\s+/) : [];
  if (parts.length !== 5) throw walkinError("MISUSE", `Cron expression "${expression}" must have ${FORMAT}.`);
  if (parts.some((part) => part.includes("?"))) {
    throw walkinError("MISUSE", `Cron expression "${expression}": "?" is not crontab syntax; use "*" for "any".`);
  }
  if (!isTimeZone(timeZone)) {
    throw walkinError("MISUSE", `Cron time zone "${timeZone}" is not an IANA time zone name; use one like "UTC", "Europe/Paris" or "America/New_York".`);
  }
  // crontab's rule: OR only when neither day field starts with "*".
  const domAndDow = parts[2]!.startsWith("*") || parts[4]!.startsWith("*");
  // croner reads a range that ends at "sun" as ending at 7 (so "fri-sun" is 5-7), which makes
  // "sun-sun" 0-7, every day: it means Sunday alone.
  parts[4] = parts[4]!.replace(/(^|,)sun-sun(?=$|,|\/)/gi, "$10-0");
  try {
    return { expression, timeZone, cron: new Cron(parts.join(" "), { timezone: timeZone, domAndDow, paused: true }) };
  } catch (error) {
    throw walkinError("MISUSE", `Cron expression "${expression}": ${describe(error)}. It must have ${FORMAT}.`);
  }
}

/** The first matching minute strictly after `after` (ms since epoch). */
export function nextCronTime(parsed: ParsedCron, after: number): number {
  const next = parsed.cron.nextRun(new Date(after));
  if (!next) throw walkinError("MISUSE", `Cron expression "${parsed.expression}" never matches a real date (e.g. February 30).`);
  return next.getTime();
}

function isTimeZone(name: string): boolean {
  if (typeof name !== "string" || name.length === 0) return false;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message
    .replace(/^CronPattern: /, "")
    .replace(/\.$/, "")
    // croner counts days of the month and months from 0 internally, and reports that number.
    .replace(/^Invalid value for (day|month): (-?\d+)$/, (_all, field: string, n: string) => `Invalid value for ${field === "day" ? "day-of-month" : "month"}: ${Number(n) + 1}`);
}
