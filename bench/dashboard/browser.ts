/**
 * The dashboard page under load, in Chromium: the Logs screen while the server runs 100
 * functions a second (each printing a console line), and the Data screen on a table of
 * 10,000 documents. Reports the page's long tasks (main-thread blocks over 50 ms) and how
 * long a click takes to show its effect. `npm run bench:dashboard:browser`.
 */
import { Engine } from "../../src/engine/engine.js";
import { openSqliteStorage } from "../../src/storage/sqlite/index.js";
import { defineSchema, defineTable, mutation, query } from "../../src/server/index.js";
import { v } from "../../src/values/index.js";
import { startServer } from "../../src/transport/index.js";
import { Dashboard } from "../../src/dashboard/index.js";
import { launchBrowser } from "../../e2e/browser.js";

/** What the page script records: the durations of long tasks (PerformanceObserver "longtask"). */
interface LongTaskLog {
  longTasks: number[];
}

const KEY = "bench-admin-key-0123456789abcdefghij";
const schema = defineSchema({ items: defineTable({ n: v.number(), group: v.string(), note: v.string() }).index("by_group", ["group"]) });
const modules = {
  items: {
    addMany: mutation({ args: { from: v.number(), count: v.number() }, handler: async (ctx: any, { from, count }: any) => { for (let i = from; i < from + count; i++) await ctx.db.insert("items", { n: i, group: `g${i % 10}`, note: `item number ${i}` }); } }),
    ping: query({ args: { i: v.number() }, handler: async (_ctx: any, { i }: any) => { console.log(`ping ${i}`); return i; } }),
  },
};
const dashboard = new Dashboard({ adminKey: KEY });
const engine = await Engine.open({ storage: await openSqliteStorage({ filename: ":memory:" }), schema, modules, runScheduler: false, observeRun: dashboard.observeRun });
const server = await startServer({ engine, port: 0, log: () => {}, dashboard });
for (let i = 0; i < 10_000; i += 1_000) await engine.runMutation("items:addMany", { from: i, count: 1_000 });

const browser = await launchBrowser();
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
await page.addInitScript(() => {
  (window as unknown as LongTaskLog).longTasks = [];
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) (window as unknown as LongTaskLog).longTasks.push(entry.duration);
  }).observe({ type: "longtask", buffered: true });
});

const realLog = console.log;
console.log = () => {}; // the pings' own lines (the run log captures them anyway)
let sent = 0;
const load = setInterval(() => {
  for (let k = 0; k < 10; k++) void engine.runQuery("items:ping", { i: sent++ });
}, 100);

await page.goto(`${server.url}/_dashboard#key=${KEY}`);
await page.evaluate(() => (location.hash = "#/logs"));
await page.locator("tr.log").first().waitFor({ timeout: 30_000 });
await page.evaluate(() => ((window as unknown as LongTaskLog).longTasks = []));
const seconds = 10;
await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
const clickStarted = performance.now();
await page.getByRole("button", { name: "Pause" }).click();
await page.getByRole("button", { name: /Resume/ }).waitFor();
const clickMs = performance.now() - clickStarted;
const logTasks = (await page.evaluate(() => (window as unknown as LongTaskLog).longTasks));
const kept = await page.locator("h2 .muted").first().innerText();
clearInterval(load);
console.log = realLog;

await page.evaluate(() => ((window as unknown as LongTaskLog).longTasks = []));
let started = performance.now();
await page.evaluate(() => (location.hash = "#/data/items"));
await page.locator("table.docs tbody tr").nth(24).waitFor();
const firstPageMs = performance.now() - started;
started = performance.now();
const firstId = await page.locator("table.docs tbody tr a.mono").first().innerText();
await page.getByRole("button", { name: "Older →" }).click();
await page.waitForFunction((id) => document.querySelector("table.docs tbody tr a.mono")?.textContent !== id, firstId);
const pageTurnMs = performance.now() - started;
const dataTasks = (await page.evaluate(() => (window as unknown as LongTaskLog).longTasks));

const summary = (tasks: number[]) => `${tasks.length} long tasks, longest ${tasks.length ? Math.max(...tasks).toFixed(0) : 0} ms, total ${tasks.reduce((a, b) => a + b, 0).toFixed(0)} ms`;
console.log(`Logs at ${(sent / seconds / 1.0).toFixed(0)} runs/s sent over ~${seconds + 2} s (${kept}): ${summary(logTasks)}; Pause click → shown in ${clickMs.toFixed(0)} ms`);
console.log(`Data, 10,000 documents: first page in ${firstPageMs.toFixed(0)} ms, next page in ${pageTurnMs.toFixed(0)} ms; ${summary(dataTasks)}`);
await browser.close();
dashboard.close();
await server.close();
await engine.close();
