/**
 * A reconnected client re-sends the mutations its last connection left unanswered, then the
 * query set that restores its queries (browser/client.ts, `flush`). The Transition of that query
 * set waits for those mutations (connection.ts, `modifyQuerySet`): sent before their responses,
 * results that already hold a re-sent mutation's write would show it twice on the client, in
 * the results and in its optimistic update. A real server over a real SQLite file, raw clients.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { mutation } from "../server/index.js";
import { v } from "../values/index.js";
import { modules as fixtureModules, openEngine } from "./fixtures/app.js";
import { sleep, startHarness, type Harness } from "./fixtures/harness.js";
import { addQueries, isTransition, type RawClient } from "./fixtures/rawClient.js";
import type { ServerMessage } from "./protocol.js";

let harness: Harness | undefined;
let dir: string | undefined;
afterEach(async () => {
  release(); // a test that failed while holding one must not hold the server's close
  await harness?.dispose();
  harness = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** Lets the test hold `held:send` inside its handler until `release()`. */
let release = () => {};
const modules = {
  ...fixtureModules,
  held: {
    send: mutation({
      args: { channel: v.string(), body: v.string() },
      handler: async (ctx, args) => {
        await new Promise<void>((resolve) => (release = resolve));
        await ctx.db.insert("messages", args);
      },
    }),
  },
};

async function serve(): Promise<Harness> {
  dir = mkdtempSync(join(tmpdir(), "walkin-resent-"));
  const engine = await openEngine(join(dir, "app.db"), { modules: modules as never });
  harness = await startHarness({ engine });
  return harness;
}

const responseTo = (requestId: number) => (m: ServerMessage) => m.type === "MutationResponse" && m.requestId === requestId;
const restored = (m: ServerMessage) => isTransition(m) && m.endVersion.querySet === 1;
const indexOf = (client: RawClient, match: (m: ServerMessage) => boolean) => client.messages.findIndex(match);

describe("mutations re-sent after a reconnect, then the query set", () => {
  it("one answered from its receipt leaves before the Transition that restores the queries, whose results show its write", async () => {
    const h = await serve();
    const first = await h.client({ connect: { clientId: "tab", newRequestsFrom: 0 } });
    first.send({ type: "Mutation", requestId: 0, udfPath: "messages:send", args: { channel: "a", body: "hi" } });
    await first.waitFor(responseTo(0));
    await first.close(); // as if the response had been lost with the connection

    const second = await h.client({ connect: { clientId: "tab", connectionCount: 1, newRequestsFrom: 1 } });
    second.send({ type: "Mutation", requestId: 0, udfPath: "messages:send", args: { channel: "a", body: "hi" } });
    second.send(addQueries(0, [[0, "messages:list", { channel: "a" }]]));
    const transition = await second.waitFor(restored);
    expect(isTransition(transition) && transition.modifications).toEqual([{ type: "QueryUpdated", queryId: 0, value: ["hi"] }]);
    expect(indexOf(second, responseTo(0)), "the response came after the results that show its write").toBeGreaterThanOrEqual(0);
    expect(indexOf(second, responseTo(0))).toBeLessThan(indexOf(second, restored));
    expect(await h.engine.runQuery("messages:list", { channel: "a" })).toEqual(["hi"]);
  });

  it("the Transition waits for a re-sent mutation still running, and only for one received before the query set", async () => {
    const h = await serve();
    const client = await h.client({ connect: { clientId: "tab", connectionCount: 1, newRequestsFrom: 5 } });
    client.send({ type: "Mutation", requestId: 4, udfPath: "held:send", args: { channel: "a", body: "slow" } });
    client.send(addQueries(0, [[0, "messages:list", { channel: "a" }]]));
    await sleep(200);
    expect(client.messages.filter(restored), "the restoring Transition went out while the re-sent mutation ran").toEqual([]);
    release();
    await client.waitFor(responseTo(4));
    await client.waitFor(restored);

    // A new mutation (at or above newRequestsFrom) holds no query set back.
    client.send({ type: "Mutation", requestId: 5, udfPath: "held:send", args: { channel: "b", body: "new" } });
    client.send({ type: "ModifyQuerySet", baseVersion: 1, newVersion: 2, modifications: [{ type: "Add", queryId: 1, udfPath: "messages:list", args: { channel: "b" } }] });
    const added = await client.waitFor((m) => isTransition(m) && m.endVersion.querySet === 2);
    expect(isTransition(added) && added.modifications).toEqual([{ type: "QueryUpdated", queryId: 1, value: [] }]);
    release();
    await client.waitFor(responseTo(5));
  });
});
