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
// Hosting a backend from your own process (what `walkin start` does): open an engine over a
// storage, then serve it.
export { Engine, type EngineOptions, type Caller, type Authenticate } from "../engine/engine.js";
export { MAX_HTTP_BODY_BYTES } from "./http.js";
export { DEFAULT_LIMITS, LIMIT_ENV_VARS, limitsFromEnv, type ServerLimits } from "./limits.js";
export * from "./protocol.js";
