/**
 * The dashboard on a Walk-in server: the page at `/_dashboard` and the admin API at
 * `/api/admin/*`, mounted by the HTTP handler (transport/http.ts) before anything else.
 *
 * Every admin route checks the admin key first, in constant time, and answers 401 with
 * nothing else when it is wrong or missing; only then is the route looked up (so even the
 * list of routes is hidden). The admin API is plain HTTP on its own paths: the WebSocket
 * protocol has no message that reaches it, and its operations are not registered functions.
 *
 * One Dashboard lives as long as the server; engines come and go under it (dev reloads), so it
 * follows `engines.current` and moves its commit listener when the engine changes.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Engine, FunctionRunTrace } from "../../engine/engine.js";
import type { DashboardHandler } from "../../transport/http.js";
import type { EngineSwitch } from "../../transport/engineSwitch.js";
import { closeIfBodyUnread } from "../../transport/unreadBody.js";
import { walkinError } from "../../values/index.js";
import { adminKeyProblem, requestHasKey } from "./adminKey.js";
import { preloadAssets, serveAsset } from "./assets.js";
import { deleteDocument, getDocument, insertDocument, listDocuments, replaceDocument } from "./documents.js";
import { TableCounts } from "./tables.js";
import { callerFor, listFunctions, parseArgs, runFunction } from "./functions.js";
import { AdminError, notFound, readJsonObject, sendError, sendJson, stringField } from "./httpJson.js";
import { RunLog } from "./runLog.js";
import { cancelJob, cronTargets, HealthSampler, schedulerOverview } from "./scheduler.js";
import { StreamHub } from "./stream.js";
import { getUser, listUsers, revokeSession, usersOverview } from "./users.js";

export const DASHBOARD_PATH = "/_dashboard";
export const ADMIN_API_PREFIX = "/api/admin/";

export interface DashboardOptions {
  /**
   * The key every admin call must carry (`Authorization: Bearer <key>`): at least 24
   * characters, no whitespace (`generateAdminKey()` makes one); the constructor throws otherwise.
   */
  adminKey: string;
}

interface RouteContext {
  engines: EngineSwitch;
  engine: Engine;
  body: Record<string, unknown>;
}

type Route = { method: "GET" | "POST"; run: (context: RouteContext) => Promise<unknown> | unknown };

export class Dashboard implements DashboardHandler {
  private readonly runs: RunLog;
  private readonly stream = new StreamHub();
  /** A deferred recount tells the pages as a commit would, so they fetch the exact count. */
  private readonly counts = new TableCounts((table) => this.stream.committed([table]));
  private readonly health = new HealthSampler();
  private engines: EngineSwitch | null = null;
  private boundEngine: Engine | null = null;
  private stopListening: (() => void) | null = null;
  private cronFunctions = new Set<string>();
  private connectionCount: () => number = () => 0;
  private healthTimer: NodeJS.Timeout | undefined;

  private readonly routes: Record<string, Route> = {
    "tables": { method: "GET", run: ({ engine }) => this.counts.summaries(engine) },
    "documents/list": { method: "POST", run: ({ engine, body }) => listDocuments(engine, body) },
    "documents/get": { method: "POST", run: ({ engine, body }) => getDocument(engine, body) },
    "documents/insert": { method: "POST", run: ({ engines, body }) => insertDocument(engines, body) },
    "documents/replace": { method: "POST", run: ({ engines, body }) => replaceDocument(engines, body) },
    "documents/delete": { method: "POST", run: ({ engines, body }) => deleteDocument(engines, body) },
    "functions": { method: "GET", run: ({ engine }) => listFunctions(engine) },
    "functions/run": { method: "POST", run: ({ engines, engine, body }) => runFunction(engines, engine, body) },
    "functions/watch": { method: "POST", run: ({ engine, body }) => this.watch(engine, body) },
    "functions/unwatch": {
      method: "POST",
      run: ({ body }) => {
        this.stream.unwatch(stringField(body, "streamId"), stringField(body, "watchId"));
        return { ok: true };
      },
    },
    "logs": { method: "GET", run: () => this.runs.recent() },
    "users/overview": { method: "GET", run: ({ engine }) => usersOverview(engine, this.runs) },
    "users/list": { method: "POST", run: ({ engine, body }) => listUsers(engine, body) },
    "users/get": { method: "POST", run: ({ engine, body }) => getUser(engine, body) },
    "sessions/revoke": { method: "POST", run: ({ engines, body }) => revokeSession(engines, body) },
    "scheduler": { method: "GET", run: ({ engine }) => schedulerOverview(engine) },
    "scheduler/cancel": { method: "POST", run: ({ engines, body }) => cancelJob(engines, body) },
    "health": { method: "GET", run: ({ engine }) => this.health.figures(engine, this.runs, this.connectionCount()) },
  };

  constructor(private readonly options: DashboardOptions) {
    // `walkin start` checks WALKIN_ADMIN_KEY the same way; code that builds its own Dashboard
    // must not get one that opens to a guessable key (or, with none, fails every call).
    const problem = adminKeyProblem(options?.adminKey, "new Dashboard({ adminKey }): adminKey");
    if (problem) throw walkinError("MISUSE", problem);
    this.runs = new RunLog((trace) => this.kindOf(trace));
    this.runs.onEntry((entry) => this.stream.run(entry));
    void preloadAssets().catch(() => {}); // reported when the page is asked for
  }

  /** Every admin route, for tests and docs: `[method, path]`. */
  routeList(): Array<[method: string, path: string]> {
    return [...Object.entries(this.routes).map(([path, route]): [string, string] => [route.method, `${ADMIN_API_PREFIX}${path}`]), ["GET", `${ADMIN_API_PREFIX}stream`]];
  }

  /** The engine's `observeRun` (EngineOptions): feeds the Logs screen. */
  readonly observeRun = <T>(trace: FunctionRunTrace, run: () => Promise<T>): Promise<T> => this.runs.observe(trace, run);

  /** Tells the dashboard how to count connected clients (the server exists after the dashboard). */
  setConnectionCount(count: () => number): void {
    this.connectionCount = count;
  }

  private kindOf(trace: FunctionRunTrace) {
    if (trace.caller.kind === "scheduler" && this.cronFunctions.has(trace.path)) return "cron" as const;
    return null;
  }

  async handle(request: IncomingMessage, response: ServerResponse, url: URL, engines: EngineSwitch): Promise<boolean> {
    const path = url.pathname;
    const method = request.method ?? "GET";
    if (path === DASHBOARD_PATH || path.startsWith(`${DASHBOARD_PATH}/`)) {
      // The page never reads a body: one sent with it closes the connection (unreadBody.ts).
      closeIfBodyUnread(response);
      await serveAsset(path, method, response);
      return true;
    }
    if (!path.startsWith(ADMIN_API_PREFIX) && path !== ADMIN_API_PREFIX.slice(0, -1)) return false;
    if (!requestHasKey(request, this.options.adminKey)) {
      // Refused on its headers: not a byte of the body is read, and the connection closes once
      // the answer is out (`sendJson`), so a caller without the key cannot make the server read
      // (and throw away) a body of any size.
      sendJson(response, 401, { error: { code: "UNAUTHENTICATED", message: "The admin key is missing or wrong." } });
      return true;
    }
    try {
      await this.bind(engines);
      if (path === `${ADMIN_API_PREFIX}stream`) {
        if (method !== "GET") throw new AdminError(405, "MISUSE", "Use GET for the stream.");
        closeIfBodyUnread(response);
        this.stream.open(request, response);
        this.startHealth();
        return true;
      }
      const name = path.slice(ADMIN_API_PREFIX.length);
      const route = Object.hasOwn(this.routes, name) ? this.routes[name]! : null;
      if (!route) throw notFound(`There is no admin route ${path}.`);
      if (method !== route.method) throw new AdminError(405, "MISUSE", `Use ${route.method} for ${path}.`);
      const body = method === "POST" ? await readJsonObject(request) : {};
      // Through `use`, as the HTTP API runs queries and actions: a reload (`walkin dev`) closes
      // the old engine only once nothing started on it runs, so a read or an action run from
      // here finishes on the engine it began on instead of failing halfway, its writes lost.
      sendJson(response, 200, await engines.use((engine) => Promise.resolve(route.run({ engines, engine, body }))));
    } catch (error) {
      // Refused before the whole body was read (a wrong method, a body too large), the
      // connection closes after the answer (`sendJson`); refused once it was read, it stays open.
      sendError(response, error);
    }
    return true;
  }

  private async watch(engine: Engine, body: Record<string, unknown>) {
    const path = stringField(body, "path");
    const fn = listFunctions(engine).find((f) => f.path === path);
    if (!fn || fn.type !== "query") throw notFound(`"${path}" is not a query; only queries can be watched live.`);
    const caller = await callerFor(engine, body.as);
    return this.stream.watch(stringField(body, "streamId"), engine, path, parseArgs(body.args), caller);
  }

  /** Follows the engine being served: commit listener, cron targets, live queries. */
  private async bind(engines: EngineSwitch): Promise<void> {
    this.engines = engines;
    const engine = engines.current;
    if (engine === this.boundEngine) return;
    const hadEngine = this.boundEngine !== null;
    this.boundEngine = engine;
    this.stopListening?.();
    this.stopListening = engine.onCommit((record, tables) => {
      this.counts.forget(tables);
      // The pages re-read a table they hear changed: they hear of it once the commit is durable.
      engine.durableThrough(record.ts).then(
        () => this.stream.committed(tables),
        () => {}, // a failed sync: the storage refuses everything from now on, nothing to re-read
      );
    });
    if (hadEngine) this.stream.dropWatches();
    this.cronFunctions = await cronTargets(engine).catch(() => new Set<string>());
  }

  /** Once a second while a page is open: health figures, and following a reloaded engine. */
  private startHealth(): void {
    if (this.healthTimer) return;
    this.healthTimer = setInterval(() => {
      if (this.stream.size === 0 || !this.engines) {
        clearInterval(this.healthTimer);
        this.healthTimer = undefined;
        return;
      }
      const engines = this.engines;
      void this.bind(engines)
        .then(async () => {
          this.health.sample(engines.current);
          this.stream.broadcast({ type: "health", health: await this.health.figures(engines.current, this.runs, this.connectionCount()) });
        })
        .catch(() => {});
    }, 1_000);
    this.healthTimer.unref?.();
  }

  /** Stops timers, and ends the pages' streams and their live queries. */
  close(): void {
    clearInterval(this.healthTimer);
    this.counts.close();
    this.stopListening?.();
    this.stream.endAll();
  }
}
