/**
 * Retry lanes on their own (retryLanes.ts): members run one at a time, and the calls that lost
 * into a lane are remembered while it has members and for `LOSER_MEMORY_MS` after ("Repeat
 * losers"). The engine's side (calls that start in their lane) is in engine.test.ts.
 */
import { describe, expect, it } from "vitest";
import { callSignature, LOSER_MEMORY_MS, MAX_LOSERS, RetryLanes } from "./retryLanes.js";

/** A promise and the function that settles it. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open = () => {};
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

describe("RetryLanes", () => {
  it("runs a lane's members one at a time, in order, and forgets the lane once it is empty", async () => {
    const lanes = new RetryLanes();
    const order: string[] = [];
    const first = gate();
    const a = lanes.run("k", async () => {
      order.push("a starts");
      await first.opened;
      order.push("a ends");
    });
    const b = lanes.run("k", async () => void order.push("b runs"));
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(order).toEqual(["a starts"]);
    expect(lanes.size).toBe(1);
    first.open();
    await Promise.all([a, b]);
    expect(order).toEqual(["a starts", "a ends", "b runs"]);
    expect(lanes.size).toBe(0);
  });

  it("remembers a loser's signature while its lane has members and for LOSER_MEMORY_MS after, then forgets it", async () => {
    let now = 0;
    const lanes = new RetryLanes(() => now);
    expect(lanes.remembers).toBe(false);
    const held = gate();
    const member = lanes.run("k", () => held.opened, "sig");
    expect(lanes.laneOfLoser("sig")).toBe("k");
    expect(lanes.laneOfLoser("other")).toBeNull();
    now = 10 * LOSER_MEMORY_MS; // however long the lane stays busy
    expect(lanes.laneOfLoser("sig")).toBe("k");
    held.open();
    await member;
    expect(lanes.size).toBe(0);
    now += LOSER_MEMORY_MS - 1;
    expect(lanes.laneOfLoser("sig")).toBe("k");
    now += 1;
    expect(lanes.laneOfLoser("sig")).toBeNull();
    expect(lanes.remembers).toBe(false);
  });

  it("keeps a signature that lost again in another lane when the first lane empties", async () => {
    let now = 0;
    const lanes = new RetryLanes(() => now);
    const inFirst = gate();
    const inSecond = gate();
    const first = lanes.run("k1", () => inFirst.opened, "sig");
    const second = lanes.run("k2", () => inSecond.opened, "sig");
    inFirst.open();
    await first;
    now += 2 * LOSER_MEMORY_MS;
    expect(lanes.laneOfLoser("sig")).toBe("k2");
    inSecond.open();
    await second;
  });

  it("expires old signatures at the front as calls look theirs up, so the memory does not stay for good", async () => {
    let now = 0;
    const lanes = new RetryLanes(() => now);
    for (const sig of ["a", "b", "c"]) await lanes.run(`lane-${sig}`, async () => undefined, sig);
    expect(lanes.remembers).toBe(true);
    now += LOSER_MEMORY_MS;
    // A lookup of a signature never seen still clears the expired ones in front of it.
    expect(lanes.laneOfLoser("d")).toBeNull();
    expect(lanes.remembers).toBe(false);
  });

  it("remembers at most MAX_LOSERS signatures, forgetting the oldest first, even in a lane that never empties", async () => {
    const lanes = new RetryLanes(() => 0);
    const held = gate();
    const members = [lanes.run("k", () => held.opened, "first")];
    for (let i = 0; i < MAX_LOSERS; i++) members.push(lanes.run("k", async () => undefined, `sig-${i}`));
    expect(lanes.laneOfLoser("first")).toBeNull();
    expect(lanes.laneOfLoser("sig-0")).toBe("k");
    expect(lanes.laneOfLoser(`sig-${MAX_LOSERS - 1}`)).toBe("k");
    held.open();
    await Promise.all(members);
  });

  it("tells calls apart by function, caller and arguments, whatever their types", () => {
    const base = callSignature("counters:increment", "token-1", { name: "a" });
    expect(callSignature("counters:increment", "token-1", { name: "a" })).toBe(base);
    expect(callSignature("counters:decrement", "token-1", { name: "a" })).not.toBe(base);
    expect(callSignature("counters:increment", "token-2", { name: "a" })).not.toBe(base);
    expect(callSignature("counters:increment", "token-1", { name: "b" })).not.toBe(base);
    expect(callSignature("counters:increment", "", { n: 1n, bytes: new Uint8Array([1]).buffer })).not.toBe(callSignature("counters:increment", "", { n: 2n, bytes: new Uint8Array([1]).buffer }));
    // Remembered calls stay small whatever their arguments.
    expect(callSignature("files:save", "token", { body: "x".repeat(1_000_000) })).toHaveLength(44);
  });
});
