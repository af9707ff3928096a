import { expect, it } from "vitest";
import { customMutation, defineSchema, defineTable, mutation, anyApi } from "../server/index.js";
import { walkinTest } from "../testing/index.js";
import { SessionIdArg, sessionDigest, vSessionId } from "./index.js";

const schema = defineSchema({ seen: defineTable({ sessionId: vSessionId }) });

// An app-written builder, as in the articles; its functions declare no args of their own
// (`args: {}`: a definition without args is refused on a builder with custom args).
const mutationWithSession = customMutation(mutation, {
  args: SessionIdArg,
  input: async (_ctx, { sessionId }) => ({ ctx: { sessionId }, args: {} }),
});
const untyped = mutationWithSession as unknown as (definition: unknown) => ReturnType<typeof mutationWithSession>;
const probe = {
  record: untyped({
    args: {},
    handler: async (ctx: { sessionId: string; db: any }) => {
      await ctx.db.insert("seen", { sessionId: ctx.sessionId });
      return ctx.sessionId;
    },
  }),
};

it("hands a custom builder's input the digest even when the function declares no args of its own", async () => {
  const t = walkinTest(schema, { probe });
  const raw = crypto.randomUUID();
  const seen = await t.mutation(anyApi.probe!.record!, { sessionId: raw });
  expect(seen).toBe(sessionDigest(raw));
  expect(seen).not.toContain(raw);
  // A client (not the test harness, which is trusted server code) may not send a digest.
  const engine = await t.engine();
  await expect(engine.runMutation("probe:record", { sessionId: sessionDigest(raw) }, { fromClient: true })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  await t.close();
});
