/**
 * `t.fetch` (testFetch.ts): a test calls the app's HTTP routes as convex-test's `t.fetch` does,
 * in the style of a Convex test file: the route runs with the accessor's identity or the
 * request's bearer token, reads the request (method, body, query, headers) and reaches the
 * database; HEAD, 405 and 404 come as the server answers them; mistakes say what to fix.
 */
import { afterEach, describe, expect, it } from "vitest";
import { anyApi, defineSchema, defineTable, httpAction, httpRouter, mutation, query } from "../server/index.js";
import { v } from "../values/index.js";
import { authTables, getAuthUserId, walkinAuth } from "../auth/index.js";
import { Anonymous } from "../auth/providers/anonymous.js";
import { walkinTest, type WalkinTest } from "./index.js";
import { caught } from "../engine/fixtures/caught.js";

// Untyped references: the routes below call functions by name, as a Convex app's http.ts does through its generated api.
const api: any = anyApi;

const schema = defineSchema({
  ...authTables,
  events: defineTable({ kind: v.string(), from: v.optional(v.string()) }),
});

const events = {
  record: mutation({
    args: { kind: v.string(), from: v.optional(v.string()) },
    handler: (ctx, event) => ctx.db.insert("events", event),
  }),
  list: query({ args: {}, handler: (ctx) => ctx.db.query("events").collect() }),
};

const http = httpRouter();
http.route({
  path: "/webhook",
  method: "POST",
  handler: httpAction(async (ctx, request) => {
    const { kind } = (await request.json()) as { kind?: unknown };
    if (typeof kind !== "string") return new Response("kind is missing", { status: 400 });
    const from = request.headers.get("user-agent") ?? undefined;
    await ctx.runMutation(api.events.record, { kind, from });
    return Response.json({ received: kind });
  }),
});
http.route({
  pathPrefix: "/files/",
  method: "GET",
  handler: httpAction(async (_ctx, request) => {
    const url = new URL(request.url);
    return new Response(`file ${url.pathname.slice("/files/".length)} size ${url.searchParams.get("size")}`, { headers: { "X-Origin": url.origin } });
  }),
});
http.route({
  path: "/whoami",
  method: "GET",
  handler: httpAction(async (ctx) => {
    const identity = await ctx.auth.getUserIdentity();
    const userId = await getAuthUserId(ctx);
    return Response.json({ subject: identity?.subject ?? null, userId });
  }),
});
http.route({
  path: "/broken",
  method: "GET",
  handler: httpAction(async () => {
    throw new Error("the upstream answered 502");
  }),
});
http.route({
  path: "/forgetful",
  method: "GET",
  handler: httpAction(async () => "ok" as unknown as Response),
});

const auth = walkinAuth({ providers: [Anonymous()] });
const modules = { events, http: { default: http }, auth };

let t: WalkinTest<any> | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe("t.fetch runs the app's HTTP routes", () => {
  it("runs a POST route with its body and headers, whose mutation the test then reads", async () => {
    t = walkinTest(schema, modules);
    const response = await t.fetch("/webhook", { method: "POST", body: JSON.stringify({ kind: "paid" }), headers: { "User-Agent": "stripe-like/1.0" } });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ received: "paid" });
    expect((await t.query(api.events.list)).map(({ kind, from }: any) => ({ kind, from }))).toEqual([{ kind: "paid", from: "stripe-like/1.0" }]);

    const refused = await t.fetch("/webhook", { method: "POST", body: "{}" });
    expect([refused.status, await refused.text()]).toEqual([400, "kind is missing"]);
    expect(await t.query(api.events.list)).toHaveLength(1);
  });

  it("routes by prefix and hands the route the query string, under the test origin", async () => {
    t = walkinTest(schema, modules);
    const response = await t.fetch("/files/report.pdf?size=large");
    expect(await response.text()).toBe("file report.pdf size large");
    expect(response.headers.get("X-Origin")).toBe("https://walkin.test");
  });

  it("runs the route as the accessor's identity, or as the request's bearer token", async () => {
    t = walkinTest(schema, modules);
    expect(await (await t.fetch("/whoami")).json()).toEqual({ subject: null, userId: null });
    expect((await (await t.withIdentity({ subject: "ada" }).fetch("/whoami")).json()).subject).toBe("ada");

    const signedIn = (await t.action(api.auth.signIn, { provider: "anonymous" })) as { token: string; userId: string };
    const asBearer = await (await t.fetch("/whoami", { headers: { Authorization: `Bearer ${signedIn.token}` } })).json();
    expect(asBearer.userId).toBe(signedIn.userId);
    const asToken = await (await t.withToken(signedIn.token).fetch("/whoami")).json();
    expect(asToken.userId).toBe(signedIn.userId);
  });

  it("answers HEAD with the GET route's status and headers and no body", async () => {
    t = walkinTest(schema, modules);
    const response = await t.fetch("/files/a.txt?size=1", { method: "HEAD" });
    expect(response.status).toBe(200);
    expect(response.headers.get("X-Origin")).toBe("https://walkin.test");
    expect(await response.text()).toBe("");
  });

  it("answers 405 with Allow for a method not routed on a path, 204 to a preflight, 404 for a path not routed", async () => {
    t = walkinTest(schema, modules);
    const wrongMethod = await t.fetch("/webhook");
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get("Allow")).toBe("POST");
    const fileDelete = await t.fetch("/files/a.txt", { method: "DELETE" });
    expect([fileDelete.status, fileDelete.headers.get("Allow")]).toEqual([405, "GET, HEAD"]);
    // A browser's preflight, as the server answers it.
    const preflight = await t.fetch("/webhook", { method: "OPTIONS" });
    expect([preflight.status, preflight.headers.get("Access-Control-Allow-Methods")]).toEqual([204, "POST, OPTIONS"]);
    expect(preflight.headers.get("Access-Control-Allow-Origin")).toBe("*");
    const nowhere = await t.fetch("/nowhere", { method: "POST" });
    expect(nowhere.status).toBe(404);
    expect(await nowhere.text()).toContain("POST /nowhere");
  });
});

describe("t.fetch's mistakes say what to fix", () => {
  it("rejects with the route's own error, and says a route must return a Response", async () => {
    t = walkinTest(schema, modules);
    expect((await caught(t.fetch("/broken"))).message).toContain("the upstream answered 502");
    const forgetful = await caught(t.fetch("/forgetful"));
    expect(forgetful.code).toBe("MISUSE");
    expect(forgetful.message).toMatch(/HTTP action GET \/forgetful returned string; it must return a Response/);
  });

  it("refuses a path without its leading slash, and a test without the app's router", async () => {
    t = walkinTest(schema, modules);
    const relative = await caught(t.fetch("webhook"));
    expect(relative.code).toBe("MISUSE");
    expect(relative.message).toContain('starting with "/"');
    await t.close();

    t = walkinTest(schema, { events });
    const noRouter = await caught(t.fetch("/webhook"));
    expect(noRouter.code).toBe("MISUSE");
    expect(noRouter.message).toMatch(/there is no http module .* export default http/);
    await t.close();

    t = walkinTest(schema, { events, http: { default: { route() {} } } });
    expect((await caught(t.fetch("/webhook"))).message).toContain("the http module's default export is not an httpRouter()");
  });
});
