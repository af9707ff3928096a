/**
 * Two `walkin start` processes on one SQLite file, as a user runs them to serve one app from two
 * processes of one machine (or a script next to the server): a client watching a query on one
 * sees what a mutation on the other wrote, soon and without a commit of its own process to
 * wake it (storage/sqlite/commitWatch.ts), and each one's commits stay exactly-once against the
 * other's (SQLite's write lock and the commit log: storage/sqlite/sqliteStorage.ts).
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { WebSocket } from "ws";
import { afterEach, describe, expect, it } from "vitest";
import { WalkinClient } from "../browser/index.js";
import { anyApi } from "../server/index.js";
import { callRaw, Cli, SCHEMA, TSCONFIG, writeProject } from "./fixtures/cli.js";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const MESSAGES = `import { v } from "walkin/values";
import { mutation, query } from "./_generated/server.js";

export const list = query({ args: {}, handler: async (ctx) => (await ctx.db.query("messages").collect()).map((m) => m.body) });
export const send = mutation({ args: { body: v.string() }, handler: async (ctx, { body }) => ctx.db.insert("messages", { body }) });
`;

async function startServer(dir: string, db: string): Promise<{ cli: Cli; url: string }> {
  const cli = new Cli(["start", "--port", "0", "--db", db], dir);
  cleanups.push(async () => {
    if (cli.child.exitCode === null) {
      cli.child.kill("SIGTERM");
      expect(await cli.exited).toBe(0);
    }
    expect(cli.output).not.toMatch(/unhandled|UnhandledPromiseRejection|✖/i);
  });
  const [, url] = await cli.waitFor(/Walk-in server: (http:\/\/\S+)/, 0, 60_000);
  return { cli, url: url! };
}

/** Waits (bounded) until `read` answers `expected`; returns its last answer. */
async function eventually<T>(read: () => T, expected: T, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const last = read();
    if (JSON.stringify(last) === JSON.stringify(expected) || Date.now() > deadline) return last;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("two walkin processes on one SQLite file", () => {
  it("shows each one's commits in the other's live queries, and loses no write of either", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "walkin-shared-file-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await writeProject(dir, {
      "package.json": `{ "type": "module" }\n`,
      "tsconfig.json": TSCONFIG,
      "functions/schema.ts": SCHEMA,
      "functions/messages.ts": MESSAGES,
    });
    const db = path.join(dir, "data.sqlite");
    const a = await startServer(dir, db);
    const b = await startServer(dir, db);

    const client = new WalkinClient(a.url, { webSocketConstructor: WebSocket as unknown as typeof globalThis.WebSocket, logger: false });
    cleanups.push(() => client.close());
    const watch = client.watchQuery(anyApi.messages!.list as never, {} as never);
    const seen = () => (watch.localQueryResult() as string[] | undefined)?.slice().sort();
    watch.onUpdate(() => {});
    expect(await eventually(seen, [])).toEqual([]);

    // Written through the other process only: nothing in A's own process commits.
    expect((await callRaw(b.url, "mutation", "messages:send", { body: "from b" })).ok).toBe(true);
    expect(await eventually(seen, ["from b"])).toEqual(["from b"]);

    // Both at once, many times: every write lands once, and both processes read them all.
    const sends: Promise<{ ok: boolean }>[] = [];
    const expected = ["from b"];
    for (let i = 0; i < 40; i++) {
      for (const [name, server] of [["a", a], ["b", b]] as const) {
        expected.push(`${name} ${i}`);
        sends.push(callRaw(server.url, "mutation", "messages:send", { body: `${name} ${i}` }));
      }
    }
    expect((await Promise.all(sends)).every((result) => result.ok)).toBe(true);
    expected.sort();
    expect(await eventually(seen, expected)).toEqual(expected);
    // A one-shot query over HTTP carries no timestamp: it reads the newest snapshot its process
    // knows, which trails the other process's commits by up to the commit watch's 20 ms (as a
    // node trails another on PostgreSQL), so it too is waited for.
    for (const server of [a, b]) {
      let listed: string[] = [];
      const read = () => listed.slice().sort();
      for (const deadline = Date.now() + 10_000; JSON.stringify(read()) !== JSON.stringify(expected) && Date.now() < deadline; ) {
        listed = (await callRaw(server.url, "query", "messages:list")).body.value as string[];
      }
      expect(read()).toEqual(expected);
    }
  });
});
