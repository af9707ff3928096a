/**
 * One rule for every HTTP answer on the port (unreadBody.ts): an answer written while the
 * request's body is not read to its end carries `Connection: close` and the server closes the
 * connection; an answer after the body was read keeps it. Checked over raw sockets on a real
 * server with the dashboard and stored files, the two families that once had a rule of their
 * own ("not all arrived yet", `request.complete`) or none at all.
 */
import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Dashboard } from "../dashboard/api/dashboard.js";
import { Engine } from "../engine/engine.js";
import { defineSchema, defineTable, mutation } from "../server/index.js";
import { openSqliteStorage } from "../storage/sqlite/index.js";
import { v } from "../values/index.js";
import { startServer, type WalkinServer } from "./server.js";

const KEY = "unread-body-admin-key-0123456789abcdef";
const schema = defineSchema({ notes: defineTable({ text: v.string() }) });
const modules = {
  files: { uploadUrl: mutation({ args: {}, handler: (ctx) => ctx.storage.generateUploadUrl() }) },
};

let engine: Engine;
let server: WalkinServer;
beforeAll(async () => {
  const dashboard = new Dashboard({ adminKey: KEY });
  engine = await Engine.open({ storage: await openSqliteStorage({ filename: ":memory:" }), schema, modules, runScheduler: false, logError: () => {} });
  server = await startServer({ engine, port: 0, log: () => {}, dashboard });
});
const sockets: Socket[] = [];
afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await server.close();
  await engine.close();
});

interface Answer {
  /** The status code. */
  status: number;
  /** Header names lower-cased. */
  headers: Map<string, string>;
  /** The body (empty when only the head was read). */
  body: string;
}

/**
 * A raw connection to the server: what is written is sent as it is (so a request can announce
 * a body it never finishes), and answers are read off it one after another.
 */
class RawConnection {
  private received = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  /** Settles once the server has ended the connection. */
  readonly closedByServer: Promise<void>;
  private ended = false;

  constructor(private readonly socket: Socket) {
    sockets.push(socket);
    socket.on("error", () => {}); // the server may close while this side still sends
    socket.on("data", (data: Buffer) => {
      this.received = Buffer.concat([this.received, data]);
      this.wake?.();
    });
    this.closedByServer = new Promise((closed) => {
      const end = () => {
        this.ended = true;
        this.wake?.();
        closed();
      };
      socket.on("end", end);
      socket.on("close", end);
    });
  }

  static open(): Promise<RawConnection> {
    return new Promise((resolve) => {
      const socket = connect(server.port, "127.0.0.1", () => resolve(new RawConnection(socket)));
    });
  }

  write(bytes: string | Buffer): void {
    this.socket.write(bytes);
  }

  /** The next whole answer (its body as long as its Content-Length says; the answers here all have one). */
  async answer(): Promise<Answer> {
    for (;;) {
      const parsed = this.parse();
      if (parsed) return parsed;
      if (this.ended) throw new Error(`The server closed the connection before a whole answer; got: ${this.received.toString("latin1").slice(0, 200)}`);
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  /** The head of the next answer, whatever its body (an event stream never ends). */
  async head(): Promise<Answer> {
    for (;;) {
      const end = this.received.indexOf("\r\n\r\n");
      if (end !== -1) return parseHead(this.received.subarray(0, end).toString("latin1"));
      if (this.ended) throw new Error("The server closed the connection before an answer.");
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private parse(): Answer | null {
    const end = this.received.indexOf("\r\n\r\n");
    if (end === -1) return null;
    const answer = parseHead(this.received.subarray(0, end).toString("latin1"));
    const length = answer.status === 304 || answer.status === 204 ? 0 : Number(answer.headers.get("content-length"));
    if (!Number.isFinite(length)) throw new Error("An answer without a Content-Length: this reader cannot tell where it ends.");
    if (this.received.length < end + 4 + length) return null;
    answer.body = this.received.subarray(end + 4, end + 4 + length).toString("utf8");
    this.received = this.received.subarray(end + 4 + length);
    return answer;
  }
}

function parseHead(text: string): Answer {
  const [statusLine, ...lines] = text.split("\r\n");
  const headers = new Map(lines.map((line) => [line.slice(0, line.indexOf(":")).toLowerCase(), line.slice(line.indexOf(":") + 1).trim()]));
  return { status: Number(statusLine!.split(" ")[1]), headers, body: "" };
}

/** A request head announcing `length` bytes of body (JSON unless `headers` say otherwise). */
function head(method: string, target: string, length: number, headers: Record<string, string> = {}): string {
  const lines = [`${method} ${target} HTTP/1.1`, "Host: localhost", `Content-Length: ${length}`];
  for (const [name, value] of Object.entries({ "Content-Type": "application/json", ...headers })) lines.push(`${name}: ${value}`);
  return `${lines.join("\r\n")}\r\n\r\n`;
}

const ADMIN = { Authorization: `Bearer ${KEY}` };
/** A body announced larger than the admin API takes (4 MiB) and smaller than a file may be (64 MiB): an upload is refused for its URL, not its size. */
const LARGE = 50 * 1024 * 1024;

/** Sends a head announcing 50 MB and the first 64 KiB of it; the answer must close the connection. */
async function expectClosedLarge(method: string, target: string, status: number, headers: Record<string, string> = {}): Promise<void> {
  const connection = await RawConnection.open();
  connection.write(head(method, target, LARGE, headers));
  connection.write(Buffer.alloc(64 * 1024, "x"));
  const answer = await connection.head();
  expect(answer.status).toBe(status);
  expect(answer.headers.get("connection")).toBe("close");
  // The server ends the connection instead of reading (and throwing away) the rest of the 50 MB.
  await connection.closedByServer;
}

/**
 * Sends a whole small request in one write; refused or answered without its body read, it
 * closes the connection, as the same request split into packets would (see the health route
 * below for when the old rule, "not all arrived yet", answered the two differently).
 */
async function expectClosedSmall(method: string, target: string, body: string, status: number, headers: Record<string, string> = {}): Promise<void> {
  const connection = await RawConnection.open();
  connection.write(head(method, target, Buffer.byteLength(body), headers) + body);
  const answer = await connection.answer();
  expect(answer.status).toBe(status);
  expect(answer.headers.get("connection")).toBe("close");
  await connection.closedByServer;
}

async function uploadUrl(): Promise<URL> {
  return new URL((await engine.runMutation("files:uploadUrl", {})).value as string);
}

/** Stores a small file through its upload URL; its download path. */
async function storedFile(): Promise<string> {
  const url = await uploadUrl();
  const response = await fetch(`${server.url}${url.pathname}${url.search}`, { method: "POST", headers: { "Content-Type": "text/plain" }, body: "hello" });
  const { storageId } = (await response.json()) as { storageId: string };
  return `/api/storage/${storageId}`;
}

describe("the dashboard: an answer with the body unread closes the connection", () => {
  it("no admin key (401), an unknown admin route (404), a wrong method (405), a body announced too large (413)", async () => {
    await expectClosedLarge("POST", "/api/admin/documents/list", 401);
    await expectClosedLarge("POST", "/api/admin/no/such/route", 404, ADMIN);
    await expectClosedLarge("POST", "/api/admin/tables", 405, ADMIN);
    await expectClosedLarge("POST", "/api/admin/documents/list", 413, ADMIN);
  });

  it("a GET route, the dashboard's page and its event stream, sent a body they never read", async () => {
    // Answered 200 and kept alive before: the server then read the whole body and threw it away.
    await expectClosedLarge("GET", "/api/admin/tables", 200, ADMIN);
    const page = await RawConnection.open();
    page.write(head("GET", "/_dashboard", LARGE));
    page.write(Buffer.alloc(64 * 1024, "x"));
    // 200, or 500 where the dashboard's page is not built: either way its body is not read.
    const pageAnswer = await page.head();
    expect([200, 500]).toContain(pageAnswer.status);
    expect(pageAnswer.headers.get("connection")).toBe("close");
    await page.closedByServer;
    await expectClosedLarge("POST", "/_dashboard", 405);
    const stream = await RawConnection.open();
    stream.write(head("GET", "/api/admin/stream", LARGE, ADMIN));
    const streamAnswer = await stream.head();
    expect(streamAnswer.status).toBe(200);
    expect(streamAnswer.headers.get("content-type")).toMatch(/^text\/event-stream/);
    expect(streamAnswer.headers.get("connection")).toBe("close");
  });

  it("a small body sent whole but not read: closed too, whenever it arrived (the old rule kept the health route's)", async () => {
    await expectClosedSmall("POST", "/api/admin/no/such/route", "{}", 404, ADMIN);
    await expectClosedSmall("POST", "/api/admin/tables", "{}", 405, ADMIN);
    await expectClosedSmall("GET", "/api/admin/tables", "{}", 200, ADMIN);
    // The case the two rules answer differently. Node parses a request's head and its body in
    // separate steps, running the handler's promise jobs in between, so the answers above are
    // written before the parser has reached the body (`complete` still false). The health route
    // answers only once a file-system call (the database's size) has come back: the event loop
    // has turned, the parser has taken the body that came in the same packet (`complete` is
    // true), and nothing has read it. "Not all arrived" kept this connection (and read the
    // body to throw it away); "not read to its end" closes it.
    await expectClosedSmall("GET", "/api/admin/health", "{}", 200, ADMIN);
  });

  it("a chunked body over the limit gets its 413, then the connection closes", async () => {
    const connection = await RawConnection.open();
    connection.write(`POST /api/admin/documents/list HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAuthorization: Bearer ${KEY}\r\nTransfer-Encoding: chunked\r\n\r\n`);
    const chunk = Buffer.alloc(1024 * 1024, " ");
    for (let i = 0; i < 5; i++) connection.write(Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from("\r\n")]));
    const answer = await connection.answer();
    expect(answer.status).toBe(413);
    expect(answer.headers.get("connection")).toBe("close");
    await connection.closedByServer;
  });
});

describe("stored files: an answer with the body unread closes the connection", () => {
  it("an upload URL that is not valid (401), a malformed Digest (400), a wrong method (405)", async () => {
    await expectClosedLarge("POST", "/api/storage/upload?token=not.valid", 401);
    const url = await uploadUrl();
    await expectClosedLarge("POST", `${url.pathname}${url.search}`, 400, { Digest: "sha-256=not-base64" });
    await expectClosedLarge("PUT", "/api/storage/upload", 405);
  });

  it("a download sent a body it never reads: a file not found (404), a file (200), not modified (304)", async () => {
    await expectClosedLarge("GET", "/api/storage/nothing-here", 404);
    const path = await storedFile();
    await expectClosedLarge("GET", path, 200);
    await expectClosedSmall("GET", path, "x", 200);
    const etag = (await fetch(`${server.url}${path}`)).headers.get("etag")!;
    await expectClosedSmall("GET", path, "x", 304, { "If-None-Match": etag });
  });

  it("a bad upload URL with a small body that all arrived: closed", async () => {
    await expectClosedSmall("POST", "/api/storage/upload?token=not.valid", "hello", 401);
  });
});

describe("an answer after the body was read keeps the connection", () => {
  it("a dashboard call, then a refusal made once the body was read, then a GET without a body, on one connection", async () => {
    const connection = await RawConnection.open();
    const body = JSON.stringify({ table: "notes" });
    connection.write(head("POST", "/api/admin/documents/list", Buffer.byteLength(body), ADMIN) + body);
    const listed = await connection.answer();
    expect(listed.status).toBe(200);
    expect(listed.headers.get("connection")).toBe("keep-alive");
    connection.write(head("POST", "/api/admin/documents/list", 2, ADMIN) + "[]");
    const refused = await connection.answer();
    expect(refused.status).toBe(400);
    expect(refused.headers.get("connection")).toBe("keep-alive");
    connection.write("GET /api/admin/tables HTTP/1.1\r\nHost: localhost\r\n" + `Authorization: Bearer ${KEY}\r\n\r\n`);
    expect((await connection.answer()).status).toBe(200);
  });

  it("an upload, then a download of the file, on one connection", async () => {
    const url = await uploadUrl();
    const connection = await RawConnection.open();
    connection.write(head("POST", `${url.pathname}${url.search}`, 5, { "Content-Type": "text/plain" }) + "hello");
    const uploaded = await connection.answer();
    expect(uploaded.status).toBe(200);
    expect(uploaded.headers.get("connection")).toBe("keep-alive");
    const { storageId } = JSON.parse(uploaded.body) as { storageId: string };
    connection.write(`GET /api/storage/${storageId} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
    const downloaded = await connection.answer();
    expect(downloaded.status).toBe(200);
    expect(downloaded.body).toBe("hello");
  });
});
