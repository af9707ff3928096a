/**
 * The one rule for every HTTP answer on the server's port (the HTTP API and HTTP actions in
 * http.ts, stored files in fileRoutes.ts, the dashboard's page and admin API in
 * src/dashboard/api): an answer written while the request's body is not read to its end closes
 * the connection. Whatever writes an answer asks here, so that no path (a refusal, a page, a
 * download, an event stream) keeps alive a connection with a body still to come.
 */
import type { IncomingMessage, ServerResponse } from "node:http";

/**
 * Whether an answer is written while the request's body is not read to its end: such an answer
 * closes the connection (`closedIfBodyUnread`, `closeIfBodyUnread`), whatever refused the request
 * before its body was read (an unknown endpoint or route, a wrong method, a missing admin key, a
 * bad upload URL, a body too large) or answered it without reading it (a static file, a download,
 * the dashboard's page). Why, step by step:
 *  1. Node reuses a kept-alive connection for the next request only once this one's body is
 *     consumed: after the answer it reads the rest of the body and throws it away, however
 *     large, while the client goes on sending it (a client could make the server read
 *     megabytes it already refused).
 *  2. With `Connection: close`, the server closes the connection once the answer is out, so
 *     it stops reading the body there; the client stops sending, and its next request opens a
 *     new connection.
 *  3. A request without a body (no Transfer-Encoding, no Content-Length above 0) leaves nothing
 *     unread, and a body read to its end (`readableEnded`) neither: those keep the connection,
 *     as do the usual refusals of a call (unknown function, bad args), made once the body is read.
 * The rule is "not read to its end", not "not all arrived yet" (`!request.complete`), so that a
 * request gets the same answer however its bytes were split into packets and however long the
 * answer took. Node parses a packet's request head and its body in separate steps, with the
 * handler's promise jobs run in between, and sets `complete` once it has parsed the body's last
 * byte, read or not. So under "not all arrived", a small body sent with its head and answered
 * unread after the event loop turned (a file or database call first) kept the connection, while
 * the same request answered at once, or with its body in a later packet, closed it. A small body
 * left unread closes the connection too: one new connection for a client that sent a request it
 * should not have.
 */
export function bodyLeftUnread(request: IncomingMessage | undefined): boolean {
  if (request === undefined) return false;
  const hasBody = request.headers["transfer-encoding"] !== undefined || Number(request.headers["content-length"] ?? 0) > 0;
  return hasBody && !request.readableEnded;
}

/**
 * The header that closes the connection after an answer written with the request's body unread
 * (`bodyLeftUnread`); none otherwise. Spread last into the headers of `writeHead`, so that no
 * header of the caller's (an app's own `Connection`) keeps such a connection alive.
 *
 * @example
 * response.writeHead(204, { ...CORS_HEADERS, ...closedIfBodyUnread(request) }).end();
 */
export function closedIfBodyUnread(request: IncomingMessage | undefined): Record<string, string> {
  return bodyLeftUnread(request) ? { Connection: "close" } : {};
}

/**
 * The same rule for code that writes its own head (static files, the dashboard's page and
 * event stream): sets `Connection: close` on `response` now, which `writeHead` keeps when it
 * merges its headers. Asked before that code runs, not when it writes: nothing reads the body
 * in between, so the answer is the same.
 *
 * @example
 * closeIfBodyUnread(response);
 * await serveStatic(dir, path, method, response);
 */
export function closeIfBodyUnread(response: ServerResponse): void {
  if (!response.headersSent && bodyLeftUnread(response.req)) response.setHeader("Connection", "close");
}
