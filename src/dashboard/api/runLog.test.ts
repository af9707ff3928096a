/**
 * The run log: each run's console lines land in that run's entry even when runs interleave
 * at awaits, tokens printed by app code are masked, and what one run can make the log hold
 * is bounded.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import type { FunctionRunTrace } from "../../engine/engine.js";
import { RunLog } from "./runLog.js";

const trace = (path: string, caller: FunctionRunTrace["caller"] = { fromClient: true }): FunctionRunTrace => ({ type: "mutation", path, caller, retries: 0, error: null });
const tick = () => new Promise((resolve) => setImmediate(resolve));

afterEach(() => vi.restoreAllMocks());

describe("RunLog", () => {
  it("attributes console lines to the run that printed them, however runs interleave", async () => {
    vi.spyOn(process.stdout, "write").mockImplementation(() => true);
    const log = new RunLog();
    // a: logs, waits, logs; b starts while a waits and logs in between. Without a per-run
    // async context, "b1" would land in a's entry (the last run to start) or be lost.
    await Promise.all([
      log.observe(trace("a"), async () => {
        console.log("a1");
        await tick();
        await tick();
        console.log("a2");
      }),
      log.observe(trace("b"), async () => {
        await tick();
        console.log("b1", { n: 1 });
      }),
    ]);
    console.log("outside any run");
    const byPath = Object.fromEntries(log.recent().map((e) => [e.path, e.logs]));
    expect(byPath).toEqual({ a: ["a1", "a2"], b: ["b1 { n: 1 }"] });
  });

  it("records outcome, error, caller kind and retries; masks tokens; keeps a bounded number of lines", async () => {
    vi.spyOn(process.stdout, "write").mockImplementation(() => true);
    vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    const log = new RunLog((t) => (t.path === "jobs:cron" ? "cron" : null));
    const token = `wk1.${"a".repeat(22)}.${"b".repeat(43)}`;
    const current = `wk2.${"c".repeat(29)}.${"d".repeat(43)}`;
    await expect(
      log.observe(trace("auth:x"), async () => {
        console.log(`first ${current}`);
        for (let i = 0; i < 99; i++) console.log(`line ${i} ${token}`);
        throw new Error(`bad token ${token}`);
      }),
    ).rejects.toThrow();
    const retried = trace("jobs:cron", { kind: "scheduler" });
    await log.observe(retried, async () => {
      retried.retries = 2;
      console.error("careful");
    });
    const [failed, cron] = log.recent();
    expect(failed).toMatchObject({ path: "auth:x", caller: "client", outcome: "error", error: "bad token wk1.[redacted]" });
    expect(failed!.logs).toHaveLength(41);
    expect(failed!.logs[0]).toBe("first wk2.[redacted]");
    expect(failed!.logs[1]).toBe("line 0 wk1.[redacted]");
    expect(failed!.logs.at(-1)).toBe("… 60 more lines not kept");
    expect(cron).toMatchObject({ caller: "cron", retries: 2, outcome: "success", error: null, logs: ["[error] careful"] });
  });

  it("reports a query's failure that the engine returns as an outcome", async () => {
    const log = new RunLog();
    const query: FunctionRunTrace = { type: "query", path: "q", caller: {}, retries: 0, error: null };
    await log.observe(query, async () => {
      query.error = new Error("no such thing");
      return { outcome: { ok: false } };
    });
    expect(log.recent()[0]).toMatchObject({ caller: "server", outcome: "error", error: "no such thing" });
  });

  it("keeps the newest 2,000 runs", async () => {
    const log = new RunLog();
    for (let i = 0; i < 2_050; i++) await log.observe(trace(`f${i}`), async () => null);
    const recent = log.recent(5_000);
    expect(recent).toHaveLength(2_000);
    expect(recent[0]!.path).toBe("f50");
    expect(log.percentiles().p50).not.toBeNull();
  });
});
