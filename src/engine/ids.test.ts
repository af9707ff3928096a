import { describe, expect, it } from "vitest";
import { newDocumentId, tableNumberOfId } from "./ids.js";
import { idKey, idOfByIdKey } from "./documents.js";
import { encodeIndexKey } from "../values/indexKey.js";

describe("document IDs", () => {
  it("carry their table number and are unique", () => {
    const seen = new Set<string>();
    for (const table of [1, 2, 127, 128, 300, 70_000]) {
      for (let i = 0; i < 500; i++) {
        const id = newDocumentId(table);
        expect(tableNumberOfId(id)).toBe(table);
        expect(id).toMatch(/^[0-9a-hjkmnp-tv-z]+$/);
        seen.add(id);
      }
    }
    expect(seen.size).toBe(3000);
  });

  it("reject typos, truncation and foreign strings", () => {
    const id = newDocumentId(5);
    const typo = id.slice(0, 10) + (id[10] === "a" ? "b" : "a") + id.slice(11);
    expect(tableNumberOfId(typo)).toBeNull();
    expect(tableNumberOfId(id.slice(0, -1))).toBeNull();
    expect(tableNumberOfId(id + "0")).toBeNull();
    expect(tableNumberOfId("")).toBeNull();
    expect(tableNumberOfId("0".repeat(30))).toBeNull();
    expect(tableNumberOfId(id.toUpperCase())).toBeNull();
    expect(tableNumberOfId(42 as unknown as string)).toBeNull();
  });
});

describe("document IDs in time", () => {
  it("sort in the order they were made, across milliseconds, so inserts append in storage", async () => {
    const made: string[] = [];
    for (let i = 0; i < 5; i++) {
      made.push(newDocumentId(3));
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    expect([...made].sort()).toEqual(made);
  });

  it("still differ within one millisecond (72 random bits) and decode IDs made before the time prefix", () => {
    const now = Date.now;
    Date.now = () => 1_700_000_000_000;
    try {
      const ids = Array.from({ length: 1000 }, () => newDocumentId(9));
      expect(new Set(ids).size).toBe(1000);
      // All share the time prefix (10 characters hold its 48 bits).
      expect(new Set(ids.map((id) => id.slice(0, 9))).size).toBe(1);
    } finally {
      Date.now = now;
    }
    // IDs made by the first format (15 random bytes, then the table), for tables 9 and 300.
    expect(tableNumberOfId("5ch69kr7dfj1mdc5chsx6bym15k0e")).toBe(9);
    expect(tableNumberOfId("x677z3ctcs92cazrq7ykdsypng17we0")).toBe(300);
  });
});

describe("by_id keys", () => {
  it("give back the ID they were made from, and null for any key that is not an ID's", () => {
    for (let table = 1; table < 300; table += 37) {
      const id = newDocumentId(table);
      expect(idOfByIdKey(idKey(id))).toBe(id);
    }
    expect(idOfByIdKey(encodeIndexKey([42]))).toBeNull();
    expect(idOfByIdKey(encodeIndexKey(["naïve"]))).toBeNull();
    expect(idOfByIdKey(encodeIndexKey(["a", "b"]))).toBeNull();
    expect(idOfByIdKey(new Uint8Array())).toBeNull();
  });
});
