/** Edges found in review: calls arriving on kept-alive connections while the server closes, and the wrong-kind message. */
import { Agent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { action, mutation, query } from "../server/index.js";
import { httpAction, httpRouter } from "../server/router.js";
import { v } from "../values/index.js";
import { findModules } from "../cli/codegen.js";
import { modules as appModules, openEngine } from "./fixtures/app.js";
import { startHarness, type Harness } from "./fixtures/harness.js";

let harness: Harness | null = null;
afterEach(async () => {
  await harness?.dispose();
  harness = null;
});

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
  reusedSocket: boolean;
}

function post(agent: Agent, url: string, body: unknown): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const text = JSON.stringify(body);
    const req = httpRequest(url, { method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(text) } }, (res) => {
      let out = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (out += chunk));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: parsed(out), reusedSocket: req.reusedSocket }));
    });
    req.on("error", reject);
    req.end(text);
  });
}

/** A GET whose response has started (status and headers arrived); its body is read with `bodyOf`. */
function started(agent: Agent, url: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent }, resolve);
    req.on("error", reject);
    req.end();
  });
}

function bodyOf(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = "";
    res.setEncoding("utf8");
    res.on("data", (chunk: string) => (out += chunk));
    res.on("end", () => resolve(out));
    res.on("error", reject);
  });
}

function parsed(text: string): Record<string, unknown> {
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return { text };
  }
}

describe("server.close() and requests on kept-alive connections", () => {
  it("answers a call that arrives on an open keep-alive connection after close() began with 503 and Connection: close, and does not run it; answers under way are delivered", async () => {
    // Gates the test opens: the actions hold their connections (and close()) until then.
    const gates = new Map<string, () => void>();
    const gate = (name: string) => new Promise<void>((resolve) => gates.set(name, resolve));
    const ran: string[] = [];
    const modules = {
      ...appModules,
      held: {
        hold: action({ args: { name: v.string() }, handler: async (_ctx, { name }) => (await gate(name), name) }),
        act: action({ args: {}, handler: async () => (ran.push("action"), null) }),
        write: mutation({ args: {}, handler: async () => (ran.push("mutation"), null) }),
        read: query({ args: {}, handler: async () => (ran.push("query"), null) }),
      },
    };
    const http = httpRouter();
    http.route({ path: "/hook", method: "POST", handler: httpAction(async () => (ran.push("http action"), new Response("ran"))) });
    http.route({
      path: "/stream",
      method: "GET",
      handler: httpAction(async (_ctx, request) => {
        const name = new URL(request.url).searchParams.get("name")!;
        const ended = gate(name);
        const body = new ReadableStream<Uint8Array>({
          async start(controller) {
            controller.enqueue(new TextEncoder().encode("streamed "));
            await ended;
            controller.enqueue(new TextEncoder().encode(name));
            controller.close();
          },
        });
        return new Response(body);
      }),
    });
    harness = await startHarness({ engine: await openEngine(":memory:", { modules }), http });
    const base = harness.server.url;
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    const holderAgent = new Agent({ keepAlive: true });
    try {
      // One action through its own connection holds close() open until the end of the test.
      const holder = post(holderAgent, `${base}/api/action`, { path: "held:hold", args: { name: "holder" } });
      // Four keep-alive connections, each sending a streamed answer whose headers went out
      // before close() began (so close() cannot mark them Connection: close any more).
      const names = ["k0", "k1", "k2", "k3"];
      const streams = await Promise.all(names.map((name) => started(agent, `${base}/stream?name=${name}`)));
      while (gates.size < 5) await new Promise((resolve) => setTimeout(resolve, 5));

      let closed = false;
      const closing = harness.server.close().then(() => (closed = true));
      for (const name of names) gates.get(name)!();
      // The answers that were under way when close() began are still delivered in full.
      expect(await Promise.all(streams.map(bodyOf))).toEqual(names.map((name) => `streamed ${name}`));
      expect(streams.map((res) => res.headers.connection)).toEqual(names.map(() => "keep-alive"));

      // New calls on those same connections, while the holder keeps close() from finishing.
      const late = await Promise.all([
        post(agent, `${base}/api/action`, { path: "held:act", args: {} }),
        post(agent, `${base}/api/mutation`, { path: "held:write", args: {} }),
        post(agent, `${base}/api/query`, { path: "held:read", args: {} }),
        post(agent, `${base}/hook`, {}),
      ]).catch((error: unknown) => `failed: ${(error as Error).message}`);
      expect(closed).toBe(false);
      if (typeof late === "string") throw new Error(late);
      for (const answer of late) {
        expect(answer.reusedSocket).toBe(true);
        expect(answer.status).toBe(503);
        expect(answer.headers.connection).toBe("close");
        expect(answer.body).toMatchObject({ status: "error", code: "DISCONNECTED", message: expect.stringMatching(/shutting down/) });
      }
      expect(ran).toEqual([]);

      gates.get("holder")!();
      // An answer not yet started when close() began closes its connection after it, so that the
      // client does not send its next request there (and close() need not wait for the cut).
      const held = await holder;
      expect([held.status, held.body.value, held.headers.connection]).toEqual([200, "holder", "close"]);
      await closing;
    } finally {
      agent.destroy();
      holderAgent.destroy();
      for (const open of gates.values()) open();
    }
  });
});

describe("a function called as the wrong kind", () => {
  it("names both kinds with the right article and lists every way to call it, for each pair of kinds", async () => {
    harness = await startHarness();
    const { engine } = harness;
    const messageOf = (call: Promise<unknown>) =>
      call.then(
        () => "ran",
        (error: { code?: string; message?: string }) => `${error.code}: ${error.message}`,
      );
    const asQuery = (path: string) => messageOf(engine.runQuery(path, {}, {}));
    const asMutation = (path: string) => messageOf(engine.runMutation(path, {}));
    const asAction = (path: string) => messageOf(engine.runAction(path, {}));
    const ways = {
      query: "useQuery, client.query, fetchQuery, ctx.runQuery or POST /api/query",
      mutation: "useMutation, client.mutation, fetchMutation, ctx.runMutation or POST /api/mutation",
      action: "useAction, client.action, fetchAction, ctx.runAction or POST /api/action",
    };
    const expected = (path: string, is: string, asKind: string, kind: keyof typeof ways) =>
      `WRONG_FUNCTION_TYPE: "${path}" is ${is}, not ${asKind}: call it as ${is} (${ways[kind]}).`;
    expect([
      await asMutation("messages:list"),
      await asAction("messages:list"),
      await asQuery("messages:send"),
      await asAction("messages:send"),
      await asQuery("actions:wait"),
      await asMutation("actions:wait"),
    ]).toEqual([
      expected("messages:list", "a query", "a mutation", "query"),
      expected("messages:list", "a query", "an action", "query"),
      expected("messages:send", "a mutation", "a query", "mutation"),
      expected("messages:send", "a mutation", "an action", "mutation"),
      expected("actions:wait", "an action", "a query", "action"),
      expected("actions:wait", "an action", "a mutation", "action"),
    ]);
    // Over the HTTP API, the same words.
    const overHttp = await fetch(`${harness.server.url}/api/action`, { method: "POST", body: JSON.stringify({ path: "messages:list", args: { channel: "a" } }) });
    expect([overHttp.status, ((await overHttp.json()) as { message: string }).message]).toEqual([400, expected("messages:list", "a query", "an action", "query").slice("WRONG_FUNCTION_TYPE: ".length)]);
  });
});

describe("module files whose names JavaScript or api references treat specially", () => {
  it("codegen refuses __proto__, then and toJSON modules with a rename hint; constructor is an ordinary module", async () => {
    const scan = findModules(["__proto__.ts", "lib/__proto__.ts", "then.ts", "lib/toJSON.ts", "constructor.ts", "messages.ts"]);
    expect(scan.modules.map((m) => m.path)).toEqual(["constructor", "messages"]);
    expect(scan.problems.map((p) => p.file)).toEqual(["__proto__.ts", "lib/__proto__.ts", "lib/toJSON.ts", "then.ts"]);
    for (const problem of scan.problems) expect(problem.message).toMatch(/cannot be a module name: .*Rename the file/);
    expect(scan.problems[0]!.message).toMatch(/prototype/);

    // Why __proto__ must be refused: the loader's map would take it as its prototype, not a module.
    const modules: Record<string, Record<string, unknown>> = {};
    modules["__proto__"] = { hello: query({ args: {}, handler: async () => "hi" }) };
    expect(Object.keys(modules)).toEqual([]);

    // A module named constructor is served like any other.
    const withConstructor: Record<string, Record<string, unknown>> = { ...appModules };
    withConstructor["constructor"] = { hello: query({ args: {}, handler: async () => "hi" }) };
    const engine = await openEngine(":memory:", { modules: withConstructor as typeof appModules });
    try {
      expect(await engine.runQuery("constructor:hello", {}, {})).toBe("hi");
      expect(await engine.runQuery("messages:count", {}, {})).toBe(0);
    } finally {
      await engine.close();
    }
  });
});
