/**
 * A canary on one SQLite file shared by several processes: a process builds a new index at
 * start and stops (a canary, a deploy rolled back) while processes without that index keep
 * writing to its table. A process declaring the index that starts later must not trust the
 * entries the canary left: its queries through the index must see every document written in
 * between, as they are now. (The PostgreSQL twin: storage/postgres/canaryIndex.test.ts.)
 *
 * Fixed by recording builds and the nodes lacking them in `_index_builds` (indexBuilds.ts):
 * this was the known bug of docs/scaling.md, "A canary that stops is not watched".
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { Engine } from "./engine.js";
import { HookedStorage } from "./fixtures/hookedStorage.js";
import { items, newSchema, oldSchema } from "./fixtures/rollingDeploy.js";


const dir = mkdtempSync(join(tmpdir(), "walkin-canary-"));
const engines: Engine[] = [];
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.close();
});
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

/** An engine on its own connection to the file, as another process would have. */
async function open(filename: string, schema: typeof newSchema | typeof oldSchema) {
  const engine = await Engine.open({ storage: await openSqliteStorage({ filename }), schema, modules: { items }, runScheduler: false, pollIntervalMs: 60_000, logError: () => {} });
  engines.push(engine);
  return engine;
}

/** Closes one engine (its storage with it) and forgets it. */
async function stop(engine: Engine) {
  engines.splice(engines.indexOf(engine), 1);
  await engine.close();
}

it("a process that declares the index and starts later finds the documents an old process inserted after the canary stopped", async () => {
  const filename = join(dir, "inserted.sqlite");
  const old = await open(filename, oldSchema);
  await old.runMutation("items:add", { x: 1 });

  // The canary starts (building by_x with the one document), then is rolled back.
  const canary = await open(filename, newSchema);
  expect(await canary.runQuery("items:byX", { x: 1 })).toBe(1);
  await stop(canary);

  // The old process, running all along, keeps writing to items.
  await old.runMutation("items:add", { x: 5 });

  // The real deploy: a process with by_x starts while the old one still runs.
  const deployed = await open(filename, newSchema);
  expect(await deployed.runQuery("items:byX", { x: 5 })).toBe(1);
  expect(await deployed.runQuery("items:byX", { x: 1 })).toBe(1);
});

it("a process that declares the index and starts after the old process stopped sees documents the old process changed under their new values", async () => {
  const filename = join(dir, "changed.sqlite");
  const old = await open(filename, oldSchema);
  await old.runMutation("items:add", { x: 1 });

  const canary = await open(filename, newSchema);
  expect(await canary.runQuery("items:byX", { x: 1 })).toBe(1);
  await stop(canary);

  // The old process changes the document, then stops too: no process is left that could tell.
  await old.runMutation("items:move", { from: 1, to: 2 });
  await stop(old);

  const deployed = await open(filename, newSchema);
  expect(await deployed.runQuery("items:byX", { x: 2 })).toBe(1);
  expect(await deployed.runQuery("items:byX", { x: 1 })).toBe(0);
});

it("a process that declares the index and starts after a rebuild finds what an old process still running wrote since", async () => {
  const filename = join(dir, "rebuilt.sqlite");
  const old = await open(filename, oldSchema);
  await old.runMutation("items:add", { x: 1 });
  const canary = await open(filename, newSchema);
  await stop(canary);
  await old.runMutation("items:add", { x: 5 });

  // A second canary rebuilds by_x (the old process's write is in it), then is rolled back too.
  const second = await open(filename, newSchema);
  expect(await second.runQuery("items:byX", { x: 5 })).toBe(1);
  await stop(second);

  // The old process writes again after that rebuild: the next start must not trust by_x either.
  await old.runMutation("items:add", { x: 6 });
  const deployed = await open(filename, newSchema);
  expect(await deployed.runQuery("items:byX", { x: 6 })).toBe(1);
  expect(await deployed.runQuery("items:byX", { x: 5 })).toBe(1);
});

it("a process that declares the index and starts later finds what an old process wrote that loaded its catalog while the canary built the index", async () => {
  const filename = join(dir, "loadedDuring.sqlite");
  const seed = await open(filename, oldSchema);
  await seed.runMutation("items:add", { x: 1 });
  await stop(seed);

  // The old process reads the catalog (no by_x); right then the canary starts, builds by_x and
  // is rolled back. The old process never learns of the build from the log: it landed before
  // the old process's first timestamp.
  const sqlite = await openSqliteStorage({ filename });
  const hooked = new (class extends HookedStorage {
    watchCommits(listener: (latest?: number) => void): () => void {
      return sqlite.watchCommits!(listener);
    }
  })(sqlite);
  let canaryDone = false;
  hooked.hooks.read = async (operation, read) => {
    const result = await read();
    if (operation === "getMeta" && !canaryDone) {
      canaryDone = true;
      const canary = await open(filename, newSchema);
      expect(await canary.runQuery("items:byX", { x: 1 })).toBe(1);
      await stop(canary);
    }
    return result;
  };
  const old = await Engine.open({ storage: hooked, schema: oldSchema, modules: { items }, runScheduler: false, pollIntervalMs: 60_000, logError: () => {} });
  engines.push(old);
  expect(canaryDone).toBe(true);
  await old.runMutation("items:move", { from: 1, to: 2 });

  const deployed = await open(filename, newSchema);
  expect(await deployed.runQuery("items:byX", { x: 2 })).toBe(1);
  expect(await deployed.runQuery("items:byX", { x: 1 })).toBe(0);
});
