#!/usr/bin/env node
// `npm run start:cluster`: the chat example on three Walk-in nodes sharing one PostgreSQL, behind
// a round-robin load balancer at http://localhost:3000 (PORT to change it).
//
//   node examples/cluster/start.mjs [postgres://user@127.0.0.1:5432/database]
//
// The database URL defaults to $WALKIN_DB, else postgres://postgres@127.0.0.1:5432/walkin_chat
// (created if missing). Open the page in two browsers: each tab's requests land on different
// nodes, and every message still appears everywhere at once. Ctrl-C stops everything.
import { spawn, spawnSync } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { startLoadBalancer } from "./loadBalancer.mjs";

const chat = fileURLToPath(new URL("../chat/", import.meta.url));
const cli = fileURLToPath(new URL("../../bin/walkin.js", import.meta.url));
const env = { ...process.env, WALKIN_CLI_FROM_SOURCE: "1" };
const url = process.argv[2] ?? process.env.WALKIN_DB ?? "postgres://postgres@127.0.0.1:5432/walkin_chat";
const NODES = 3;

await ensureDatabase(url);
const codegen = spawnSync(process.execPath, [cli, "codegen"], { cwd: chat, env, stdio: "inherit" });
if (codegen.status !== 0) process.exit(codegen.status ?? 1);
const { build } = await import("vite");
await build({ root: chat, configFile: `${chat}vite.config.ts`, logLevel: "warn" });

const nodes = [];
for (let i = 0; i < NODES; i++) nodes.push(await startNode(i));
const balancer = await startLoadBalancer({ port: Number(process.env.PORT ?? 3000), backends: nodes.map((n) => n.address) });
console.log(`Chat on ${NODES} nodes: ${balancer.url.replace("127.0.0.1", "localhost")}  (nodes: ${nodes.map((n) => n.address.port).join(", ")})`);

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, async () => {
    if (stopping) process.exit(130);
    stopping = true;
    await balancer.close();
    for (const node of nodes) node.child.kill("SIGTERM");
    await Promise.all(nodes.map((node) => node.exited));
    process.exit(0);
  });
}

/** Starts one `walkin start` node on a free port; resolves once it listens. */
function startNode(index) {
  const child = spawn(process.execPath, [cli, "start", "--db", url, "--port", "0", "--static", "dist"], {
    cwd: chat,
    env: { ...env, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.on("line", (line) => {
      const match = /https?:\/\/([\d.]+):(\d+)/.exec(line);
      if (match && !child.listening) {
        child.listening = true;
        resolve({ child, exited, address: { host: match[1], port: Number(match[2]) } });
      }
      if (stopping) return;
      console.log(`[node ${index + 1}] ${line}`);
    });
    child.once("exit", (code) => !child.listening && reject(new Error(`node ${index + 1} exited with code ${code}`)));
  });
}

/** Creates the database if it does not exist (connecting to the server's `postgres` database). */
async function ensureDatabase(databaseUrl) {
  const { default: pg } = await import("pg");
  const target = new URL(databaseUrl);
  const name = decodeURIComponent(target.pathname.slice(1));
  const admin = new URL(databaseUrl);
  admin.pathname = "/postgres";
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const exists = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (exists.rowCount === 0) await client.query(`CREATE DATABASE "${name.replaceAll('"', '""')}"`);
  } finally {
    await client.end();
  }
}
