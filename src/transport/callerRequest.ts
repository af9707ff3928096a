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
  return kept(request.socket.remoteAddress ?? null, (name) => {
    const value = request.headers[name];
    return Array.isArray(value) ? value.join(", ") : value;
  });
}

/** The same of a Fetch API `Request` that came from `remoteAddress` (walkin/testing's `t.fetch`). */
export function callerRequestOfFetch(request: Request, remoteAddress: string): CallerRequest {
  return kept(remoteAddress, (name) => request.headers.get(name) ?? undefined);
}

/** The token of an `Authorization: Bearer <token>` header, or null for any other value. */
export function bearerTokenIn(header: string | null | undefined): string | null {
  const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return match ? match[1]! : null;
}

function kept(remoteAddress: string | null, header: (name: (typeof KEPT_HEADERS)[number]) => string | undefined): CallerRequest {
  const headers: Record<string, string> = {};
  for (const name of KEPT_HEADERS) {
    const text = header(name);
    if (text) headers[name] = text.slice(0, MAX_HEADER_CHARS);
  }
  return { remoteAddress, headers };
}
