/**
 * JSON in and out for the admin API. Errors thrown anywhere in a route become
 * `{ error: { code, message } }` with a status that follows the code; a WalkinError keeps its
 * message (it already says what was wrong and how to fix it).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { closedIfBodyUnread } from "../../transport/unreadBody.js";
import { convertToJson, isWalkinError, type JSONValue, type Value } from "../../values/index.js";

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** Largest admin request body: a document is at most 1 MiB, plus its JSON overhead. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

export class AdminError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export const badRequest = (message: string) => new AdminError(400, "INVALID_ARGUMENT", message);
export const notFound = (message: string) => new AdminError(404, "NOT_FOUND", message);

const NO_STORE = { "Cache-Control": "no-store" };

/**
 * A JSON answer of the admin API. Written with the request's body unread (a missing key, an
 * unknown route, a wrong method, a body too large, a GET route sent a body), it closes the
 * connection: the rule every answer on the port follows (transport/unreadBody.ts).
 */
export function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(text), ...NO_STORE, ...closedIfBodyUnread(response.req) });
  response.end(text);
}

/** The error as the dashboard shows it; unexpected errors keep their message (the caller holds the admin key). */
export function sendError(response: ServerResponse, error: unknown): void {
  if (error instanceof AdminError) return sendJson(response, error.status, { error: { code: error.code, message: error.message } });
  if (isWalkinError(error)) {
    const code = (error as { code: string }).code;
    const status = code === "NOT_FOUND" || code === "UNKNOWN_FUNCTION" ? 404 : code === "INTERNAL" ? 500 : 400;
    return sendJson(response, status, { error: { code, message: (error as Error).message, data: encodedData((error as { data?: Value }).data) } });
  }
  sendJson(response, 500, { error: { code: "INTERNAL", message: (error as Error)?.message ?? String(error) } });
}

/**
 * An error's `data` as the HTTP API and the WebSocket send it (`convertToJson`), so that
 * `WalkinHttpClient` decodes it alike; as it was (`JSON.stringify`), an int64 in it failed the
 * answer itself. Data that cannot be encoded at all is left out (null), as for clients.
 */
function encodedData(data: Value | undefined): JSONValue {
  if (data === undefined) return null;
  try {
    return convertToJson(data);
  } catch {
    return null;
  }
}

/** The request body as a JSON object (an empty body is `{}`). */
export async function readJsonObject(request: IncomingMessage): Promise<Record<string, unknown>> {
  const tooLarge = () => new AdminError(413, "LIMIT_EXCEEDED", `The request body is larger than ${MAX_BODY_BYTES} bytes.`);
  // A body announced too large is refused before any of it is read.
  if (Number(request.headers["content-length"] ?? 0) > MAX_BODY_BYTES) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw tooLarge();
    chunks.push(chunk);
  }
  let text: string;
  try {
    text = UTF8.decode(Buffer.concat(chunks));
  } catch {
    // Decoded leniently, a byte that is not UTF-8 (Latin-1 "é", say) would become U+FFFD and be
    // written into the document as if it were what the admin sent.
    throw badRequest("The request body is not valid UTF-8: send JSON encoded as UTF-8.");
  }
  if (text.trim() === "") return {};
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw badRequest("The request body must be JSON.");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw badRequest("The request body must be a JSON object.");
  return body as Record<string, unknown>;
}

/** Reads a string field, or fails saying which. */
export function stringField(body: Record<string, unknown>, name: string): string {
  const value = body[name];
  if (typeof value !== "string" || value.length === 0) throw badRequest(`"${name}" must be a non-empty string.`);
  return value;
}

export function optionalString(body: Record<string, unknown>, name: string): string | null {
  const value = body[name];
  if (value === undefined || value === null) return null;
  if (typeof value !== "string") throw badRequest(`"${name}" must be a string or null.`);
  return value;
}
