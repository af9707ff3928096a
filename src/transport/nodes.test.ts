/**
 * Two servers on one database, as two nodes behind a load balancer: a client that saw a write
 * on one node and reconnects to the other is never answered from a snapshot without it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import { openEngine } from "./fixtures/app.js";
import { startHarness, type Harness } from "./fixtures/harness.js";
import { addQueries, isTransition } from "./fixtures/rawClient.js";
import type { MutationResponseMessage, ServerMessage, TransitionMessage } from "./protocol.js";

const dir = mkdtempSync(join(tmpdir(), "walkin-nodes-"));
const harnesses: Harness[] = [];
afterEach(async () => {
  for (const harness of harnesses.splice(0)) await harness.dispose();
});
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

const isResponse = (m: ServerMessage): m is MutationResponseMessage => m.type === "MutationResponse";
const listed = (m: TransitionMessage) => m.modifications.flatMap((mod) => (mod.type === "QueryUpdated" ? [mod.value] : []));

it("read your writes holds when a client moves to another node", async () => {
  const filename = join(dir, "shared.sqlite");
  const nodeA = await startHarness({ engine: await openEngine(filename) });
  // Node B hears of A's commits only when it looks (as a node whose notification is late), so
  // the window this test is about stays open until the client comes.
  const nodeB = await startHarness({ engine: await openEngine(filename, { behind: true }) });
  harnesses.push(nodeA, nodeB);

  const writer = await nodeA.client({ connect: { clientId: "mover" } });
  writer.send({ type: "Mutation", requestId: 1, udfPath: "messages:send", args: { channel: "c", body: "written on A" } });
  const { ts } = (await writer.waitFor(isResponse)) as MutationResponseMessage & { ts: number };
  expect(ts).toBeGreaterThan(0);

  // A client that does not say what it saw gets node B's own (older) snapshot: the write is
  // not there yet. This is what the timestamp the client carries is for.
  const stranger = await nodeB.client();
  stranger.send(addQueries(0, [[1, "messages:list", { channel: "c" }]]));
  expect(listed(await stranger.waitFor(isTransition))).toEqual([[]]);

  // The same client reconnects to node B, carrying the timestamp it saw.
  const moved = await nodeB.client({ connect: false });
  moved.send({ type: "Connect", clientId: "mover", connectionCount: 1, maxObservedTimestamp: ts });
  moved.send(addQueries(0, [[1, "messages:list", { channel: "c" }]]));
  const first = await moved.waitFor(isTransition);
  expect(first.endVersion.ts).toBeGreaterThanOrEqual(ts);
  expect(listed(first)).toEqual([["written on A"]]);
});
