/**
 * The overlay of logged versions not yet in their tables (pendingVersions.ts), on its own:
 * what reads see before and after commits are dropped, when some of them go (another
 * connection wrote part of the log) and when all go (the usual materialization).
 */
import { describe, expect, it } from "vitest";
import type { Commit } from "../types.js";
import { PendingVersions } from "./pendingVersions.js";

const key = (...bytes: number[]) => new Uint8Array(bytes);

function pending(commit: Commit) {
  return { commit, writtenAt: 0, bytes: 100 };
}

/** Three commits: `a` inserted at 1 and changed at 3, `b` inserted at 2; index entries and a receipt with them. */
function overlay(): PendingVersions {
  const versions = new PendingVersions(0);
  versions.add(pending({ ts: 1, id: "c1", documents: [{ id: "a", table: "t", body: "a1" }], indexes: [{ indexId: "i", key: key(1), docId: "a" }], log: key(), receipts: [{ key: "r1", body: "one" }] }));
  versions.add(pending({ ts: 2, id: "c2", documents: [{ id: "b", table: "t", body: "b2" }], indexes: [{ indexId: "i", key: key(2), docId: "b" }], log: key() }));
  versions.add(pending({
    ts: 3,
    id: "c3",
    documents: [{ id: "a", table: "t", body: "a3" }],
    indexes: [{ indexId: "i", key: key(1), docId: null }, { indexId: "i", key: key(3), docId: "a" }],
    log: key(),
    receipts: [{ key: "r3", body: "three" }],
  }));
  return versions;
}

const keysAt = (versions: PendingVersions, readTs: number) =>
  versions.entriesIn("i", {}, readTs, "asc").map((entry) => [Array.from(entry.key), entry.docId]);

describe("PendingVersions", () => {
  it("answers each read with the newest version at or before its snapshot", () => {
    const versions = overlay();
    expect(versions.document("a", 2)?.body).toBe("a1");
    expect(versions.document("a", 3)?.body).toBe("a3");
    expect(versions.document("b", 1)).toBeUndefined();
    expect(keysAt(versions, 2)).toEqual([[[1], "a"], [[2], "b"]]);
    expect(keysAt(versions, 3)).toEqual([[[1], null], [[2], "b"], [[3], "a"]]);
    expect(versions.receipt("r3")?.ts).toBe(3);
    expect(versions.bytes).toBe(300);
  });

  it("after dropping some commits, still answers for the rest, and leaves the dropped ones to the tables", () => {
    const versions = overlay();
    versions.dropThrough(2);
    expect(versions.size).toBe(1);
    expect(versions.bytes).toBe(100);
    expect(versions.loadedThrough).toBe(3);
    // `a` at 2 is in the tables now: the overlay has only its version of 3.
    expect(versions.document("a", 2)).toBeUndefined();
    expect(versions.document("a", 3)?.body).toBe("a3");
    expect(versions.document("b", 3)).toBeUndefined();
    expect(keysAt(versions, 3)).toEqual([[[1], null], [[3], "a"]]);
    expect(versions.receipt("r1")).toBeUndefined();
    expect(versions.receipt("r3")?.body).toBe("three");
    expect(versions.hasDocuments).toBe(true);
  });

  it("after dropping every commit, answers nothing, and takes new commits as before", () => {
    const versions = overlay();
    versions.dropThrough(5);
    expect(versions.size).toBe(0);
    expect(versions.bytes).toBe(0);
    expect(versions.loadedThrough).toBe(5);
    expect(versions.hasDocuments).toBe(false);
    expect(versions.document("a", 10)).toBeUndefined();
    expect(keysAt(versions, 10)).toEqual([]);
    expect(versions.receipt("r3")).toBeUndefined();
    versions.add(pending({ ts: 6, id: "c6", documents: [{ id: "a", table: "t", body: "a6" }], indexes: [{ indexId: "i", key: key(6), docId: "a" }], log: key() }));
    expect(versions.document("a", 6)?.body).toBe("a6");
    expect(keysAt(versions, 6)).toEqual([[[6], "a"]]);
  });

  it("drops nothing for a timestamp before its oldest commit", () => {
    const versions = overlay();
    versions.dropThrough(0);
    expect(versions.size).toBe(3);
    expect(versions.document("a", 1)?.body).toBe("a1");
  });

  it("with nothing pending, still moves loadedThrough to what the tables hold (a batch written straight to them)", () => {
    const versions = new PendingVersions(0);
    versions.dropThrough(7);
    expect(versions.loadedThrough).toBe(7);
    // A later commit goes in as usual; an older timestamp never lowers the mark.
    versions.add(pending({ ts: 8, id: "c8", documents: [{ id: "a", table: "t", body: "a8" }], indexes: [], log: key() }));
    versions.dropThrough(3);
    expect(versions.loadedThrough).toBe(8);
    expect(versions.document("a", 8)?.body).toBe("a8");
  });
});
