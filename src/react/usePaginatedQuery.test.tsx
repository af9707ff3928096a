// @vitest-environment jsdom
/**
 * `usePaginatedQuery` against the real server: pages load, loadMore appends, the end is
 * reported, and live writes land in the right page without shifting page boundaries.
 * `messages:page` lists a channel newest first.
 */
import { act, render, renderHook, screen, waitFor } from "@testing-library/react";
import { StrictMode } from "react";
import { describe, expect, it, vi } from "vitest";
import { api, startBackend } from "./fixtures/backend.js";
import { ErrorBoundary, liveBackendPerFile, trackSubscriptions } from "./fixtures/react.js";
import { usePaginatedQuery, type PaginatedQueryReference } from "./index.js";

const live = liveBackendPerFile(startBackend);
const { wrapper } = live;

async function seed(channel: string, bodies: string[]) {
  for (const body of bodies) await live.other.mutation(api.messages.send, { channel, body });
}

function usePages(channel: string | "skip", initialNumItems = 2) {
  return usePaginatedQuery(api.messages.page, channel === "skip" ? "skip" : { channel }, { initialNumItems });
}

describe("usePaginatedQuery", () => {
  it("loads the first page, more pages on demand, and reports the end", async () => {
    await seed("five", ["m1", "m2", "m3", "m4", "m5"]);
    const { result } = renderHook(() => usePages("five"), { wrapper });
    expect(result.current).toMatchObject({ results: [], status: "LoadingFirstPage", isLoading: true });

    await waitFor(() => expect(result.current.status).toBe("CanLoadMore"));
    expect(result.current).toMatchObject({ results: ["m5", "m4"], isLoading: false });

    act(() => result.current.loadMore(2));
    expect(result.current).toMatchObject({ results: ["m5", "m4"], status: "LoadingMore", isLoading: true });
    await waitFor(() => expect(result.current.status).toBe("CanLoadMore"));
    expect(result.current.results).toEqual(["m5", "m4", "m3", "m2"]);

    act(() => result.current.loadMore(2));
    await waitFor(() => expect(result.current.status).toBe("Exhausted"));
    expect(result.current.results).toEqual(["m5", "m4", "m3", "m2", "m1"]);

    // Nothing more to load: loadMore does nothing.
    const exhausted = result.current;
    act(() => result.current.loadMore(2));
    expect(result.current).toBe(exhausted);
  });

  it("keeps page boundaries fixed: a live insert grows the pinned page instead of shifting items", async () => {
    await seed("live", ["m1", "m2", "m3", "m4"]);
    const { result } = renderHook(() => usePages("live"), { wrapper });
    await waitFor(() => expect(result.current.results).toEqual(["m4", "m3"]));

    // One unpinned page: a new message shows at the top and the page stays 2 long.
    await live.other.mutation(api.messages.send, { channel: "live", body: "m5" });
    await waitFor(() => expect(result.current.results).toEqual(["m5", "m4"]));

    act(() => result.current.loadMore(2));
    await waitFor(() => expect(result.current.results).toEqual(["m5", "m4", "m3", "m2"]));
    expect(result.current.status).toBe("CanLoadMore");

    // Page 0 is now pinned at m4: m6 lands in it and m4 neither disappears nor repeats.
    await live.other.mutation(api.messages.send, { channel: "live", body: "m6" });
    await waitFor(() => expect(result.current.results).toEqual(["m6", "m5", "m4", "m3", "m2"]));

    act(() => result.current.loadMore(10));
    await waitFor(() => expect(result.current.status).toBe("Exhausted"));
    expect(result.current.results).toEqual(["m6", "m5", "m4", "m3", "m2", "m1"]);
  });

  it("goes from Exhausted back to CanLoadMore when the last page outgrows its size", async () => {
    await seed("grow", ["m1"]);
    const { result } = renderHook(() => usePages("grow"), { wrapper });
    await waitFor(() => expect(result.current.status).toBe("Exhausted"));
    expect(result.current.results).toEqual(["m1"]);
    await seed("grow", ["m2", "m3"]);
    await waitFor(() => expect(result.current.status).toBe("CanLoadMore"));
    expect(result.current.results).toEqual(["m3", "m2"]);
  });

  it("does nothing when skipped, and starts over when the args change", async () => {
    await seed("one", ["a1", "a2", "a3"]);
    await seed("two", ["b1"]);
    const { result, rerender } = renderHook(({ channel }) => usePages(channel), {
      wrapper,
      initialProps: { channel: "skip" },
    });
    expect(result.current).toMatchObject({ results: [], status: "LoadingFirstPage" });
    act(() => result.current.loadMore(2)); // harmless

    rerender({ channel: "one" });
    await waitFor(() => expect(result.current.results).toEqual(["a3", "a2"]));
    act(() => result.current.loadMore(2));
    await waitFor(() => expect(result.current.status).toBe("Exhausted"));

    rerender({ channel: "two" });
    await waitFor(() => expect(result.current.results).toEqual(["b1"]));
    expect(result.current.status).toBe("Exhausted");

    rerender({ channel: "one" });
    await waitFor(() => expect(result.current.results).toEqual(["a3", "a2"])); // one page again
  });

  it("works under StrictMode (effects run twice)", async () => {
    await seed("strict", ["s1", "s2", "s3"]);
    const { result } = renderHook(() => usePages("strict"), {
      wrapper: ({ children }) => <StrictMode>{wrapper({ children })}</StrictMode>,
    });
    await waitFor(() => expect(result.current.results).toEqual(["s3", "s2"]));
    act(() => result.current.loadMore(2));
    await waitFor(() => expect(result.current.status).toBe("Exhausted"));
    expect(result.current.results).toEqual(["s3", "s2", "s1"]);
  });

  it("rejects page sizes that are not positive integers", () => {
    expect(() => renderHook(() => usePages("x", 0), { wrapper })).toThrow(/initialNumItems must be a positive integer/);
  });
});

describe("usePaginatedQuery subscriptions and errors", () => {
  it("keeps the pages it already has subscribed while loading more, and drops them all on unmount", async () => {
    await seed("subs", ["m1", "m2", "m3", "m4", "m5", "m6"]);
    const { active, dropped, spy } = trackSubscriptions(live.client);
    try {
      const { result, unmount } = renderHook(() => usePages("subs"), { wrapper });
      await waitFor(() => expect(result.current.results).toEqual(["m6", "m5"]));
      act(() => result.current.loadMore(2));
      await waitFor(() => expect(result.current.results).toHaveLength(4));
      const pinnedFirstPage = [...active].find(([key, n]) => n > 0 && key.includes('"endCursor"') && key.includes('"cursor":null'));
      expect(pinnedFirstPage).toBeDefined();
      const droppedBefore = dropped.length;
      act(() => result.current.loadMore(2));
      await waitFor(() => expect(result.current.status).toBe("CanLoadMore"));
      expect(result.current.results).toEqual(["m6", "m5", "m4", "m3", "m2", "m1"]);
      // Only page 1's unpinned query was replaced; page 0 (pinned) was never dropped.
      expect(dropped.slice(droppedBefore)).toHaveLength(1);
      expect(dropped).not.toContain(pinnedFirstPage![0]);
      unmount();
      await Promise.resolve(); // unsubscribes are deferred by a microtask
      expect([...active.values()].every((n) => n === 0)).toBe(true);
    } finally {
      spy.mockRestore();
    }
  });

  it("throws a page's error into the render, and explains a query that does not paginate", async () => {
    const consoleError = vi.spyOn(console, "error").mockImplementation(() => {});
    function NotPaginated() {
      const notPaginated = api.messages.notAPage as unknown as PaginatedQueryReference;
      const { status } = usePaginatedQuery(notPaginated, {}, { initialNumItems: 2 });
      return <p>{status}</p>;
    }
    try {
      render(<ErrorBoundary><NotPaginated /></ErrorBoundary>, { wrapper });
      const caught = await screen.findByText(/^caught:/);
      expect(caught.textContent).toBe(
        "caught: usePaginatedQuery: messages:notAPage did not return a page. A paginated query must return " +
          "ctx.db.query(...).paginate(args.paginationOpts).",
      );
    } finally {
      consoleError.mockRestore();
    }
  });
});
