import { describe, expect, it } from "vitest";
import { IdentitySync } from "./identitySync.js";

/** The Authenticate's fields, or null when it must wait. */
const send = (identity: IdentitySync, token: string | null) => {
  const next = identity.authenticate(token);
  return next && { baseVersion: next.message.baseVersion, token: next.message.token, identityVersion: next.identityVersion, wanted: next.wanted };
};

describe("IdentitySync", () => {
  it("has one Authenticate unanswered at a time; the next is numbered from the version the server confirmed", () => {
    const identity = new IdentitySync();
    identity.want("ada");
    expect(send(identity, "ada")).toEqual({ baseVersion: 0, token: "ada", identityVersion: 1, wanted: true });
    identity.want("bob");
    // Numbering bob's now would assume ada's was accepted: if it was refused, the server would
    // take bob's baseVersion for a protocol violation and close the connection.
    expect(send(identity, "bob")).toBeNull();
    expect(identity.onTransition(0)).toBe(false); // a Transition from before ada's answers nothing
    expect(identity.onTransition(1)).toBe(true);
    expect(send(identity, "bob")).toEqual({ baseVersion: 1, token: "bob", identityVersion: 2, wanted: true });
  });

  it("an AuthError undoes the refused step, and only an answer to the one in flight counts", () => {
    const identity = new IdentitySync();
    identity.want("bad");
    send(identity, "bad");
    expect(identity.onAuthError(5)).toBe(false); // not about the Authenticate in flight
    expect(identity.hasInFlight()).toBe(true);
    expect(identity.onAuthError(0)).toBe(true); // the wanted token was refused: the app must get another
    expect(identity.latestVersion()).toBe(0);
    identity.want("good");
    expect(send(identity, "good")).toMatchObject({ baseVersion: 0, identityVersion: 1 });
    expect(identity.onAuthError(0)).toBe(true);
    expect(identity.onAuthError(0)).toBe(false); // a second answer to the same one: stale
  });

  it("a refused earlier token (put back for requests re-sent under it) is not the app's to replace", () => {
    const identity = new IdentitySync();
    identity.want("bob");
    expect(send(identity, "ada")).toMatchObject({ baseVersion: 0, wanted: false });
    expect(identity.sentToken()).toBe("ada"); // what requests sent now run under
    expect(identity.needsWantedToken()).toBe(true);
    expect(identity.onAuthError(0)).toBe(false);
    expect(send(identity, "bob")).toMatchObject({ baseVersion: 0, wanted: true });
    expect(identity.needsWantedToken()).toBe(false);
  });

  it("knows the wanted token's version on this connection, and starts over signed out on a new one", () => {
    const identity = new IdentitySync();
    identity.want("ada");
    send(identity, "ada");
    identity.onTransition(1);
    expect(identity.isWantedVersion(1)).toBe(true);
    identity.want("bob"); // set, not sent yet: version 1 is no longer the wanted token's
    expect(identity.isWantedVersion(1)).toBe(false);

    identity.restart();
    expect([identity.latestVersion(), identity.sentToken(), identity.hasInFlight()]).toEqual([0, null, false]);
    expect(identity.needsWantedToken()).toBe(true); // bob goes out again on this connection
    expect(send(identity, "bob")).toMatchObject({ baseVersion: 0, identityVersion: 1, wanted: true });

    const signedOut = new IdentitySync();
    signedOut.want(null); // nothing to sign out of
    expect(signedOut.needsWantedToken()).toBe(false);
    signedOut.wantedInPlace();
    expect(signedOut.isWantedVersion(0)).toBe(true);
  });
});
