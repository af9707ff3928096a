import { describe, expect, it } from "vitest";
import { available, giveBack, refilledBefore, stepMs, take, type BucketPoint } from "./rateLimit.js";

/** A fixed sequence of pseudo-random numbers in [0, 1), so that every run checks the same histories. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

/** The textbook bucket: the level right after the last take, at the time of that take. */
function referenceTake(row: BucketPoint | null, limit: { limit: number; windowMs: number }, now: number): BucketPoint | { retryAfterMs: number } {
  const level = row ? Math.min(limit.limit, row.tokens + ((now - row.updatedAt) * limit.limit) / limit.windowMs) : limit.limit;
  if (level < 1 - 1e-9) return { retryAfterMs: Math.ceil(((1 - level) * limit.windowMs) / limit.limit) };
  return { tokens: level - 1, updatedAt: now };
}

describe("rate-limit buckets", () => {
  const limits = [
    { limit: 30, windowMs: 3_600_000 },
    { limit: 5, windowMs: 900_000 },
    { limit: 3, windowMs: 100 },
    { limit: 3, windowMs: 97 },
  ];

  it.each(limits)("refuses and allows exactly as a bucket that stores its last take ($limit per $windowMs ms)", (limit) => {
    const next = random(limit.limit);
    let stepped: BucketPoint | null = null;
    let reference: BucketPoint | null = null;
    let now = 1_700_000_000_000;
    let refused = 0;
    for (let i = 0; i < 2_000; i++) {
      // Bursts and pauses: mostly within a step, sometimes a whole window later.
      now += Math.floor(next() < 0.9 ? next() * stepMs(limit.windowMs) * 0.3 : next() * limit.windowMs * 1.5);
      const a = take(stepped, limit, now);
      const b = referenceTake(reference, limit, now);
      expect("retryAfterMs" in a, `take ${i}`).toBe("retryAfterMs" in b);
      if ("retryAfterMs" in a && "retryAfterMs" in b) {
        // Rounded up to whole ms from levels that can differ in the last bits of a double.
        expect(Math.abs(a.retryAfterMs - b.retryAfterMs)).toBeLessThanOrEqual(1);
        refused++;
        continue;
      }
      stepped = a as BucketPoint;
      reference = b as BucketPoint;
      expect(available(stepped, limit, now)).toBeCloseTo(available(reference, limit, now), 9);
    }
    // The histories must exercise both answers, or the comparison says little.
    expect(refused).toBeGreaterThan(10);
    expect(refused).toBeLessThan(1_990);
  });

  it.each(limits)("a token given back raises the level by one, never above the limit ($limit per $windowMs ms)", (limit) => {
    const next = random(limit.limit + 7);
    // The stored row (null: no row, a full bucket) against the level itself, kept exactly.
    let row: BucketPoint | null = null;
    let level = limit.limit;
    let at = 1_700_000_000_000;
    let now = at;
    let outstanding = 0;
    let gaveBack = 0;
    for (let i = 0; i < 2_000; i++) {
      now += Math.floor(next() * stepMs(limit.windowMs) * 0.5);
      level = Math.min(limit.limit, level + ((now - at) * limit.limit) / limit.windowMs);
      at = now;
      if (outstanding > 0 && next() < 0.4) {
        // A sign-in that took a token and then turned out to count for nothing.
        row = row === null ? null : giveBack(row, limit, now);
        level = Math.min(limit.limit, level + 1);
        outstanding--;
        gaveBack++;
      } else {
        const taken = take(row, limit, now);
        if ("retryAfterMs" in taken) {
          expect(level, `take ${i}`).toBeLessThan(1 + 1e-9);
          continue;
        }
        row = taken;
        level -= 1;
        outstanding++;
      }
      expect(available(row, limit, now), `step ${i}`).toBeCloseTo(level, 9);
      // A bucket given back to full keeps no row; one below full keeps one at a step start,
      // no lower than a take leaves one (rule 4: cleanup's wait covers it).
      if (row !== null) {
        expect(row.updatedAt % stepMs(limit.windowMs)).toBe(0);
        expect(row.tokens).toBeGreaterThanOrEqual(-(stepMs(limit.windowMs) * limit.limit) / limit.windowMs - 1e-9);
      }
    }
    expect(gaveBack).toBeGreaterThan(100);
  });

  it("moves updatedAt once per step, so the row's by_updatedAt key does not change on every take", () => {
    const limit = { limit: 1_000, windowMs: 3_600_000 };
    const step = stepMs(limit.windowMs);
    expect(step).toBe(60_000);
    let row: BucketPoint | null = null;
    const seen = new Set<number>();
    // 600 takes a second apart: ten minutes, so ten steps.
    for (let i = 0; i < 600; i++) {
      const now = 1_700_000_040_000 + i * 1_000;
      row = take(row, limit, now) as BucketPoint;
      expect(row.updatedAt % step).toBe(0);
      expect(row.updatedAt).toBeLessThanOrEqual(now);
      expect(now - row.updatedAt).toBeLessThan(step);
      seen.add(row.updatedAt);
    }
    expect(seen.size).toBe(10);
  });

  it("counts a bucket as refilled (deletable) only once it is full whatever it held", () => {
    const longest = limits[0]!;
    // The worst case for cleanup: a bucket emptied by takes at the very end of a step, whose
    // stored point lies a whole step earlier, below zero.
    const step = stepMs(longest.windowMs);
    expect(step).toBe(60_000);
    let row: BucketPoint | null = null;
    const end = 1_699_999_980_000 - 1; // just before a step starts (a multiple of 60 s)
    for (let i = 0; i < longest.limit; i++) row = take(row, longest, end) as BucketPoint;
    expect(available(row, longest, end)).toBeCloseTo(0, 9);
    expect(row!.updatedAt).toBe(end + 1 - step);
    expect(row!.tokens).toBeLessThan(0);
    // Deletable from the first moment its updatedAt is below the cleanup bound, and full then.
    const firstDeletable = row!.updatedAt + longest.windowMs + step + 1;
    expect(row!.updatedAt < refilledBefore(limits, firstDeletable)).toBe(true);
    expect(row!.updatedAt < refilledBefore(limits, firstDeletable - 1)).toBe(false);
    expect(available(row, longest, firstDeletable)).toBe(longest.limit);
    // Every shorter limit refills sooner.
    for (const limit of limits) expect(available(row, limit, firstDeletable)).toBe(limit.limit);
  });
});
