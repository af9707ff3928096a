/** Cron expressions against crontab(5): the day-of-month / day-of-week rule, steps, names, time zones. */
import { describe, expect, it } from "vitest";
import { nextCronTime, parseCron } from "./cronExpression.js";

const DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/** The next `count` times after `from` (ISO), as "YYYY-MM-DDTHH:MM day" in UTC. */
function next(expression: string, from: string, count = 5, timeZone?: string): string[] {
  const parsed = parseCron(expression, timeZone);
  const out: string[] = [];
  let at = Date.parse(from);
  for (let i = 0; i < count; i++) {
    at = nextCronTime(parsed, at);
    const date = new Date(at);
    out.push(`${date.toISOString().slice(0, 16)} ${DAYS[date.getUTCDay()]}`);
  }
  return out;
}

describe("crontab(5) semantics", () => {
  it("treats a day field that starts with * as unrestricted, even stepped: */2 and mon means odd days that are Mondays", () => {
    // January 2026: Mondays are the 5th, 12th, 19th, 26th; odd Mondays: 5th, 19th.
    expect(next("0 0 */2 * mon", "2026-01-01T00:00Z", 4)).toEqual(["2026-01-05T00:00 mon", "2026-01-19T00:00 mon", "2026-02-09T00:00 mon", "2026-02-23T00:00 mon"]);
    expect(next("0 0 * * */2", "2026-01-01T00:00Z", 3)).toEqual(["2026-01-03T00:00 sat", "2026-01-04T00:00 sun", "2026-01-06T00:00 tue"]);
  });

  it("fires on either day field when both are restricted", () => {
    expect(next("0 0 1,15 * mon", "2026-01-01T00:00Z", 5)).toEqual([
      "2026-01-05T00:00 mon",
      "2026-01-12T00:00 mon",
      "2026-01-15T00:00 thu",
      "2026-01-19T00:00 mon",
      "2026-01-26T00:00 mon",
    ]);
    expect(next("30 6 13 * fri", "2026-02-01T00:00Z", 3)).toEqual(["2026-02-06T06:30 fri", "2026-02-13T06:30 fri", "2026-02-20T06:30 fri"]);
  });

  it("reads the common forms: every 15 minutes, weekdays at 9, ranges with steps, names, 7 as Sunday", () => {
    expect(next("*/15 * * * *", "2026-01-01T10:07Z", 3)).toEqual(["2026-01-01T10:15 thu", "2026-01-01T10:30 thu", "2026-01-01T10:45 thu"]);
    expect(next("0 9 * * mon-fri", "2026-01-02T09:00Z", 2)).toEqual(["2026-01-05T09:00 mon", "2026-01-06T09:00 tue"]);
    expect(next("0-30/10 8 * * *", "2026-01-01T00:00Z", 4)).toEqual(["2026-01-01T08:00 thu", "2026-01-01T08:10 thu", "2026-01-01T08:20 thu", "2026-01-01T08:30 thu"]);
    expect(next("0 0 1 jan,jul *", "2026-01-01T00:00Z", 2)).toEqual(["2026-07-01T00:00 wed", "2027-01-01T00:00 fri"]);
    expect(next("0 0 * * 7", "2026-01-01T00:00Z", 1)).toEqual(next("0 0 * * sun", "2026-01-01T00:00Z", 1));
    expect(next("0 0 29 2 *", "2026-01-01T00:00Z", 1)).toEqual(["2028-02-29T00:00 tue"]);
  });

  it("is strictly after the given time", () => {
    expect(next("0 9 * * *", "2026-01-01T09:00Z", 1)).toEqual(["2026-01-02T09:00 fri"]);
  });

  it("follows a time zone across daylight saving", () => {
    // Paris moves from UTC+1 to UTC+2 on 29 March 2026.
    expect(next("0 9 * * *", "2026-03-27T12:00Z", 3, "Europe/Paris")).toEqual(["2026-03-28T08:00 sat", "2026-03-29T07:00 sun", "2026-03-30T07:00 mon"]);
    expect(next("0 9 * * *", "2026-03-27T12:00Z", 1, "UTC")).toEqual(["2026-03-28T09:00 sat"]);
  });

  it("refuses what it cannot read, saying why", () => {
    expect(() => parseCron("0 9 * *")).toThrow('Cron expression "0 9 * *" must have 5 fields: minute hour day-of-month month day-of-week (e.g. "0 9 * * mon-fri").');
    expect(() => parseCron("61 * * * *")).toThrow(/Cron expression "61 \* \* \* \*": Invalid value for minute: 61/);
    expect(() => parseCron("0 0 ? * *")).toThrow(/"\?" is not crontab syntax/);
    expect(() => parseCron("0 9 * * *", "Mars/Olympus")).toThrow('Cron time zone "Mars/Olympus" is not an IANA time zone name; use one like "UTC", "Europe/Paris" or "America/New_York".');
    expect(() => nextCronTime(parseCron("0 0 30 2 *"), Date.parse("2026-01-01T00:00Z"))).toThrow(/never matches a real date/);
  });
});
