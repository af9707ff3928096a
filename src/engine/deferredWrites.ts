/**
 * Deferred writes give way: bookkeeping never starves a mutation, on one node or many.
 *
 * A deferred write (`writeLater`, asked for by the authenticate hook) is bookkeeping that may be
 * skipped: auth records there that a session was used. With a short `activityResolutionMs`,
 * every call on a busy session asks for one, on every node, and each rewrites the session's
 * row. A revocation reads and writes that row too, so under optimistic concurrency it lost to
 * whichever activity write committed while it ran, again and again, and gave up: retry lanes
 * order the mutations of one engine, not the deferred writes of other nodes. So a mutation
 * that loses to a deferred write claims the key it lost on, and deferred writes of that key
 * give way (commit nothing) while the claim holds. The claim reaches every node through the
 * commit log, with no table and nothing stored:
 *
 *  1. Every deferred write's commit carries `DEFERRED_MARK` in its write set. Before it
 *     commits, it puts in its read set the claim key (`CLAIM_INDEX`, lane) of every key it
 *     writes, and commits nothing if its engine knows a claim on one of them.
 *  2. Mutation R loses on key K and the winner's commit carries `DEFERRED_MARK`. R's engine
 *     commits a claim: a transaction that only marks (`CLAIM_INDEX`, K). It reads nothing, so it
 *     conflicts with nothing and commits at once, at ts C. Every engine that applies commit C
 *     (its own, or learned from the commit log) notes the claim before any transaction can read
 *     at C or later (`noteCommit` runs as the commit is applied).
 *  3. R re-runs at a snapshot at or after C. A deferred write W of K that commits after that:
 *     - if W's snapshot is before C, C is among the commits W is checked against, and C wrote
 *       the claim key W read: W conflicts and commits nothing; it re-runs at a snapshot after C;
 *     - if W's snapshot is at or after C, W's engine has noted the claim: W gives way.
 *     So no deferred write of K commits between R's snapshot and R's commit: R loses to
 *     deferred writes at most once per key it reads (then claims that key), however slowly it
 *     runs, and otherwise only to other mutations, which retry lanes and their limits deal with.
 *  4. R's commit carries (`RELEASE_INDEX`, K) for each claim it made, so the claim ends with
 *     it everywhere; a mutation that fails releases its claims in a commit of their own. A
 *     claim whose release never comes (its node died) lapses after `CLAIM_MS`. Should R lose
 *     to a deferred write of K again all the same (its claim lapsed while it kept failing on
 *     other data, or an engine that fell behind the commit log's trim never saw it), it claims
 *     K again: a lapse costs one lost attempt, not a starvation.
 *
 * The marks' index IDs name a table, "_deferred", that cannot exist (names starting with "_"
 * are reserved), so no read set of a function, nor any index check, ever meets them.
 *
 * What a claim covers is the key lost on, which is what a deferred write of the same rows
 * writes again: auth's activity write rewrites the keys of one existing session row (by id,
 * by user, …), every one of which a revocation that read the row holds in its read set. A
 * deferred write that put a new key into a range a mutation read every time would not be held
 * back by the claim of the previous key; none does.
 *
 * A deferred write that gave way is lost, as one that failed is: for auth, the next call on
 * the session asks again. Whatever a deferred write reads, its commit is still checked like
 * any other, so giving way never lets it write over what it did not see.
 */
import { performance } from "node:perf_hooks";
import { laneOf } from "./retryLanes.js";
import type { WriteSet } from "./readSet.js";

/** In the write set of every deferred write's commit. */
export const DEFERRED_MARK = "_deferred.write";
/** A claim on a lane (the key, as `laneOf` names it, in UTF-8). */
export const CLAIM_INDEX = "_deferred.claim";
/** The end of a claim on a lane. */
export const RELEASE_INDEX = "_deferred.release";
/** How long a claim holds without its release (its node died before it could send one). */
export const CLAIM_MS = 30_000;

export const MARK_KEY = new Uint8Array(0);
export const laneBytes = (lane: string): Uint8Array => Buffer.from(lane, "utf8");

/** The lanes (`laneOf`) of every key a write set writes, but the marks of this file. */
export function lanesWritten(writes: WriteSet): Set<string> {
  const lanes = new Set<string>();
  for (const [indexId, keys] of writes) {
    if (indexId.startsWith("_deferred.")) continue;
    for (const key of keys) lanes.add(laneOf({ ts: 0, indexId, key }));
  }
  return lanes;
}

/** The claims an engine knows of, from the commits it applied (step 2). */
export class DeferredWriteClaims {
  /** Lane → how many claims on it are open, and until when the latest holds without release. */
  private readonly claims = new Map<string, { open: number; until: number }>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Called with every commit applied, own or learned, in timestamp order. */
  noteCommit(writes: WriteSet): void {
    for (const key of writes.get(CLAIM_INDEX) ?? []) {
      const lane = Buffer.from(key).toString("utf8");
      const claim = this.claims.get(lane);
      if (claim) {
        claim.open += 1;
        claim.until = this.now() + CLAIM_MS;
      } else {
        this.forgetLapsed(); // those whose release never came (their node died)
        this.claims.set(lane, { open: 1, until: this.now() + CLAIM_MS });
      }
    }
    for (const key of writes.get(RELEASE_INDEX) ?? []) {
      const lane = Buffer.from(key).toString("utf8");
      const claim = this.claims.get(lane);
      // A release without its claim: the claim came before this engine started following.
      if (claim && --claim.open <= 0) this.claims.delete(lane);
    }
  }

  private forgetLapsed(): void {
    const now = this.now();
    for (const [lane, claim] of this.claims) if (claim.until <= now) this.claims.delete(lane);
  }

  /** Whether a deferred write of `lane` must give way. */
  isClaimed(lane: string): boolean {
    const claim = this.claims.get(lane);
    if (claim === undefined) return false;
    if (claim.until > this.now()) return true;
    this.claims.delete(lane);
    return false;
  }
}
