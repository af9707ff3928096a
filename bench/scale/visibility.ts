/**
 * Case 2, decomposed: how long until another engine on the same database learns of a commit,
 * without WebSockets, clients or query re-runs. Two engines in this process (X and Y, each
 * with its own pool and LISTEN connection, as two nodes would have) share one schema; one
 * sample is from `X.runMutation(insert)` being called to Y's `onCommit` reporting a commit at
 * or after the mutation's timestamp (Y learned of it from a notification, or from its 200 ms
 * poll of the commit log). Samples are paced 5-25 ms apart at random, so they land at every
 * phase of Y's poll.
 *
 * The same figure for X's `runMutation` resolving is the commit itself; the difference is the
 * notification's trip and Y's read of the commit log.
 */
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { Engine } from "../../src/engine/engine.js";
import { defineSchema, defineTable, mutation } from "../../src/server/index.js";
import { openPostgresStorage } from "../../src/storage/postgres/index.js";
import { v } from "../../src/values/index.js";
import { keyOf, payloadOf } from "../engine/workload.js";

const docFields = { key: v.string(), n: v.number(), payload: v.string() };
const schema = defineSchema({ docs: defineTable(docFields).index("by_key", ["key"]) });
const modules = { docs: { insert: mutation({ args: docFields, handler: (ctx, doc) => ctx.db.insert("docs", doc) }) } };

export interface VisibilityResult {
  /** ms, sorted: call → X's runMutation resolved (committed). */
  own: number[];
  /** ms, sorted: call → Y's onCommit. */
  other: number[];
  missed: number;
}

const TIMEOUT_MS = 5_000;

export async function crossEngineVisibility(url: string, pgSchema: string, samples: number): Promise<VisibilityResult> {
  const open = async (node: string) =>
    Engine.open({ storage: await openPostgresStorage({ url, schema: pgSchema, node }), schema, modules, runScheduler: false });
  const x = await open("bench-X");
  const y = await open("bench-Y");
  const result: VisibilityResult = { own: [], other: [], missed: 0 };
  try {
    let n = 3_000_000;
    const sample = async (record: boolean) => {
      const i = n++;
      let ts = Number.POSITIVE_INFINITY;
      let resolveOther!: () => void;
      const otherDone = new Promise<void>((resolve) => (resolveOther = resolve));
      // Y may hear of the commit before X's runMutation returns its timestamp: keep every
      // commit time Y reports, and pick the first at or after the timestamp once it is known.
      const heard: Array<[number, number]> = [];
      const stopY = y.onCommit((r) => {
        heard.push([r.ts, performance.now()]);
        if (r.ts >= ts) resolveOther();
      });
      const timer = setTimeout(resolveOther, TIMEOUT_MS);
      const start = performance.now();
      const { ts: committed } = await x.runMutation("docs:insert", { key: keyOf(i), n: i, payload: payloadOf(i) });
      const acknowledged = performance.now();
      ts = committed;
      if (heard.some(([t]) => t >= ts)) resolveOther();
      await otherDone;
      clearTimeout(timer);
      stopY();
      const otherAt = heard.find(([t]) => t >= ts)?.[1] ?? null;
      if (!record) return;
      result.own.push(acknowledged - start);
      if (otherAt === null) result.missed++;
      else result.other.push(otherAt - start);
    };
    for (let s = 0; s < 20; s++) await sample(false);
    for (let s = 0; s < samples; s++) {
      await sample(true);
      await sleep(5 + Math.random() * 20);
    }
  } finally {
    await x.close();
    await y.close();
  }
  result.own.sort((a, b) => a - b);
  result.other.sort((a, b) => a - b);
  return result;
}
