/**
 * Following the commits of other engines on a shared storage (other nodes, on PostgreSQL).
 *
 * The storage notifies of commits (`watchCommits`), but notifications can be lost, so the
 * engine also polls. Either way it asks for a refresh (the committer reads the commit log since
 * its latest and feeds live queries). Refreshes never overlap, and one asked for while another
 * runs is folded into a single re-run after it: the running one's read may predate the commit
 * that was just announced. A notification of a commit the engine already knows (its own,
 * mostly) asks for nothing.
 *
 * How often to poll. A poll only covers a lost notification, and what a lost one delays is:
 *  - a live query showing another engine's commit: while any query is live, polls come every
 *    `pollIntervalMs`, as they always did;
 *  - nothing else that waits on time. A scheduled job another engine wrote is learned from the
 *    notification of its commit like any other commit (a storage re-announces after it could
 *    have lost one: PostgreSQL's watch on reconnecting, SQLite's by its own timed looks), and
 *    the engine that wrote it runs it anyway if its scheduler runs (a claim makes it run
 *    once); a one-shot call looks for itself before it reads (`Engine.catchUpWithOthers`);
 *    a mutation is checked against every commit up to its own when it commits.
 * So with no live query, polls come every IDLE_POLL_MS: an idle server used to wake five
 * times a second, each time to read a log that had not changed. The storage's watch is told
 * the same (`idle`: SQLite's then looks at the file every second instead of every 20 ms). When
 * the first query goes live (`hurry`), the engine polls at once and at the full rate from then
 * on, and the watch goes back to its full pace: a commit made while idle is found before that
 * query's first update could miss it. A poll that finds no live query any more slows both down.
 */
import type { Storage, Timestamp } from "../storage/types.js";

/** How often an engine with no live query looks for other engines' commits without a notification. */
const IDLE_POLL_MS = 10_000;

export interface OtherEnginesHost {
  /** The newest commit the engine knows of. */
  readonly latest: Timestamp;
  readonly closed: boolean;
  /** Whether a query is live: polls then come at the full rate. */
  readonly hasLiveQueries: boolean;
  /** Reads and applies the commits since `latest`. */
  refresh(): Promise<void>;
  logError(message: string, error: unknown): void;
}

export interface FollowingOtherEngines {
  /** A query went live: poll now and at the full rate, if polls were at the idle rate. */
  hurry(): void;
  stop(): void;
}

/** Starts following (nothing to follow without `watchCommits`). */
export function followOtherEngines(storage: Storage, host: OtherEnginesHost, pollIntervalMs: number): FollowingOtherEngines {
  if (!storage.watchCommits) return { hurry: () => {}, stop: () => {} };
  let running = false;
  let again = false;
  let stopped = false;
  let poll: NodeJS.Timeout | undefined;
  let pollingIdle = false;
  const refresh = () => {
    if (host.closed) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    again = false;
    void host
      .refresh()
      .catch((error) => host.logError("Reading other nodes' commits failed (will retry)", error))
      .finally(() => {
        running = false;
        if (again) refresh();
      });
  };
  const notified = (latest?: Timestamp) => (latest !== undefined && latest <= host.latest ? undefined : refresh());
  let stopWatching = storage.watchCommits(notified, { idle: true });
  let watchingIdle = true;
  /** Tells the storage's watch the pace needed: the new subscription first, so it runs on without a gap. */
  const paceWatch = (idle: boolean) => {
    if (idle === watchingIdle) return;
    const previous = stopWatching;
    stopWatching = storage.watchCommits!(notified, { idle });
    watchingIdle = idle;
    previous();
  };
  /** Sets the next poll, and the watch's pace, by whether a query is live now. */
  const arm = () => {
    clearTimeout(poll);
    if (stopped) return;
    pollingIdle = !host.hasLiveQueries;
    paceWatch(pollingIdle);
    poll = setTimeout(() => {
      refresh();
      arm();
    }, pollingIdle ? Math.max(pollIntervalMs, IDLE_POLL_MS) : pollIntervalMs);
    poll.unref?.();
  };
  arm();
  return {
    hurry() {
      if (!pollingIdle || stopped) return;
      refresh();
      arm();
    },
    stop() {
      stopped = true;
      stopWatching();
      clearTimeout(poll);
    },
  };
}
