/**
 * `npm install`'s build of the native continuation context (native/continuation_context.cc).
 *
 * It never fails the install: without a C++ toolchain Walk-in still works, with Node's
 * AsyncLocalStorage in its place, which is slower (docs/architecture.md, "The sandbox's context
 * follows continuations"). It says so, and how to get the faster path.
 *
 * npm runs install scripts with its own node-gyp on hand (`npm_config_node_gyp`); `node-gyp`
 * on PATH is the fallback when the script is run by hand.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const major = Number(process.versions.node.split(".")[0]);
if (major >= 24) {
  // AsyncLocalStorage is built on the same V8 slot there (see continuation_context.cc).
  console.log(`walkin: Node ${process.versions.node} propagates AsyncLocalStorage without promise hooks; no native build needed.`);
  process.exit(0);
}

const nodeGyp = process.env.npm_config_node_gyp;
const [command, args] = nodeGyp ? [process.execPath, [nodeGyp, "rebuild"]] : ["node-gyp", ["rebuild"]];
const result = spawnSync(command, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
if (result.status === 0) process.exit(0);

const output = `${result.stdout ?? ""}${result.stderr ?? ""}`.trim().split("\n").slice(-15).join("\n");
console.warn(
  [
    "walkin: could not build its native continuation context (native/continuation_context.cc).",
    "Walk-in works without it: queries and mutations then use Node's AsyncLocalStorage for their",
    "fixed clock and seeded randomness, which makes every promise in the process slower",
    "(15-20% of a one-document mutation's time, measured on Node 20).",
    "To build it, install a C++ toolchain and Python 3 (node-gyp's needs), then run `npm rebuild walkin`.",
    result.error ? `(${result.error.message})` : `Last lines of node-gyp's output:\n${output}`,
  ].join("\n"),
);
