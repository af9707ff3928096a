/**
 * Builds the dashboard page (src/dashboard/app, React) into three files: index.html, app.js
 * and app.css. `npm run build` writes them to dist/dashboard-app/, so an installed package
 * serves them as they are (no bundler, no network); running from the sources (this
 * repository's tests, `WALKIN_CLI_FROM_SOURCE=1`) builds them in memory on first use instead,
 * so a change to the page can never be hidden by a stale build.
 *
 * Run directly to write dist/dashboard-app/: `node --import tsx src/dashboard/build.ts`.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

export interface DashboardAssets {
  "index.html": string;
  "app.js": string;
  "app.css": string;
}

const entry = fileURLToPath(new URL("./app/main.tsx", import.meta.url));

/** The page holds no secret: the admin key is typed in (or read from the URL fragment) at run time. */
const INDEX_HTML = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <meta name="color-scheme" content="light dark" />
    <meta name="referrer" content="no-referrer" />
    <title>Walk-in dashboard</title>
    <link rel="stylesheet" href="/_dashboard/app.css" />
  </head>
  <body>
    <div id="root"></div>
    <script type="module" src="/_dashboard/app.js"></script>
  </body>
</html>
`;

export async function buildDashboardAssets(): Promise<DashboardAssets> {
  const { build } = await import("esbuild");
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    jsx: "automatic",
    outdir: "out",
    define: { "process.env.NODE_ENV": '"production"' },
    logLevel: "silent",
  });
  const file = (ext: string) => result.outputFiles.find((f) => f.path.endsWith(ext))?.text ?? "";
  return { "index.html": INDEX_HTML, "app.js": file(".js"), "app.css": file(".css") };
}

/** Writes the built page to `dir` (dist/dashboard-app by default). */
export async function writeDashboardAssets(dir = fileURLToPath(new URL("../../dist/dashboard-app/", import.meta.url))): Promise<void> {
  const assets = await buildDashboardAssets();
  await mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(assets)) await writeFile(`${dir}/${name}`, text);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await writeDashboardAssets();
}
