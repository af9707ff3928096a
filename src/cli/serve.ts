/**
 * `walkin dev` and `walkin start`: codegen, load the functions, open the engine, serve.
 *
 * In dev mode the functions directory is watched; each burst of changes builds a new
 * generation (codegen → load → open a new engine on the same SQLite file) and swaps it in.
 * A generation that fails to build is reported and dropped: the last good one keeps serving.
 *
 * The swap, step by step (two engines on one WAL database at once is fine; the order matters):
 *  1. open the new engine (it may build indexes for a changed schema while the old one serves);
 *  2. `server.setEngine(new)`: new requests and subscriptions go to the new engine;
 *  3. close the old engine (and its storage), then switch off the old modules' loader hooks.
 * Reloads never overlap: changes that arrive during one are folded into one more reload.
 * After a version is served, its type check runs in the background (typecheck.ts).
 */
import { mkdir, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { Engine, type EngineOptions } from "../engine/engine.js";
import { HttpRouter, isHttpRouter, type Route } from "../server/router.js";
import { openStorage, parseStorageUrl, redactUrl, type StorageLocation } from "../storage/url.js";
import type { Storage } from "../storage/types.js";
import { limitsFromEnv, startServer, type WalkinServer } from "../transport/index.js";
import { resolveLimits } from "../transport/limits.js";
import { CodegenError, findModules, listFunctionFiles, writeGenerated, type ModuleScan } from "./codegen.js";
import { loadFunctions, type LoadedFunctions } from "./loadFunctions.js";
import { dashboardForServer, dashboardLine, type ServerDashboard } from "../dashboard/api/forServer.js";
import type { Output } from "./output.js";
import { FunctionsTypeChecker } from "./typecheck.js";
import { reportUnhandledRejections } from "./unhandledRejections.js";
import { watchDirectory, type Watcher } from "./watch.js";

export interface ServeOptions {
  /** The functions directory. */
  dir: string;
  port: number;
  host: string;
  /** The storage URL (`sqlite:<file>`, a plain file path, or `postgres://…`); an SQLite file's folder is created. */
  db: string;
  staticDir: string | null;
  /** Dev mode: watch and reload, and send internal error details to clients. */
  dev: boolean;
  output: Output;
}

interface Generation {
  engine: Engine;
  functions: LoadedFunctions;
}

/**
 * The server gets this router once; it forwards to the routes of the generation being served,
 * so that edits to `functions/http.ts` reload like everything else.
 */
class ReloadableRouter extends HttpRouter {
  current: HttpRouter | null = null;
  override match(method: string, path: string): Route | null {
    return this.current?.match(method, path) ?? null;
  }
  override methodsFor(path: string) {
    return this.current?.methodsFor(path) ?? [];
  }
  override getRoutes(): ReturnType<HttpRouter["getRoutes"]> {
    return this.current?.getRoutes() ?? [];
  }
}

export interface Serving {
  /** Stops watching, waits for a reload in flight, closes the server, then the engine. */
  close(): Promise<void>;
  /**
   * Resolves if the server could not listen after `serve` returned: `dev` whose first version
   * was broken listens only once a fixed one loads, and the port may be taken by then.
   */
  readonly listenFailed: Promise<void>;
}

/**
 * Starts serving. Returns null when the functions cannot be served and there is nothing to
 * wait for (`walkin start`, or a missing directory); in dev mode a broken first version waits
 * for the next change instead.
 */
export async function serve(options: ServeOptions): Promise<Serving | null> {
  const { output } = options;
  const dir = path.resolve(options.dir);
  if (!(await stat(dir).then((s) => s.isDirectory(), () => false))) {
    output.error(`No functions directory at ${output.relative(dir) || "."}. Create it, or point to it with --dir.`);
    return null;
  }
  if (options.staticDir !== null && !(await checkStaticDir(options.staticDir, options))) return null;
  let location: StorageLocation;
  try {
    location = parseStorageUrl(options.db);
  } catch (error) {
    output.error((error as Error).message);
    return null;
  }
  if (location.kind === "sqlite" && location.filename !== ":memory:") {
    const folder = path.dirname(location.filename);
    try {
      await prepareDatabaseDir(folder);
    } catch (error) {
      output.error(`Cannot create the database's folder ${output.relative(folder)} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}). Choose another place with --db.`);
      return null;
    }
  }
  const admin = dashboardForServer(options.dev);
  if (!admin.ok) {
    output.error(admin.problem);
    return null;
  }
  const dashboard = admin.dashboard;
  // From before the first function loads (a module's top level may start a promise too).
  const stopReporting = reportUnhandledRejections(output);

  let server: WalkinServer | null = null;
  const router = new ReloadableRouter();
  let current: Generation | null = null;
  let watcher: Watcher | null = null;
  let closed = false;
  let inFlight: Promise<void> | null = null;
  let again = false;
  /** The next build rebuilds indexes (see `build`); the engine such a build opened. */
  let rebuildNext = false;
  let rebuiltBy: Engine | null = null;
  /** The server could not listen (port taken…): nothing to wait for. */
  let listenFailed = false;
  /** Previous generations being closed once their running actions end (`build`). */
  const retired = new Set<Promise<void>>();
  let reportListenFailed!: () => void;
  const listenFailedLater = new Promise<void>((resolve) => (reportListenFailed = resolve));
  const typeChecker = options.dev ? new FunctionsTypeChecker(dir, output) : null;

  /** Builds and installs one generation; false when it failed (and was reported). */
  async function build(): Promise<boolean> {
    const started = performance.now();
    const scan = await generate(dir, options);
    if (!scan) return false;
    const loaded = await loadFunctions(dir, scan);
    if (!loaded.ok) {
      output.loadFailure(loaded.failure);
      return false;
    }
    const engine = await openEngine(loaded.functions, options, dashboard?.observeRun);
    if (!engine || closed) {
      await engine?.close();
      await loaded.functions.release();
      return false;
    }
    if (rebuildNext) rebuiltBy = engine;
    rebuildNext = false;
    const previous = current;
    current = { engine, functions: loaded.functions };
    if (server) {
      // Before the swap, not after: the new engine's scheduler runs already (see below).
      previous?.engine.handOver();
      await server.setEngine(engine);
    } else {
      let limits;
      try {
        // Settings for production servers, read from the environment (docs/protocol.md#limits).
        limits = resolveLimits(limitsFromEnv(process.env));
      } catch (error) {
        current = previous;
        await engine.close();
        await loaded.functions.release();
        output.error((error as Error).message);
        listenFailed = true;
        reportListenFailed();
        return false;
      }
      try {
        server = await startServer({
          engine,
          port: options.port,
          host: options.host,
          http: router,
          staticDir: options.staticDir ?? undefined,
          exposeInternalErrors: options.dev,
          dashboard: dashboard ?? undefined,
          limits,
          // Dev mode shows clients' protocol errors and the like; production only real errors.
          logLevel: (process.env.WALKIN_LOG_LEVEL ?? (options.dev ? "debug" : "info")) === "debug" ? "debug" : "info",
        });
        dashboard?.setConnectionCount(() => server?.connectionCount() ?? 0);
      } catch (error) {
        current = previous;
        await engine.close();
        await loaded.functions.release();
        output.error(listenError(error, options));
        listenFailed = true;
        reportListenFailed();
        return false;
      }
    }
    router.current = httpRoutes(loaded.functions, output);
    if (previous) {
      // Actions still running on the old engine finish there (their ctx.runMutation included):
      // it is closed once they have, without holding up the reload. On SQLite both engines are
      // on one file, whose commit watch tells each of the other's commits only some time after
      // they land (storage/sqlite/commitWatch.ts), so:
      //  - the old engine's action reads first learn what the serving engine committed, and its
      //    scheduler stops (handOver, called before the swap);
      //  - each commit the old engine makes from now on is handed to whichever engine serves
      //    then (a later reload may have replaced this one), whose live queries show it as it
      //    lands, not once the action ends;
      //  - once the old engine is closed, the serving engine looks once more, and reclaims the
      //    entries of indexes only the old engine still read (engine/reclaimIndexes.ts).
      const learnOldCommits = (ts?: number) => {
        const serving = current?.engine;
        if (!serving || serving === previous.engine || (ts !== undefined && ts <= serving.latestTimestamp)) return Promise.resolve();
        // A serving engine closing meanwhile (another reload) has nothing left to show.
        return serving.refreshFromStorage().catch(() => {});
      };
      previous.engine.onCommit((record) => void learnOldCommits(record.ts));
      const retiring = server!.retired(previous.engine)
        .then(async () => {
          await previous.engine.close();
          await previous.functions.release();
          await learnOldCommits();
          // The old version may have been the last reader of an index the new one dropped.
          await current?.engine.reclaimRetiredIndexes().catch(() => {}); // a later start tries again
          // Its last writes (an action still running at the swap) may have skipped an index the
          // new version added, which the new version refuses since (engine/mixedCode.ts). Nothing
          // writes without it now, so a reload of the same files rebuilds it at start, as a
          // restart would. Not for the engine of such a reload: a process running other code on
          // the file could make it loop; a change of the files, or a restart, rebuilds it then.
          const serving = current?.engine;
          const incomplete = serving && serving !== rebuiltBy && !closed ? serving.incompleteIndexes() : [];
          if (incomplete.length > 0) {
            output.info(`Rebuilding ${incomplete.join(", ")}: the previous version wrote to ${incomplete.length > 1 ? "their tables" : "its table"} without ${incomplete.length > 1 ? "them" : "it"}.`);
            rebuildNext = true;
            reload();
          }
        })
        // Nobody awaits this but close(): a failure must be told, not left unhandled (it would end the process).
        .catch((error: unknown) => output.warn(`Closing the previous version failed: ${(error as Error)?.message ?? String(error)}`));
      retired.add(retiring);
      void retiring.finally(() => retired.delete(retiring));
    }
    const { functionCount } = loaded.functions;
    const moduleCount = Object.keys(loaded.functions.modules).length;
    output.success(
      `Functions ready (${plural(functionCount, "function")} in ${plural(moduleCount, "module")}) in ${Math.round(performance.now() - started)} ms`,
    );
    return true;
  }

  /** Runs `build` for a change, folding changes that arrive meanwhile into one more run. */
  function reload(): void {
    if (closed) return;
    if (inFlight) {
      again = true;
      return;
    }
    inFlight = (async () => {
      do {
        again = false;
        // A check still running read the files as they were before this change. Were it left
        // to end, and this change not load (a syntax error), it would print "No type errors"
        // under the error of the files as they are. A version that loads starts a new check.
        typeChecker?.cancel();
        const hadServer = server !== null;
        const ok = await build().catch((error: unknown) => {
          output.error(`Reload failed: ${(error as Error)?.stack ?? String(error)}`);
          return false;
        });
        if (!ok && !closed && !listenFailed) output.info(output.style("dim", hadServer ? "  Still serving the last good version." : "  Waiting for changes…"));
        if (ok && !hadServer && server) printUrl(server, options, admin);
        if (ok && !again && !closed) typeChecker?.check();
      } while (again && !closed);
      inFlight = null;
    })();
  }

  if (options.dev) {
    watcher = await watchDirectory(dir, reload, { onError: (e) => output.warn(`Watching ${dir} failed: ${e.message}`) });
    reload();
    await inFlight;
    if (listenFailed) {
      await watcher.close();
      stopReporting();
      return null;
    }
  } else if (await build()) {
    printUrl(server!, options, admin);
  } else {
    stopReporting();
    return null;
  }

  return {
    listenFailed: listenFailedLater,
    async close() {
      closed = true;
      await watcher?.close();
      await inFlight;
      typeChecker?.cancel();
      dashboard?.close();
      await server?.close();
      await Promise.allSettled([...retired]);
      await current?.engine.close();
      await current?.functions.release();
      stopReporting();
    },
  };
}

/** Codegen; null when a file cannot become a module (reported). `start` tolerates a read-only tree. */
async function generate(dir: string, { output, dev }: ServeOptions): Promise<ModuleScan | null> {
  try {
    const { scan, removed } = await writeGenerated(dir);
    for (const file of removed) output.info(`  Removed ${output.relative(file)} (not written by walkin codegen)`);
    return scan;
  } catch (error) {
    if (error instanceof CodegenError) {
      for (const { file, message } of error.problems) output.fileError(path.join(dir, file), message);
      return null;
    }
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" && !(await stat(dir).then((s) => s.isDirectory(), () => false))) {
      output.error(`The functions directory ${output.relative(dir) || "."} is gone. ${dev ? "Waiting for it to come back." : "Create it, or point to it with --dir."}`);
      return null;
    }
    if (!dev && (code === "EACCES" || code === "EROFS" || code === "EPERM")) {
      output.warn(`Could not write ${output.relative(path.join(dir, "_generated"))} (${code}); using the files there.`);
      return findModules(await listFunctionFiles(dir));
    }
    throw error;
  }
}

/**
 * `--static` must name a folder. Without this, `npm start` before `npm run build` (the app of
 * `walkin init` runs `walkin start --static dist`) served a JSON 404 at every page, and said
 * nothing. `start` refuses it, as it refuses a missing functions directory; `dev` only warns,
 * since a `--run` command (`vite build --watch`) may create the folder once it runs, and each
 * request looks in the folder afresh.
 */
async function checkStaticDir(staticDir: string, { output, dev }: ServeOptions): Promise<boolean> {
  const info = await stat(staticDir).catch(() => null);
  if (info?.isDirectory()) return true;
  const shown = output.relative(staticDir) || ".";
  const problem = info ? `${shown} (--static) is not a folder.` : `The folder ${shown} (--static) does not exist.`;
  if (dev) {
    output.warn(`${problem} Its files are served once it holds the built front end (npm run build).`);
    return true;
  }
  output.error(`${problem} Build the front end first (npm run build), or name the folder of the built files with --static.`);
  return false;
}

/** Creates the database's folder; a `.walkin` folder made here also ignores itself for git. */
async function prepareDatabaseDir(dir: string): Promise<void> {
  const created = await mkdir(dir, { recursive: true });
  if (created !== undefined && path.basename(dir) === ".walkin") {
    await writeFile(path.join(dir, ".gitignore"), "# The local Walk-in database (walkin dev).\n*\n");
  }
}

async function openEngine({ schema, modules }: LoadedFunctions, { db, output }: ServeOptions, observeRun?: EngineOptions["observeRun"]): Promise<Engine | null> {
  const maxFileBytes = fileLimitFromEnv(output);
  if (maxFileBytes === null) return null;
  let storage: Storage;
  try {
    storage = await openStorage(db);
  } catch (error) {
    output.error(`Could not open the database ${redactUrl(db)}: ${(error as Error)?.message ?? String(error)}`);
    return null;
  }
  try {
    return await Engine.open({ storage, schema, modules, observeRun, maxFileBytes });
  } catch (error) {
    await storage.close();
    output.error(`Could not open the database with these functions: ${(error as Error)?.message ?? String(error)}`);
    return null;
  }
}

/** `WALKIN_MAX_FILE_BYTES`, the largest file `ctx.storage` takes (undefined: the default); null after saying what is wrong with it. */
function fileLimitFromEnv(output: Output): number | undefined | null {
  const text = process.env.WALKIN_MAX_FILE_BYTES;
  if (text === undefined || text === "") return undefined;
  const bytes = Number(text);
  if (Number.isSafeInteger(bytes) && bytes > 0) return bytes;
  output.error(`WALKIN_MAX_FILE_BYTES must be a whole number of bytes, like 104857600 for 100 MiB; got "${text}".`);
  return null;
}

/** The default export of `functions/http.ts`, if it is an `httpRouter()`. */
function httpRoutes({ modules }: LoadedFunctions, output: Output): HttpRouter | null {
  if (!modules["http"] || !("default" in modules["http"])) return null;
  const exported = modules["http"]["default"];
  if (isHttpRouter(exported)) return exported;
  output.warn("The default export of the http module is not an httpRouter(), so no HTTP routes are served. Export one: `const http = httpRouter(); …; export default http;`.");
  return null;
}

function listenError(error: unknown, { host, port }: ServeOptions): string {
  const code = (error as NodeJS.ErrnoException)?.code;
  switch (code) {
    case "EADDRINUSE":
      return `Port ${port} on ${host} is already in use. Stop the other server, or choose another port with --port (0 picks a free one).`;
    case "EACCES":
      return `No permission to listen on port ${port}. Ports below 1024 need privileges: choose another with --port.`;
    case "EADDRNOTAVAIL":
    case "ENOTFOUND":
      return `Cannot listen on ${host}: it is not an address of this machine. Use --host 127.0.0.1, or 0.0.0.0 for every interface.`;
    default:
      return `Could not listen on ${host}:${port}: ${(error as Error)?.message ?? String(error)}`;
  }
}

function printUrl(server: WalkinServer, { dev, output }: ServeOptions, admin: ServerDashboard): void {
  output.info(`${output.style("bold", `Walk-in ${dev ? "dev server" : "server"}:`)} ${output.style("cyan", server.url)}`);
  const dashboard = dashboardLine(server.url, admin);
  if (dashboard) output.info(`${output.style("bold", "Dashboard:")} ${output.style("cyan", dashboard)}`);
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}
