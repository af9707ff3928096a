/**
 * The browser client against the server's message-size limit (`maxClientMessageBytes`, 8 MiB;
 * the server closes a connection that sends more with 4001): live queries whose args alone are
 * over it, and query sets whose args add up to more than one message may carry, at the first
 * subscription and when a reconnect re-sends them all (each failed before its fix: the client
 * re-sent the message after every reconnect, and every call on it stopped working); and the
 * errors for int64 and bytes args given in a form the client cannot send (their advice was
 * wrong). A real Walk-in server on 127.0.0.1 (port 0) and real clients over real WebSockets (`ws`).
 */
import { afterEach, describe, expect, it } from "vitest";
import { anyApi, defineSchema, defineTable, mutation, query, type ApiFromModules } from "../server/index.js";
import { v } from "../values/index.js";
import { cleanUp, connectClient, cutNetwork, serveApp, until, watchError, waitForState } from "./fixtures/liveClients.js";
import { within } from "./fixtures/promises.js";

const schema = defineSchema({
  log: defineTable({ entry: v.string() }),
});
const texts = {
  /** A query whose args are as large as the test wants. */
  length: query({ args: { text: v.string() }, handler: async (_ctx, { text }) => text.length }),
  count: query({ args: {}, handler: async (ctx) => (await ctx.db.query("log").collect()).length }),
  append: mutation({
    args: { entry: v.string() },
    handler: async (ctx, { entry }) => {
      await ctx.db.insert("log", { entry });
      return entry.length;
    },
  }),
  next: mutation({ args: { n: v.int64() }, handler: async (_ctx, { n }) => n + 1n }),
  byteLength: mutation({ args: { data: v.bytes() }, handler: async (_ctx, { data }) => [...new Uint8Array(data)] }),
};
const modules = { texts };
const api = anyApi as unknown as ApiFromModules<typeof modules>;

afterEach(cleanUp);

const MiB = 1024 * 1024;


async function serveAndConnect() {
  const served = await serveApp({ schema, modules });
  return connectClient(served.server.url, { initialDelayMs: 5, maxDelayMs: 50 });
}

describe("a live query whose args are over the server's message limit", () => {
  it("gets LIMIT_EXCEEDED in its watch, and the connection and the client's other calls keep working", async () => {
    const walkin = await serveAndConnect();
    const count = walkin.watchQuery(api.texts.count, {});
    count.onUpdate(() => {});
    await until(count, (n) => n === 0);

    // 9 MiB of args: as a ModifyQuerySet it would close the connection with 4001, and the
    // restart after it would re-send it, forever.
    const big = walkin.watchQuery(api.texts.length, { text: "x".repeat(9 * MiB) });
    const error = await within(watchError(big), 3000);
    expect(error).toMatchObject({ ok: true, value: { code: "LIMIT_EXCEEDED", message: expect.stringMatching(/texts:length.*8388608 bytes/) } });

    // The queries and mutations around it still work, on the first connection.
    const small = walkin.watchQuery(api.texts.length, { text: "small" });
    small.onUpdate(() => {});
    expect(await within(until(small, (n) => n === 5), 3000)).toEqual({ ok: true, value: 5 });
    expect(await within(walkin.mutation(api.texts.append, { entry: "after" }), 3000)).toEqual({ ok: true, value: 5 });
    expect(count.localQueryResult()).toBe(1);
    expect(walkin.connectionState().connectionCount).toBe(1);
  }, 30_000);

  it("a one-shot query() over the limit (counted in UTF-8 bytes) is rejected with LIMIT_EXCEEDED", async () => {
    const walkin = await serveAndConnect();
    // 4.5 Mi characters, each 2 bytes in UTF-8: 9 MiB on the wire.
    const outcome = await within(walkin.query(api.texts.length, { text: "é".repeat(4.5 * MiB) }), 3000);
    expect(outcome).toMatchObject({ ok: false, error: { code: "LIMIT_EXCEEDED" } });
    expect(await within(walkin.query(api.texts.length, { text: "ok" }), 3000)).toEqual({ ok: true, value: 2 });
    expect(walkin.connectionState().connectionCount).toBe(1);
  }, 30_000);
});

describe("live queries whose args add up to more than one message may carry", () => {
  // Three queries of 3 MiB each: every one fits in a message, the three together (9 MiB) do not.
  const threeLargeArgs = () => ["a", "b", "c"].map((letter) => ({ text: letter.repeat(3 * MiB) }));

  it("subscribed at once, all get their results on the first connection", async () => {
    const walkin = await serveAndConnect();
    const watches = threeLargeArgs().map((args) => walkin.watchQuery(api.texts.length, args));
    for (const watch of watches) watch.onUpdate(() => {});
    for (const watch of watches) {
      expect(await within(until(watch, (n) => n !== undefined), 5000)).toEqual({ ok: true, value: 3 * MiB });
    }
    expect(walkin.connectionState().connectionCount).toBe(1);
  }, 30_000);

  it("re-sent after a network cut, all come back and the client keeps working on the second connection", async () => {
    const walkin = await serveAndConnect();
    const watches = threeLargeArgs().map((args) => walkin.watchQuery(api.texts.length, args));
    // Subscribed one at a time, so that each ModifyQuerySet holds one of them.
    for (const watch of watches) {
      watch.onUpdate(() => {});
      await until(watch, (n) => n !== undefined);
    }
    expect(walkin.connectionState().connectionCount).toBe(1);

    cutNetwork(); // the restart re-adds every query
    await waitForState(walkin, (s) => s.connectionCount >= 2);
    const after = walkin.mutation(api.texts.append, { entry: "after the reconnect" });
    after.catch(() => {});
    expect(await within(after, 5000)).toEqual({ ok: true, value: "after the reconnect".length });
    for (const watch of watches) expect(watch.localQueryResult()).toBe(3 * MiB);
    expect(walkin.connectionState().connectionCount).toBe(2);
  }, 30_000);
});

describe("int64 and bytes args in a form the client cannot send", () => {
  it("a Node.js Buffer for v.bytes(): the error's fix sends exactly the Buffer's bytes", async () => {
    const walkin = await serveAndConnect();
    const view = Buffer.from([1, 2, 3]); // a view into Node's shared 8 KiB pool
    const outcome = await within(walkin.mutation(api.texts.byteLength, { data: view as never }), 3000);
    expect(outcome).toMatchObject({ ok: false, error: { code: "INVALID_VALUE" } });
    const message: string = (outcome as { error: Error }).error.message;
    // The advice names a copy of the viewed bytes; following it sends those three bytes.
    expect(message).toContain("view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength)");
    const fixed = view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength);
    await expect(walkin.mutation(api.texts.byteLength, { data: fixed })).resolves.toEqual([1, 2, 3]);
  }, 30_000);

  it("an int64 or bytes value already in its wire form is explained, not answered with 'rename the field'", async () => {
    const walkin = await serveAndConnect();
    // The wire form, as docs/protocol.md shows it: what a user who copied it from a message would pass.
    const int = await within(walkin.mutation(api.texts.next, { n: { $integer: "BQAAAAAAAAA=" } as never }), 3000);
    expect(int).toMatchObject({ ok: false, error: { code: "INVALID_VALUE" } });
    expect((int as { error: Error }).error.message).toMatch(/args\.n\.\$integer: .*wire encoding of an int64.*pass the bigint itself, such as 5n/);
    expect((int as { error: Error }).error.message).not.toContain("rename the field");
    const bytes = await within(walkin.mutation(api.texts.byteLength, { data: { $bytes: "AQI=" } as never }), 3000);
    expect((bytes as { error: Error }).error.message).toMatch(/wire encoding of bytes.*pass the ArrayBuffer itself/);
    await expect(walkin.mutation(api.texts.next, { n: 5n })).resolves.toBe(6n);
  }, 30_000);
});
