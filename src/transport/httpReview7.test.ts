/**
 * Review 7 of the transport.
 *  1. A refusal sent before the request body was read (unknown endpoint, wrong method, a bad
 *     `/api/run` path or `format`, a path nothing serves) closes the connection, as the 413
 *     does: kept alive, the server would read the rest of a body it already refused, however
 *     large. A refusal sent once the body was read, and any request without a body, keep it.
 *  2. Function paths spelled as Convex's clients accept them (`"lib/users.js:get"`, a module
 *     alone for its default export) run when sent straight to the HTTP API or over the
 *     WebSocket, as they do through `WalkinClient`; a path that names no module is still
 *     refused with an error that says what is wrong with it.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { Agent, request as httpRequest } from "node:http";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { mutation, query } from "../server/index.js";
import { v } from "../values/index.js";
import { modules, openEngine } from "./fixtures/app.js";
import { startHarness, type Harness } from "./fixtures/harness.js";
import { addQueries, isTransition } from "./fixtures/rawClient.js";
import type { ServerMessage } from "./protocol.js";

let harness: Harness | null = null;
const sockets: Socket[] = [];
const agents: Agent[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  for (const agent of agents.splice(0)) agent.destroy();
  await harness?.dispose();
  harness = null;
});

interface Answer {
  /** The status line and headers (lower-cased names) of the answer. */
  status: string;
  headers: Map<string, string>;
  /** Settles once the server has closed the connection. */
  closedByServer: Promise<void>;
}

/** Sends `head` and the first `sent` bytes of the body it announces on a raw connection; resolves with the answer's head. */
function sendPart(head: string, sent: number): Promise<Answer> {
  return new Promise((resolve) => {
    const socket = connect(harness!.server.port, "127.0.0.1", () => {
      socket.write(head);
      if (sent > 0) socket.write(Buffer.alloc(sent, "x"));
    });
    sockets.push(socket);
    const closedByServer = new Promise<void>((closed) => {
      socket.on("end", closed);
      socket.on("close", closed);
    });
    socket.on("error", () => {}); // the server may close while the client still sends
    let received = "";
    socket.on("data", (data) => {
      received += data.toString("latin1");
      const end = received.indexOf("\r\n\r\n");
      if (end === -1) return;
      const [status, ...lines] = received.slice(0, end).split("\r\n");
      const headers = new Map(lines.map((line) => [line.slice(0, line.indexOf(":")).toLowerCase(), line.slice(line.indexOf(":") + 1).trim()]));
      resolve({ status: status!, headers, closedByServer });
    });
  });
}

/** A request announcing a 5 MB body (under the 8 MiB limit), of which the client sends 64 KiB before waiting for the answer. */
const LARGE = 5 * 1024 * 1024;
const announcing = (method: string, target: string) => `${method} ${target} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${LARGE}\r\n\r\n`;

async function expectClosed(answer: Answer, status: number): Promise<void> {
  expect(answer.status).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
  expect(answer.headers.get("connection")).toBe("close");
  // The server ends the connection instead of waiting for (and reading) the rest of the body.
  await answer.closedByServer;
}

/** One request over `agent`; resolves with its status, body and whether it went out on a socket kept from an earlier request. */
function viaAgent(agent: Agent, method: string, path: string, body?: string): Promise<{ status: number; body: string; reused: boolean; connection?: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = body === undefined ? {} : { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) };
    const request = httpRequest({ host: "127.0.0.1", port: harness!.server.port, method, path, agent, headers }, (response) => {
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (text += chunk));
      response.on("end", () => resolve({ status: response.statusCode!, body: text, reused: request.reusedSocket, connection: response.headers.connection }));
    });
    request.on("error", reject);
    request.end(body);
  });
}

function keepAliveAgent(): Agent {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  agents.push(agent);
  return agent;
}

describe("a refusal sent before the body was read", () => {
  it("a wrong method (405) on a call endpoint: Connection: close, and the server closes", async () => {
    harness = await startHarness();
    await expectClosed(await sendPart(announcing("PUT", "/api/query"), 64 * 1024), 405);
  });

  it("an unknown endpoint, a bad /api/run path, an unknown format: the same", async () => {
    harness = await startHarness();
    await expectClosed(await sendPart(announcing("POST", "/api/nothing"), 64 * 1024), 404);
    await expectClosed(await sendPart(announcing("POST", "/api/run/messages//list"), 64 * 1024), 404);
    await expectClosed(await sendPart(announcing("POST", "/api/query?format=xml"), 64 * 1024), 400);
  });

  it("a path nothing serves, and a method an app's route does not take: the same", async () => {
    harness = await startHarness();
    await expectClosed(await sendPart(announcing("POST", "/nothing/here"), 64 * 1024), 404);
    await expectClosed(await sendPart(announcing("PUT", "/webhook"), 64 * 1024), 405);
  });

  it("an answer that is no refusal, written with the body unread (an app's GET route, a static file, a preflight): the same", async () => {
    const staticDir = mkdtempSync(join(tmpdir(), "walkin-review7-"));
    try {
      writeFileSync(join(staticDir, "index.html"), "<!doctype html><title>app</title>");
      harness = await startHarness({ staticDir });
      await expectClosed(await sendPart(announcing("GET", "/files/a.txt"), 64 * 1024), 200);
      await expectClosed(await sendPart(announcing("GET", "/index.html"), 64 * 1024), 200);
      await expectClosed(await sendPart(announcing("OPTIONS", "/api/query"), 64 * 1024), 204);
      await expectClosed(await sendPart(announcing("OPTIONS", "/webhook"), 64 * 1024), 204);
    } finally {
      rmSync(staticDir, { recursive: true, force: true });
    }
  });

  it("a chunked body (no Content-Length) refused unread: the same", async () => {
    harness = await startHarness();
    const head = "DELETE /api/mutation HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    await expectClosed(await sendPart(`${head}10000\r\n`, 64 * 1024), 405);
  });
});

describe("a connection kept alive", () => {
  it("is reused after a call that succeeds and after a refusal sent once the body was read", async () => {
    harness = await startHarness();
    const agent = keepAliveAgent();
    const first = await viaAgent(agent, "POST", "/api/query", JSON.stringify({ path: "messages:count", args: {} }));
    expect(first).toMatchObject({ status: 200, reused: false });
    // Refused after reading the body: the function does not exist.
    const unknown = await viaAgent(agent, "POST", "/api/query", JSON.stringify({ path: "messages:nope", args: {} }));
    expect(unknown).toMatchObject({ status: 404, reused: true });
    expect(unknown.connection).not.toBe("close");
    // Refused after reading the body: it is not JSON.
    const bad = await viaAgent(agent, "POST", "/api/mutation", "{oops");
    expect(bad).toMatchObject({ status: 400, reused: true });
    expect(bad.connection).not.toBe("close");
    expect(await viaAgent(agent, "POST", "/api/query", JSON.stringify({ path: "messages:count", args: {} }))).toMatchObject({ status: 200, reused: true });
  });

  it("is reused after a refusal of a request that had no body", async () => {
    harness = await startHarness();
    const agent = keepAliveAgent();
    expect(await viaAgent(agent, "GET", "/api/health")).toMatchObject({ status: 200, reused: false });
    const refused = await viaAgent(agent, "GET", "/api/query");
    expect(refused).toMatchObject({ status: 405, reused: true });
    expect(refused.connection).not.toBe("close");
    expect(await viaAgent(agent, "GET", "/nothing/here")).toMatchObject({ status: 404, reused: true });
    expect(await viaAgent(agent, "GET", "/api/health")).toMatchObject({ status: 200, reused: true });
  });

  it("after a refusal with a body left unread, the next request opens a new connection and is answered", async () => {
    harness = await startHarness();
    const agent = keepAliveAgent();
    const refused = await viaAgent(agent, "PUT", "/api/query", JSON.stringify({ path: "messages:count", args: {} }));
    expect(refused).toMatchObject({ status: 405, connection: "close" });
    const next = await viaAgent(agent, "POST", "/api/query", JSON.stringify({ path: "messages:count", args: {} }));
    expect(next).toMatchObject({ status: 200, reused: false });
    expect(JSON.parse(next.body)).toMatchObject({ status: "success", value: 0 });
  });
});

/** The fixture app and modules whose paths Convex's clients spell in more than one way. */
async function harnessWithModules(): Promise<Harness> {
  const extra = {
    "lib/users": {
      get: query({ args: { name: v.string() }, handler: async (_ctx, { name }) => `user ${name}` }),
      rename: mutation({ args: { name: v.string() }, handler: async (_ctx, { name }) => `renamed ${name}` }),
    },
    greeting: { default: query({ args: {}, handler: async () => "hello" }) },
  };
  const engine = await openEngine(undefined, { modules: { ...modules, ...extra } as unknown as typeof modules });
  return startHarness({ engine });
}

async function post(path: string, body: unknown) {
  const response = await fetch(`${harness!.server.url}${path}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe("function paths as Convex's clients spell them", () => {
  it("run over the HTTP API: a module with its .js extension, a module alone for its default export", async () => {
    harness = await harnessWithModules();
    expect(await post("/api/query", { path: "lib/users.js:get", args: { name: "ada" } })).toMatchObject({ status: 200, body: { status: "success", value: "user ada" } });
    expect(await post("/api/mutation", { path: "lib/users.js:rename", args: { name: "bo" } })).toMatchObject({ status: 200, body: { value: "renamed bo" } });
    expect(await post("/api/query", { path: "greeting", args: {} })).toMatchObject({ status: 200, body: { value: "hello" } });
    expect(await post("/api/query", { path: "greeting.js", args: {} })).toMatchObject({ status: 200, body: { value: "hello" } });
    expect(await post("/api/query", { path: "greeting:default", args: {} })).toMatchObject({ status: 200, body: { value: "hello" } });
    expect(await post("/api/run/lib/users.js/get", { args: { name: "cy" } })).toMatchObject({ status: 200, body: { value: "user cy" } });
    // The type is still checked under the other spelling.
    expect(await post("/api/mutation", { path: "lib/users.js:get", args: { name: "ada" } })).toMatchObject({ status: 400, body: { code: "WRONG_FUNCTION_TYPE" } });
  });

  it("run over the WebSocket: a query, a mutation", async () => {
    harness = await harnessWithModules();
    const client = await harness.client();
    client.send(addQueries(0, [[1, "lib/users.js:get", { name: "ada" }], [2, "greeting.js", {}], [3, "greeting", {}]]));
    const initial = await client.waitFor((m: ServerMessage) => isTransition(m) && m.endVersion.querySet === 1);
    const results = Object.fromEntries((initial as { modifications: Array<{ queryId: number }> }).modifications.map((m) => [m.queryId, m]));
    expect(results[1]).toEqual({ type: "QueryUpdated", queryId: 1, value: "user ada" });
    expect(results[2]).toEqual({ type: "QueryUpdated", queryId: 2, value: "hello" });
    expect(results[3]).toEqual({ type: "QueryUpdated", queryId: 3, value: "hello" });
    client.send({ type: "Mutation", requestId: 1, udfPath: "lib/users.js:rename", args: { name: "bo" } });
    expect(await client.waitFor((m: ServerMessage) => m.type === "MutationResponse" && m.requestId === 1)).toMatchObject({ success: true, result: "renamed bo" });
  });

  it("a path that names no module is refused with what is wrong with it, over HTTP and the WebSocket", async () => {
    harness = await harnessWithModules();
    for (const path of ["../lib/users:get", "lib/../users:get", "lib//users:get", "/lib/users:get", "lib/users:", ".js:get", "lib\\users:get", "lib/us\u0000ers:get"]) {
      const answer = await post("/api/query", { path, args: { name: "ada" } });
      expect(answer, path).toMatchObject({ status: 404, body: { code: "UNKNOWN_FUNCTION" } });
      expect(answer.body.message, path).toContain(`Function path ${JSON.stringify(path)} is not valid`);
    }
    // An empty path never reaches a function.
    expect(await post("/api/query", { path: "", args: {} })).toMatchObject({ status: 400, body: { code: "INVALID_ARGUMENT" } });
    const client = await harness.client();
    client.send({ type: "Mutation", requestId: 1, udfPath: "../lib/users:rename", args: { name: "bo" } });
    expect(await client.waitFor((m: ServerMessage) => m.type === "MutationResponse" && m.requestId === 1)).toMatchObject({
      success: false,
      error: { code: "UNKNOWN_FUNCTION", message: expect.stringContaining('Function path "../lib/users:rename" is not valid') },
    });
  });
});
