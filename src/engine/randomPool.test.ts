import { expect, it } from "vitest";
import { takeRandomBytes } from "./randomPool.js";

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
