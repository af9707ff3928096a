/**
 * Following the commits of other engines on a shared storage (other nodes, on PostgreSQL).
 *
 * The storage notifies of commits (`watchCommits`), but notifications can be lost, so the
 * engine also polls every `pollIntervalMs`. Either way it asks for a refresh (the committer
 * reads the commit log since its latest and feeds live queries). Refreshes never overlap, and
 * one asked for while another runs is folded into a single re-run after it: the running one's
 * read may predate the commit that was just announced. A notification of a commit the engine
 * already knows (its own, mostly) asks for nothing.
 */
import type { Storage, Timestamp } from "../storage/types.js";

export interface OtherEnginesHost {
  /** The newest commit the engine knows of. */
  readonly latest: Timestamp;
  readonly closed: boolean;
  /** Reads and applies the commits since `latest`. */
  refresh(): Promise<void>;
  logError(message: string, error: unknown): void;
}

/** Starts following; returns the function that stops it (nothing to stop without `watchCommits`). */
export function followOtherEngines(storage: Storage, host: OtherEnginesHost, pollIntervalMs: number): () => void {
  if (!storage.watchCommits) return () => {};
  let running = false;
  let again = false;
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
  const stopWatching = storage.watchCommits((latest) => (latest !== undefined && latest <= host.latest ? undefined : refresh()));
  const poll = setInterval(refresh, pollIntervalMs);
  poll.unref?.();
  return () => {
    stopWatching();
    clearInterval(poll);
  };
}
