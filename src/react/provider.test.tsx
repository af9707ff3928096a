// @vitest-environment jsdom
import { cleanup, renderHook } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { makeFunctionReference as ref } from "../server/api.js";
import { isWalkinError } from "../values/errors.js";
import { useAction, useConnectionState, useMutation, usePaginatedQuery, useQuery, useWalkin } from "./index.js";

afterEach(cleanup);

describe("hooks outside <WalkinProvider>", () => {
  const hooks: Record<string, () => unknown> = {
    useWalkin: () => useWalkin(),
    useQuery: () => useQuery(ref<"query">("messages:list"), {}),
    "useQuery skipped": () => useQuery(ref<"query">("messages:list"), "skip"),
    useMutation: () => useMutation(ref<"mutation">("messages:send")),
    useAction: () => useAction(ref<"action">("messages:shout")),
    usePaginatedQuery: () => usePaginatedQuery(ref<"query">("messages:page"), {}, { initialNumItems: 5 }),
    useConnectionState: () => useConnectionState(),
  };
  for (const [name, hook] of Object.entries(hooks)) {
    it(`${name} says how to fix it`, () => {
      const consoleError = vi.spyOn(console, "error").mockImplementation(() => {});
      let thrown: unknown;
      try {
        renderHook(hook);
      } catch (error) {
        thrown = error;
      }
      consoleError.mockRestore();
      expect(isWalkinError(thrown)).toBe(true);
      expect((thrown as Error).message).toContain("Did you forget to wrap your app in <WalkinProvider client={...}>?");
    });
  }
});
