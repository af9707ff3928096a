/**
 * A promise that app code started and did not await, failing: `walkin start` reports it with the
 * app's stack and keeps serving (Node's default would end the process, and with it every
 * client's connection). `bin/walkin.js` spawned in a temporary project, as in cli.test.ts.
 */
import { rm } from "node:fs/promises";
import path from "node:path";
import { afterEach, expect, it } from "vitest";
import { callRaw, Cli, SCHEMA, tempProject as makeTempProject, TSCONFIG } from "./fixtures/cli.js";

const MESSAGES = `import { v } from "walkin/values";
import { action, mutation, query } from "./_generated/server.js";

export const list = query({ args: {}, handler: async (ctx) => (await ctx.db.query("messages").collect()).map((m) => m.body) });
export const send = mutation({ args: { body: v.string() }, handler: async (ctx, { body }) => ctx.db.insert("messages", { body }) });
/** Forgets the await on an insert the schema refuses (body must be a string). */
export const sloppy = mutation({
  args: {},
  handler: async (ctx) => {
    void ctx.db.insert("messages", { body: 42 as unknown as string });
    return "answered";
  },
});
/** An action that leaves a failing promise of its own behind. */
export const sloppyAction = action({
  args: {},
  handler: async () => {
    void new Promise((_, reject) => setTimeout(() => reject(new Error("the action's forgotten promise")), 10));
    return "answered";
  },
});
`;

const tempDirs: string[] = [];
let running: Cli | null = null;
afterEach(async () => {
  if (running?.child.exitCode === null) running.child.kill("SIGKILL");
  running = null;
  for (const dir of tempDirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

it("walkin start reports a failed promise nothing awaited, with its error, and keeps serving", async () => {
  const dir = await makeTempProject(tempDirs, "walkin-cli-unhandled-", {
    "package.json": `{ "type": "module" }\n`,
    "tsconfig.json": TSCONFIG,
    "functions/schema.ts": SCHEMA,
    "functions/messages.ts": MESSAGES,
  });
  const cli = (running = new Cli(["start", "--port", "0", "--db", path.join(dir, "data.sqlite")], dir));
  const [, url] = await cli.waitFor(/(http:\/\/\S+)/);

  let mark = cli.output.length;
  expect((await callRaw(url!, "mutation", "messages:sloppy")).body).toMatchObject({ status: "success", value: "answered" });
  await cli.waitFor(/A promise failed with nothing awaiting it[^\n]*\n.*Document does not match the schema of table "messages": messages\.body/, mark);
  // Still serving: the refused insert did not happen, and a good one does.
  expect((await callRaw(url!, "mutation", "messages:send", { body: "after" })).ok).toBe(true);
  expect((await callRaw(url!, "query", "messages:list")).body.value).toEqual(["after"]);

  mark = cli.output.length;
  expect((await callRaw(url!, "action", "messages:sloppyAction")).body).toMatchObject({ status: "success", value: "answered" });
  // The app's own error: its stack names the app's file.
  await cli.waitFor(/A promise failed with nothing awaiting it[^\n]*\nError: the action's forgotten promise\n\s+at .*messages\.ts/, mark);
  expect((await callRaw(url!, "query", "messages:list")).body.value).toEqual(["after"]);
  expect(cli.child.exitCode).toBeNull();
});
