/**
 * Review 6 of the transport: a body too large (413) is answered with `Connection: close` and the
 * connection is closed, whether the body was announced too large (Content-Length) or grew too
 * large while arriving (chunked), on Walk-in's API and on an app's HTTP route. Kept alive, the
 * connection would wait for the client to send the rest, which the server would read to throw
 * away, however much there is.
 */
import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { startHarness, type Harness } from "./fixtures/harness.js";
import { MAX_HTTP_BODY_BYTES } from "./http.js";

let harness: Harness | null = null;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await harness?.dispose();
  harness = null;
});

interface Refusal {
  /** The answer's status line and headers, lower-cased names. */
  status: string;
  headers: Map<string, string>;
  /** Settles once the server has closed the connection. */
  closedByServer: Promise<void>;
}

/**
 * Sends `head` then `body` (not necessarily the whole body the head announces) on a raw
 * connection, and resolves once the answer's head has arrived.
 */
function sendPart(head: string, body: Buffer): Promise<Refusal> {
  return new Promise((resolve) => {
    const socket = connect(harness!.server.port, "127.0.0.1", () => {
      socket.write(head);
      socket.write(body);
    });
    sockets.push(socket);
    let received = "";
    const closedByServer = new Promise<void>((closed) => {
      socket.on("end", closed);
      socket.on("close", closed);
    });
    socket.on("error", () => {}); // the server may close while the client still sends
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

const announcedTooLarge = (path: string) => `POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${MAX_HTTP_BODY_BYTES + 1}\r\n\r\n`;

/** A chunked body past the limit, without its last chunk: the client is still sending. */
function chunkedPastTheLimit(): Buffer {
  const piece = Buffer.alloc(1024 * 1024, "x");
  const chunk = Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from("\r\n")]);
  return Buffer.concat(Array.from({ length: MAX_HTTP_BODY_BYTES / piece.length + 1 }, () => chunk));
}
const chunkedHead = (path: string) => `POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`;

async function expectRefusedAndClosed(refusal: Refusal): Promise<void> {
  expect(refusal.status).toMatch(/^HTTP\/1\.1 413 /);
  expect(refusal.headers.get("connection")).toBe("close");
  // The server ends the connection instead of waiting for (and reading) the rest of the body.
  await refusal.closedByServer;
}

describe("a body too large (413)", () => {
  it("announced by Content-Length on /api/query: the answer says Connection: close and the server closes", async () => {
    harness = await startHarness();
    await expectRefusedAndClosed(await sendPart(announcedTooLarge("/api/query"), Buffer.alloc(64 * 1024, "x")));
  });

  it("that grows past the limit while arriving (chunked) on /api/mutation: the same", async () => {
    harness = await startHarness();
    await expectRefusedAndClosed(await sendPart(chunkedHead("/api/mutation"), chunkedPastTheLimit()));
  });

  it("sent to an app's HTTP route, announced or chunked: the same", async () => {
    harness = await startHarness();
    await expectRefusedAndClosed(await sendPart(announcedTooLarge("/webhook"), Buffer.alloc(64 * 1024, "x")));
    await expectRefusedAndClosed(await sendPart(chunkedHead("/webhook"), chunkedPastTheLimit()));
  });

  it("leaves the server answering on new connections", async () => {
    harness = await startHarness();
    await expectRefusedAndClosed(await sendPart(announcedTooLarge("/api/query"), Buffer.alloc(1024, "x")));
    const answer = await fetch(`${harness.server.url}/api/query`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ path: "messages:count", args: {} }) });
    expect(await answer.json()).toMatchObject({ status: "success", value: 0 });
  });
});
