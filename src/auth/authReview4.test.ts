/**
 * A review of the password and OAuth flows, account upgrade and merge (the fourth auth review),
 * against the real engine and server (the shared auth harness). Each test failed before its fix.
 */
import { describe, expect, it, vi } from "vitest";
import type { LiveBackend } from "../testing/liveBackend.js";
import { sentCodes } from "./fixtures/app.js";
import { from, listTable, newGate, signedIn } from "./fixtures/harness.js";
import { startWithHeldActivityWrites } from "./fixtures/heldActivityWrites.js";
import { approve, rows, signIn, startSignIn, useMockIssuer } from "./fixtures/oauthIssuer.js";
import { Google } from "./providers/Google/index.js";

const issuer = useMockIssuer();

const mine = (backend: LiveBackend, token: string) => backend.engine.runQuery("messages:mine", {}, { token, fromClient: true });
const send = (backend: LiveBackend, token: string, body: string) => backend.engine.runMutation("messages:send", { body }, { token, fromClient: true });

describe("ending every session while a use just before a session's expiry is still being recorded", () => {
  const T = Date.UTC(2030, 0, 1);
  const idleMs = 60_000;
  const email = "owner@example.com";

  /**
   * An account with an old device ("phone", signed in at T) that is used one ms before it
   * idles out; the record of that use (the activity write) is held, and lands only after `end`
   * ran one ms after the old expiry. Answers what the phone's token reads afterwards.
   */
  async function phoneAfter(end: (backend: LiveBackend, laptopToken: string, phoneSessionId: string) => Promise<unknown>) {
    vi.useFakeTimers({ toFake: ["Date"], now: T });
    const { backend, held } = await startWithHeldActivityWrites({ session: { inactiveDurationMs: idleMs, activityResolutionMs: 1_000 } });
    try {
      const phone = await signedIn(backend, "password", { flow: "signUp", email, password: "old password" }, from("10.0.0.1"));
      await send(backend, phone.token, "from the phone");
      vi.setSystemTime(T + idleMs / 2);
      const laptop = await signedIn(backend, "password", { flow: "signIn", email, password: "old password" }, from("10.0.0.2"));

      // One ms before the phone's session idles out, the phone is used: accepted, and its
      // activity write is asked for and held.
      vi.setSystemTime(T + idleMs - 1);
      const gate = newGate();
      held.gate = gate;
      expect(await mine(backend, phone.token)).toEqual(["from the phone"]);
      await gate.arrived;
      held.gate = null;

      // Two ms later the owner ends every session but the laptop's: the phone's looks expired.
      vi.setSystemTime(T + idleMs + 1);
      await end(backend, laptop.token, phone.token.split(".")[1]!);

      // The held write lands. Wait until it has either extended the phone's session (the
      // defect) or there is no session left for it to extend (ended for good).
      gate.open();
      const phoneRow = async () => (await listTable(backend, "authSessions")).find((s) => s._id === phone.token.split(".")[1]);
      await expect.poll(async () => {
        const row = await phoneRow();
        return row === undefined || (row.expiresAt as number) > T + idleMs + 1;
      }).toBe(true);
      return { token: await mine(backend, phone.token), row: await phoneRow() };
    } finally {
      await backend.close();
      vi.useRealTimers();
    }
  }

  it("a password reset: the phone stays signed out, whatever its late activity write says", async () => {
    const after = await phoneAfter(async (backend) => {
      sentCodes.length = 0;
      await backend.engine.runAction("auth:signIn", { provider: "password", params: { flow: "reset", email } }, from("10.0.0.3"));
      const code = sentCodes.find((c) => c.email === email)!.code;
      await signedIn(backend, "password", { flow: "reset-verification", email, code, newPassword: "new password" }, from("10.0.0.3"));
    });
    expect(after.token).toBeNull();
    expect(after.row).toBeUndefined();
  });

  it("revokeOtherSessions: the phone stays signed out, whatever its late activity write says", async () => {
    const after = await phoneAfter((backend, laptopToken) => backend.engine.runMutation("auth:revokeOtherSessions", {}, { token: laptopToken, fromClient: true }));
    expect(after.token).toBeNull();
    expect(after.row).toBeUndefined();
  });

  it("revokeSession of the phone, from its list entry: ended for good, not refused as gone and then revived", async () => {
    const after = await phoneAfter((backend, laptopToken, phoneSessionId) =>
      backend.engine.runMutation("auth:revokeSession", { authSessionId: phoneSessionId }, { token: laptopToken, fromClient: true }),
    );
    expect(after.token).toBeNull();
    expect(after.row).toBeUndefined();
  });
});

describe("Google restricted to one Workspace domain (authorizationParams: { hd })", () => {
  /** The app of a company: only accounts of example.com, as Google's JSDoc example sets it. */
  const startCompanyApp = () =>
    issuer.start({ providers: [Google({ clientId: "google-client", clientSecret: "google-secret", issuer: issuer.url, authorizationParams: { hd: "example.com" } })] });

  /** The browser at the provider and back at our callback; the final sign-in with the app's code, if there is one. */
  async function finish(backend: Awaited<ReturnType<typeof startCompanyApp>>, redirect: string, verifier: string) {
    const response = await fetch(await approve(redirect), { redirect: "manual" });
    if (response.status !== 302) return { status: response.status, page: await response.text() };
    const code = new URL(response.headers.get("location")!).searchParams.get("code")!;
    return { status: 302, result: await signIn(backend, { params: { code }, verifier }) };
  }

  it("an account of another domain (hd removed from the authorization URL, as anyone can) is refused at the callback", async () => {
    const backend = await startCompanyApp();
    const { redirect, verifier } = await startSignIn(backend, "google");
    expect(new URL(redirect).searchParams.get("hd")).toBe("example.com");
    // hd is only a hint to Google's account chooser: the visitor edits it out and signs in with
    // a personal account, whose ID token has no hd claim (another Workspace's has its own).
    const edited = new URL(redirect);
    edited.searchParams.delete("hd");
    for (const claims of [{ sub: "personal-1", email: "eve@gmail.com", email_verified: true }, { sub: "other-2", email: "eve@evil.example", email_verified: true, hd: "evil.example" }]) {
      issuer.idClaims = claims;
      const { redirect: again, verifier: v } = await startSignIn(backend, "google");
      const url = new URL(again);
      url.searchParams.delete("hd");
      const outcome = await finish(backend, url.href, v);
      expect(outcome.status).toBe(400);
      expect(outcome.page).toMatch(/example\.com/);
    }
    expect(await rows(backend, "users")).toEqual([]);
    expect(await rows(backend, "authAccounts")).toEqual([]);
    // The company's own accounts still sign in.
    issuer.idClaims = { sub: "staff-3", email: "ada@example.com", email_verified: true, hd: "example.com" };
    const staff = await finish(backend, edited.href, verifier);
    expect(staff).toMatchObject({ status: 302, result: { kind: "signedIn", isAnonymous: false } });
  });
});
