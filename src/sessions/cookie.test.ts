/** Reading the session cookie for server rendering: valid IDs only, never a throw. */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { readSessionIdCookie } from "./cookie.js";

describe("readSessionIdCookie", () => {
  const id = randomUUID();

  it("finds the ID among other cookies, with the default or a custom key", () => {
    expect(readSessionIdCookie(`theme=dark; walkin-session-id=${id}; other=1`)).toBe(id);
    expect(readSessionIdCookie(`walkin-session-id=${randomUUID()}; shop-session=${id}`, "shop-session")).toBe(id);
    expect(readSessionIdCookie(`walkin-session-id="${id}"`)).toBe(id);
    expect(readSessionIdCookie(`walkin-session-id=${encodeURIComponent(id)}`)).toBe(id);
  });

  it("returns null for absent, malformed or hostile input", () => {
    expect(readSessionIdCookie(undefined)).toBeNull();
    expect(readSessionIdCookie(null)).toBeNull();
    expect(readSessionIdCookie("")).toBeNull();
    expect(readSessionIdCookie("theme=dark")).toBeNull();
    expect(readSessionIdCookie(`xwalkin-session-id=${id}`)).toBeNull();
    expect(readSessionIdCookie("walkin-session-id=not-a-uuid")).toBeNull();
    expect(readSessionIdCookie("walkin-session-id=%E0%A4%A")).toBeNull();
    expect(readSessionIdCookie(`walkin-session-id=${id.toUpperCase()}`)).toBeNull();
    expect(readSessionIdCookie("walkin-session-id=sd1_" + "a".repeat(43))).toBeNull();
    expect(readSessionIdCookie(`walkin-session-id=${id}`.padStart(20_000, " "))).toBeNull();
    expect(readSessionIdCookie(42 as unknown as string)).toBeNull();
  });
});
