/**
 * Diagnostic (not part of `npm run bench:scale`): does a notification that arrives while an
 * engine's refresh is in flight get lost until the next 200 ms poll?
 *
 *   node --import tsx bench/scale/notificationWindow.ts
 *
 * Two engines in this process share one schema of a fresh database. Engine Y's storage is
 * wrapped so that every `commitsSince` answer is held for HOLD_MS after PostgreSQL gave it: a
 * refresh is then "in flight" for HOLD_MS with a view that predates anything committed meanwhile,
 * as a slow read on a busy node would be. Engine X commits at random moments; a sample is the
 * time from X's commit resolving to Y's `onCommit` reporting it.
 *
 * If a notification arriving during a refresh were folded into another refresh, no sample would
 * take much longer than HOLD_MS plus a read. If it is dropped (`Engine.watchOtherEngines` returns
 * while `pending`), the samples whose notification fell into a held refresh wait for the next
 * poll: up to 200 ms.
 */
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { Engine } from "../../src/engine/engine.js";
import { defineSchema, defineTable, mutation } from "../../src/server/index.js";
import { openPostgresStorage } from "../../src/storage/postgres/index.js";
import { v } from "../../src/values/index.js";
import { createBenchDatabase } from "./database.js";

const HOLD_MS = 40;
const SAMPLES = Number(process.env.SAMPLES ?? 100);

const schema = defineSchema({ notes: defineTable({ n: v.number() }) });
const modules = { notes: { add: mutation({ args: { n: v.number() }, handler: (ctx, { n }) => ctx.db.insert("notes", { n }) }) } };

const database = await createBenchDatabase();
try {
  const x = await Engine.open({ storage: await openPostgresStorage({ url: database.url, schema: "w", node: "X" }), schema, modules, runScheduler: false });
  const yStorage = await openPostgresStorage({ url: database.url, schema: "w", node: "Y" });
  const read = yStorage.commitsSince.bind(yStorage);
  yStorage.commitsSince = async (...args: Parameters<typeof read>) => {
    const view = await read(...args);
    await sleep(HOLD_MS);
    return view;
  };
  const y = await Engine.open({ storage: yStorage, schema, modules, runScheduler: false });
  const heard = new Map<number, number>();
  y.onCommit((record) => heard.set(record.ts, performance.now()));
  const delays: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    await sleep(Math.random() * 200);
    const { ts } = await x.runMutation("notes:add", { n: i });
    const committed = performance.now();
    for (let waited = 0; !heard.has(ts) && waited < 2_000; waited += 2) await sleep(2);
    delays.push(heard.has(ts) ? Math.max(0, heard.get(ts)! - committed) : Number.POSITIVE_INFINITY);
  }
  await x.close();
  await y.close();
  delays.sort((a, b) => a - b);
  const at = (q: number) => delays[Math.min(delays.length - 1, Math.floor(q * delays.length))]!.toFixed(1);
  const beyond = delays.filter((d) => d > HOLD_MS * 2 + 20).length;
  console.log(`refreshes held ${HOLD_MS} ms; ${SAMPLES} commits on X at random moments; Y learned of them after (ms):`);
  console.log(`p50 ${at(0.5)}, p90 ${at(0.9)}, p99 ${at(0.99)}, max ${at(1)}`);
  console.log(`${beyond} of ${SAMPLES} took longer than ${HOLD_MS * 2 + 20} ms (a held refresh, then one more read, would be done by then)`);
} finally {
  await database.drop();
}
