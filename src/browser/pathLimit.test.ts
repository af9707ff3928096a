/**
 * The browser client against the server's limit on function paths (`maxPathLength`, 512
 * characters): the server answers a longer one with a FatalError and closes the connection, and
 * the client used to reconnect and send it again, forever, with every other call stuck behind
 * it. Now the client refuses such a query, mutation or action itself (LIMIT_EXCEEDED, as for
 * args over the message limit) and keeps its connection. A real Walk-in server on 127.0.0.1
 * (port 0) and real clients over real WebSockets (`ws`).
 */
import { afterEach, describe, expect, it } from "vitest";
import { anyApi, defineSchema, defineTable, makeFunctionReference, mutation, query, type ApiFromModules } from "../server/index.js";
import { PROTOCOL_LIMITS } from "../transport/protocol.js";
import { v } from "../values/index.js";
import type { Watch } from "./index.js";
import { cleanUp, connectClient, serveApp, until, watchError } from "./fixtures/liveClients.js";
import { within } from "./fixtures/promises.js";

const schema = defineSchema({ log: defineTable({ entry: v.string() }) });
const texts = {
  count: query({ args: {}, handler: async (ctx) => (await ctx.db.query("log").collect()).length }),
  append: mutation({ args: { entry: v.string() }, handler: (ctx, { entry }) => ctx.db.insert("log", { entry }) }),
};
const modules = { texts };
const api = anyApi as unknown as ApiFromModules<typeof modules>;

/** A path one character over the server's limit (a generated name, a module nested too deep). */
const longPath = `texts:${"x".repeat(PROTOCOL_LIMITS.maxPathLength - "texts:".length + 1)}`;

afterEach(cleanUp);

async function serveAndConnect() {
  const served = await serveApp({ schema, modules });
  const walkin = connectClient(served.server.url, { initialDelayMs: 5, maxDelayMs: 50 });
  // The first connection is up and answering before the long path is tried.
  const count = walkin.watchQuery(api.texts.count, {});
  count.onUpdate(() => {});
  await until(count, (n) => n === 0);
  return { walkin, count };
}

/** What the client's calls get, and its connection keeps, after each kind of call with `longPath`. */
async function expectWorkingConnection(walkin: Awaited<ReturnType<typeof serveAndConnect>>["walkin"], count: Watch<number>) {
  expect(await within(walkin.mutation(api.texts.append, { entry: "after" }), 3000)).toMatchObject({ ok: true });
  expect(count.localQueryResult()).toBe(1);
  expect(walkin.connectionState().connectionCount).toBe(1);
}

describe("a function path longer than the server accepts", () => {
  it("a live query gets LIMIT_EXCEEDED in its watch, and the connection and other calls keep working", async () => {
    const { walkin, count } = await serveAndConnect();
    const watch = walkin.watchQuery(makeFunctionReference<"query">(longPath), {});
    const error = await within(watchError(watch), 3000);
    expect(error).toMatchObject({ ok: true, value: { code: "LIMIT_EXCEEDED", message: expect.stringMatching(/513 characters.*at most 512/) } });
    await expectWorkingConnection(walkin, count);
  });

  it("a mutation or an action is rejected with LIMIT_EXCEEDED, and the connection and other calls keep working", async () => {
    const { walkin, count } = await serveAndConnect();
    const mutationOutcome = await within(walkin.mutation(makeFunctionReference<"mutation">(longPath), {}), 3000);
    expect(mutationOutcome).toMatchObject({ ok: false, error: { code: "LIMIT_EXCEEDED", message: expect.stringMatching(/mutation texts:x+… is 513 characters/) } });
    const actionOutcome = await within(walkin.action(makeFunctionReference<"action">(longPath), {}), 3000);
    expect(actionOutcome).toMatchObject({ ok: false, error: { code: "LIMIT_EXCEEDED", message: expect.stringMatching(/action .* 513 characters/) } });
    await expectWorkingConnection(walkin, count);
  });

  it("a path of exactly the limit is still sent (and answered by the server)", async () => {
    const { walkin } = await serveAndConnect();
    const atLimit = longPath.slice(0, PROTOCOL_LIMITS.maxPathLength);
    const outcome = await within(walkin.mutation(makeFunctionReference<"mutation">(atLimit), {}), 3000);
    expect(outcome).toMatchObject({ ok: false, error: { message: expect.stringMatching(/x{20}/) } });
    expect((outcome as { error: { code?: string } }).error.code).not.toBe("LIMIT_EXCEEDED");
    expect(walkin.connectionState().connectionCount).toBe(1);
  });
});
