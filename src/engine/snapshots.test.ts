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
