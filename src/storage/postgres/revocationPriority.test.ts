/**
 * A revocation is never starved by activity bookkeeping, on several nodes of one PostgreSQL.
 *
 * Every call on a session may record its use (sliding expiry, authSessions.ts): with
 * `activityResolutionMs: 1`, every query on every node asks for such a write. Here three
 * engines on one schema (separate nodes: no retry lanes in common) run queries under a token as
 * fast as they can while the session is ended on one of them, by each kind of revocation
 * (sign-out, revokeSession, revokeOtherSessions, a password reset). The revocation must
 * commit, in a bounded number of tries rather than by luck (it used to lose to one activity
 * write after another and give up after 65 tries); then the token is refused everywhere, and
 * the activity writes still in flight do not bring it back.
 */
import { afterEach, describe, expect, it } from "vitest";
import { Engine, type FunctionRunTrace } from "../../engine/engine.js";
import { authApp, schema, sentCodes } from "../../auth/fixtures/app.js";
import { errorOf, from } from "../../auth/fixtures/harness.js";
import type { SignInResult } from "../../auth/providers/types.js";
import { openTestSchema } from "./testDatabase.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The auth mutations run on any node, as `observeRun` saw them (their conflict retries). */
const authMutations: FunctionRunTrace[] = [];

/** Three engines on one fresh schema, each with its own storage (as on three machines). */
async function openNodes(): Promise<Engine[]> {
  authMutations.length = 0;
  const observeRun = <T>(trace: FunctionRunTrace, run: () => Promise<T>) => {
    if (trace.type === "mutation" && trace.path.startsWith("auth:")) authMutations.push(trace);
    return run();
  };
  const target = await openTestSchema({ poolSize: 3 });
  const engines: Engine[] = [];
  cleanups.push(async () => {
    for (const engine of engines) await engine.close();
    await target.drop();
  });
  for (let i = 0; i < 3; i++) {
    const storage = i === 0 ? target.storage : await target.open();
    engines.push(await Engine.open({ storage, schema, modules: authApp({ session: { activityResolutionMs: 1 } }), runScheduler: false, logError: () => {}, observeRun }));
  }
  return engines;
}

const caller = (token: string | null) => ({ token, fromClient: true });
const password = (flow: "signUp" | "signIn", email: string) => ({ flow, email, password: "correct horse battery" });

async function signedIn(engine: Engine, provider: string, params: Record<string, unknown>): Promise<Extract<SignInResult, { kind: "signedIn" }>> {
  const result = (await engine.runAction("auth:signIn", { provider, params }, from("10.0.0.1"))) as SignInResult;
  if (result.kind !== "signedIn") throw new Error(`expected signedIn, got ${result.kind}`);
  return result;
}

/**
 * Runs queries under `token` on every node, back to back, until the returned function is
 * called: each one finds the session's use older than 1 ms and asks for a write recording it.
 */
function keepUsing(engines: Engine[], token: string): () => Promise<number> {
  let using = true;
  let calls = 0;
  // Two loops a node: one's call runs while the other's deferred write commits.
  const loops = [...engines, ...engines].map(async (engine) => {
    while (using) {
      await engine.runQuery("messages:mine", {}, caller(token)).catch(() => null);
      calls++;
      await new Promise((resolve) => setImmediate(resolve));
    }
  });
  return async () => {
    using = false;
    await Promise.all(loops);
    return calls;
  };
}

/** Every node, once it has caught up: the token's call is signed out, its mutation refused. */
async function refusedEverywhere(engines: Engine[], token: string): Promise<void> {
  for (const [i, engine] of engines.entries()) {
    await engine.refreshFromStorage();
    expect(await engine.runQuery("messages:mine", {}, caller(token)), `node ${i}`).toBeNull();
    expect((await errorOf(engine.runMutation("messages:send", { body: "after" }, caller(token)))).code, `node ${i}`).toBe("UNAUTHENTICATED");
  }
}

type Revocation = "signOut" | "revokeSession" | "revokeOtherSessions" | "password reset";

/** Ends `victim`'s session on `node` by `kind`; `other` is another session of the same user. */
async function revoke(node: Engine, kind: Revocation, email: string, victim: string, other: string): Promise<unknown> {
  switch (kind) {
    case "signOut":
      return node.runMutation("auth:signOut", {}, caller(victim));
    case "revokeSession":
      return node.runMutation("auth:revokeSession", { authSessionId: victim.split(".")[1] }, caller(other));
    case "revokeOtherSessions":
      return node.runMutation("auth:revokeOtherSessions", {}, caller(other));
    case "password reset": {
      sentCodes.length = 0;
      await node.runAction("auth:signIn", { provider: "password", params: { flow: "reset", email } }, from("10.0.0.2"));
      const code = sentCodes.find((sent) => sent.email === email)!.code;
      return node.runAction("auth:signIn", { provider: "password", params: { flow: "reset-verification", email, code, newPassword: "a new horse battery" } }, from("10.0.0.2"));
    }
  }
}

/** Several races in a row, each with a fresh session (a race once won proves little). */
const ROUNDS = 3;

describe("a revocation racing activity writes on every node", () => {
  for (const kind of ["signOut", "revokeSession", "revokeOtherSessions", "password reset"] as Revocation[]) {
    it(`${kind} commits while three nodes record the session's use as fast as they can, and the session stays ended`, async () => {
      const engines = await openNodes();
      const [a, b] = engines as [Engine, Engine, Engine];
      for (let round = 0; round < ROUNDS; round++) {
        const email = `busy${round}.${kind.replace(" ", "-")}@example.com`;
        const victim = await signedIn(a, "password", password("signUp", email));
        const other = await signedIn(a, "password", password("signIn", email));
        await a.runMutation("messages:send", { body: "note" }, caller(victim.token));
        await Promise.all(engines.map((engine) => engine.refreshFromStorage()));

        const stop = keepUsing(engines, victim.token);
        // Let the activity writes get going on every node before the revocation starts.
        await new Promise((resolve) => setTimeout(resolve, 100));
        const outcome = await revoke(b, kind, email, victim.token, other.token).then(
          () => "committed",
          (error: Error) => error.message,
        );
        const calls = await stop();
        expect(outcome, `round ${round}`).toBe("committed");
        expect(calls).toBeGreaterThan(0);
        // Bounded, not lucky: a revocation loses to an activity write at most once per session
        // row it reads (the victim's; the revoking session's own, which its call just used).
        const retries = authMutations.map((trace) => trace.retries);
        expect(Math.max(...retries), `round ${round}: retries of ${authMutations.map((t) => t.path).join(", ")}`).toBeLessThanOrEqual(2);
        authMutations.length = 0;

        await refusedEverywhere(engines, victim.token);
        // The activity writes asked for last have run by now (each is one short transaction).
        await new Promise((resolve) => setTimeout(resolve, 200));
        await refusedEverywhere(engines, victim.token);
        // Only what the revocation ends has ended (a password reset ends every session).
        if (kind !== "password reset") {
          for (const engine of engines) expect(await engine.runQuery("messages:mine", {}, caller(other.token))).toEqual(["note"]);
        }
      }
    });
  }
});
