/**
 * The error of a transaction that kept losing to concurrent commits until it ran out of
 * attempts. Apart from engine.ts because three retry loops give up with it: a mutation's
 * (engine.ts), a system transaction's (engine.ts) and a deferred write's (deferredWriter.ts).
 */
import { walkinError } from "../values/index.js";

export function conflictError(what: string, indexId: string | null, attempts: number): Error {
  const cause = indexId === null
    ? "its snapshot kept falling behind the commit history the server keeps (the server was very busy or the storage slow)"
    : `concurrent writes to table "${indexId.split(".")[0]}"`;
  return walkinError("CONFLICT", `${what} kept conflicting with ${cause} and gave up after ${attempts} attempts. ` +
    `Reduce contention on that data (e.g. shard a hot counter across documents).`);
}
