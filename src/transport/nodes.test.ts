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
import type { ActionResponseMessage, MutationResponseMessage, ServerMessage, TransitionMessage } from "./protocol.js";

const dir = mkdtempSync(join(tmpdir(), "walkin-nodes-"));
const harnesses: Harness[] = [];
afterEach(async () => {
  for (const harness of harnesses.splice(0)) await harness.dispose();
});
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

const isResponse = (m: ServerMessage): m is MutationResponseMessage => m.type === "MutationResponse";
const isActionResponse = (m: ServerMessage): m is ActionResponseMessage => m.type === "ActionResponse";
const listed = (m: TransitionMessage) => m.modifications.flatMap((mod) => (mod.type === "QueryUpdated" ? [mod.value] : []));

/**
 * Two servers on one SQLite file. Node B hears of A's commits only when it looks (as a node
 * whose notification is late), so the window these tests are about stays open until the
 * client comes.
 */
async function twoNodes(file: string): Promise<{ nodeA: Harness; nodeB: Harness }> {
  const filename = join(dir, file);
  const nodeA = await startHarness({ engine: await openEngine(filename) });
  const nodeB = await startHarness({ engine: await openEngine(filename, { behind: true }) });
  harnesses.push(nodeA, nodeB);
  return { nodeA, nodeB };
}

it("read your writes holds when a client moves to another node", async () => {
  const { nodeA, nodeB } = await twoNodes("shared.sqlite");

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

it("read your writes holds after an action that wrote, when the client moves to another node", async () => {
  const { nodeA, nodeB } = await twoNodes("action.sqlite");

  // The client watches nothing that the action writes: without the action's timestamp, nothing
  // would tell it that its snapshot must move past the action's write.
  const writer = await nodeA.client({ connect: { clientId: "actor" } });
  writer.send({ type: "Action", requestId: 1, udfPath: "actions:send", args: { channel: "c", body: "written by an action", nested: true } });
  const response = (await writer.waitFor(isActionResponse)) as ActionResponseMessage & { success: true };
  expect(response.result).toBe("written by an action".length);
  expect(response.ts).toBeGreaterThan(0);
  // A Transition that reaches the action's write follows (the client resolves the action then).
  const reached = await writer.waitFor(isTransition);
  expect(reached.endVersion.ts).toBeGreaterThanOrEqual(response.ts!);

  // Reconnected to node B with the timestamp it holds, it sees the action's write.
  const moved = await nodeB.client({ connect: false });
  moved.send({ type: "Connect", clientId: "actor", connectionCount: 1, maxObservedTimestamp: reached.endVersion.ts });
  moved.send(addQueries(0, [[1, "messages:list", { channel: "c" }]]));
  const first = await moved.waitFor(isTransition);
  expect(listed(first)).toEqual([["written by an action"]]);
});
