/**
 * The function runtime's rules: visibility, argument and return checks,
 * determinism under concurrency, limits, and custom builders.
 */
import { afterEach, describe, expect, it } from "vitest";
import {
  action,
  customMutation,
  customQuery,
  defineSchema,
  defineTable,
  internalAction,
  internalMutation,
  internalQuery,
  makeFunctionReference,
  mutation,
  query,
} from "../server/index.js";
import { v } from "../values/index.js";
import { walkinTest } from "../testing/index.js";
import { LIMITS } from "./limits.js";

const schema = defineSchema({
  notes: defineTable({ body: v.string() }),
  events: defineTable({ kind: v.string() }),
});

let inputRuns = 0;
let successRuns = 0;

const counted = customMutation(mutation, {
  args: { tag: v.string() },
  input: async (_ctx, { tag }) => {
    inputRuns += 1;
    return { ctx: { tag }, args: {}, onSuccess: () => void (successRuns += 1) };
  },
});
const countedQuery = customQuery(query, {
  args: { tag: v.string() },
  input: async (_ctx, { tag }) => {
    inputRuns += 1;
    return { ctx: { tag }, args: {} };
  },
});
const nested = customQuery(countedQuery, {
  args: { other: v.number() },
  input: async (ctx: any, { other }) => {
    inputRuns += 1;
    return { ctx: { seen: `${ctx.tag}/${other}` }, args: {} };
  },
});

const modules = {
  rules: {
    randomMutation: mutation({ args: { n: v.number() }, handler: async () => Math.random() }),
    randomInsert: mutation({
      args: { n: v.number() },
      handler: async (ctx) => {
        const token = Math.random().toString(36).slice(2);
        await ctx.db.insert("notes", { body: token });
        return token;
      },
    }),
    nothingQ: query({ args: {}, handler: async () => undefined }),
    nothingM: mutation({ args: {}, handler: async () => undefined }),
    nothingA: action({ args: {}, handler: async () => undefined }),
    secretQ: internalQuery({ args: {}, handler: async () => "q" }),
    secretM: internalMutation({ args: {}, handler: async () => "m" }),
    secretA: internalAction({ args: {}, handler: async () => "a" }),
    schedulesSecret: mutation({
      args: {},
      handler: async (ctx) => {
        await ctx.scheduler.runAfter(0, makeFunctionReference<"mutation">("rules:secretM"), {});
        return null;
      },
    }),
    typed: mutation({ args: { n: v.number() }, handler: async (ctx, { n }) => ctx.db.insert("notes", { body: String(n) }) }),
    badReturn: mutation({
      args: {},
      returns: v.string(),
      handler: async (ctx) => {
        await ctx.db.insert("notes", { body: "x" });
        return 1 as never;
      },
    }),
    customM: counted({
      args: {},
      handler: async (ctx: any) => {
        await ctx.db.insert("events", { kind: ctx.tag });
        return ctx.tag;
      },
    }),
    customFail: counted({
      args: {},
      handler: async () => {
        throw new Error("handler failed");
      },
    }),
    nestedQ: nested({ args: { x: v.string() }, handler: async (ctx: any, args: any) => ({ seen: ctx.seen, args }) }),
  },
};

let t: ReturnType<typeof walkinTest> | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
  inputRuns = 0;
  successRuns = 0;
});

describe("visibility", () => {
  it("hides internal functions from clients on every entry point, and lets server code call them", async () => {
    t = walkinTest(schema, modules);
    const engine = await t.engine();
    const client = { fromClient: true };
    for (const [path, run] of [
      ["rules:secretQ", () => engine.runQuery("rules:secretQ", {}, client)],
      ["rules:secretM", () => engine.runMutation("rules:secretM", {}, client)],
      ["rules:secretA", () => engine.runAction("rules:secretA", {}, client)],
      ["rules:secretM", () => engine.runClientMutation("rules:secretM", {}, client, { clientId: "c", requestId: 1, firstSend: true } as never)],
      ["rules:secretQ", () => engine.subscriptions.subscribe("rules:secretQ", {}, client, () => {})],
    ] as const) {
      await expect(run(), path).rejects.toMatchObject({ code: "UNKNOWN_FUNCTION" });
    }
    // Warm the cache by a server call, then the client must still be refused.
    expect(await engine.runQuery("rules:secretQ", {})).toBe("q");
    await expect(engine.runQuery("rules:secretQ", {}, client)).rejects.toMatchObject({ code: "UNKNOWN_FUNCTION" });
    // A client's public mutation may schedule an internal one.
    await engine.runMutation("rules:schedulesSecret", {}, client);
  });
});

describe("args and returns", () => {
  it("validates args before the handler runs, with a message naming the path", async () => {
    t = walkinTest(schema, modules);
    const engine = await t.engine();
    await expect(engine.runMutation("rules:typed", { n: "1" }, { fromClient: true })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      message: expect.stringContaining("args.n"),
    });
    expect(await t.run((ctx) => ctx.db.query("notes").collect())).toEqual([]);
  });

  it("turns an undefined result into null for queries, mutations and actions", async () => {
    t = walkinTest(schema, modules);
    const engine = await t.engine();
    expect(await engine.runQuery("rules:nothingQ", {})).toBeNull();
    expect((await engine.runMutation("rules:nothingM", {})).value).toBeNull();
    expect(await engine.runAction("rules:nothingA", {})).toBeNull();
  });

  it("writes nothing when a mutation's result does not match returns", async () => {
    t = walkinTest(schema, modules);
    const engine = await t.engine();
    await expect(engine.runMutation("rules:badReturn", {})).rejects.toMatchObject({ code: "MISUSE" });
    expect(await t.run((ctx) => ctx.db.query("notes").collect())).toEqual([]);
  });
});

describe("determinism", () => {
  it("gives concurrent runs of one mutation different random sequences (different args)", async () => {
    t = walkinTest(schema, modules);
    const engine = await t.engine();
    const values = await Promise.all([1, 2, 3, 4].map((n) => engine.runMutation("rules:randomMutation", { n })));
    expect(new Set(values.map((r) => r.value)).size).toBe(4);
  });

  it("gives concurrent inserting mutations different random tokens", async () => {
    t = walkinTest(schema, modules);
    const engine = await t.engine();
    const values = await Promise.all([1, 2, 3, 4].map((n) => engine.runMutation("rules:randomInsert", { n })));
    expect(new Set(values.map((r) => r.value)).size).toBe(4);
  });
});

describe("custom builders", () => {
  it("runs input once per call and onSuccess only after success", async () => {
    t = walkinTest(schema, modules);
    const engine = await t.engine();
    expect((await engine.runMutation("rules:customM", { tag: "a" })).value).toBe("a");
    expect([inputRuns, successRuns]).toEqual([1, 1]);
    await expect(engine.runMutation("rules:customFail", { tag: "b" })).rejects.toThrow("handler failed");
    expect([inputRuns, successRuns]).toEqual([2, 1]);
  });

  it("nests: each input once, custom args consumed, ctx added", async () => {
    t = walkinTest(schema, modules);
    const engine = await t.engine();
    expect(await engine.runQuery("rules:nestedQ", { tag: "t", other: 2, x: "y" })).toEqual({ seen: "t/2", args: { x: "y" } });
    expect(inputRuns).toBe(2);
  });
});

const limitModules = {
  limits: {
    // Catches the write-limit error and returns normally.
    swallowWriteLimit: mutation({
      args: {},
      handler: async (ctx) => {
        let written = 0;
        try {
          for (let i = 0; i <= LIMITS.maxDocumentsWritten; i++) {
            await ctx.db.insert("notes", { body: String(i) });
            written++;
          }
        } catch (error) {
          return { written, code: (error as { code?: string }).code };
        }
        return { written, code: null };
      },
    }),
    // One document of ~200 KB, patched 100 times: its final size is 200 KB.
    patchOneDocOften: mutation({
      args: {},
      handler: async (ctx) => {
        const id = await ctx.db.insert("notes", { body: "x".repeat(200_000) });
        for (let i = 0; i < 100; i++) await ctx.db.patch(id, { body: `${i}`.padEnd(200_000, "y") });
        return null;
      },
    }),
  },
};

describe("limits", () => {
  it("a mutation that hits the write limit writes nothing, even if the handler catches the error", async () => {
    t = walkinTest(schema, limitModules);
    const engine = await t.engine();
    let outcome: unknown;
    try {
      outcome = (await engine.runMutation("limits:swallowWriteLimit", {})).value;
    } catch (error) {
      outcome = (error as { code?: string }).code;
    }
    const count = (await t.run((ctx) => ctx.db.query("notes").collect())).length;
    expect({ outcome, count }).toEqual({ outcome: "LIMIT_EXCEEDED", count: 0 });
  }, 60_000);

  it("counts bytes written once per document, as the document count does", async () => {
    t = walkinTest(schema, limitModules);
    const engine = await t.engine();
    await expect(engine.runMutation("limits:patchOneDocOften", {})).resolves.toMatchObject({ value: null });
  }, 60_000);
});
