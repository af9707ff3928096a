import { describe, expect, it } from "vitest";
import { AuthState, type AuthEffect, type FetchToken } from "./authState.js";

const fetchToken: FetchToken = async () => "t";
const onChange = () => {};

/** Effects without the callbacks, for readable expectations. */
const plain = (effects: AuthEffect[]) =>
  effects.map((e) =>
    e.type === "fetchToken" ? { fetch: e.forceRefreshToken, generation: e.generation } : e.type === "authenticate" ? { authenticate: e.token } : { notify: e.isAuthenticated },
  );

describe("AuthState", () => {
  it("fetches, sends, and reports authenticated once the server confirms the identity version", () => {
    const a = new AuthState();
    expect(plain(a.set(fetchToken, onChange))).toEqual([{ fetch: false, generation: 1 }]);
    expect(a.isFetching()).toBe(true);
    expect(plain(a.tokenFetched(1, "tok"))).toEqual([{ authenticate: "tok" }]);
    expect(a.isFetching()).toBe(false);
    a.onAuthenticateSent(3);
    expect(plain(a.onTransition(2))).toEqual([]); // computed under the previous identity
    expect(a.isAuthenticated()).toBe(false);
    expect(plain(a.onTransition(3))).toEqual([{ notify: true }]);
    expect(a.isAuthenticated()).toBe(true);
    expect(plain(a.onTransition(4))).toEqual([]);
  });

  it("on AuthError refreshes once with forceRefreshToken, then signs out", () => {
    const a = new AuthState();
    a.set(fetchToken, onChange);
    a.tokenFetched(1, "stale");
    a.onAuthenticateSent(1);
    expect(plain(a.onAuthError())).toEqual([{ fetch: true, generation: 2 }]);
    expect(a.isFetching()).toBe(true);
    expect(plain(a.onAuthError())).toEqual([]); // while fetching, nothing more to do
    expect(plain(a.tokenFetched(2, "fresh"))).toEqual([{ authenticate: "fresh" }]);
    a.onAuthenticateSent(1);
    expect(plain(a.onAuthError())).toEqual([{ authenticate: null }, { notify: false }]);
    expect(a.isAuthenticated()).toBe(false);
    expect(a.isFetching()).toBe(false);
  });

  it("an accepted refresh earns another refresh later (token revoked days after)", () => {
    const a = new AuthState();
    a.set(fetchToken, onChange);
    a.tokenFetched(1, "t1");
    a.onAuthenticateSent(1);
    a.onTransition(1);
    expect(plain(a.onAuthError())).toEqual([{ fetch: true, generation: 2 }]);
    a.tokenFetched(2, "t2");
    a.onAuthenticateSent(1);
    expect(plain(a.onTransition(1))).toEqual([]); // still authenticated: no repeated onChange(true)
    expect(plain(a.onAuthError())).toEqual([{ fetch: true, generation: 3 }]);
  });

  it("treats null, empty and thrown tokens as signed out", () => {
    for (const token of [null, undefined, "", new Error("offline")]) {
      const a = new AuthState();
      a.set(fetchToken, onChange);
      expect(plain(a.tokenFetched(1, token))).toEqual([{ authenticate: null }, { notify: false }]);
    }
  });

  it("ignores tokens fetched for a replaced or cleared setAuth", () => {
    const a = new AuthState();
    a.set(fetchToken, onChange);
    a.set(fetchToken, onChange);
    expect(plain(a.tokenFetched(1, "old"))).toEqual([]);
    expect(plain(a.clear())).toEqual([{ authenticate: null }]);
    expect(plain(a.tokenFetched(2, "late"))).toEqual([]);
    expect(plain(a.clear())).toEqual([]);
  });

  it("a reconnect re-arms the confirmation under the new connection's identity version", () => {
    const a = new AuthState();
    a.set(fetchToken, onChange);
    a.tokenFetched(1, "tok");
    a.onAuthenticateSent(1); // sent on a connection that then dropped
    a.onRestart();
    // A Transition of the new connection before the token is sent there confirms nothing.
    expect(plain(a.onTransition(1))).toEqual([]);
    a.onAuthenticateSent(2); // re-sent after a request's own token
    expect(plain(a.onTransition(1))).toEqual([]);
    expect(plain(a.onTransition(2))).toEqual([{ notify: true }]);
  });
});
