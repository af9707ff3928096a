import { expect, it } from "vitest";
import { fillRandomBytes, takeRandomBytes } from "./randomPool.js";

it("hands out every byte once, across block boundaries, and never changes bytes already handed out", () => {
  const taken: Array<{ view: Buffer; copy: string }> = [];
  // 3 blocks' worth, in sizes that do not divide the block, so some takes straddle a boundary.
  for (let total = 0; total < 3 * 4096; total += 37) {
    const view = takeRandomBytes(37);
    expect(view.length).toBe(37);
    taken.push({ view, copy: view.toString("hex") });
  }
  for (const { view, copy } of taken) expect(view.toString("hex")).toBe(copy);
  // Random 37-byte strings never repeat; the same bytes handed out twice would.
  expect(new Set(taken.map((t) => t.copy)).size).toBe(taken.length);
  // And they are not all zeros or otherwise constant.
  expect(new Set(taken.map((t) => t.copy.slice(0, 2))).size).toBeGreaterThan(10);
});

it("refuses a count it cannot serve from one block", () => {
  expect(() => takeRandomBytes(4097)).toThrow(/count must be in \[0, 4096\]/);
  expect(() => takeRandomBytes(-1)).toThrow(RangeError);
  expect(takeRandomBytes(0).length).toBe(0);
});

it("fills a caller's array from the same pool, never with bytes handed out to anyone else", () => {
  const handedOut: string[] = [];
  const target = new Uint8Array(40);
  for (let total = 0; total < 3 * 4096; total += 2 * 37) {
    handedOut.push(takeRandomBytes(37).toString("hex"));
    fillRandomBytes(target, 3, 37);
    handedOut.push(Buffer.from(target.subarray(3, 40)).toString("hex"));
  }
  // Bytes outside the range asked for are left alone.
  expect(Array.from(target.subarray(0, 3))).toEqual([0, 0, 0]);
  expect(new Set(handedOut).size).toBe(handedOut.length);
  expect(() => fillRandomBytes(target, 0, 4097)).toThrow(/count must be in \[0, 4096\]/);
});
