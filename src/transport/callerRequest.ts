/**
 * The network facts of a client's call (`Caller.request`): the peer address and the headers
 * that identify a client behind a proxy or its browser. Only these few are kept, so nothing
 * else a browser sends (cookies, authorization) reaches function code this way.
 */
import type { IncomingMessage } from "node:http";
import type { CallerRequest } from "../engine/engine.js";

const KEPT_HEADERS = ["user-agent", "x-forwarded-for", "x-real-ip", "cf-connecting-ip", "forwarded"] as const;
/** Longer header values are cut: they end up in rows (session listings) and rate-limit keys. */
const MAX_HEADER_CHARS = 512;

export function callerRequestOf(request: IncomingMessage): CallerRequest {
  const headers: Record<string, string> = {};
  for (const name of KEPT_HEADERS) {
    const value = request.headers[name];
    const text = Array.isArray(value) ? value.join(", ") : value;
    if (text) headers[name] = text.slice(0, MAX_HEADER_CHARS);
  }
  return { remoteAddress: request.socket.remoteAddress ?? null, headers };
}
