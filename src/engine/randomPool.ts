/**
 * Random bytes from the OS's CSPRNG, drawn in blocks. `crypto.randomBytes` costs about 10 µs a
 * call here however few bytes it returns (measured: a 32-byte session secret was 3.7% of the
 * anonymous sign-in benchmark), so document IDs and session secrets take theirs from a pooled
 * block instead: one call per 4 KiB.
 *
 * Every byte is handed out once. A block is replaced, never refilled in place, so the bytes a
 * caller was given stay what they were even if it holds on to the view.
 */
import { randomBytes } from "node:crypto";

const BLOCK_BYTES = 4096;
let block = randomBytes(BLOCK_BYTES);
let offset = 0;

/** Copies `count` (at most 4096) random bytes into `target` at `offset`, without making a view. */
export function fillRandomBytes(target: Uint8Array, offset: number, count: number): void {
  const from = claim(count);
  for (let i = 0; i < count; i++) target[offset + i] = block[from + i]!;
}

/** `count` (at most 4096) random bytes, as a view the caller must not write to. */
export function takeRandomBytes(count: number): Buffer {
  const from = claim(count);
  return block.subarray(from, from + count);
}

/** Takes the next `count` bytes of the block (replacing it first if too few are left); answers where they start. */
function claim(count: number): number {
  if (!(count >= 0 && count <= BLOCK_BYTES)) throw new RangeError(`randomPool: count must be in [0, ${BLOCK_BYTES}], got ${count}.`);
  if (offset + count > BLOCK_BYTES) {
    block = randomBytes(BLOCK_BYTES);
    offset = 0;
  }
  offset += count;
  return offset - count;
}
