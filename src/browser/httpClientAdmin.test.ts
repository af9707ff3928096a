/**
 * `WalkinHttpClient.setAdminAuth` (Convex's `ConvexHttpClient.setAdminAuth`) against a real
 * server with an admin key, on loopback: calls run internal functions, as nobody or as exactly
 * the identity given; a wrong key, a server without an admin API and a bad identity each get
 * an error that says what to do; `setAuth` and `clearAuth` end it. Also the rest of Convex's
 * `ConvexHttpClient` surface that has nothing to do here (`backendUrl`, `setDebug`, `logger`).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Engine } from "../engine/engine.js";
import { Dashboard } from "../dashboard/index.js";
import { defineSchema, defineTable, internalAction, internalMutation, internalQuery, makeFunctionReference, query, type UserIdentityAttributes } from "../server/index.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { startServer, type WalkinServer } from "../transport/index.js";
import { WalkinError, isWalkinError, v, type WalkinErrorCode } from "../values/index.js";
import { ConvexHttpClient, WalkinHttpClient } from "./index.js";

const ADMIN_KEY = "admin-key-for-the-http-client-0123456789";

const schema = defineSchema({ invoices: defineTable({ paid: v.boolean() }) });
const modules = {
  billing: {
    markPaid: internalMutation({ args: { id: v.id("invoices") }, handler: (ctx, { id }) => ctx.db.patch(id, { paid: true }) }),
    create: internalMutation({ args: {}, handler: (ctx) => ctx.db.insert("invoices", { paid: false }) }),
    isPaid: internalQuery({ args: { id: v.id("invoices") }, handler: async (ctx, { id }) => (await ctx.db.get(id))?.paid ?? null }),
    refuse: internalMutation({
      args: { limit: v.int64() },
      handler: async (ctx, { limit }) => {
        await ctx.db.insert("invoices", { paid: false }); // undone with the call
        throw new WalkinError("over the limit", { data: { limit } });
      },
    }),
    ping: internalAction({ args: {}, handler: async () => "pong" }),
    count: internalQuery({ args: {}, handler: async (ctx) => (await ctx.db.query("invoices").collect()).length }),
  },
  me: {
    identity: query({ args: {}, handler: (ctx) => ctx.auth.getUserIdentity() }),
  },
};

const api = {
  markPaid: makeFunctionReference<"mutation", { id: string }, null>("billing:markPaid"),
  create: makeFunctionReference<"mutation", Record<string, never>, string>("billing:create"),
  isPaid: makeFunctionReference<"query", { id: string }, boolean | null>("billing:isPaid"),
  isPaidAsMutation: makeFunctionReference<"mutation", { id: string }, boolean | null>("billing:isPaid"),
  refuse: makeFunctionReference<"mutation", { limit: bigint }, null>("billing:refuse"),
  ping: makeFunctionReference<"action", Record<string, never>, string>("billing:ping"),
  identity: makeFunctionReference<"query", Record<string, never>, Record<string, unknown> | null>("me:identity"),
};

let engine: Engine;
let server: WalkinServer;
let dashboard: Dashboard;
let plainEngine: Engine;
let plainServer: WalkinServer;

beforeAll(async () => {
  dashboard = new Dashboard({ adminKey: ADMIN_KEY });
  engine = await Engine.open({ storage: await openSqliteStorage({ filename: ":memory:" }), schema, modules, runScheduler: false, observeRun: dashboard.observeRun });
  server = await startServer({ engine, port: 0, host: "127.0.0.1", log: () => {}, dashboard });
  // The same app on a server without a dashboard: it has no admin API.
  plainEngine = await Engine.open({ storage: await openSqliteStorage({ filename: ":memory:" }), schema, modules, runScheduler: false });
  plainServer = await startServer({ engine: plainEngine, port: 0, host: "127.0.0.1", log: () => {} });
});

afterAll(async () => {
  dashboard.close();
  await server.close();
  await engine.close();
  await plainServer.close();
  await plainEngine.close();
});

async function rejection(promise: Promise<unknown>, code: WalkinErrorCode): Promise<WalkinError> {
  const error = await promise.then(
    () => expect.fail("the call succeeded"),
    (caught: unknown) => caught,
  );
  expect(isWalkinError(error)).toBe(true);
  expect((error as WalkinError).code).toBe(code);
  return error as WalkinError;
}

const invoiceCount = () => engine.runQuery("billing:count", {});

describe("setAdminAuth", () => {
  it("runs internal mutations, queries and actions with the server's admin key", async () => {
    const admin = new ConvexHttpClient(server.url);
    admin.setAdminAuth(ADMIN_KEY);
    const id = await admin.mutation(api.create, {});
    expect(await admin.query(api.isPaid, { id })).toBe(false);
    await admin.mutation(api.markPaid, { id });
    expect(await admin.query(api.isPaid, { id })).toBe(true);
    expect(await admin.action(api.ping, {})).toBe("pong");
    // The same internal call without the key is refused, as to any client.
    const signedOut = new WalkinHttpClient(server.url);
    await rejection(signedOut.query(api.isPaid, { id }), "UNKNOWN_FUNCTION");
  });

  it("runs as nobody without an identity, and as exactly the identity given with one", async () => {
    const admin = new WalkinHttpClient(server.url);
    admin.setAdminAuth(ADMIN_KEY);
    expect(await admin.query(api.identity, {})).toBeNull();

    const acting: UserIdentityAttributes = { subject: "user_123", issuer: "https://auth.example.com", email: "ada@example.com", emailVerified: true };
    admin.setAdminAuth(ADMIN_KEY, acting);
    expect(await admin.query(api.identity, {})).toEqual({ ...acting, tokenIdentifier: "https://auth.example.com|user_123" });

    // Without an issuer: walkin/auth's, so the subject is a user as getAuthUserId reads it.
    admin.setAdminAuth(ADMIN_KEY, { subject: "some-user-id" });
    expect(await admin.query(api.identity, {})).toEqual({ subject: "some-user-id", issuer: "walkin", tokenIdentifier: "walkin|some-user-id" });
  });

  it("hands a function's error over as the HTTP API does, its int64 data included, and commits nothing", async () => {
    const admin = new WalkinHttpClient(server.url);
    admin.setAdminAuth(ADMIN_KEY);
    const before = await invoiceCount();
    const error = await rejection(admin.mutation(api.refuse, { limit: 2n ** 40n }), "APPLICATION");
    expect(error.message).toBe("over the limit");
    expect(error.data).toEqual({ limit: 2n ** 40n });
    expect(await invoiceCount()).toBe(before);
  });

  it("refuses a query called as a mutation, and runs nothing", async () => {
    const admin = new WalkinHttpClient(server.url);
    admin.setAdminAuth(ADMIN_KEY);
    const id = await admin.mutation(api.create, {});
    const error = await rejection(admin.mutation(api.isPaidAsMutation, { id }), "WRONG_FUNCTION_TYPE");
    expect(error.message).toContain('"billing:isPaid" is a query, not a mutation');
  });

  it("says the key is wrong when the server does not hold it", async () => {
    const admin = new WalkinHttpClient(server.url);
    admin.setAdminAuth(`${ADMIN_KEY}-not-it`);
    const before = await invoiceCount();
    const error = await rejection(admin.mutation(api.create, {}), "UNAUTHENTICATED");
    expect(error.message).toContain("the server refused the admin key given to setAdminAuth: it must be the server's WALKIN_ADMIN_KEY");
    expect(error.message).not.toContain(ADMIN_KEY);
    expect(await invoiceCount()).toBe(before);
  });

  it("says how to give a server an admin API when it has none", async () => {
    const admin = new WalkinHttpClient(plainServer.url);
    admin.setAdminAuth(ADMIN_KEY);
    const error = await rejection(admin.query(api.identity, {}), "MISUSE");
    expect(error.message).toContain(`${plainServer.url} has no admin API, so setAdminAuth calls cannot run there. Start the server with an admin key`);
  });

  it("refuses a bad key or identity when it is given, before anything is sent", () => {
    const admin = new WalkinHttpClient(server.url, { fetch: () => expect.fail("nothing may be sent") });
    const misuse = (call: () => void, message: string, code: WalkinErrorCode = "MISUSE") => {
      let caught: unknown;
      try {
        call();
      } catch (error) {
        caught = error;
      }
      expect(isWalkinError(caught) && caught.code).toBe(code);
      expect((caught as Error).message).toContain(message);
    };
    misuse(() => admin.setAdminAuth(""), "setAdminAuth(adminKey) takes the server's admin key");
    misuse(() => admin.setAdminAuth("two words"), "without spaces");
    misuse(() => admin.setAdminAuth(ADMIN_KEY, {} as UserIdentityAttributes), "actingAsIdentity.subject must be a non-empty string");
    misuse(() => admin.setAdminAuth(ADMIN_KEY, { subject: "u", issuer: "" }), "actingAsIdentity.issuer must be a non-empty string");
    misuse(() => admin.setAdminAuth(ADMIN_KEY, { subject: "u", tokenIdentifier: "x|u" }), "leave tokenIdentifier out");
    misuse(() => admin.setAdminAuth(ADMIN_KEY, { subject: "u", callback: (() => 1) as never }), "actingAsIdentity.callback", "INVALID_VALUE");
  });

  it("ends with setAuth or clearAuth", async () => {
    const admin = new WalkinHttpClient(server.url);
    admin.setAdminAuth(ADMIN_KEY, { subject: "user_123", issuer: "https://auth.example.com" });
    admin.clearAuth();
    expect(await admin.query(api.identity, {})).toBeNull();
    await rejection(admin.mutation(api.create, {}), "UNKNOWN_FUNCTION");

    admin.setAdminAuth(ADMIN_KEY);
    admin.setAuth("some-user-token");
    // A token now, over the HTTP API: this server checks no tokens, so it refuses the call.
    const before = await invoiceCount();
    await rejection(admin.mutation(api.create, {}), "UNAUTHENTICATED");
    expect(await invoiceCount()).toBe(before);
  });
});

describe("the rest of ConvexHttpClient's surface", () => {
  it("answers backendUrl, and accepts setDebug and the logger and URL-check options", async () => {
    const client = new ConvexHttpClient(`${server.url}/`, { logger: false, skipConvexDeploymentUrlCheck: true });
    expect(client.backendUrl()).toBe(`${server.url}/api`);
    client.setDebug(true);
    expect(await client.query(api.identity, {})).toBeNull();
  });
});

describe("the admin route's `as: { kind: \"identity\" }`, sent by hand", () => {
  const run = async (body: unknown) => {
    const response = await fetch(`${server.url}/api/admin/functions/run`, {
      method: "POST",
      headers: { Authorization: `Bearer ${ADMIN_KEY}`, "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as { value?: unknown; error?: { code: string; message: string } } };
  };

  it("refuses an identity without a subject, with a tokenIdentifier or with a bad issuer, and a bad type, saying what to send", async () => {
    const refusals: Array<[unknown, string]> = [
      [{ kind: "identity" }, '"as.identity" must be an object of identity claims'],
      [{ kind: "identity", identity: { issuer: "https://auth.example.com" } }, '"as.identity.subject" must be a non-empty string'],
      [{ kind: "identity", identity: { subject: "u", issuer: 7 } }, '"as.identity.issuer" must be a non-empty string'],
      [{ kind: "identity", identity: { subject: "u", tokenIdentifier: "x|u" } }, '"as.identity.tokenIdentifier" is made from the issuer and the subject'],
    ];
    for (const [as, message] of refusals) {
      const answer = await run({ path: "me:identity", args: {}, as });
      expect([answer.status, answer.body.error?.code]).toEqual([400, "INVALID_ARGUMENT"]);
      expect(answer.body.error?.message).toContain(message);
    }
    const badType = await run({ path: "me:identity", args: {}, type: "subscription" });
    expect([badType.status, badType.body.error?.message]).toEqual([400, '"type" must be "query", "mutation" or "action", or left out.']);
  });

  it("runs with the claims given, values of every kind included", async () => {
    const answer = await run({ path: "me:identity", args: {}, as: { kind: "identity", identity: { subject: "u", level: { $integer: "BwAAAAAAAAA=" } } } });
    expect(answer.status).toBe(200);
    expect(answer.body.value).toEqual({ subject: "u", issuer: "walkin", tokenIdentifier: "walkin|u", level: { $integer: "BwAAAAAAAAA=" } });
  });
});
