/**
 * For tests of a node that is behind: the same storage, without `watchCommits`. An engine on it
 * learns another engine's commits only when it commits or refreshes (as a node whose
 * notifications are late or lost), so a test decides how long it stays behind. Without this,
 * two engines on one SQLite file hear of each other's commits within milliseconds
 * (sqlite/commitWatch.ts), and a test of what a node does while behind would pass by luck.
 */
import type { Storage } from "../types.js";

export function withoutCommitWatch<S extends Storage>(storage: S): S {
  return new Proxy(storage, {
    get(target, key) {
      if (key === "watchCommits") return undefined;
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
    has: (target, key) => key !== "watchCommits" && Reflect.has(target, key),
  });
}
