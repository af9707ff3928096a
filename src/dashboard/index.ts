/**
 * The dashboard: a React page at `/_dashboard` and the admin API it uses (`/api/admin/*`),
 * served by `walkin dev` (with a fresh admin key printed in its URL) and by `walkin start`
 * when `WALKIN_ADMIN_KEY` is set. See docs/dashboard.md.
 *
 * @example
 * const dashboard = new Dashboard({ adminKey: generateAdminKey() });
 * const engine = await Engine.open({ storage, schema, modules, observeRun: dashboard.observeRun });
 * const server = await startServer({ engine, dashboard });
 * dashboard.setConnectionCount(() => server.connectionCount());
 */
export { Dashboard, DASHBOARD_PATH, ADMIN_API_PREFIX, type DashboardOptions } from "./api/dashboard.js";
export { generateAdminKey, adminKeyProblem, MIN_ADMIN_KEY_LENGTH } from "./api/adminKey.js";
export type { RunEntry } from "./api/runLog.js";
