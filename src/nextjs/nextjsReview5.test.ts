/**
 * Review of walkin/nextjs: the server's address and the `token` option as Next.js server code
 * passes them (from environment variables, from an auth library), against a real server on
 * loopback.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { Engine } from "../engine/engine.js";
import { anyApi, query, type ApiFromModules } from "../server/index.js";
import { openTestStorage } from "../testing/testStorage.js";
import { startServer, type WalkinServer } from "../transport/index.js";
import { fetchAction, fetchMutation, fetchQuery, preloadQuery } from "./index.js";

const who = {
  query: query({ args: {}, handler: async (ctx) => (await ctx.auth.getUserIdentity())?.subject ?? null }),
};
const api = anyApi as unknown as ApiFromModules<{ who: typeof who }>;

let engine: Engine;
let server: WalkinServer;
let url: string;
beforeAll(async () => {
  engine = await Engine.open({
    storage: await openTestStorage(),
    schema: null,
    modules: { who },
    runScheduler: false,
    // "user:<name>" signs in as <name>; any other token is refused.
    authenticate: async (_ctx, token) =>
      token.startsWith("user:") ? { subject: token.slice(5), issuer: "test", tokenIdentifier: `test|${token.slice(5)}` } : null,
  });
  server = await startServer({ engine, port: 0, log: () => {} });
  url = server.url;
});
afterEach(() => {
  vi.unstubAllEnvs();
});
afterAll(async () => {
  await server.close();
  await engine.close();
});

describe("the server's address", () => {
  it("is read as a URL: a trailing newline pasted into the variable does not make the server look down", async () => {
    // Hosting dashboards keep what was pasted, newline included; WalkinHttpClient reads such an address as the URL it is.
    vi.stubEnv("NEXT_PUBLIC_WALKIN_URL", `${url}\n`);
    expect(await fetchQuery(api.who.query)).toBeNull();
    expect(await fetchQuery(api.who.query, {}, { url: ` ${url}/ ` })).toBeNull();
  });

  it("refuses an address with a query or a fragment, which would send the calls to the wrong path", async () => {
    for (const address of [`${url}/?region=eu`, `${url}#main`]) {
      const error = await fetchQuery(api.who.query, {}, { url: address }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "MISUSE", message: expect.stringMatching(/has a query or fragment.*give the server's address alone/) });
    }
    vi.stubEnv("NEXT_PUBLIC_WALKIN_URL", `${url}?x=1`);
    await expect(preloadQuery(api.who.query)).rejects.toThrow(/\(from NEXT_PUBLIC_WALKIN_URL\) has a query or fragment/);
  });

  it("refuses an address whose host is not one, before trying to reach it", async () => {
    const error = await fetchMutation(anyApi.who!.mutation!, {}, { url: "http://my server" }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "MISUSE", message: expect.stringContaining('"http://my server" is not a server address') });
  });
});

describe("the token option", () => {
  it("refuses a token that was not awaited, saying so, instead of sending it as the text [object Promise]", async () => {
    // Plain JavaScript: `{ token: getToken() }` where getToken() answers a Promise.
    const pending = Promise.resolve("user:ada") as unknown as string;
    const error = await fetchQuery(api.who.query, {}, { url, token: pending }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "MISUSE", message: expect.stringMatching(/^fetchQuery\(who:query\): the token option .*not a Promise: did you forget to await it\?/) });
    await expect(fetchAction(anyApi.who!.action!, {}, { url, token: 42 as unknown as string })).rejects.toMatchObject({
      code: "MISUSE",
      message: expect.stringContaining("not a number"),
    });
  });

  it("refuses a token with whitespace inside (a whole header, two tokens) as a misuse, not as an unreachable server", async () => {
    for (const token of ["Bearer user:ada", "user:ada\nuser:bob"]) {
      const error = await fetchQuery(api.who.query, {}, { url, token }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "MISUSE", message: expect.stringMatching(/the token option has whitespace in it: pass the token alone, without "Bearer "/) });
    }
    // Whitespace around it, as read from a file, is not part of the token.
    expect(await fetchQuery(api.who.query, {}, { url, token: " user:ada\n" })).toBe("ada");
  });
});
