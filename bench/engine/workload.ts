/** The data every case uses, identical for the engine and the floors. */

export type Durability = "full" | "normal";

/** A ~100-byte payload that differs per row (so no page compresses or dedups). */
const FILLER = "walk-in benchmark payload ".repeat(4).slice(0, 92);

export function keyOf(i: number): string {
  return `key-${String(i).padStart(8, "0")}`;
}

export function payloadOf(i: number): string {
  return `${FILLER}${String(i).padStart(8, "0")}`;
}

/**
 * Key indexes in `[0, n)` in a random order, reshuffled after each pass: lookups hit random
 * existing keys and consecutive calls never repeat arguments.
 */
export function shuffledKeys(n: number): () => number {
  const order = Array.from({ length: n }, (_, i) => i);
  let next = n;
  return () => {
    if (next === n) {
      for (let i = n - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      next = 0;
    }
    return order[next++]!;
  };
}
