// Tests in the style of a Convex app's convex-test suite; only the import paths differ
// (convex-test → walkin/testing, convex/* → walkin/*, convex-helpers/* → walkin/*).
import { execFile } from "node:child_process";
import { mkdtemp, readFile, readdir, cp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { describe, expect, expectTypeOf, test } from "vitest";
import { convexTest } from "walkin/testing";
import {
  actionGeneric,
  customQuery,
  customCtx,
  customMutation,
  mutationGeneric,
  NoOp,
  queryGeneric,
  type DocumentByInfo,
  type GenericDatabaseReader,
  type MutationBuilder,
  type NamedTableInfo,
  type QueryBuilder,
  type WithOptionalSystemFields,
} from "walkin/server";
import { v } from "walkin/values";
import { convexAuth } from "walkin/auth";
import type { SessionId } from "walkin/sessions";
import { Anonymous } from "walkin/auth/providers/Anonymous";
import { api, internal } from "./_generated/api";
import type { DataModel, Doc, Id } from "./_generated/dataModel";
import { query } from "./_generated/server";
import { mutationWithSession, queryWithSession } from "./lib/sessions";
import schema from "./schema";
import { newSessionId, UUID } from "./test.helpers";

const modules = import.meta.glob("./**/*.ts");

describe("ctx.db with the table name first", () => {
  test("rename patches the user and the message list reads authors by table and ID", async () => {
    const t = convexTest(schema, modules);
    const sessionId = newSessionId();
    await t.mutation(api.messages.send, { sessionId, body: "hello" });
    expect((await t.query(api.messages.list)).map((m) => [m.author, m.body])).toEqual([["Anonymous", "hello"]]);
    await t.mutation(api.users.setName, { sessionId, name: "Ada" });
    expect((await t.query(api.messages.list)).map((m) => m.author)).toEqual(["Ada"]);
    const [message] = await t.query(api.messages.list);
    await t.mutation(api.messages.remove, { sessionId, id: message!._id });
    expect(await t.query(api.messages.list)).toEqual([]);
  });

  test("a search index finds messages by their words, the last one as a prefix, and by author", async () => {
    const t = convexTest(schema, modules);
    const ada = newSessionId();
    const bob = newSessionId();
    await t.mutation(api.messages.send, { sessionId: ada, body: "Deploying the new search today" });
    await t.mutation(api.messages.send, { sessionId: bob, body: "Searching works, deploy looks good" });
    await t.mutation(api.messages.send, { sessionId: bob, body: "lunch?" });
    expect(new Set(await t.query(api.messages.search, { text: "deploy sear" }))).toEqual(
      new Set(["Deploying the new search today", "Searching works, deploy looks good"]),
    );
    const bobId = (await t.query(api.messages.list)).find((m) => m.body === "lunch?")!.authorId;
    expect(await t.query(api.messages.search, { text: "deploy", author: bobId })).toEqual(["Searching works, deploy looks good"]);
    expect(await t.query(api.messages.search, { text: "dinner" })).toEqual([]);
  });

  test("a table name that does not match the ID is an error, not another table's document", async () => {
    const t = convexTest(schema, modules);
    const sessionId = newSessionId();
    const userId = await t.mutation(api.users.setName, { sessionId, name: "Ada" });
    await t.run(async (ctx) => {
      expect((await ctx.db.get("users", userId))?.name).toBe("Ada");
      // @ts-expect-error a users ID is not a messages ID
      await expect(ctx.db.get("messages", userId)).rejects.toThrow('belongs to the table "users", not "messages"');
      // @ts-expect-error likewise for writes
      await expect(ctx.db.patch("messages", userId, { body: "x" })).rejects.toThrow('not "messages"');
      // @ts-expect-error and deletes
      await expect(ctx.db.delete("authSessions", userId)).rejects.toThrow('not "authSessions"');
      expect((await ctx.db.get(userId))?.name).toBe("Ada");
    });
  });
});

describe("custom functions as convex-helpers defines them", () => {
  test("builders add ctx, nest, and take the session argument redeclared with the same validator", async () => {
    const t = convexTest(schema, modules);
    const sessionId = newSessionId();
    await expect(t.query(api.users.greeting, { sessionId })).rejects.toThrow("Pick a name first");
    await t.mutation(api.users.setName, { sessionId, name: "Grace" });
    expect(await t.query(api.users.greeting, { sessionId, punctuation: "?" })).toBe("Hello, Grace?");
    expect(await t.query(api.users.getWithOwnSessionArg, { sessionId })).toBe(true);
    expect(await t.action(api.messages.countMine, { sessionId })).toBe(0);
  });

  test("a function without args on a builder with custom args is refused when defined", () => {
    expect(() => queryWithSession({ handler: async () => null } as never)).toThrow(/declare their own args too/);
    // @ts-expect-error a bare handler on a builder with custom args: refused by the types too
    expect(() => mutationWithSession(async () => null)).toThrow(/"sessionId"/);
  });

  test("a wider redeclaration of a custom argument is refused", () => {
    // @ts-expect-error a number where the builder declares a session ID
    expect(() => queryWithSession({ args: { sessionId: v.number() }, handler: async () => null })).toThrow(/narrower/);
  });

  test("builders take a bare handler, NoOp, and are typed like the builder they wrap", async () => {
    const withNow = customQuery(query, customCtx(async () => ({ now: 42 })));
    const plain = customQuery(query, NoOp);
    const registered = { clock: { now: withNow(async (ctx) => ctx.now), count: plain(async (ctx) => (await ctx.db.query("users").collect()).length) } };
    expectTypeOf(withNow).toExtend<typeof query>();
    // As convex-helpers' own tests check it, placeholder builder included.
    customQuery({} as any, { args: {}, input: async () => ({ ctx: {}, args: {} }) }) satisfies typeof query;
    customMutation(mutationGeneric as MutationBuilder<DataModel, "public">, customCtx(() => ({}))) satisfies MutationBuilder<DataModel, "public">;
    expectTypeOf(plain).toExtend<typeof query>();
    const t = convexTest(schema, registered);
    expect(await t.query(makeRef<number>("clock:now"))).toBe(42);
    expect(await t.query(makeRef<number>("clock:count"))).toBe(0);
  });

  test("a builder that does not exist here fails with what to use instead, not 'register is not a function'", () => {
    // What `import { queryGenerik } from "walkin/server"` gives a bundler: undefined.
    const missing = ({} as { queryGenerik: QueryBuilder<DataModel, "public"> }).queryGenerik;
    const builder = customQuery(missing, NoOp);
    expect(() => builder({ args: {}, handler: async () => null })).toThrow(/takes a query builder first .*queryGeneric from walkin\/server/);
  });
});

describe("Convex's export names", () => {
  test("the generic builders and types are the ones of _generated/server", () => {
    const typedQuery = queryGeneric as QueryBuilder<DataModel, "public">;
    expect(typeof mutationGeneric).toBe("function");
    expect(typeof actionGeneric).toBe("function");
    const fn = typedQuery({ args: { id: v.id("users") }, handler: async (ctx, { id }) => (await ctx.db.get(id))?.name ?? null });
    expectTypeOf(fn.__returns).toEqualTypeOf<string | null>();
    expectTypeOf<DocumentByInfo<NamedTableInfo<DataModel, "users">>>().toEqualTypeOf<Doc<"users">>();
    expectTypeOf<GenericDatabaseReader<DataModel>["get"]>().toBeFunction();
    expectTypeOf<WithOptionalSystemFields<Doc<"messages">>>().toEqualTypeOf<{ author: Id<"users">; body: string; _id?: Id<"messages">; _creationTime?: number }>();
  });
});

describe("results as a client sees them", () => {
  test("a field set to undefined is absent", async () => {
    const t = convexTest(schema, modules);
    const profile = await t.query(api.users.get, { sessionId: newSessionId() });
    expect(profile).not.toHaveProperty("name");
    expect(Object.keys(profile)).toEqual(["sessionId"]);
  });
});

describe("Convex Auth", () => {
  test("anonymous sign-in answers tokens; the identity has the user and the auth session", async () => {
    const t = convexTest(schema, modules);
    const { tokens } = await t.action(api.auth.signIn, { provider: "anonymous" });
    expect(tokens).not.toBeNull();
    const asUser = t.withToken(tokens!.token);
    expect(await asUser.query(api.auth.isAuthenticated)).toBe(true);
    expect(await t.query(api.auth.isAuthenticated)).toBe(false);
    const { userId, authSessionId } = await asUser.query(api.auth.whoAmI);
    const user = await t.run(async (ctx) => ctx.db.get("users", userId!));
    expect(user).toMatchObject({ name: "Guest", isAnonymous: true }); // made by createOrUpdateUser
    expect(await t.run(async (ctx) => (await ctx.db.get("authSessions", authSessionId!))?.userId)).toBe(userId);
  });

  test("beforeSessionCreation refuses a banned user and nothing is written", async () => {
    const t = convexTest(schema, modules);
    const sessionId = newSessionId();
    const { tokens } = await t.action(api.auth.signIn, { provider: "anonymous", sessionId });
    const { userId } = await t.withToken(tokens!.token).query(api.auth.whoAmI);
    await t.run((ctx) => ctx.db.patch("users", userId!, { banned: true }));
    const countSessions = () => t.run(async (ctx) => (await ctx.db.query("authSessions").collect()).length);
    const before = await countSessions();
    // The same browser session signing in again (its token lost) would get its user back: refused.
    await expect(t.action(api.auth.signIn, { provider: "anonymous", sessionId })).rejects.toThrow("Account is banned");
    expect(await countSessions()).toBe(before);
  });

  test("a configuration key Walk-in does not support is refused at startup", () => {
    expect(() => convexAuth({ providers: [Anonymous], jwt: { durationMs: 1000 } } as never)).toThrow(/"jwt" is not supported/);
    expect(() => convexAuth({ providers: [Anonymous], callbacks: { beforeSessionCreate: async () => {} } } as never)).toThrow(
      /not a callback Walk-in runs/,
    );
  });
});

describe("codegen like Convex's", () => {
  test("test files and files with more than one dot are not modules", async () => {
    const api = await readFile(new URL("./_generated/api.ts", import.meta.url), "utf8");
    expect(api).not.toMatch(/test\.helpers|compat\.test/);
    expect(api).toContain(`import type * as lib_sessions from "../lib/sessions.js";`);
    // `walkin codegen` on a copy writes the same files (they are up to date and skip the tests).
    const dir = await mkdtemp(path.join(os.tmpdir(), "walkin-compat-"));
    try {
      await cp(fileURLToPath(new URL(".", import.meta.url)), path.join(dir, "functions"), { recursive: true });
      await rm(path.join(dir, "functions", "_generated"), { recursive: true });
      const bin = fileURLToPath(new URL("../../../bin/walkin.js", import.meta.url));
      await promisify(execFile)(process.execPath, [bin, "codegen"], { cwd: dir, env: { ...process.env, WALKIN_CLI_FROM_SOURCE: "1" } });
      for (const file of await readdir(path.join(dir, "functions", "_generated"))) {
        expect(await readFile(path.join(dir, "functions", "_generated", file), "utf8")).toBe(
          await readFile(new URL(`./_generated/${file}`, import.meta.url), "utf8"),
        );
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("convexTest takes import.meta.glob and leaves out the schema, tests and helpers", async () => {
    const t = convexTest(schema, modules);
    expect(await t.query(api.messages.list)).toEqual([]);
    expect(internal).toBeDefined();
  });

  test("convexTest without modules says how to pass them (convex-test finds them itself)", async () => {
    const t = convexTest(schema);
    await expect(t.query(api.messages.list)).rejects.toThrow(/given no modules.*import\.meta\.glob/);
    await t.run(async (ctx) => expect(await ctx.db.query("messages").collect()).toEqual([]));
  });
});

describe("where Walk-in differs on purpose", () => {
  test("a session ID must be the UUID v4 the client generated; handlers see its digest", async () => {
    const t = convexTest(schema, modules);
    await expect(t.query(api.users.get, { sessionId: "my-session" as SessionId })).rejects.toThrow(/expected the UUID the client generated/);
    const sessionId = newSessionId();
    expect(sessionId).toMatch(UUID);
    const { sessionId: seen } = await t.query(api.users.get, { sessionId });
    expect(seen).toMatch(/^sd1_/);
    expect(seen).not.toContain(sessionId);
  });

  test("auth tokens are opaque, not JWTs", async () => {
    const t = convexTest(schema, modules);
    const { tokens } = await t.action(api.auth.signIn, { provider: "anonymous" });
    expect(tokens!.token.split(".")[0]).toBe("wk2");
    expect(tokens).not.toHaveProperty("refreshToken");
  });
});

function makeRef<R>(name: string) {
  return { [Symbol.for("walkin.functionName")]: name } as unknown as import("walkin/server").FunctionReference<"query", "public", Record<string, never>, R>;
}
