import type { ComponentProps } from "react";
import { describe, expectTypeOf, it } from "vitest";
import type { WalkinClient } from "../../browser/index.js";
import type { AuthClient, AuthSnapshot, SessionRefresh, StorageLike } from "../browser/index.js";
import {
  AuthLoading,
  AuthProvider,
  Authenticated,
  Unauthenticated,
  useAuth,
  useAuthActions,
  type AuthActions,
  type AuthState,
  type SignInOutcome,
} from "./index.js";

describe("walkin/auth/react types", () => {
  it("useAuth gives the four fields, without the token", () => {
    expectTypeOf(useAuth()).toEqualTypeOf<AuthState>();
    expectTypeOf(useAuth()).toEqualTypeOf<{ isLoading: boolean; isAuthenticated: boolean; isAnonymous: boolean; userId: string | null }>();
    expectTypeOf(useAuth()).not.toHaveProperty("token");
  });

  it("useAuthActions: signIn(provider?, params?) and signOut()", () => {
    const { signIn, signOut } = useAuthActions();
    expectTypeOf(useAuthActions()).toEqualTypeOf<AuthActions>();
    expectTypeOf(signIn).toBeCallableWith();
    expectTypeOf(signIn).toBeCallableWith("anonymous");
    expectTypeOf(signIn).toBeCallableWith("password", { email: "a@example.com", flow: "signUp" });
    expectTypeOf(signIn).toBeCallableWith("password", new FormData());
    expectTypeOf(signIn).returns.toEqualTypeOf<Promise<SignInOutcome>>();
    expectTypeOf(signOut).returns.toEqualTypeOf<Promise<void>>();
    // @ts-expect-error params are values, not functions
    void signIn("password", { email: () => "a" });
    // @ts-expect-error the provider is a string
    void signIn(42);
  });

  it("a sign-in outcome narrows on kind, and never carries the token", () => {
    const outcome = {} as SignInOutcome;
    if (outcome.kind === "signedIn") expectTypeOf(outcome.userId).toEqualTypeOf<string>();
    if (outcome.kind === "redirect") expectTypeOf(outcome.redirect).toEqualTypeOf<string>();
    if (outcome.kind === "unchanged") expectTypeOf(outcome.isAnonymous).toEqualTypeOf<boolean>();
    expectTypeOf<Extract<SignInOutcome, { token: string }>>().toBeNever();
  });

  it("AuthProvider: client optional, storage by name or object, nothing else", () => {
    type Props = ComponentProps<typeof AuthProvider>;
    expectTypeOf<Props["client"]>().toEqualTypeOf<WalkinClient | undefined>();
    expectTypeOf<"localStorage">().toExtend<NonNullable<Props["storage"]>>();
    expectTypeOf<"memory">().toExtend<NonNullable<Props["storage"]>>();
    expectTypeOf<StorageLike>().toExtend<NonNullable<Props["storage"]>>();
    expectTypeOf<"cookies">().not.toExtend<NonNullable<Props["storage"]>>();
    expectTypeOf<ComponentProps<typeof Authenticated>>().toEqualTypeOf<ComponentProps<typeof Unauthenticated>>();
    expectTypeOf<ComponentProps<typeof AuthLoading>>().toHaveProperty("children");
  });

  it("AuthClient: a snapshot for useSyncExternalStore; sessions fit SessionRefresh", () => {
    const auth = {} as AuthClient;
    expectTypeOf(auth.getSnapshot).returns.toEqualTypeOf<AuthSnapshot>();
    expectTypeOf(auth.subscribe).toEqualTypeOf<(listener: () => void) => () => void>();
    expectTypeOf(auth.getSnapshot().token).toEqualTypeOf<string | null>();
    expectTypeOf(auth.handleRedirect).returns.toEqualTypeOf<Promise<SignInOutcome | null>>();
    // A SessionIdSource's refresh (which resolves with the new ID) is accepted as is.
    const refresh = (beforeUpdate?: (newId: string) => unknown | Promise<unknown>): Promise<string> => Promise.resolve(String(beforeUpdate));
    expectTypeOf({ sessionId: "s", refresh }).toExtend<SessionRefresh>();
  });
});
