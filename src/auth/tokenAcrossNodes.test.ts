/**
 * A token issued on one node, first shown to another that has not yet learned the commit that
 * created its session: a client that signed in and then reconnected elsewhere (a load balancer,
 * a restart). Two engines on one SQLite file stand for the two nodes. The second one's storage
 * hides its commit watch (`withoutCommitWatch`), so it learns the first one's commits only when
 * it commits or refreshes: it is behind for as long as the test likes, where in production the
 * window is the time a notification takes.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, expect, it } from "vitest";
import { WebSocket } from "ws";
import { Engine } from "../engine/engine.js";
import { withoutCommitWatch } from "../storage/conformance/unwatched.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { startServer } from "../transport/index.js";
import { WalkinClient } from "../browser/index.js";
import { api, authApp, schema } from "./fixtures/app.js";
import { from } from "./fixtures/harness.js";
import type { SignInResult } from "./providers/types.js";

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function openNode(filename: string, { behind = false } = {}): Promise<Engine> {
  const storage = await openSqliteStorage({ filename });
  const engine = await Engine.open({ storage: behind ? withoutCommitWatch(storage) : storage, schema, modules: authApp(), runScheduler: false, logError: () => {} });
  cleanups.push(() => engine.close());
  return engine;
}

it("a node refuses a token only after looking for the sign-in it has not learned yet", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "walkin-token-nodes-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const filename = path.join(dir, "db.sqlite");
  const nodeA = await openNode(filename);
  const nodeB = await openNode(filename, { behind: true });
  const server = await startServer({ engine: nodeB, port: 0, log: () => {} });
  cleanups.push(() => server.close());

  // Signed in on A; B has not seen that commit.
  const signedIn = (await nodeA.runAction("auth:signIn", { provider: "anonymous", params: {} }, from("10.0.0.1"))) as SignInResult;
  if (signedIn.kind !== "signedIn") throw new Error(`expected signedIn, got ${signedIn.kind}`);
  const { token } = signedIn;
  await nodeA.runMutation("messages:send", { body: "from A" }, { token, fromClient: true });
  expect(await nodeB.runQuery("messages:mine", {}, { token, fromClient: true })).toBeNull();

  // The client reconnects to B with its token. Refused, it would sign out for good (the auth
  // client never uses a refused token again): B must catch up before it decides.
  const client = new WalkinClient(server.url, { webSocketConstructor: WebSocket as never, logger: false });
  cleanups.push(() => client.close());
  const accepted = new Promise<boolean>((resolve) => client.setAuth(async () => token, resolve));
  expect(await accepted).toBe(true);
  expect(await client.query(api.messages.mine!, {})).toEqual(["from A"]);

  // The same over HTTP: a token B has not learned is looked for before a 401.
  const second = (await nodeA.runAction("auth:signIn", { provider: "anonymous", params: {} }, from("10.0.0.2"))) as SignInResult;
  if (second.kind !== "signedIn") throw new Error(`expected signedIn, got ${second.kind}`);
  await nodeA.runMutation("messages:send", { body: "second, from A" }, { token: second.token, fromClient: true });
  const response = await fetch(`${server.url}/api/query`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${second.token}` },
    body: JSON.stringify({ path: "messages:mine", args: {} }),
  });
  expect({ status: response.status, body: await response.json() }).toEqual({ status: 200, body: { status: "success", value: ["second, from A"], logLines: [] } });
});
