import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { base64ToBytes, bytesToBase64 } from "./base64.js";

describe("base64", () => {
  test("matches Node's encoder and round trips (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        const text = bytesToBase64(bytes);
        expect(text).toBe(Buffer.from(bytes).toString("base64"));
        expect(base64ToBytes(text)).toEqual(bytes);
      }),
      { numRuns: 1000 },
    );
  });

  test("handles outputs longer than one conversion chunk", () => {
    const bytes = new Uint8Array(100_000).map((_, i) => i * 7);
    const text = bytesToBase64(bytes);
    expect(text).toBe(Buffer.from(bytes).toString("base64"));
    expect(base64ToBytes(text)).toEqual(bytes);
  });

  test.each(["A", "AB", "ABC", "AB=C", "A===", "====", "AQ==AQ==", "AQ=\n", "AQI ", "AQ\u00E9=", "-_8="])(
    "rejects %j",
    (text) => {
      expect(base64ToBytes(text)).toBeUndefined();
    },
  );

  test("accepts the empty string and padded tails", () => {
    expect(base64ToBytes("")).toEqual(new Uint8Array());
    expect(base64ToBytes("AQ==")).toEqual(new Uint8Array([1]));
    expect(base64ToBytes("AQI=")).toEqual(new Uint8Array([1, 2]));
  });
});
