/**
 * `walkin/transport`: the wire protocol and the server that speaks it: live queries, mutations
 * and actions over one WebSocket per client (`/api/sync`), one-shot calls over HTTP
 * (`/api/query`, `/api/mutation`, `/api/action`), the app's HTTP routes and static files, on
 * one port. See docs/protocol.md.
 *
 * @example
 * import { startServer } from "walkin/transport";
 * const server = await startServer({ engine, port: 3210 });
 * console.log(`listening on ${server.url}`);
 */
export { startServer, type WalkinServer, type WalkinServerOptions } from "./server.js";
export { MAX_HTTP_BODY_BYTES } from "./http.js";
export * from "./protocol.js";
