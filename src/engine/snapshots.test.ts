/** Pinned snapshots decide how far history may be pruned: a released one must stop holding it back. */
import { describe, expect, it } from "vitest";
import { ActiveSnapshots } from "./snapshots.js";

describe("active snapshots", () => {
  it("report the oldest pinned timestamp, and forget released ones", () => {
    const snapshots = new ActiveSnapshots();
    const releaseOld = snapshots.pin(3);
    snapshots.hold(7);
    snapshots.hold(7);
    expect(snapshots.oldest(10)).toBe(3);
    releaseOld();
    releaseOld(); // a second call must not release someone else's pin
    expect(snapshots.oldest(10)).toBe(7);
    snapshots.letGo(7);
    expect(snapshots.oldest(10)).toBe(7); // one reader of 7 is left
    snapshots.letGo(7);
    expect(snapshots.oldest(10)).toBe(10);
    // A timestamp released to zero and pinned again counts again.
    snapshots.hold(7);
    expect(snapshots.oldest(10)).toBe(7);
    snapshots.letGo(7);
    snapshots.letGo(7); // more releases than pins never goes below zero
    snapshots.hold(7);
    expect(snapshots.oldest(10)).toBe(7);
  });
});

describe("active snapshots, as the engine's latest moves forward", () => {
  it("keep an older timestamp pinned after newer ones are pinned and released", () => {
    const snapshots = new ActiveSnapshots();
    snapshots.hold(5); // a long query at 5
    snapshots.hold(6); // a mutation at 6, then one at 7
    snapshots.letGo(6);
    snapshots.hold(7);
    expect(snapshots.oldest(100)).toBe(5);
    snapshots.letGo(7);
    expect(snapshots.oldest(100)).toBe(5);
    snapshots.letGo(5);
    expect(snapshots.oldest(100)).toBe(100);
  });

  it("count pins of the same timestamp before and after a newer one was pinned", () => {
    const snapshots = new ActiveSnapshots();
    snapshots.hold(3);
    snapshots.hold(4);
    snapshots.hold(3); // a reader that took its snapshot before 4 was pinned
    snapshots.letGo(3);
    expect(snapshots.oldest(100)).toBe(3); // one reader of 3 is left
    snapshots.letGo(3);
    expect(snapshots.oldest(100)).toBe(4);
    snapshots.letGo(4);
    expect(snapshots.oldest(100)).toBe(100);
  });

  it("forget a newest timestamp whose readers all left once a newer one is pinned", () => {
    const snapshots = new ActiveSnapshots();
    snapshots.hold(8);
    snapshots.letGo(8);
    snapshots.hold(9);
    snapshots.letGo(9);
    snapshots.hold(10);
    expect(snapshots.oldest(100)).toBe(10);
    snapshots.letGo(10);
    expect(snapshots.oldest(100)).toBe(100);
    // Only timestamps under the fallback count: a pin newer than it holds nothing back.
    snapshots.hold(200);
    expect(snapshots.oldest(100)).toBe(100);
  });
});
