#!/usr/bin/env node
// Builds the shop example and serves it, with its functions, on embedded SQLite (data in
// examples/shop/.walkin/). Ctrl-C stops it cleanly. `node examples/shop/start.mjs` from the
// repository root; the Walk-in CLI runs from the repository's sources, so no package build is needed.
import { spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const cli = fileURLToPath(new URL("../../bin/walkin.js", import.meta.url));
const env = { ...process.env, WALKIN_CLI_FROM_SOURCE: "1" };
const port = process.env.PORT ?? "3000";

const codegen = spawnSync(process.execPath, [cli, "codegen"], { cwd: here, env, stdio: "inherit" });
if (codegen.status !== 0) process.exit(codegen.status ?? 1);

const { build } = await import("vite");
await build({ root: here, configFile: `${here}vite.config.ts`, logLevel: "warn" });

const server = spawn(process.execPath, [cli, "start", "--static", "dist", "--port", port], { cwd: here, env, stdio: "inherit" });
// Ctrl-C reaches both processes; the server shuts itself down, and we leave with its exit code.
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => server.kill(signal));
server.on("exit", (code, signal) => process.exit(code ?? (signal ? 130 : 1)));
