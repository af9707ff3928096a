// @vitest-environment jsdom
/**
 * `walkin/nextjs` as a Next.js app written for Convex's `convex/nextjs` uses it: `preloadQuery`
 * in a Server Component, the preloaded value passed to a client component, `fetchQuery`,
 * `fetchMutation` and `fetchAction` in Server Actions and Route Handlers, the address from the
 * environment, the user's token, and errors. A real server on loopback throughout.
 */
import { act, cleanup, waitFor } from "@testing-library/react";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { hydrateRoot, type Root } from "react-dom/client";
import { renderToString } from "react-dom/server";
import { WebSocket } from "ws";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { WalkinClient } from "../browser/index.js";
import { Engine } from "../engine/engine.js";
import * as nextjs from "../nextjs/index.js";
import { fetchAction, fetchMutation, fetchQuery, preloadQuery, preloadedQueryResult } from "../nextjs/index.js";
import { action, anyApi, makeFunctionReference, mutation, query, type ApiFromModules } from "../server/index.js";
import { openTestStorage } from "../testing/testStorage.js";
import { startServer, type WalkinServer } from "../transport/index.js";
import { WalkinError, isWalkinError, v } from "../values/index.js";
import { WalkinProvider, usePreloadedQuery, type Preloaded } from "./index.js";

const whoAmI = async (ctx: { auth: { getUserIdentity(): Promise<{ subject: string } | null> } }) =>
  (await ctx.auth.getUserIdentity())?.subject ?? null;

const notes = {
  list: query({
    args: {},
    handler: async (ctx) => (await ctx.db.query("notes").collect()).map(({ text, n, bytes, owner }) => ({ text, n, bytes, owner })),
  }),
  withN: query({
    args: { n: v.int64() },
    handler: async (ctx, { n }) => (await ctx.db.query("notes").collect()).filter((note) => note.n === n).map((note) => note.text),
  }),
  add: mutation({
    args: { text: v.string(), n: v.int64(), bytes: v.bytes() },
    handler: async (ctx, args) => {
      await ctx.db.insert("notes", { ...args, owner: await whoAmI(ctx) });
      return args.n + 1n;
    },
  }),
  addThenRefuse: mutation({
    args: { text: v.string() },
    handler: async (ctx, { text }) => {
      await ctx.db.insert("notes", { text, n: 0n, bytes: new ArrayBuffer(0), owner: null });
      throw new WalkinError("refused", { data: { text, limit: 3n } });
    },
  }),
  shout: action({ args: { text: v.string() }, handler: async (_ctx, { text }) => text.toUpperCase() }),
};
const who = {
  query: query({ args: {}, handler: whoAmI }),
  mutation: mutation({ args: {}, handler: whoAmI }),
  action: action({ args: {}, handler: whoAmI }),
};
const modules = { notes, who };
const api = anyApi as unknown as ApiFromModules<typeof modules>;
// A path, not a URL: jsdom replaces URL in this environment.
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "../..");

let engine: Engine;
let server: WalkinServer;
let url: string;
beforeAll(async () => {
  engine = await Engine.open({
    storage: await openTestStorage(),
    schema: null,
    modules,
    runScheduler: false,
    // "user:<name>" signs in as <name>; any other token is refused.
    authenticate: async (_ctx, token) =>
      token.startsWith("user:") ? { subject: token.slice(5), issuer: "test", tokenIdentifier: `test|${token.slice(5)}` } : null,
  });
  server = await startServer({ engine, port: 0, log: () => {} });
  url = server.url;
});
afterEach(() => {
  cleanup();
  vi.unstubAllEnvs();
});
afterAll(async () => {
  await server.close();
  await engine.close();
});

function bytes(...values: number[]): ArrayBuffer {
  return new Uint8Array(values).buffer;
}

describe("the walkin/nextjs entry", () => {
  it("exports what convex/nextjs does, and package.json maps walkin/nextjs to it", () => {
    expect(Object.keys(nextjs).sort()).toEqual(["fetchAction", "fetchMutation", "fetchQuery", "preloadQuery", "preloadedQueryResult"]);
    const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { exports: Record<string, unknown> };
    expect(pkg.exports["./nextjs"]).toEqual({ types: "./dist/nextjs/index.d.ts", import: "./dist/nextjs/index.js" });
  });

  it("loads in a Server Component, where React has no client APIs (the react-server condition)", async () => {
    // Next.js runs Server Components with React's "react-server" build, which has no
    // createContext or useSyncExternalStore: the entry must not load the hooks.
    const script = `
      const React = await import("react");
      const { makeFunctionReference } = await import("./src/server/api.ts");
      const { preloadQuery, preloadedQueryResult, fetchMutation } = await import("./src/nextjs/index.ts");
      await fetchMutation(makeFunctionReference("notes:add"), { text: "from rsc", n: 41n, bytes: new ArrayBuffer(2) });
      const preloaded = await preloadQuery(makeFunctionReference("notes:withN"), { n: 41n });
      console.log(JSON.stringify({ serverReact: typeof React.createContext === "undefined", value: preloadedQueryResult(preloaded) }));
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ["--conditions=react-server", "--import", "tsx", "--input-type=module", "-e", script], {
      cwd: repoRoot,
      env: { ...process.env, NEXT_PUBLIC_WALKIN_URL: url },
    });
    expect(JSON.parse(stdout)).toEqual({ serverReact: true, value: ["from rsc"] });
  });
});

describe("the server's address", () => {
  it("comes from NEXT_PUBLIC_WALKIN_URL when no url is given, and args may be left out", async () => {
    vi.stubEnv("NEXT_PUBLIC_WALKIN_URL", url);
    await fetchMutation(api.notes.add, { text: "env", n: 1n, bytes: bytes(1) });
    expect((await fetchQuery(api.notes.list)).map((note) => note.text)).toContain("env");
    expect(await fetchAction(api.notes.shout, { text: "hi" })).toBe("HI");
    expect(preloadedQueryResult(await preloadQuery(api.who.query))).toBeNull();
    // An explicit url wins over the environment.
    vi.stubEnv("NEXT_PUBLIC_WALKIN_URL", "http://127.0.0.1:1");
    expect(await fetchQuery(api.who.query, {}, { url })).toBeNull();
  });

  it("falls back to NEXT_PUBLIC_CONVEX_URL when it points at Walk-in, and refuses a Convex deployment", async () => {
    vi.stubEnv("NEXT_PUBLIC_WALKIN_URL", undefined);
    vi.stubEnv("NEXT_PUBLIC_CONVEX_URL", url);
    expect(await fetchQuery(api.who.query)).toBeNull();
    vi.stubEnv("NEXT_PUBLIC_CONVEX_URL", "https://happy-otter-123.convex.cloud");
    await expect(fetchQuery(api.who.query)).rejects.toThrow(/NEXT_PUBLIC_CONVEX_URL is a Convex deployment .*set NEXT_PUBLIC_WALKIN_URL/);
  });

  it("says which variable to set when there is none, and refuses an address that is no URL", async () => {
    vi.stubEnv("NEXT_PUBLIC_WALKIN_URL", undefined);
    vi.stubEnv("NEXT_PUBLIC_CONVEX_URL", undefined);
    const missing = await fetchMutation(api.who.mutation).catch((e: unknown) => e);
    expect(missing).toMatchObject({ code: "MISUSE", message: expect.stringMatching(/^fetchMutation\(who:mutation\) needs the server.s address\. Did you forget to pass \{ url: .* or to set NEXT_PUBLIC_WALKIN_URL\?$/) });
    await expect(fetchQuery(api.who.query, {}, { url: "localhost:3210" })).rejects.toThrow(/"localhost:3210" is not a server address: .*http:\/\//);
    // Convex's check of the deployment's host has nothing to check here: the option is accepted.
    expect(await fetchQuery(api.who.query, {}, { url, skipConvexDeploymentUrlCheck: true })).toBeNull();
  });
});

describe("fetchQuery, fetchMutation and fetchAction", () => {
  it("run the function and carry bigint and bytes both ways", async () => {
    expect(await fetchMutation(api.notes.add, { text: "typed", n: 2n ** 40n, bytes: bytes(0, 255) }, { url })).toBe(2n ** 40n + 1n);
    const note = (await fetchQuery(api.notes.list, {}, { url })).find((one) => one.text === "typed");
    expect(note?.n).toBe(2n ** 40n);
    expect([...new Uint8Array(note!.bytes)]).toEqual([0, 255]);
    expect(await fetchQuery(api.notes.withN, { n: 2n ** 40n }, { url })).toEqual(["typed"]);
  });

  it("send the token so that ctx.auth sees the user; no token (or null) calls signed out", async () => {
    const token = "user:ada";
    expect(await fetchQuery(api.who.query, {}, { url, token })).toBe("ada");
    expect(await fetchMutation(api.who.mutation, {}, { url, token })).toBe("ada");
    expect(await fetchAction(api.who.action, {}, { url, token })).toBe("ada");
    expect(preloadedQueryResult(await preloadQuery(api.who.query, {}, { url, token }))).toBe("ada");
    expect(await fetchQuery(api.who.query, {}, { url })).toBeNull();
    // An auth library's "no token" (Clerk's getToken() answers null when signed out).
    expect(await fetchQuery(api.who.query, {}, { url, token: null })).toBeNull();
    expect(await fetchMutation(api.who.mutation, {}, { url, token: "" })).toBeNull();
    await expect(fetchQuery(api.who.query, {}, { url, token: "forged" })).rejects.toMatchObject({ code: "UNAUTHENTICATED" });
  });

  it("throw an app error with its code, message and data (the mutation's writes undone), and name an unknown or mistyped function", async () => {
    const refused = await fetchMutation(api.notes.addThenRefuse, { text: "nope" }, { url }).catch((e: unknown) => e);
    expect(isWalkinError(refused)).toBe(true);
    expect(refused).toMatchObject({ code: "APPLICATION", message: "refused", data: { text: "nope", limit: 3n } });
    expect((await fetchQuery(api.notes.list, {}, { url })).map((note) => note.text)).not.toContain("nope");

    const unknown = await fetchQuery(anyApi.nowhere!.nothing!, {}, { url }).catch((e: unknown) => e);
    expect(unknown).toMatchObject({ code: "UNKNOWN_FUNCTION", message: expect.stringContaining('"nowhere:nothing"') });
    const mistyped = await fetchAction(makeFunctionReference<"action">("notes:list"), {}, { url }).catch((e: unknown) => e);
    expect(mistyped).toMatchObject({ code: "WRONG_FUNCTION_TYPE", message: expect.stringContaining("is a query") });
  });

  it("ask fetch not to cache: Next.js would otherwise keep a Server Component's first answer", async () => {
    const seen: Array<RequestCache | undefined> = [];
    const recording: typeof globalThis.fetch = (input, init) => {
      seen.push(init?.cache);
      return globalThis.fetch(input, init);
    };
    await fetchQuery(api.who.query, {}, { url, fetch: recording });
    await preloadQuery(api.who.query, {}, { url, fetch: recording });
    await fetchMutation(api.who.mutation, {}, { url, fetch: recording });
    await fetchAction(api.who.action, {}, { url, fetch: recording });
    expect(seen).toEqual(["no-store", "no-store", "no-store", "no-store"]);
  });
});

describe("a preloaded query, from the Server Component to the browser", () => {
  type Notes = Preloaded<typeof api.notes.withN>;
  function NoteList({ preloaded }: { preloaded: Notes }) {
    return <ul>{usePreloadedQuery(preloaded).map((text) => <li key={text}>{text}</li>)}</ul>;
  }

  it("keeps bigint and bytes through JSON, renders on the server, hydrates without a mismatch and goes live", async () => {
    await fetchMutation(api.notes.add, { text: "first", n: 7n, bytes: bytes(1, 2, 3) }, { url });
    // Server Component: preload; Next.js then serializes the props of the client component.
    const fromServer = await preloadQuery(api.notes.list, {}, { url });
    const preloadedList = JSON.parse(JSON.stringify(fromServer)) as typeof fromServer;
    const first = preloadedQueryResult(preloadedList).find((note) => note.text === "first");
    expect(first).toMatchObject({ n: 7n, owner: null });
    expect([...new Uint8Array(first!.bytes)]).toEqual([1, 2, 3]);

    // Args with a bigint reach the live subscription as the same bigint.
    const preloaded = JSON.parse(JSON.stringify(await preloadQuery(api.notes.withN, { n: 7n }, { url }))) as Notes;
    const renderer = new WalkinClient(url, { skipConnect: true, webSocketConstructor: vi.fn() as never });
    const html = renderToString(
      <WalkinProvider client={renderer}>
        <NoteList preloaded={preloaded} />
      </WalkinProvider>,
    );
    expect(html).toBe("<ul><li>first</li></ul>");

    const container = document.createElement("div");
    container.innerHTML = html;
    document.body.appendChild(container);
    const client = new WalkinClient(url, { webSocketConstructor: WebSocket as never, logger: false });
    const onRecoverableError = vi.fn();
    let root!: Root;
    try {
      await act(async () => {
        root = hydrateRoot(
          container,
          <WalkinProvider client={client}>
            <NoteList preloaded={preloaded} />
          </WalkinProvider>,
          { onRecoverableError },
        );
      });
      // A Server Action adds a note with the same n: the hydrated list follows the live query.
      await fetchMutation(api.notes.add, { text: "second", n: 7n, bytes: bytes() }, { url });
      await waitFor(() => expect(container.innerHTML).toBe("<ul><li>first</li><li>second</li></ul>"));
      expect(onRecoverableError).not.toHaveBeenCalled();
    } finally {
      act(() => root.unmount());
      container.remove();
      await client.close();
      await renderer.close();
    }
  });
});
