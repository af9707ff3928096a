#!/usr/bin/env node
// The `walkin` command. Runs the built CLI (dist/cli/main.js) when there is one; otherwise —
// in a fresh clone, before `npm run build` — compiles src/cli/main.ts on the fly with tsx.
// WALKIN_CLI_FROM_SOURCE=1 forces the sources (the repository's own tests use it so that a
// stale dist/ cannot hide a change).
import { existsSync } from "node:fs";

const built = new URL("../dist/cli/main.js", import.meta.url);
let entry = built;
if (process.env.WALKIN_CLI_FROM_SOURCE === "1" || !existsSync(built)) {
  const { register } = await import("tsx/esm/api");
  register();
  // Tells src/cli/sharedModules.ts that .ts files load process-wide.
  globalThis[Symbol.for("walkin.cli.tsxRegistered")] = true;
  entry = new URL("../src/cli/main.ts", import.meta.url);
}
const { main } = await import(entry.href);
process.exit(await main(process.argv.slice(2)));
