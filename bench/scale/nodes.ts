/**
 * Real Walk-in nodes for cases 2 and 3: `walkin start --db <bench database>` processes (started
 * by e2e/cluster/nodes.ts, from this repository's sources) serving the transport benchmark's app
 * (`docs:insert`, `docs:latest`: the newest 10 documents, about 2 KB of JSON), so the
 * subscribers can speak bench/transport/app.ts's protocol messages.
 *
 * The functions are written into a temporary project here rather than kept as files in bench/:
 * they import `./_generated/server.js`, which only exists once `walkin start` has run codegen.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startNode, type ClusterNode } from "../../e2e/cluster/nodes.js";

const REPO = fileURLToPath(new URL("../..", import.meta.url));

const SCHEMA = `import { defineSchema, defineTable } from "walkin/server";
import { v } from "walkin/values";

export default defineSchema({
  docs: defineTable({ key: v.string(), n: v.number(), payload: v.string() }).index("by_key", ["key"]),
});
`;

const DOCS = `import { v } from "walkin/values";
import { mutation, query } from "./_generated/server.js";

const docFields = { key: v.string(), n: v.number(), payload: v.string() };

export const insert = mutation({ args: docFields, handler: (ctx, doc) => ctx.db.insert("docs", doc) });

export const insertMany = mutation({
  args: { docs: v.array(v.object(docFields)) },
  handler: async (ctx, { docs }) => {
    for (const doc of docs) await ctx.db.insert("docs", doc);
  },
});

export const latest = query({ args: {}, handler: (ctx) => ctx.db.query("docs").order("desc").take(10) });
`;

export interface Cluster {
  nodes: ClusterNode[];
  close(): Promise<void>;
}

/**
 * Starts `count` nodes on `db`, one after the other (the first creates the tables). Each may
 * hold `maxConnections` client connections from 127.0.0.1 (the default per-address cap is 500).
 */
export async function startCluster(db: string, count: number, maxConnections: number): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), "walkin-bench-scale-"));
  mkdirSync(join(dir, "functions"));
  writeFileSync(join(dir, "functions", "schema.ts"), SCHEMA);
  writeFileSync(join(dir, "functions", "docs.ts"), DOCS);
  writeFileSync(join(dir, "package.json"), `{ "type": "module" }\n`);
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions: { paths: { "walkin/*": [join(REPO, "src/*/index.ts")] } } }));
  process.env.WALKIN_MAX_CONNECTIONS_PER_IP = String(maxConnections + 16);
  process.env.WALKIN_MAX_SUBSCRIPTIONS_PER_IP = String(maxConnections + 16);
  const nodes: ClusterNode[] = [];
  const close = async () => {
    await Promise.all(nodes.map((node) => node.kill()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const name of ["A", "B", "C", "D", "E"].slice(0, count)) nodes.push(await startNode(name, dir, db));
  } catch (error) {
    await close();
    throw error;
  }
  return { nodes, close };
}
