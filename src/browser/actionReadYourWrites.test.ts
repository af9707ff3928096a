/**
 * Actions read their writes (docs/protocol.md, ActionResponse), in the cases where holding the
 * answer back, or dropping its timestamp, would go wrong: the connection dropping before the
 * Transition, an action that throws after writing, and a hot reload onto another database.
 * These tests run the real server and WalkinClient (no mocks).
 */
import { afterEach, expect, it } from "vitest";
import { Engine } from "../engine/engine.js";
import { action, anyApi, query, type ApiFromModules } from "../server/index.js";
import { modules as appModules, schema } from "../transport/fixtures/app.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { WalkinError, isWalkinError, v } from "../values/index.js";
import type { WalkinServer } from "../transport/index.js";
import { cleanUp, connectClient, cutNetwork, serveApp, until, waitForState } from "./fixtures/liveClients.js";

/** A latch the test opens: code awaiting `latch.wait()` stays there until then. */
function latch() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { wait: () => opened, open };
}

/** Set by a test: the live query `probe.gatedCount` does not finish a run while it is closed. */
let queryGate: ReturnType<typeof latch> | null = null;
/** Set by a test: `probe.sendWhenReleased` tells it has started, then waits for it before writing. */
let actionGate: { started: () => void; release: Promise<void> } | null = null;
/** Set by a test: `probe.sendThenSignal` calls it right before it returns. */
let onReturn: (() => void) | null = null;

/** The transport fixture's messages (`list` by channel, `send`), plus the probes below. */
const messages = appModules.messages;

const probe = {
  /** Reads every message (so every write re-runs it), and holds its run while `queryGate` is closed. */
  gatedCount: query({
    args: {},
    handler: async (ctx) => {
      const count = (await ctx.db.query("messages").collect()).length;
      if (queryGate) await queryGate.wait();
      return count;
    },
  }),
  sendThenSignal: action({
    args: { channel: v.string(), body: v.string() },
    handler: async (ctx, args): Promise<string> => {
      await ctx.runMutation(anyApi.messages!.send!, args);
      onReturn?.();
      return args.body;
    },
  }),
  sendThenThrow: action({
    args: { channel: v.string(), body: v.string() },
    handler: async (ctx, args): Promise<string> => {
      await ctx.runMutation(anyApi.messages!.send!, args);
      onReturn?.();
      throw new WalkinError("failed after writing", { code: "INVALID_ARGUMENT" });
    },
  }),
  sendWhenReleased: action({
    args: { channel: v.string(), body: v.string() },
    handler: async (ctx, args): Promise<string> => {
      const gate = actionGate!;
      gate.started();
      await gate.release;
      await ctx.runMutation(anyApi.messages!.send!, args);
      return args.body;
    },
  }),
  ping: action({ args: {}, handler: async () => "pong" }),
};

const modules = { messages, probe };
const api = anyApi as unknown as ApiFromModules<typeof modules>;

/** Engines a test opened besides its backend's, closed after it. */
const extraEngines: Engine[] = [];

afterEach(async () => {
  queryGate?.open();
  queryGate = null;
  actionGate = null;
  onReturn = null;
  await cleanUp();
  for (const engine of extraEngines.splice(0)) await engine.close();
});

const startBackend = () => serveApp({ schema, modules });
const connect = (server: WalkinServer) => connectClient(server.url, { initialDelayMs: 10, maxDelayMs: 100 });

it("an action that finished is not reported DISCONNECTED when the connection drops before its Transition", async () => {
  const { server } = await startBackend();
  // Another user's live query that every write re-runs: while its run is held, the engine
  // cannot publish the action's commit (a slow flush, as under load).
  const observer = connect(server);
  const watched = observer.watchQuery(api.probe.gatedCount, {});
  const stopWatch = watched.onUpdate(() => {});
  await until(watched, (value) => value !== undefined);
  const client = connect(server);
  await waitForState(client, (state) => state.isWebSocketConnected);

  queryGate = latch();
  const returned = latch();
  onReturn = returned.open;
  const paid = client.action(api.probe.sendThenSignal, { channel: "orders", body: "paid" });
  const outcome = paid.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, code: isWalkinError(error) ? error.code : String(error) }),
  );
  await returned.wait();
  // Answered at once on the same socket, after the first action returned: whatever the server
  // sent for the first action before this answer has reached the client too.
  expect(await client.action(api.probe.ping, {})).toBe("pong");

  // The network drops. The action ran and wrote (it is not retried: it may not be idempotent),
  // so the caller must learn that it succeeded, not "outcome unknown".
  cutNetwork();
  queryGate.open();
  expect(await outcome).toEqual({ ok: true, value: "paid" });
  stopWatch();
});

it("an action that wrote and then failed: after the rejection, the watched query includes its write", async () => {
  const { server } = await startBackend();
  const client = connect(server);
  const count = client.watchQuery(api.probe.gatedCount, {});
  const stop = count.onUpdate(() => {});
  expect(await until(count, (value) => value !== undefined)).toBe(0);

  // The re-run of the watched query is held until the action has answered, so that the order in
  // which its answer and the Transition with its write reach the client does not depend on luck.
  queryGate = latch();
  const returned = latch();
  onReturn = returned.open;
  const attempt = client.action(api.probe.sendThenThrow, { channel: "attempts", body: "try" });
  const settled = attempt.then(
    () => "resolved",
    (error: unknown) => (error instanceof Error ? error.message : String(error)),
  );
  await returned.wait();
  expect(await client.action(api.probe.ping, {})).toBe("pong");
  queryGate.open();

  expect(await settled).toBe("failed after writing");
  // Its write is committed and durable: read your writes says the watched query shows it.
  expect(count.localQueryResult()).toBe(1);
  stop();
});

it("a hot reload onto another database: an action that wrote on the retired engine still answers, and so do later mutations", async () => {
  // `walkin dev --db sqlite::memory:` opens a new in-memory database for every generation
  // (serve.ts, openEngine); `server.setEngine` takes any engine.
  const backend = await startBackend();
  const client = connect(backend.server);
  // Some history on the first database: its timestamps are ahead of a fresh one's.
  for (let i = 0; i < 5; i++) await client.mutation(api.messages.send, { channel: "old", body: `m${i}` });

  const started = latch();
  const release = latch();
  actionGate = { started: started.open, release: release.wait() };
  const sent = client.action(api.probe.sendWhenReleased, { channel: "c", body: "late" });
  sent.catch(() => {}); // awaited below; a hang must not end as an unhandled rejection at cleanup
  await started.wait();

  const next = await Engine.open({ storage: await openSqliteStorage({ filename: ":memory:" }), schema, modules, runScheduler: false });
  extraEngines.push(next);
  backend.engine.handOver();
  await backend.server.setEngine(next);
  // The action, still running on the retired engine, writes there (serve.ts lets it finish).
  release.open();
  await backend.server.retired(backend.engine);
  // The connection keeps working: a mutation on the serving engine is answered...
  await expect(client.mutation(api.messages.send, { channel: "new", body: "after" })).resolves.toBe("after".length);
  // ...and so is the action, which did finish.
  await expect(sent).resolves.toBe("late");
  // (Normally well under a second: the timeout only turns a hang into a failure.)
}, 10_000);
