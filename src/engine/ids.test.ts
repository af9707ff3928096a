import { describe, expect, it } from "vitest";
import { newDocumentId, tableNumberOfId } from "./ids.js";

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
