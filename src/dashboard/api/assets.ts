/**
 * Serves the dashboard page at `/_dashboard` (index.html, app.js, app.css): from
 * dist/dashboard-app/ when this code runs built, or built in memory from the sources when it
 * runs from them (see ../build.ts). The page is public; it holds no secret.
 */
import { readFile } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import { fileURLToPath } from "node:url";
import type { DashboardAssets } from "../build.js";

const TYPES: Record<string, string> = {
  "index.html": "text/html; charset=utf-8",
  "app.js": "text/javascript; charset=utf-8",
  "app.css": "text/css; charset=utf-8",
};

const HEADERS = {
  "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  "X-Frame-Options": "DENY",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "Cache-Control": "no-cache",
};

const fromSources = import.meta.url.endsWith(".ts");
let loading: Promise<DashboardAssets> | null = null;

async function load(): Promise<DashboardAssets> {
  if (fromSources) {
    const { buildDashboardAssets } = await import("../build.js");
    return buildDashboardAssets();
  }
  const dir = fileURLToPath(new URL("../../dashboard-app/", import.meta.url));
  const read = (name: string) => readFile(dir + name, "utf8");
  return { "index.html": await read("index.html"), "app.js": await read("app.js"), "app.css": await read("app.css") };
}

/** Starts loading (or building) the page now, so the first visit does not wait. */
export function preloadAssets(): Promise<DashboardAssets> {
  loading ??= load();
  loading.catch(() => (loading = null));
  return loading;
}

/** Answers `/_dashboard…`: the page for any path under it (it routes itself), or its two files. */
export async function serveAsset(path: string, method: string, response: ServerResponse): Promise<void> {
  if (method !== "GET" && method !== "HEAD") {
    response.writeHead(405, { Allow: "GET, HEAD" }).end();
    return;
  }
  let assets: DashboardAssets;
  try {
    assets = await preloadAssets();
  } catch (error) {
    response.writeHead(500, { "Content-Type": "text/plain; charset=utf-8" });
    response.end(`The dashboard page could not be loaded: ${(error as Error).message}\nReinstall walkin, or run \`npm run build\` in its repository.`);
    return;
  }
  const name = path === "/_dashboard/app.js" ? "app.js" : path === "/_dashboard/app.css" ? "app.css" : "index.html";
  const body = assets[name];
  response.writeHead(200, { "Content-Type": TYPES[name]!, "Content-Length": Buffer.byteLength(body), ...HEADERS });
  response.end(method === "HEAD" ? undefined : body);
}
