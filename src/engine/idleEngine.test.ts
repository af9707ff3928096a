/**
 * What a server on a SQLite file does while nobody uses it, and what it must still do then.
 *
 * Idle, it used to wake about 55 times a second (a look at `data_version` every 20 ms for other
 * processes' commits, and a read of the commit log every 200 ms), to find nothing; now it
 * looks once a second until a query goes live (storage/sqlite/commitWatch.ts, engine/otherEngines.ts). The
 * other tests here hold what that must not cost: another process's commit still reaches a live
 * query and runs a job it scheduled; and a one-shot HTTP call answers with every commit another
 * process made before it came, without waiting for the watch (`Engine.catchUpWithOthers`).
 *
 * The other process is real: a script run by `node --import tsx` that opens the same file, as a
 * user's script or a second server would.
 */
import { spawn } from "node:child_process";
import { createHook } from "node:async_hooks";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { withoutCommitWatch } from "../storage/conformance/unwatched.js";
import { startServer, type WalkinServer } from "../transport/server.js";
import { http, modules, schema } from "../transport/fixtures/app.js";
import { RawClient, addQueries, isTransition } from "../transport/fixtures/rawClient.js";
import type { TransitionMessage } from "../transport/protocol.js";
import { Engine } from "./engine.js";

const srcDir = dirname(dirname(fileURLToPath(import.meta.url)));
const projectRoot = dirname(srcDir);
const dir = mkdtempSync(join(tmpdir(), "walkin-idle-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** An engine over `filename` with its scheduler on, served on a free port, as `walkin start` runs it. */
async function startNode(filename: string, options: { behind?: boolean } = {}): Promise<{ engine: Engine; server: WalkinServer }> {
  const storage = await openSqliteStorage({ filename });
  const engine = await Engine.open({ storage: options.behind ? withoutCommitWatch(storage) : storage, schema, modules, logError: () => {} });
  const server = await startServer({ port: 0, http, log: () => {}, engine });
  cleanups.push(async () => {
    await server.close();
    await engine.close();
  });
  return { engine, server };
}

/**
 * Runs `body` in another process, with `engine` open on `filename` (the fixture app, no
 * scheduler: a script's engine); resolves once that process has exited.
 */
async function inOtherProcess(filename: string, body: string): Promise<void> {
  const script = `
    import { openEngine } from "./src/transport/fixtures/app.ts";
    import { makeFunctionReference } from "./src/server/index.ts";
    const engine = await openEngine(process.argv[1]);
    ${body}
    await engine.close();
  `;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script, filename], { cwd: projectRoot, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise((resolve) => child.once("exit", resolve));
  if (code !== 0) throw new Error(`the other process failed (exit ${String(code)}):\n${stderr}`);
}

/**
 * Counts the timer and immediate callbacks that Walk-in's own code (anything under src/ but
 * this file) set, from now on: each is a wake-up of the process. An interval is one async resource that
 * calls back many times, so this must be on before the engine sets its timers.
 */
function countWakeUps(): { readonly count: number; reset(): void } {
  const ours = new Set<number>();
  let count = 0;
  const hook = createHook({
    init(id, type) {
      if (type !== "Timeout" && type !== "Immediate") return;
      // The code that set the timer: the first frame past this hook and Node's own.
      const caller = (new Error().stack ?? "").split("\n").slice(2).find((frame) => !frame.includes("node:")) ?? "";
      if (caller.includes(srcDir) && !caller.includes("idleEngine.test.ts")) ours.add(id);
    },
    before(id) {
      if (ours.has(id)) count += 1;
    },
    destroy(id) {
      ours.delete(id);
    },
  });
  hook.enable();
  cleanups.push(() => hook.disable());
  return {
    get count() {
      return count;
    },
    reset: () => (count = 0),
  };
}

/** Context switches of each thread of this process, by thread ID (Linux's /proc): each is a wake-up, or a thread made to wait. */
function threadSwitches(): Map<string, number> {
  const switches = new Map<string, number>();
  for (const thread of readdirSync("/proc/self/task")) {
    try {
      const status = readFileSync(`/proc/self/task/${thread}/status`, "utf8");
      const count = (name: string) => Number(new RegExp(`^${name}:\\s*(\\d+)`, "m").exec(status)?.[1] ?? 0);
      switches.set(thread, count("voluntary_ctxt_switches") + count("nonvoluntary_ctxt_switches"));
    } catch {
      // the thread ended meanwhile
    }
  }
  return switches;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const listed = (m: TransitionMessage) => m.modifications.flatMap((mod) => (mod.type === "QueryUpdated" ? [mod.value] : []));

async function postJson(url: string, body: unknown): Promise<unknown> {
  const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return response.json();
}

describe("an idle server on a SQLite file", () => {
  it("sleeps: a few wake-ups in two seconds with no client and no job, where it woke over a hundred times", async () => {
    const wakeUps = countWakeUps();
    await startNode(join(dir, "idle.sqlite"));
    await sleep(300); // past the start's own work

    wakeUps.reset();
    await sleep(2_000);

    // What is left: a look at the file every second (two in this window), and the rare others.
    expect(wakeUps.count).toBeLessThan(10);
  });

  // The background checkpointer (synchronous: "normal") is a thread of its own, started once
  // the log has something to copy: it used to look for work every 500 ms for good.
  it.skipIf(!existsSync("/proc/self/task"))("lets the checkpoint thread sleep once it has copied the log", async () => {
    const threadsBefore = new Set(threadSwitches().keys());
    const storage = await openSqliteStorage({ filename: join(dir, "checkpoints.sqlite"), synchronous: "normal", backgroundCheckpoints: { passPages: 16 } });
    const engine = await Engine.open({ storage, schema, modules, logError: () => {} });
    cleanups.push(() => engine.close());
    for (let i = 0; storage.checkpointer?.running !== true; i++) {
      if (i === 1_000) throw new Error("the checkpoint thread never started");
      await engine.runMutation("messages:send", { channel: "c", body: "x".repeat(2_000) });
    }
    await sleep(1_500); // its last pass: half a second after the last commit

    // The threads started since: the checkpoint thread (and any of Node's own, idle).
    const started = [...threadSwitches().keys()].filter((thread) => !threadsBefore.has(thread));
    const count = () => started.reduce((sum, thread) => sum + (threadSwitches().get(thread) ?? 0), 0);
    const before = count();
    await sleep(3_000);

    expect(count() - before).toBeLessThan(3);
  });

  it("still shows another process's commit in a live query", async () => {
    const filename = join(dir, "live.sqlite");
    const { server } = await startNode(filename);
    const client = await RawClient.open(server.wsUrl);
    cleanups.push(() => client.socket.terminate());
    client.send(addQueries(0, [[1, "messages:list", { channel: "c" }]]));
    expect(listed(await client.waitFor(isTransition))).toEqual([[]]);
    await sleep(300); // idle for a while: the watch has nothing to look at

    await inOtherProcess(filename, `await engine.runMutation("messages:send", { channel: "c", body: "from a script" });`);

    const updated = await client.waitFor((m): m is TransitionMessage => isTransition(m) && listed(m).length > 0, 1);
    expect(listed(updated)).toEqual([["from a script"]]);
  });

  it("runs a job that another process scheduled to run now", async () => {
    const filename = join(dir, "jobs.sqlite");
    const { engine } = await startNode(filename);
    await sleep(300);

    // A script with no scheduler of its own schedules a mutation: only this server runs jobs.
    await inOtherProcess(filename, `
      await engine.scheduler.forAction().runAfter(0, makeFunctionReference("messages:send"), { channel: "jobs", body: "scheduled by a script" });
    `);

    const deadline = Date.now() + 10_000;
    let bodies: unknown = [];
    while (Date.now() < deadline) {
      bodies = await engine.runQuery("messages:list", { channel: "jobs" });
      if ((bodies as string[]).length > 0) break;
      await sleep(20);
    }
    expect(bodies).toEqual(["scheduled by a script"]);
  });
});

describe("a one-shot HTTP call after another process's commit", () => {
  it("answers with that commit, without waiting for the server to hear of it", async () => {
    const filename = join(dir, "http.sqlite");
    // This server never hears of other processes' commits by itself (no watch, no poll): only
    // a look at the file before answering can find the script's write.
    const { server } = await startNode(filename, { behind: true });
    expect(await postJson(`${server.url}/api/query`, { path: "messages:list", args: { channel: "h" } })).toEqual({ status: "success", value: [], logLines: [] });

    await inOtherProcess(filename, `await engine.runMutation("messages:send", { channel: "h", body: "written through another process" });`);

    expect(await postJson(`${server.url}/api/query`, { path: "messages:list", args: { channel: "h" } }))
      .toEqual({ status: "success", value: ["written through another process"], logLines: [] });
  });
});
