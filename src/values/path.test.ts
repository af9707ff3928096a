import { describe, expect, test } from "vitest";
import { formatPath, truncate } from "./path.js";

describe("formatPath", () => {
  test("dots for identifiers, brackets for indexes and other keys", () => {
    expect(formatPath("args", [])).toBe("args");
    expect(formatPath("args", ["items", 2, "qty"])).toBe("args.items[2].qty");
    expect(formatPath("doc", ["first name", "$x", "_id", "9a"])).toBe('doc["first name"].$x._id["9a"]');
  });

  test("long keys are cut", () => {
    expect(formatPath("v", ["k".repeat(100)])).toBe(`v["${"k".repeat(64)}..."]`);
  });
});

describe("truncate", () => {
  test("marks the cut", () => {
    expect(truncate("abcdef", 3)).toBe("abc...");
    expect(truncate("abc", 3)).toBe("abc");
  });
});
