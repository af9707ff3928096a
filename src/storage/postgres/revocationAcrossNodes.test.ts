/**
 * Revoking and rotating auth sessions when several nodes share one PostgreSQL schema.
 *
 * The promise (docs/auth.md, "Revocation is immediate"): once a session ends (sign-out,
 * revokeSession, revokeOtherSessions, a sign-in that rotates the token, a sign-up that upgrades
 * a guest and ends its other tabs), no node answers a call or keeps a live query running with
 * that token's identity: not the node that revoked it, nor the others. Here:
 *
 * - three engines on one schema, each behind its own WebSocket server, with real WalkinClients
 *   holding live queries of the user's private data on every node;
 * - the session ends on another node; every node refuses the token's next mutation at once (a
 *   mutation that read the session before the revocation commits conflicts with it), and every
 *   query and live query under it turns signed out within the node's normal learning of other
 *   nodes' commits (a bounded wait, nothing timed);
 * - the token a rotation hands out works on every node; a revoked token signs in anonymously
 *   as nobody it was, and an Authenticate with it is refused everywhere;
 * - random interleavings (seeded) of mutations in flight on several nodes with a revocation on
 *   another: every mutation under the revoked token either committed before the revocation
 *   (timestamp order) or was refused, and the database holds exactly the acknowledged ones.
 */
import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { Engine } from "../../engine/engine.js";
import { startServer, type WalkinServer } from "../../transport/index.js";
import { WalkinClient } from "../../browser/index.js";
import { api, authApp, schema } from "../../auth/fixtures/app.js";
import { errorOf, from } from "../../auth/fixtures/harness.js";
import type { SignInResult } from "../../auth/providers/types.js";
import { createDatabaseReader } from "../../engine/database.js";
import { seededRandom } from "../conformance/history.js";
import { openTestSchema } from "./testDatabase.js";

// ---------------------------------------------------------------------------------------------
// A cluster of nodes

interface Node {
  name: string;
  engine: Engine;
  server: WalkinServer;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** `count` engines on one fresh schema, each served by its own WebSocket server. */
async function openCluster(count = 3, overrides: Parameters<typeof authApp>[0] = {}): Promise<Node[]> {
  const target = await openTestSchema({ poolSize: 3 });
  const nodes: Node[] = [];
  cleanups.push(async () => {
    for (const node of nodes) {
      await node.server.close();
      await node.engine.close();
    }
    await target.drop();
  });
  for (let i = 0; i < count; i++) {
    const storage = i === 0 ? target.storage : await target.open();
    const engine = await Engine.open({ storage, schema, modules: authApp(overrides), runScheduler: false, logError: () => {} });
    // A short heartbeat: the server re-checks tokens on it (AuthExpired).
    const server = await startServer({ engine, port: 0, log: () => {}, heartbeatMs: 300 });
    nodes.push({ name: "ABC"[i]!, engine, server });
  }
  return nodes;
}

/** A real browser client on `node`, signed in with `token` (what `fetchToken` answers). */
function clientOn(node: Node, token: string | null): { client: WalkinClient; authenticated: boolean[] } {
  const client = new WalkinClient(node.server.url, { webSocketConstructor: WebSocket as never, logger: false });
  cleanups.push(() => client.close());
  const authenticated: boolean[] = [];
  if (token !== null) client.setAuth(async () => token, (ok) => authenticated.push(ok));
  return { client, authenticated };
}

/** A live query of `messages:mine` on a client: its latest result (or error). */
function watchMine(client: WalkinClient) {
  const watch = client.watchQuery(api.messages.mine!);
  const stop = watch.onUpdate(() => {});
  cleanups.push(async () => stop());
  return () => {
    try {
      return { value: watch.localQueryResult() as string[] | null | undefined };
    } catch (error) {
      return { error: error as Error };
    }
  };
}

/** Polls `check` until it holds; fails with `what` after a generous bound (nothing is timed). */
async function eventually(what: string, check: () => boolean | Promise<boolean>, deadlineMs = 8_000): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error(`never happened within ${deadlineMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const caller = (token: string | null) => ({ token, fromClient: true });
const mine = (node: Node, token: string) => node.engine.runQuery("messages:mine", {}, caller(token));
const send = (node: Node, token: string, body: string) => node.engine.runMutation("messages:send", { body }, caller(token));

async function signIn(node: Node, provider: string, params: Record<string, unknown> = {}, token: string | null = null, extra: Record<string, unknown> = {}) {
  return (await node.engine.runAction("auth:signIn", { provider, params, ...extra }, from("10.0.0.1", token))) as SignInResult;
}
async function signedIn(node: Node, provider: string, params: Record<string, unknown> = {}, token: string | null = null, extra: Record<string, unknown> = {}) {
  const result = await signIn(node, provider, params, token, extra);
  if (result.kind !== "signedIn") throw new Error(`expected signedIn, got ${result.kind}`);
  return result;
}
const password = (flow: "signUp" | "signIn", email: string) => ({ flow, email, password: "correct horse battery" });

/**
 * Every node learns what was committed so far. Used before a client authenticates on a node with
 * a token issued on another: a node that has not learned of the sign-in yet refuses the token,
 * and the client, refused twice, stays signed out (that is not what these tests are about).
 */
const learnAll = (nodes: Node[]) => Promise.all(nodes.map((node) => node.engine.refreshFromStorage()));

/**
 * Runs `work` as on a node whose clock is `aheadMs` ahead of the others' (the engine and the
 * auth functions read the time from Date.now alone); the clock is put back once it returns.
 */
async function withClockAhead<T>(aheadMs: number, work: () => Promise<T>): Promise<T> {
  const now = Date.now;
  Date.now = () => now() + aheadMs;
  try {
    return await work();
  } finally {
    Date.now = now;
  }
}

/** The auth session ID a token carries (`wk2.<id>.<secret>`). */
const sessionIdOf = (token: string) => token.split(".")[1]!;

/** Every message body, as stored (read on `node` after it caught up). */
async function storedBodies(node: Node): Promise<string[]> {
  await node.engine.refreshFromStorage();
  const rows = await node.engine.read((txn) => createDatabaseReader(txn, node.engine.catalog).query("messages").collect());
  return rows.map((row) => row.body as string).sort();
}

/** The token's next mutation is refused on every node, without waiting for any node to learn anything. */
async function refusedEverywhereAtOnce(nodes: Node[], token: string, tag: string): Promise<void> {
  for (const node of nodes) {
    const error = await errorOf(send(node, token, `${tag} on ${node.name} after the revocation`));
    expect(error.code, `node ${node.name}: ${error.message}`).toBe("UNAUTHENTICATED");
  }
}

/** Every node's one-shot query under the token turns signed out (null). */
async function signedOutEverywhere(nodes: Node[], token: string): Promise<void> {
  for (const node of nodes) await eventually(`messages:mine on ${node.name} signed out`, async () => (await mine(node, token)) === null);
}

// ---------------------------------------------------------------------------------------------

describe("revocation across nodes", () => {
  it("a sign-out on B: every node refuses the token's next call, and its live queries on A, B and C turn signed out", async () => {
    const nodes = await openCluster();
    const [a, b, c] = nodes as [Node, Node, Node];
    const ada = await signedIn(a, "password", password("signUp", "ada@example.com"));
    await send(a, ada.token, "private note");
    // A second device of the same user, on C: it must keep working.
    const other = await signedIn(c, "password", password("signIn", "ada@example.com"));
    await learnAll(nodes);
    const watches = nodes.map((node) => ({ node, result: watchMine(clientOn(node, ada.token).client) }));
    const otherWatch = watchMine(clientOn(c, other.token).client);
    for (const { node, result } of watches) {
      await eventually(`the live query on ${node.name} shows the note`, () => JSON.stringify(result().value) === '["private note"]');
    }

    await b.engine.runMutation("auth:signOut", {}, caller(ada.token));

    await refusedEverywhereAtOnce(nodes, ada.token, "sign-out");
    await signedOutEverywhere(nodes, ada.token);
    for (const { node, result } of watches) {
      await eventually(`the live query on ${node.name} turns signed out`, () => result().value === null || result().error !== undefined);
    }
    // Only that device signed out.
    expect(otherWatch().value).toEqual(["private note"]);
    for (const node of nodes) expect(await mine(node, other.token)).toEqual(["private note"]);
    expect(await storedBodies(b)).toEqual(["private note"]);
  });

  it("revokeSession on B and revokeOtherSessions on C end those devices on every node, and only those", async () => {
    const nodes = await openCluster();
    const [a, b, c] = nodes as [Node, Node, Node];
    const laptop = await signedIn(a, "password", password("signUp", "grace@example.com"));
    const phone = await signedIn(b, "password", password("signIn", "grace@example.com"));
    await send(a, laptop.token, "diary");
    for (const node of nodes) await node.engine.refreshFromStorage();
    const tablet = await signedIn(c, "password", password("signIn", "grace@example.com"));
    await learnAll(nodes);
    const laptopWatches = nodes.map((node) => watchMine(clientOn(node, laptop.token).client));
    const phoneWatches = nodes.map((node) => watchMine(clientOn(node, phone.token).client));
    for (const watch of [...laptopWatches, ...phoneWatches]) await eventually("every live query shows the diary", () => JSON.stringify(watch().value) === '["diary"]');

    await b.engine.runMutation("auth:revokeSession", { authSessionId: sessionIdOf(laptop.token) }, caller(phone.token));
    await refusedEverywhereAtOnce(nodes, laptop.token, "revokeSession");
    await signedOutEverywhere(nodes, laptop.token);
    for (const watch of laptopWatches) await eventually("the laptop's live queries turn signed out", () => watch().value === null);
    for (const watch of phoneWatches) expect(watch().value).toEqual(["diary"]);

    const ended = await c.engine.runMutation("auth:revokeOtherSessions", {}, caller(tablet.token));
    expect(ended.value).toBe(1); // the phone (the laptop's had ended)
    await refusedEverywhereAtOnce(nodes, phone.token, "revokeOtherSessions");
    await signedOutEverywhere(nodes, phone.token);
    for (const watch of phoneWatches) await eventually("the phone's live queries turn signed out", () => watch().value === null);
    for (const node of nodes) await eventually(`the tablet still reads on ${node.name}`, async () => JSON.stringify(await mine(node, tablet.token)) === '["diary"]');
  });

  it("a guest who signs up on B: the old token and the guest's other tab end on every node; the new token works on every node", async () => {
    const nodes = await openCluster();
    const [a, b, c] = nodes as [Node, Node, Node];
    const sessionId = randomUUID();
    const tab1 = await signedIn(a, "anonymous", {}, null, { sessionId });
    await c.engine.refreshFromStorage();
    const tab2 = await signedIn(c, "anonymous", {}, null, { sessionId });
    expect(tab2.userId).toBe(tab1.userId);
    await send(a, tab1.token, "cart: pencil");
    await learnAll(nodes);
    const tab1Watches = nodes.map((node) => watchMine(clientOn(node, tab1.token).client));
    const tab2Watch = watchMine(clientOn(c, tab2.token).client);
    for (const watch of [...tab1Watches, tab2Watch]) await eventually("the guest's live queries show the cart", () => JSON.stringify(watch().value) === '["cart: pencil"]');

    await b.engine.refreshFromStorage();
    const account = await signedIn(b, "password", password("signUp", "guest@example.com"), tab1.token, { sessionId });
    expect(account.userId).toBe(tab1.userId);

    await refusedEverywhereAtOnce(nodes, tab1.token, "upgraded tab 1");
    await refusedEverywhereAtOnce(nodes, tab2.token, "other tab 2");
    await signedOutEverywhere(nodes, tab1.token);
    await signedOutEverywhere(nodes, tab2.token);
    for (const watch of [...tab1Watches, tab2Watch]) await eventually("the guest tokens' live queries turn signed out", () => watch().value === null);

    // The rotated-to token: live and one-shot queries, and mutations, on every node.
    await learnAll(nodes);
    const newWatches = nodes.map((node) => watchMine(clientOn(node, account.token).client));
    for (const watch of newWatches) await eventually("the new token's live query shows the cart", () => JSON.stringify(watch().value) === '["cart: pencil"]');
    for (const node of nodes) {
      await node.engine.refreshFromStorage();
      await send(node, account.token, `written on ${node.name} with the new token`);
    }
    for (const watch of newWatches) await eventually("the new token's live queries see every write", () => (watch().value ?? []).length === 4);
    expect(await storedBodies(a)).toEqual(["cart: pencil", "written on A with the new token", "written on B with the new token", "written on C with the new token"]);
  });

  it("a guest's sign-out on B (the session is expired, not deleted) signs it out on every node", async () => {
    const nodes = await openCluster();
    const [a, b] = nodes as [Node, Node, Node];
    const guest = await signedIn(a, "anonymous");
    await send(a, guest.token, "guest note");
    await learnAll(nodes);
    const watches = nodes.map((node) => watchMine(clientOn(node, guest.token).client));
    for (const watch of watches) await eventually("the guest's live queries show the note", () => JSON.stringify(watch().value) === '["guest note"]');

    await b.engine.refreshFromStorage();
    await b.engine.runMutation("auth:signOut", {}, caller(guest.token));
    await refusedEverywhereAtOnce(nodes, guest.token, "guest sign-out");
    await signedOutEverywhere(nodes, guest.token);
    for (const watch of watches) await eventually("the guest's live queries turn signed out", () => watch().value === null);
  });

  // Nodes are separate machines, each with its own clock, and clocks drift. Only the revoking
  // node's clock is moved here (the engine reads no other), for the duration of its call.
  it("a guest's sign-out on a node whose clock runs ahead of the others' still signs its live queries out on the others", async () => {
    const nodes = await openCluster();
    const [a, b, c] = nodes as [Node, Node, Node];
    const guest = await signedIn(a, "anonymous");
    await send(a, guest.token, "guest note");
    await learnAll(nodes);
    const watches = [a, c].map((node) => ({ node, result: watchMine(clientOn(node, guest.token).client) }));
    for (const { result } of watches) await eventually("the guest's live queries show the note", () => JSON.stringify(result().value) === '["guest note"]');

    // The same live query as the engine keeps it for a transport (no heartbeat re-check of the token).
    let latest: unknown;
    const subscription = await c.engine.subscriptions.subscribe("messages:mine", {}, caller(guest.token), (outcome) => {
      latest = outcome.ok ? outcome.value : outcome.error;
    });
    cleanups.push(async () => subscription.unsubscribe());
    latest = subscription.outcome.ok ? subscription.outcome.value : subscription.outcome.error;
    expect(latest).toEqual(["guest note"]);

    await withClockAhead(1_000, () => b.engine.runMutation("auth:signOut", {}, caller(guest.token)));
    for (const { node, result } of watches) {
      await eventually(`the guest's live query on ${node.name} turns signed out`, () => result().value === null);
    }
    await eventually("the guest's live query in C's engine turns signed out", () => latest === null);
  });

  it("a guest signed out on a node whose clock runs ahead: no other node commits a mutation under the token afterwards", async () => {
    const nodes = await openCluster();
    const [a, b, c] = nodes as [Node, Node, Node];
    const guest = await signedIn(a, "anonymous");
    await learnAll(nodes);
    await withClockAhead(30_000, () => b.engine.runMutation("auth:signOut", {}, caller(guest.token)));
    // The sign-out has committed: a mutation under the token is refused on every node (it
    // conflicts with the sign-out, and re-runs after it), whatever the clocks say.
    await refusedEverywhereAtOnce([a, c], guest.token, "guest sign-out, clock ahead");
  });

  it("a guest signed out on a node whose clock runs ahead: no other node signs the client in as the guest again", async () => {
    const nodes = await openCluster();
    const [a, b, c] = nodes as [Node, Node, Node];
    const sessionId = randomUUID();
    const guest = await signedIn(a, "anonymous", {}, null, { sessionId });
    await learnAll(nodes);
    await withClockAhead(30_000, () => b.engine.runMutation("auth:signOut", { sessionId }, caller(guest.token)));
    await learnAll(nodes);
    for (const node of [a, c]) {
      const again = await signIn(node, "anonymous", {}, guest.token, { sessionId });
      expect(again.kind, `node ${node.name}`).toBe("signedIn");
      expect((again as { userId: string }).userId, `node ${node.name}`).not.toBe(guest.userId);
    }
  });

  it("a revoked token signs in anonymously as nobody it was, and an Authenticate with it is refused on every node", async () => {
    const nodes = await openCluster();
    const [a, b] = nodes as [Node, Node, Node];
    const sessionId = randomUUID();
    const guest = await signedIn(a, "anonymous", {}, null, { sessionId });
    await send(a, guest.token, "guest secret");
    const account = await signedIn(a, "password", password("signUp", "linus@example.com"));
    await send(a, account.token, "account secret");
    await b.engine.refreshFromStorage();
    await b.engine.runMutation("auth:signOut", {}, caller(guest.token));
    await b.engine.runMutation("auth:signOut", {}, caller(account.token));

    for (const node of nodes) {
      await node.engine.refreshFromStorage();
      for (const revoked of [guest.token, account.token]) {
        // With the client's session ID too: the ended guest session must not hand the guest back.
        const again = await signIn(node, "anonymous", {}, revoked, { sessionId });
        expect(again.kind, `node ${node.name}`).toBe("signedIn");
        expect((again as { userId: string }).userId).not.toBe(guest.userId);
        expect((again as { userId: string }).userId).not.toBe(account.userId);
        expect(await mine(node, (again as { token: string }).token)).toEqual([]);
      }
      // A password sign-in with the revoked guest token merges nothing of the guest's.
      const back = await signedIn(node, "password", password("signIn", "linus@example.com"), guest.token);
      expect(await mine(node, back.token)).toEqual(["account secret"]);
    }

    // A client that authenticates with the revoked tokens (its fetchToken keeps answering them).
    for (const node of nodes) {
      for (const revoked of [guest.token, account.token]) {
        const { client, authenticated } = clientOn(node, revoked);
        const result = watchMine(client);
        await eventually(`the client on ${node.name} is told it is signed out`, () => authenticated.includes(false));
        await eventually(`the client's live query on ${node.name} is signed out`, () => result().value === null);
        expect(authenticated).not.toContain(true);
        expect(client.connectionState().isAuthenticated).toBe(false);
      }
    }
  });
  // Every call on a session asks for a deferred write that slides its expiry (writeLater): on a
  // node that has not learned of the revocation yet, that write reads the live row. It must not
  // bring a revoked session back.
  for (const kind of ["guest", "account"] as const) {
    it(`deferred activity writes on every node racing a revocation do not revive the ${kind}'s session`, async () => {
      const nodes = await openCluster(3, { session: { activityResolutionMs: 1 } });
      const [a, b] = nodes as [Node, Node, Node];
      const user = kind === "guest" ? await signedIn(a, "anonymous") : await signedIn(a, "password", password("signUp", "touch@example.com"));
      await send(a, user.token, "touched");
      await learnAll(nodes);
      const watches = nodes.map((node) => watchMine(clientOn(node, user.token).client));
      for (const watch of watches) await eventually("every live query shows the note", () => JSON.stringify(watch().value) === '["touched"]');
      let racing = true;
      const readers = nodes.map(async (node) => {
        while (racing) {
          await mine(node, user.token);
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
      });
      await new Promise((resolve) => setTimeout(resolve, 20));
      await b.engine.runMutation("auth:signOut", {}, caller(user.token));
      await new Promise((resolve) => setTimeout(resolve, 300));
      racing = false;
      await Promise.all(readers);
      await refusedEverywhereAtOnce(nodes, user.token, `${kind} after touches`);
      await signedOutEverywhere(nodes, user.token);
      for (const watch of watches) await eventually("the live queries turn signed out", () => watch().value === null);
      await new Promise((resolve) => setTimeout(resolve, 100)); // deferred writes asked last have run
      await refusedEverywhereAtOnce(nodes, user.token, `${kind} after the deferred writes`);
      for (const node of nodes) expect(await mine(node, user.token)).toBeNull();
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Races: mutations in flight on several nodes while the session ends on another

type Revocation = "signOut" | "revokeSession" | "revokeOtherSessions" | "rotation" | "upgrade" | "guestSignOut";
const REVOCATIONS: Revocation[] = ["signOut", "revokeSession", "revokeOtherSessions", "rotation", "upgrade", "guestSignOut"];

describe("revocation racing mutations on other nodes", () => {
  for (const seed of [1, 2, 3]) {
    it(`every mutation under the token committed before the revocation or was refused (seed ${seed})`, async () => {
      const rng = seededRandom(seed);
      const int = (n: number) => Math.floor(rng() * n);
      const nodes = await openCluster();
      const problems: string[] = [];
      for (let round = 0; round < REVOCATIONS.length; round++) {
        const kind = REVOCATIONS[(round + seed) % REVOCATIONS.length]!;
        const home = nodes[int(3)]!;
        const email = `user${seed}.${round}@example.com`;
        const guest = kind === "upgrade" || kind === "guestSignOut";
        const victim = guest ? await signedIn(home, "anonymous") : await signedIn(home, "password", password("signUp", email));
        // Another session of the same user, for revokeSession / revokeOtherSessions.
        const revoker = nodes[int(3)]!;
        await revoker.engine.refreshFromStorage();
        const other = kind === "revokeSession" || kind === "revokeOtherSessions" ? await signedIn(revoker, "password", password("signIn", email)) : null;

        // The revocation's commit, as the revoking node records it.
        const revokedAt: number[] = [];
        const stop = revoker.engine.onCommit((record, tables) => {
          if (tables.has("authSessions")) revokedAt.push(record.ts);
        });
        const writers = nodes.filter(() => rng() < 0.7);
        if (writers.length === 0) writers.push(nodes[int(3)]!);
        const outcomes: { body: string; ts?: number; code?: string }[] = [];
        const writes = writers.flatMap((node, w) =>
          Array.from({ length: 4 + int(5) }, (_, i) => {
            const body = `s${seed} r${round} ${node.name}${w}#${i}`;
            // A sign-in (rotation, upgrade) takes several transactions and a password hash: spread wider.
            const delay = int(kind === "rotation" || kind === "upgrade" ? 150 : 30);
            return new Promise((resolve) => setTimeout(resolve, delay))
              .then(() => send(node, victim.token, body))
              .then(
                ({ ts }) => void outcomes.push({ body, ts }),
                (error: { code?: string }) => void outcomes.push({ body, code: error.code ?? String(error) }),
              );
          }),
        );
        const revoke = new Promise((resolve) => setTimeout(resolve, int(25))).then(async () => {
          switch (kind) {
            case "signOut":
            case "guestSignOut":
              await revoker.engine.runMutation("auth:signOut", {}, caller(victim.token));
              break;
            case "revokeSession":
              await revoker.engine.runMutation("auth:revokeSession", { authSessionId: sessionIdOf(victim.token) }, caller(other!.token));
              break;
            case "revokeOtherSessions":
              await revoker.engine.runMutation("auth:revokeOtherSessions", {}, caller(other!.token));
              break;
            case "rotation":
              await signedIn(revoker, "password", password("signIn", email), victim.token);
              break;
            case "upgrade":
              await signedIn(revoker, "password", password("signUp", email), victim.token);
              break;
          }
        });
        await Promise.all([...writes, revoke]);
        stop();
        if (revokedAt.length !== 1) {
          problems.push(`round ${round} (${kind}): ${revokedAt.length} commits on authSessions during the race`);
          continue;
        }
        const at = revokedAt[0]!;
        for (const outcome of outcomes) {
          if (outcome.ts !== undefined && outcome.ts > at) problems.push(`round ${round} (${kind}): "${outcome.body}" committed at ${outcome.ts}, after the revocation at ${at}`);
          if (outcome.code !== undefined && outcome.code !== "UNAUTHENTICATED") problems.push(`round ${round} (${kind}): "${outcome.body}" failed with ${outcome.code}`);
        }
        // After the race, on every node, at once: refused.
        for (const node of nodes) {
          const late = await send(node, victim.token, `late s${seed} r${round} ${node.name}`).then(() => "committed", (error: { code?: string }) => error.code);
          if (late !== "UNAUTHENTICATED") problems.push(`round ${round} (${kind}): a send after the revocation on ${node.name}: ${late}`);
        }
        // The database holds exactly the acknowledged writes of this round.
        const stored = (await storedBodies(nodes[int(3)]!)).filter((body) => body.startsWith(`s${seed} r${round} `) || body.startsWith(`late s${seed} r${round} `));
        const acknowledged = outcomes.filter((o) => o.ts !== undefined).map((o) => o.body).sort();
        if (JSON.stringify(stored) !== JSON.stringify(acknowledged)) problems.push(`round ${round} (${kind}): stored ${JSON.stringify(stored)}, acknowledged ${JSON.stringify(acknowledged)}`);
      }
      expect(problems).toEqual([]);
    });
  }
});
