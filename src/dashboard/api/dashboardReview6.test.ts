/**
 * Dashboard review 6: the Data screen's filters on int64 fields (typed digits must reach the
 * server as an int64, which a float64 never equals); a request without the admin key, or one
 * refused before its body is read, closes its connection instead of the server reading the
 * body, whatever its size.
 */
import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Engine } from "../../engine/engine.js";
import { openSqliteStorage } from "../../storage/sqlite/index.js";
import { startServer, type WalkinServer } from "../../transport/index.js";
import { defineSchema, defineTable, mutation } from "../../server/index.js";
import { v } from "../../values/index.js";
import type { TableSummary } from "../app/Data.js";
import { filterValue } from "../app/validators.js";
import { Dashboard } from "./dashboard.js";
import { adminCall } from "./fixtures/adminBackend.js";

const KEY = "review6-admin-key-0123456789abcdefghij";
const schema = defineSchema({
  scores: defineTable({
    player: v.string(),
    points: v.int64(),
    ratio: v.float64(),
    stats: v.object({ wins: v.optional(v.int64()) }),
    bonus: v.optional(v.union(v.int64(), v.null())),
  }),
});
const seed = mutation({
  args: {},
  handler: async (ctx) => {
    await ctx.db.insert("scores", { player: "ann", points: 5n, ratio: 5, stats: { wins: 2n }, bonus: 1n });
    await ctx.db.insert("scores", { player: "bob", points: 6n, ratio: 0.5, stats: { wins: 3n }, bonus: null });
    await ctx.db.insert("scores", { player: "cy", points: 9007199254740993n, ratio: 1, stats: {}, bonus: -4n });
  },
});

let engine: Engine;
let server: WalkinServer;
beforeAll(async () => {
  const dashboard = new Dashboard({ adminKey: KEY });
  engine = await Engine.open({ storage: await openSqliteStorage({ filename: ":memory:" }), schema, modules: { seed: { default: seed } }, runScheduler: false });
  server = await startServer({ engine, port: 0, log: () => {}, dashboard });
  await engine.runMutation("seed:default", {});
});
afterAll(async () => {
  await server.close();
  await engine.close();
});

/** The players the Data screen lists for a filter typed as `text` in the value box. */
async function playersWhere(field: string, op: string, text: string): Promise<string[]> {
  const tables = (await adminCall(server.url, "tables", undefined, KEY)).json as TableSummary[];
  const table = tables.find((t) => t.name === "scores")!;
  // What the page sends (Data.tsx): the value typed, as filterValue reads it for this field.
  const filters = [{ field, op, value: filterValue(table.validator, field, text) }];
  const answer = await adminCall(server.url, "documents/list", { table: "scores", filters }, KEY);
  expect(answer.status).toBe(200);
  return (answer.json.page as Array<{ doc: { player: string } }>).map((view) => view.doc.player).sort();
}

describe("the Data screen's filter on an int64 field", () => {
  it("matches the documents that hold the digits typed", async () => {
    expect(await playersWhere("points", "eq", "5")).toEqual(["ann"]);
    expect(await playersWhere("points", "gte", " 6 ")).toEqual(["bob", "cy"]);
    expect(await playersWhere("points", "lt", "6")).toEqual(["ann"]);
  });

  it("keeps every digit past 2^53", async () => {
    expect(await playersWhere("points", "eq", "9007199254740993")).toEqual(["cy"]);
  });

  it("works on a nested field and on a union with int64 in it", async () => {
    expect(await playersWhere("stats.wins", "eq", "3")).toEqual(["bob"]);
    expect(await playersWhere("bonus", "eq", "-4")).toEqual(["cy"]);
    expect(await playersWhere("bonus", "eq", "null")).toEqual(["bob"]);
  });

  it("leaves other fields as they were: numbers as float64, text as text", async () => {
    expect(await playersWhere("ratio", "eq", "5")).toEqual(["ann"]);
    expect(await playersWhere("ratio", "lt", "1")).toEqual(["bob"]);
    expect(await playersWhere("player", "eq", "bob")).toEqual(["bob"]);
  });
});

interface Answer {
  head: string;
  /** Settles once the server has closed the connection. */
  closedByServer: Promise<void>;
}

const sockets: Socket[] = [];
afterAll(() => {
  for (const socket of sockets) socket.destroy();
});

/** Sends `head` and a first part of the body it announces, and resolves with the answer's head. */
function sendPart(head: string, bodyPart: string): Promise<Answer> {
  return new Promise((resolve) => {
    const socket = connect(Number(new URL(server.url).port), "127.0.0.1", () => socket.write(head + bodyPart));
    sockets.push(socket);
    const closedByServer = new Promise<void>((closed) => {
      socket.on("end", closed);
      socket.on("close", closed);
    });
    socket.on("error", () => {}); // the server may close while the client still sends
    let received = "";
    socket.on("data", (data) => {
      received += data.toString("latin1");
      if (received.includes("\r\n\r\n")) resolve({ head: received.slice(0, received.indexOf("\r\n\r\n")), closedByServer });
    });
  });
}

const HUNDRED_MB = 100 * 1024 * 1024;

describe("a request refused before its body is read", () => {
  it("without the admin key: 401 with Connection: close, and the server closes instead of reading the body", async () => {
    const head = `POST /api/admin/documents/list HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${HUNDRED_MB}\r\n\r\n`;
    const answer = await sendPart(head, '{"table":"scores"');
    expect(answer.head).toMatch(/^HTTP\/1\.1 401 /);
    expect(answer.head).toMatch(/\r\nConnection: close\r\n/i);
    await answer.closedByServer;
  });

  it("with the key but a body announced too large: 413 at once, with Connection: close", async () => {
    const head = `POST /api/admin/documents/list HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${KEY}\r\nContent-Type: application/json\r\nContent-Length: ${HUNDRED_MB}\r\n\r\n`;
    const answer = await sendPart(head, '{"table":"scores"');
    expect(answer.head).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer.head).toMatch(/\r\nConnection: close\r\n/i);
    await answer.closedByServer;
  });

  it("with the key but the wrong method: 405 with Connection: close", async () => {
    const head = `POST /api/admin/tables HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${KEY}\r\nContent-Type: application/json\r\nContent-Length: ${HUNDRED_MB}\r\n\r\n`;
    const answer = await sendPart(head, "{");
    expect(answer.head).toMatch(/^HTTP\/1\.1 405 /);
    expect(answer.head).toMatch(/\r\nConnection: close\r\n/i);
    await answer.closedByServer;
  });

  it("a refused request without a body keeps its connection: only an unread body closes it", async () => {
    const answer = await adminCall(server.url, "tables", undefined, "not-the-key-0123456789abcdefghij");
    expect(answer.status).toBe(401);
    expect(answer.headers.get("connection")).toBe("keep-alive");
  });
});
