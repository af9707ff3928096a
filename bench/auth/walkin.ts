/**
 * The Walk-in side of the auth benchmark (bench/auth/run.ts): walkin/auth with the Anonymous
 * provider, run by `Engine` in-process (as Better Auth's `auth.api` is) over the SQLite storage
 * on a fresh file in WAL mode with the runner's `synchronous` setting.
 *
 * One operation is the same work as betterAuth.ts: `auth:signIn` (anonymous) as a client would
 * call it, creating a user and an auth session and returning a token, then one client mutation
 * carrying that token: the token is checked inside the mutation's transaction (a session read,
 * as on every call) and `getAuthUserId` gives the author of the inserted `messages` row.
 *
 * Rate limiting: Better Auth's in-process API skips its limiter (it lives in the HTTP router).
 * Walk-in's anonymous sign-in limit is checked inside the sign-in transaction and cannot be
 * bypassed when the call carries a request, so it is kept running but raised so it never
 * refuses: each client sends the same per-client address as on the Better Auth side, and every
 * sign-in still reads and writes that client's bucket row. Any bias is therefore against Walk-in.
 */
import { join } from "node:path";
import { Engine } from "../../src/engine/engine.js";
import { openSqliteStorage } from "../../src/storage/sqlite/index.js";
import { defineSchema, defineTable, mutation, v } from "../../src/server/index.js";
import { authTables, getAuthUserId, walkinAuth } from "../../src/auth/index.js";
import { Anonymous } from "../../src/auth/providers/anonymous.js";
import { StorageClock } from "../engine/storageClock.js";
import type { AuthSubject, Synchronous } from "./betterAuth.js";

const schema = defineSchema({
  ...authTables,
  messages: defineTable({ author: v.id("users"), body: v.string() }),
});

const modules = {
  auth: walkinAuth({
    providers: [Anonymous()],
    rateLimits: { anonymousSignIn: { limit: 1e12, windowMs: 3_600_000 } },
  }),
  messages: {
    send: mutation({
      args: { body: v.string() },
      handler: async (ctx, { body }) => {
        const author = await getAuthUserId(ctx);
        if (!author) throw new Error("Sign in first");
        return ctx.db.insert("messages", { author, body });
      },
    }),
  },
};

export async function setupWalkin(opts: { synchronous: Synchronous; dir: string }): Promise<AuthSubject> {
  const storage = await openSqliteStorage({
    filename: join(opts.dir, `walkin-${opts.synchronous.toLowerCase()}.sqlite`),
    synchronous: opts.synchronous === "FULL" ? "full" : "normal",
  });
  const storageClock = new StorageClock(storage);
  // No scheduler: its only job here would be the 10-minute cleanup cron.
  const engine = await Engine.open({ storage, schema, modules, runScheduler: false });

  return {
    storageClock,
    async op(clientIndex) {
      const remoteAddress = `10.${(clientIndex >> 16) & 255}.${(clientIndex >> 8) & 255}.${clientIndex & 255}`;
      const result = (await engine.runAction(
        "auth:signIn",
        { provider: "anonymous" },
        { fromClient: true, request: { remoteAddress, headers: {} } },
      )) as { kind: string; token?: string };
      if (result.kind !== "signedIn" || !result.token) throw new Error(`walkin: anonymous sign-in answered ${JSON.stringify(result)}`);
      await engine.runMutation("messages:send", { body: `hello from client ${clientIndex}` }, { token: result.token, fromClient: true });
    },
    close: () => engine.close(),
  };
}
