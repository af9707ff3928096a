/**
 * The tabs of one browser sharing a token in localStorage take turns: sign-ins, sign-outs and
 * the removal of a revoked token run one at a time across tabs (a Web Lock named after the
 * storage key), and a tab signing in or out marks the storage meanwhile.
 *
 * Why both, step by step. localStorage reaches the other tabs after a delay, so a tab can
 * read a token another tab has already replaced:
 *  1. tab A upgrades its guest: the server ends session T1 and A stores the new token T2;
 *  2. tab B's live check sees T1 end, reads the storage, still finds T1 (A's write is on its
 *     way) and removes it, which deletes T2 once it lands: both tabs end up signed out.
 * The lock alone cannot stop that (B's read may be stale even after A released it); the
 * marker can: A wrote it before its sign-in even reached the server, long before B learns
 * that T1 ended, so B sees it and leaves the storage alone; A's T2 then reaches B as a
 * storage change, and B adopts it. The lock is what makes two tabs signing in at the same
 * instant one user: the second runs after the first, adopts the token the first stored and
 * signs in with it, which the server answers with "already signed in".
 *
 * The marker also closes the lock's own staleness gap. One tab's localStorage writes reach
 * the other tabs in the order it made them, and A removes its marker after storing T2. So a
 * tab that gets the lock and still sees another tab's marker is looking at a view from before
 * that tab finished: it waits (at most SETTLE_MS, in case that tab died mid-sign-in) until the
 * marker is gone, and then sees T2 too.
 */
import type { TokenStorage } from "./tokenStorage.js";

/** The part of the Web Locks API used here (`navigator.locks`). */
export interface LocksLike {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>;
}

/** A marker older than this is from a tab that died mid-sign-in: ignored. */
const BUSY_FOR_MS = 60_000;
/** Longest wait, holding the lock, for another tab's marker to disappear (see the header). */
const SETTLE_MS = 2_000;
const SETTLE_POLL_MS = 20;

export class TabLock {
  private readonly tabId = Math.random().toString(36).slice(2);
  private readonly busyKey: string;

  constructor(
    private readonly storage: TokenStorage,
    private readonly key: string,
    private readonly locks: LocksLike | null,
  ) {
    this.busyKey = `${key}:busy`;
  }

  /** Runs `task` alone among this browser's tabs; with `mark`, other tabs see this one busy meanwhile. */
  exclusive<T>(task: () => Promise<T>, options: { mark: boolean }): Promise<T> {
    const run = async () => {
      await this.settle();
      const marker = `${this.tabId}:${Date.now()}`;
      // A page that navigates away mid-task (an OAuth redirect) must not leave its marker behind.
      const clear = () => {
        if (this.storage.get(this.busyKey) === marker) this.storage.remove(this.busyKey);
      };
      if (options.mark) {
        this.storage.set(this.busyKey, marker);
        if (typeof window !== "undefined") window.addEventListener("pagehide", clear);
      }
      try {
        return await task();
      } finally {
        if (options.mark) {
          clear();
          if (typeof window !== "undefined") window.removeEventListener("pagehide", clear);
        }
      }
    };
    return this.locks ? this.locks.request(`walkin-auth:${this.key}`, run) : run();
  }

  /** Waits while another tab's marker is visible, at most SETTLE_MS. */
  private async settle(): Promise<void> {
    const until = Date.now() + SETTLE_MS;
    while (this.otherTabBusy() && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, SETTLE_POLL_MS));
  }

  /** Whether another tab is signing in or out right now (its token is about to change). */
  otherTabBusy(now = Date.now()): boolean {
    const [tab, at] = (this.storage.get(this.busyKey) ?? "").split(":");
    return !!tab && tab !== this.tabId && now - Number(at) < BUSY_FOR_MS;
  }
}

/** `navigator.locks` where the browser has it (secure contexts), else null. */
export function browserLocks(): LocksLike | null {
  const locks = typeof navigator === "undefined" ? undefined : (navigator as { locks?: LocksLike }).locks;
  return locks && typeof locks.request === "function" ? locks : null;
}
