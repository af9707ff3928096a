/**
 * How `walkin dev` and `walkin start` set the dashboard up (called from cli/serve.ts):
 * dev always serves it, with `WALKIN_ADMIN_KEY` if set or else a fresh key made for this run;
 * start serves it only when `WALKIN_ADMIN_KEY` is set (and refuses to start with a weak one).
 */
import { adminKeyProblem, generateAdminKey } from "./adminKey.js";
import { Dashboard, DASHBOARD_PATH } from "./dashboard.js";

export type ServerDashboard = { ok: true; dashboard: Dashboard | null; key: string | null; generated: boolean } | { ok: false; problem: string };

export function dashboardForServer(dev: boolean, env: NodeJS.ProcessEnv = process.env): ServerDashboard {
  const given = env.WALKIN_ADMIN_KEY;
  if (given !== undefined && given !== "") {
    const problem = adminKeyProblem(given);
    if (problem) return { ok: false, problem };
    return { ok: true, dashboard: new Dashboard({ adminKey: given }), key: given, generated: false };
  }
  if (!dev) return { ok: true, dashboard: null, key: null, generated: false };
  const key = generateAdminKey();
  return { ok: true, dashboard: new Dashboard({ adminKey: key }), key, generated: true };
}

/**
 * The line the CLI prints. A generated key goes in the URL's fragment (`#key=`), which the
 * browser never sends to the server and the page removes from the address bar at once; a key
 * from the environment is never printed.
 */
export function dashboardLine(serverUrl: string, setup: ServerDashboard): string | null {
  if (!setup.ok || !setup.dashboard) return null;
  const url = `${serverUrl}${DASHBOARD_PATH}`;
  return setup.generated ? `${url}#key=${setup.key}` : `${url} (sign in with WALKIN_ADMIN_KEY)`;
}
