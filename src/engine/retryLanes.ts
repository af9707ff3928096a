/**
 * Retry lanes: how a hot spot makes progress instead of retrying until it gives up.
 *
 * Optimistic concurrency lets one writer of a contended key through per commit batch; the
 * others re-run. When a hundred mutations increment one counter they keep colliding: each
 * re-run meets the same crowd, and on a networked database (commits take milliseconds) the
 * unlucky ones exhaust their retries. So a mutation that lost on a key re-runs in that key's
 * lane: lane members run one at a time, so they never collide with each other, and each gets
 * through in about one round trip. Fresh mutations still run optimistically beside the lane
 * (the uncontended path pays nothing).
 *
 * Measured (bench/engine, 32 mutations at once on one counter): joining the lane at the first
 * conflict re-runs each mutation about once (31 re-runs per 32 commits, the least optimistic
 * concurrency can do when all 32 read the same snapshot); joining after two conflicts, with a
 * random backoff in between, re-ran each about twice. A lone conflict finds its lane empty and
 * re-runs at once.
 *
 * Lanes are per key that conflicted (an index and the key written there): hot spots on
 * different data do not queue behind each other. A lane is forgotten once it is empty.
 *
 * ## Repeat losers start in the lane
 *
 * A hot spot's traffic is mostly the same call again: a client whose increment lost and then
 * went through sends the next increment of the same counter. Run optimistically, that call
 * reads the snapshot every lane member is about to change and loses again (case (c) of
 * bench/engine: 0.97 re-runs per commit, every fresh call lost once). So each lane remembers
 * the calls that lost into it, by signature (function path, caller, arguments: `callSignature`),
 * and a call with one of those signatures starts in that lane while it has members, instead of
 * running at a snapshot it will lose on. Step by step, for a call C with signature s:
 *
 *  1. C lost on key K and joins K's lane: the lane records s (`run(K, work, s)`).
 *  2. The same call comes again (signature s) while K's lane has members: `laneOfLoser(s)`
 *     answers K, and the call waits its turn there, its first run at the snapshot after the
 *     member before it committed. It cannot lose to that member, nor to anything else in the
 *     lane.
 *  3. When K's lane empties, it keeps its signatures for `LOSER_MEMORY_MS` more: a burst of
 *     such calls that all start at once (a page of clients retrying together, the waves of
 *     case (c)) goes to the lane as a whole instead of losing all but one of its members
 *     again. After that, a call with s runs optimistically again, so a hot spot that cooled
 *     down costs nothing: the uncontended path does not even compute a signature once no
 *     lane has members and none is remembered.
 *
 * A signature is only a guess of what the call will touch (the handler may read other data,
 * the caller's own documents, the time): a wrong guess costs waiting in a lane it did not need,
 * and only while another call of the same signature is in it, never correctness. Every run is
 * still checked at commit like any other, and a call that loses anyway goes to the lane of the
 * key it lost on. Only calls that lost are remembered, at most `MAX_LOSERS` of them.
 */
import { createHash } from "node:crypto";
import { performance } from "node:perf_hooks";
import { encodeValueToString } from "../values/json.js";
import type { Value } from "../values/index.js";
import type { Conflict } from "./commitLog.js";

/** The retry lane of a conflict: the key it lost on (a hot counter's own document or range). */
export function laneOf(conflict: Conflict): string {
  if (conflict.indexId === null) return "(history)";
  return conflict.key ? `${conflict.indexId}:${Buffer.from(conflict.key).toString("hex")}` : conflict.indexId;
}

/** How long a lane's signatures outlive its last member (step 3 of "Repeat losers"). */
export const LOSER_MEMORY_MS = 1_000;
/** The most signatures remembered; past it, the oldest go first. */
export const MAX_LOSERS = 10_000;

export class RetryLanes {
  private readonly lanes = new Map<string, { tail: Promise<void>; waiting: number; losers: Set<string> }>();
  /**
   * Signature of a call that lost → its lane, and until when it is remembered: Infinity while
   * the lane has members, `LOSER_MEMORY_MS` after it emptied. Oldest first (re-remembering a
   * signature moves it to the end), so expired entries are found at the front.
   */
  private readonly losers = new Map<string, { lane: string; until: number }>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  /**
   * Runs `work` after every earlier member of lane `key` has finished. `signature`: the call's
   * (`callSignature`), remembered by the lane (see "Repeat losers").
   */
  async run<T>(key: string, work: () => Promise<T>, signature?: string): Promise<T> {
    let lane = this.lanes.get(key);
    if (!lane) this.lanes.set(key, (lane = { tail: Promise.resolve(), waiting: 0, losers: new Set() }));
    if (signature !== undefined) this.remember(signature, key, lane.losers);
    lane.waiting += 1;
    const turn = lane.tail.then(work);
    lane.tail = turn.then(
      () => undefined,
      () => undefined,
    );
    try {
      return await turn;
    } finally {
      if (--lane.waiting === 0 && this.lanes.get(key) === lane) {
        this.lanes.delete(key);
        // The lane's set holds only signatures filed under it (`remember`), some of them
        // perhaps evicted from the map since.
        const until = this.now() + LOSER_MEMORY_MS;
        for (const signature of lane.losers) {
          const loser = this.losers.get(signature);
          if (loser !== undefined) loser.until = until;
        }
      }
    }
  }

  /**
   * Files `signature` under lane `key` (whose set of signatures is `laneLosers`), at the end of
   * the map. A signature is in one lane's set at most, and every set entry is in the map, so
   * `MAX_LOSERS` bounds both, however long a busy lane lives.
   */
  private remember(signature: string, key: string, laneLosers: Set<string>): void {
    const previous = this.losers.get(signature);
    if (previous !== undefined) {
      if (previous.lane !== key) this.lanes.get(previous.lane)?.losers.delete(signature);
      this.losers.delete(signature);
    }
    laneLosers.add(signature);
    this.losers.set(signature, { lane: key, until: Infinity });
    if (this.losers.size > MAX_LOSERS) {
      const [oldest, { lane }] = this.losers.entries().next().value!;
      this.losers.delete(oldest);
      this.lanes.get(lane)?.losers.delete(oldest);
    }
  }

  /** Whether any signature is remembered: if not, a call need not compute its own. */
  get remembers(): boolean {
    return this.losers.size > 0;
  }

  /** The lane a call with this signature lost into, while remembered (see "Repeat losers"); else null. */
  laneOfLoser(signature: string): string | null {
    const now = this.now();
    // Forget what expired at the front (a few at a time: the call path stays short).
    for (let checked = 0; checked < 4; checked++) {
      const first = this.losers.entries().next();
      if (first.done === true || first.value[1].until > now) break;
      this.losers.delete(first.value[0]);
    }
    const loser = this.losers.get(signature);
    if (loser === undefined) return null;
    if (loser.until > now) return loser.lane;
    this.losers.delete(signature);
    return null;
  }

  /** Lanes with mutations in them (for stats and tests). */
  get size(): number {
    return this.lanes.size;
  }
}

/**
 * What identifies a call for "Repeat losers": the function, who calls it (their token or
 * fixed identity) and the arguments, hashed, so that a remembered call costs 44 characters
 * however big its arguments or token (up to `MAX_LOSERS` of them). Computed only while some
 * signature is remembered. Two calls sharing a hash would only share a lane.
 */
export function callSignature(path: string, caller: string, args: Value): string {
  return createHash("sha256").update(`${path}\n${caller}\n${encodeValueToString(args)}`).digest("base64");
}
