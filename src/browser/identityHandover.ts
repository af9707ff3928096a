/**
 * `IdentityHandover`, without I/O: keeps the signed-out moment of a sign-in that replaces a
 * token off the screen. Signing in while signed in (a guest signing up, or signing in to an
 * account) ends the old auth session on the server in the same transaction that creates the
 * new one, so that the old token stops working at once, for every connection. This client's
 * queries then re-run once under a token that resolves to no one before it holds the new token.
 *
 * Step by step, for a guest whose token the client sent at identity version v:
 *  1. The auth client arms the handover (`arm`) before it calls the sign-in action, naming a
 *     guard query that answers null when the caller has no live session (`currentSession`).
 *  2. The action's transaction ends the guest's session and creates the account's. Its commit
 *     re-runs the client's queries under the guest's token: the server sends a Transition at
 *     identity v in which the guard turned null, and so did every query that read the caller.
 *  3. The client applies it to the server state (timestamps advance: the action can settle),
 *     but watchers keep seeing the guest's results: from here on, results at identity v are
 *     held (`afterTransition` answers null).
 *  4. The action's response brings the new token; `setAuth` sends it (identity v+1).
 *  5. The server re-runs every query as the account and sends a Transition at identity v+1:
 *     everything held and this are shown at once, so watchers go from the guest's view
 *     straight to the account's.
 * The hold ends at the first Transition of a later identity (the new token's, or signed out if
 * the server refused it), when the auth client releases it (the sign-in gave no new token), or,
 * on a new connection, at the first Transition under the token re-sent there (identity
 * versions start over: see `restart`). Nothing changes on the server: the old session ended
 * in step 2, for every connection. Requests settle meanwhile as usual (the sign-in action is
 * one of them, and must: its token ends the hold), so a mutation settled by a held Transition
 * resolves before its write is shown; it shows with the new identity's results.
 *
 * Another tab's sign-in (tabs sharing one stored token) ends this client's session without
 * this client arming anything: its queries re-run as no one at identity v, and the new token
 * comes later, from storage. For that, an auth client keeps a hold on standby (`standBy`):
 *  1. Whenever a Transition turns the guard null while idle, it asks `shouldHold()` at once,
 *     before any watcher is called (the auth client answers yes when another tab is signing
 *     in, or has already stored a newer token). A Transition at an identity older than the
 *     latest sent is held without asking: the client has already taken up another token (the
 *     storage event can come before the server tells this client that the session ended), and
 *     that token's first Transition follows.
 *  2. Yes: that Transition and those after it at identity v are held, exactly as from step 3
 *     above; no: it is shown, as any Transition (a revocation signs the page out at once).
 *  3. The hold ends as above: at the first Transition of a later identity (the other tab's
 *     token, adopted from storage, or signed out), or when the auth client releases it (no
 *     new token came in time).
 */
import type { QueryToken } from "./queryResult.js";

type Phase =
  | { kind: "idle" }
  | { kind: "armed"; id: number; guard: QueryToken; identity: number }
  | { kind: "holding"; id: number; identity: number; held: Set<QueryToken> };

export class IdentityHandover {
  private phase: Phase = { kind: "idle" };
  private nextId = 0;
  private standby: { id: number; guard: QueryToken; shouldHold: () => boolean } | undefined;

  /** Holds when `guard` turns null while idle and `shouldHold()` says so (see the header); returns the id its holds take. */
  standBy(guard: QueryToken, shouldHold: () => boolean): number {
    const id = ++this.nextId;
    this.standby = { id, guard, shouldHold };
    return id;
  }

  /** Removes the standby hold `id` set up (one that is holding ends as usual). */
  stopStandby(id: number): void {
    if (this.standby?.id === id) this.standby = undefined;
  }

  /** Watches for `guard` turning null at `identity` (the version of the token being replaced); returns the hold's id for `release`. */
  arm(guard: QueryToken, identity: number): number {
    const id = ++this.nextId;
    this.phase = { kind: "armed", id, guard, identity };
    return id;
  }

  /**
   * A Transition at `identity` was applied to the server state, changing `changed`, while the
   * client has sent the token of `latestIdentity`. Returns the queries whose visible results to
   * recompute now, or null while they are held.
   */
  afterTransition(identity: number, changed: QueryToken[], isNull: (token: QueryToken) => boolean, latestIdentity = identity): QueryToken[] | null {
    const phase = this.phase;
    switch (phase.kind) {
      case "idle": {
        const standby = this.standby;
        if (standby && changed.includes(standby.guard) && isNull(standby.guard) && (identity < latestIdentity || standby.shouldHold())) {
          this.phase = { kind: "holding", id: standby.id, identity, held: new Set(changed) };
          return null;
        }
        return changed;
      }
      case "armed":
        if (identity > phase.identity) this.phase = { kind: "idle" }; // the new identity came without a signed-out moment
        else if (identity === phase.identity && changed.includes(phase.guard) && isNull(phase.guard)) {
          this.phase = { kind: "holding", id: phase.id, identity, held: new Set(changed) };
          return null;
        }
        return changed;
      case "holding":
        if (identity <= phase.identity) {
          for (const token of changed) phase.held.add(token);
          return null;
        }
        this.phase = { kind: "idle" };
        return [...phase.held, ...changed];
      default:
        return phase satisfies never;
    }
  }

  /** The sign-in that armed hold `id` (or the standby that took it) ended without a new token: the queries to show now. */
  release(id: number): QueryToken[] {
    const phase = this.phase;
    if (phase.kind === "idle" || phase.id !== id) return [];
    this.phase = { kind: "idle" };
    return phase.kind === "holding" ? [...phase.held] : [];
  }

  /**
   * A new connection opened; until `restart`, when the token the client holds goes out on it
   * (after requests re-sent under earlier tokens, or once a token being fetched came), every
   * Transition of a hold is held. One only armed is dropped, as in `restart`.
   */
  reconnecting(): void {
    if (this.phase.kind === "holding") this.phase.identity = Number.POSITIVE_INFINITY;
    else this.phase = { kind: "idle" };
  }

  /**
   * A new connection: identity versions start over, and `sentIdentity` is the version of the
   * token re-sent on it (0: none). A hold keeps holding until that token's first Transition;
   * without a token, it shows what it holds now (returned). One only armed is dropped: the
   * sign-in action it watched was rejected with the old connection.
   */
  restart(sentIdentity: number): QueryToken[] {
    const phase = this.phase;
    if (phase.kind === "holding" && sentIdentity > 0) {
      phase.identity = sentIdentity - 1;
      return [];
    }
    this.phase = { kind: "idle" };
    return phase.kind === "holding" ? [...phase.held] : [];
  }
}
