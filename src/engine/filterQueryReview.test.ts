/**
 * `.filter()` predicates that do not evaluate to a boolean. Convex evaluates `q.and`, `q.or`,
 * `q.not` and the predicate itself with "Cannot use value … as a Boolean" for anything else
 * (a missing field included), so a predicate that is not a boolean is a bug in the query, not
 * a "no": it must fail loudly instead of silently keeping or dropping documents.
 */
import { afterEach, describe, expect, it } from "vitest";
import { defineSchema, defineTable } from "../server/index.js";
import { isWalkinError, v } from "../values/index.js";
import { walkinTest } from "../testing/index.js";

const schema = defineSchema({
  posts: defineTable({ title: v.string(), published: v.optional(v.boolean()), votes: v.number() }),
});

let t: ReturnType<typeof walkinTest<typeof schema>>;
afterEach(async () => t?.close());

async function seed() {
  t = walkinTest(schema);
  await t.run(async (ctx) => {
    await ctx.db.insert("posts", { title: "draft", votes: 1 }); // `published` missing
    await ctx.db.insert("posts", { title: "live", published: true, votes: 2 });
    await ctx.db.insert("posts", { title: "hidden", published: false, votes: 3 });
  });
}

// The types refuse these predicates too (as Convex's do): `as never` stands for untyped code.
const titles = (docs: { title: string }[]) => docs.map((doc) => doc.title);
const notABoolean = (e: unknown) => isWalkinError(e) && e.code === "INVALID_ARGUMENT" && /as a boolean/.test(e.message);

describe("a filter predicate that is not a boolean", () => {
  it("fails on a document whose field is missing, instead of dropping it", async () => {
    await seed();
    await expect(t.query((ctx) => ctx.db.query("posts").filter((q) => q.field("published") as never).collect())).rejects.toSatisfy(notABoolean);
    // Comparing is how to say "missing counts as not published", and it keeps working.
    expect(titles(await t.query((ctx) => ctx.db.query("posts").filter((q) => q.eq(q.field("published"), true)).collect()))).toEqual(["live"]);
  });

  it("q.not() of a missing field fails, instead of keeping the document", async () => {
    await seed();
    await expect(t.query((ctx) => ctx.db.query("posts").filter((q) => q.not(q.field("published") as never)).collect())).rejects.toSatisfy(notABoolean);
    expect(titles(await t.query((ctx) => ctx.db.query("posts").filter((q) => q.not(q.eq(q.field("published"), true))).collect()))).toEqual(["draft", "hidden"]);
  });

  it("q.and() and q.or() fail on an operand that is not a boolean, and stop at the first that decides", async () => {
    await seed();
    await expect(t.query((ctx) => ctx.db.query("posts").filter((q) => q.and(true, q.field("votes") as never)).collect())).rejects.toSatisfy(notABoolean);
    await expect(t.query((ctx) => ctx.db.query("posts").filter((q) => q.or(false, q.field("title") as never)).collect())).rejects.toSatisfy(notABoolean);
    // As in Convex, operands after the one that decides are not evaluated.
    expect(await t.query((ctx) => ctx.db.query("posts").filter((q) => q.and(false, q.field("votes") as never)).collect())).toEqual([]);
    expect(titles(await t.query((ctx) => ctx.db.query("posts").filter((q) => q.or(true, q.field("votes") as never)).collect()))).toEqual(["draft", "live", "hidden"]);
  });

  it("a predicate that is a number or an arithmetic result fails, naming what it got", async () => {
    await seed();
    await expect(t.query((ctx) => ctx.db.query("posts").filter(() => 1 as never).collect())).rejects.toSatisfy(
      (e: unknown) => notABoolean(e) && /number/.test((e as Error).message),
    );
    await expect(t.query((ctx) => ctx.db.query("posts").filter((q) => q.add(q.field("votes"), 1) as never).first())).rejects.toSatisfy(notABoolean);
  });
});
