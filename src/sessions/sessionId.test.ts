/** The session ID format: what clients may send, what handlers get, and what errors say. */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { validateResult } from "../values/validate.js";
import { normalizeValue } from "../values/normalize.js";
import { isRawSessionId, isSessionDigest, sessionDigest, vSessionId } from "./sessionId.js";

const check = (value: unknown, trusted: boolean) => validateResult(vSessionId, value as string, { path: "args.sessionId", trusted });

describe("vSessionId", () => {
  it("accepts a UUID v4 from clients and normalizes it to a stable digest", () => {
    const raw = randomUUID();
    expect(check(raw, false).ok).toBe(true);
    const digest = normalizeValue(vSessionId, raw, false) as string;
    expect(digest).toMatch(/^sd1_[A-Za-z0-9_-]{43}$/);
    expect(digest).toBe(sessionDigest(raw));
    expect(digest).not.toContain(raw);
    expect(sessionDigest(digest)).toBe(digest);
    expect(sessionDigest(randomUUID())).not.toBe(digest);
  });

  it("refuses a digest from a client, with a message saying what to send", () => {
    const result = check(sessionDigest(randomUUID()), false);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.message).toContain("this is a session digest (what functions see), not a session ID; send the ID the client generated");
  });

  it("accepts a digest from trusted server code", () => {
    expect(check(sessionDigest(randomUUID()), true).ok).toBe(true);
  });

  it.each([
    ["", "an empty string"],
    ["not-a-uuid", "a string of 10 characters"],
    [randomUUID().toUpperCase(), "uppercase"],
    ["123e4567-e89b-12d3-a456-426614174000", "not version 4"],
    ["123e4567-e89b-42d3-c456-426614174000", "invalid variant"],
    ["x".repeat(10_000), "a string of 10000 characters"],
  ])("refuses a malformed ID (%#) without echoing it", (value, description) => {
    for (const trusted of [false, true]) {
      const result = check(value, trusted);
      expect(result.ok).toBe(false);
      const message = result.ok ? "" : result.message;
      expect(message).toContain("expected a session ID: expected the UUID the client generated (e.g. from crypto.randomUUID())");
      expect(message).toContain(description);
      if (value.length > 0) expect(message).not.toContain(value);
    }
  });

  it("refuses non-strings by type", () => {
    expect(check(42, false).ok).toBe(false);
    expect(check(null, true).ok).toBe(false);
  });

  it("tells raw IDs and digests apart", () => {
    const raw = randomUUID();
    expect(isRawSessionId(raw)).toBe(true);
    expect(isSessionDigest(raw)).toBe(false);
    expect(isSessionDigest(sessionDigest(raw))).toBe(true);
    expect(isRawSessionId(sessionDigest(raw))).toBe(false);
  });
});
