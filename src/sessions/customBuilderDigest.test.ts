import { expect, it } from "vitest";
import { customMutation, defineSchema, defineTable, mutation, anyApi } from "../server/index.js";
import { walkinTest } from "../testing/index.js";
import { SessionIdArg, sessionDigest, vSessionId } from "./index.js";

const schema = defineSchema({ seen: defineTable({ sessionId: vSessionId }) });

// An app-written builder, as in the articles; its functions declare no args of their own.
const mutationWithSession = customMutation(mutation, {
  args: SessionIdArg,
  input: async (_ctx, { sessionId }) => ({ ctx: { sessionId }, args: {} }),
});
const untyped = mutationWithSession as unknown as (definition: unknown) => ReturnType<typeof mutationWithSession>;
const probe = {
  record: untyped(async (ctx: { sessionId: string; db: any }) => {
    await ctx.db.insert("seen", { sessionId: ctx.sessionId });
    return ctx.sessionId;
  }),
};

it("hands a custom builder's input the digest even when the function declares no args", async () => {
  const t = walkinTest(schema, { probe });
  const raw = crypto.randomUUID();
  const seen = await t.mutation(anyApi.probe!.record!, { sessionId: raw });
  expect(seen).toBe(sessionDigest(raw));
  expect(seen).not.toContain(raw);
  await expect(t.mutation(anyApi.probe!.record!, { sessionId: sessionDigest(raw) })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  await t.close();
});
