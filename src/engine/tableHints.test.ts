import { describe, expect, it } from "vitest";
import { defineSchema, defineTable, v } from "../server/index.js";
import { sessionTables, getOrCreateSessionUser } from "../sessions/index.js";
import { authTables } from "../auth/index.js";
import { walkinTest } from "../testing/index.js";
import { PROVIDED_TABLES } from "./tableHints.js";

describe("unknown tables that Walk-in's modules provide", () => {
  it("lists every table of sessionTables and authTables but users (apps define their own)", () => {
    const expected = [
      ...Object.keys(sessionTables).map((name) => [name, "sessionTables"]),
      ...Object.keys(authTables).filter((name) => name !== "users").map((name) => [name, "authTables"]),
    ];
    for (const [name, spread] of expected) expect(PROVIDED_TABLES[name!]?.spread, name).toBe(spread);
  });

  const schema = defineSchema({ users: defineTable({ name: v.string() }) });
  const error = (promise: Promise<unknown>) => promise.then(() => expect.fail("should have thrown"), (e: Error) => e);

  it("a session user without ...sessionTables names the spread and its import", async () => {
    const t = walkinTest(schema, {});
    const e = await error(t.run((ctx) => getOrCreateSessionUser(ctx, "digest" as never, (ctx) => ctx.db.insert("users", { name: "A" }))));
    expect(e.message).toContain('Unknown table "logins"');
    expect(e.message).toContain("...sessionTables");
    expect(e.message).toContain('import { sessionTables } from "walkin/sessions"');
  });

  it("an auth table names ...authTables; a guessed sessionId table names ...sessionTables; others keep the plain advice", async () => {
    const t = walkinTest(schema, {});
    const auth = await error(t.run((ctx) => ctx.db.query("authSessions" as never).collect()));
    expect(auth.message).toContain('import { authTables } from "walkin/auth"');
    const guessed = await error(t.run((ctx) => ctx.db.query("sessionId" as never).collect()));
    expect(guessed.message).toContain("...sessionTables");
    const other = await error(t.run((ctx) => ctx.db.query("nope" as never).collect()));
    expect(other.message).toContain("Declare it in functions/schema.ts with defineTable");
    expect(other.message).not.toContain("...");
  });
});
