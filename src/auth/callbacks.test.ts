import { describe, expect, it } from "vitest";
import { resolveConfig, type WalkinAuthConfig } from "./config.js";
import { Anonymous } from "./providers/Anonymous/index.js";

const refusal = (extra: Record<string, unknown>) => {
  try {
    resolveConfig({ providers: [Anonymous], ...extra } as WalkinAuthConfig);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error("expected the configuration to be refused");
};

describe("auth configuration keys", () => {
  it("refuses Convex Auth's keys Walk-in has no equivalent for, saying what to do instead", () => {
    expect(refusal({ jwt: { durationMs: 60_000 } })).toMatch(/"jwt" is not supported.*opaque.*session\.inactiveDurationMs/);
    expect(refusal({ theme: { brandColor: "#000" } })).toMatch(/"theme" is not supported/);
  });

  it("refuses unknown keys at every level instead of ignoring them", () => {
    expect(refusal({ sesion: {} })).toContain('unknown option "sesion"');
    expect(refusal({ session: { totalDurationMS: 5 } })).toContain('"session.totalDurationMS"');
    expect(refusal({ rateLimits: { anonymous: { limit: 1, windowMs: 1 } } })).toContain('"rateLimits.anonymous"');
  });

  it("refuses callbacks it would not run (a ban check must never silently stop)", () => {
    expect(refusal({ callbacks: { beforeSessionCreate: async () => {} } })).toMatch(/callbacks\.beforeSessionCreate is not a callback Walk-in runs.*beforeSessionCreation/);
    expect(refusal({ callbacks: { redirect: "https://example.com" } })).toContain("callbacks.redirect must be a function");
  });

  it("takes Convex Auth's signIn.maxFailedAttempsPerHour as the password-attempt limit", () => {
    const config = resolveConfig({ providers: [Anonymous], signIn: { maxFailedAttempsPerHour: 3 } });
    expect(config.rateLimits.passwordAttempts).toEqual({ limit: 3, windowMs: 3_600_000 });
    expect(refusal({ signIn: { maxFailedAttempsPerHour: 3 }, rateLimits: { passwordAttempts: { limit: 1, windowMs: 1 } } })).toContain("keep one");
  });

  it("accepts every callback it runs", () => {
    const callbacks = Object.fromEntries(
      ["createOrUpdateUser", "afterUserCreatedOrUpdated", "beforeSessionCreation", "redirect", "mergeAnonymousUser", "onDeleteUser"].map((name) => [name, async () => {}]),
    );
    expect(() => resolveConfig({ providers: [Anonymous], callbacks } as WalkinAuthConfig)).not.toThrow();
  });
});
