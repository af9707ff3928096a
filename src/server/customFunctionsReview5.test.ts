/**
 * Custom builders (review 5), tested the way an app tests its functions: through the harness.
 */
import { describe, expect, it } from "vitest";
import { convexTest } from "../testing/index.js";
import { v } from "../values/index.js";
import { anyApi } from "./api.js";
import { customMutation } from "./customFunctions.js";
import { mutation } from "./functions.js";
import { defineSchema, defineTable } from "./schema.js";

const schema = defineSchema({ notes: defineTable({ text: v.string() }) });
const api = anyApi as any;

// A JavaScript customization (or one cast past its types) whose input forgets its `return`.
const checkedMutation = customMutation(mutation, {
  args: { apiKey: v.string() },
  input: (async (_ctx: unknown, { apiKey }: { apiKey: string }) => {
    if (apiKey !== "secret") throw new Error("bad key");
  }) as never,
});
const notes = {
  add: checkedMutation({ args: { text: v.string() }, handler: (ctx, { text }) => ctx.db.insert("notes", { text }) }),
};

describe("a customization's input", () => {
  it("that returns nothing fails with what it must return, and writes nothing", async () => {
    const t = convexTest(schema, { notes });
    const error = (await t.mutation(api.notes.add, { apiKey: "secret", text: "hi" }).catch((e: unknown) => e)) as Error & { code?: string };
    expect(error.message).toMatch(/customMutation's input returned undefined.*\{ ctx, args \}/);
    expect(error.code).toBe("MISUSE");
    expect(await t.run((ctx) => ctx.db.query("notes").collect())).toEqual([]);
    await t.close();
  });
});
