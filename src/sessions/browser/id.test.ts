import { describe, expect, it } from "vitest";
import { generateSessionId, isUuidV4 } from "./id.js";

describe("generateSessionId", () => {
  it("uses crypto.randomUUID when present", () => {
    expect(generateSessionId({ randomUUID: () => "3b241101-e2bb-4255-8caf-4136c566a962" })).toBe(
      "3b241101-e2bb-4255-8caf-4136c566a962",
    );
    expect(isUuidV4(generateSessionId())).toBe(true);
  });

  it("builds a UUID v4 from getRandomValues where randomUUID is missing (plain http)", () => {
    const getRandomValues = <T extends ArrayBufferView | null>(array: T): T => globalThis.crypto.getRandomValues(array as Uint8Array) as unknown as T;
    const ids = new Set(Array.from({ length: 200 }, () => generateSessionId({ getRandomValues })));
    expect(ids.size).toBe(200);
    for (const id of ids) expect(isUuidV4(id)).toBe(true);
    const zeros = generateSessionId({ getRandomValues: <T,>(a: T) => a });
    expect(zeros).toBe("00000000-0000-4000-8000-000000000000");
  });

  it("refuses to fall back on Math.random", () => {
    expect(() => generateSessionId({})).toThrow(/neither crypto.randomUUID nor crypto.getRandomValues.*idGenerator/);
    expect(() => generateSessionId(undefined)).not.toThrow(); // undefined means "the global crypto"
  });

  it("recognises only UUID v4", () => {
    expect(isUuidV4("undefined")).toBe(false);
    expect(isUuidV4("")).toBe(false);
    expect(isUuidV4(42)).toBe(false);
    expect(isUuidV4("3b241101-e2bb-1255-8caf-4136c566a962")).toBe(false); // v1
    expect(isUuidV4("3B241101-E2BB-4255-8CAF-4136C566A962")).toBe(true);
  });
});
