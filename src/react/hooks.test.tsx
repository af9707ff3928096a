// @vitest-environment jsdom
/**
 * The hooks against the real server and client: queries, mutations, actions and connection
 * state over a WebSocket to an in-memory backend.
 */
import { act, render, renderHook, screen, waitFor } from "@testing-library/react";
import { StrictMode } from "react";
import { describe, expect, it, vi } from "vitest";
import { api, startBackend } from "./fixtures/backend.js";
import { ErrorBoundary, liveBackendPerFile, trackSubscriptions } from "./fixtures/react.js";
import { WalkinProvider, useAction, useConnectionState, useMutation, useQuery } from "./index.js";

const live = liveBackendPerFile(startBackend);
const { wrapper } = live;

describe("useQuery", () => {
  it("is undefined while loading, then the result, then live updates from other clients", async () => {
    const { result } = renderHook(() => useQuery(api.messages.list, { channel: "live" }), { wrapper });
    expect(result.current).toBeUndefined();
    await waitFor(() => expect(result.current).toEqual([]));
    await live.other.mutation(api.messages.send, { channel: "live", body: "hello" });
    await waitFor(() => expect(result.current).toEqual(["hello"]));
  });

  it("works under StrictMode (effects run twice)", async () => {
    const { result } = renderHook(() => useQuery(api.messages.list, { channel: "strict" }), {
      wrapper: ({ children }) => <StrictMode>{wrapper({ children })}</StrictMode>,
    });
    await waitFor(() => expect(result.current).toEqual([]));
    await live.other.mutation(api.messages.send, { channel: "strict", body: "s" });
    await waitFor(() => expect(result.current).toEqual(["s"]));
  });

  it("keeps the result object while it is unchanged, and does not re-render for other queries", async () => {
    let listRenders = 0;
    function List() {
      const list = useQuery(api.messages.list, { channel: "same" });
      listRenders++;
      return <p>list: {list === undefined ? "loading" : `[${list.join(",")}]`}</p>;
    }
    function Counter() {
      const count = useQuery(api.counters.get, { name: "same" });
      return <p>count: {count ?? "loading"}</p>;
    }
    render(<><List /><Counter /></>, { wrapper });
    await screen.findByText("list: []");
    await screen.findByText("count: 0");
    const rendersBefore = listRenders;
    await live.other.mutation(api.counters.increment, { name: "same" });
    await screen.findByText("count: 1");
    expect(listRenders).toBe(rendersBefore);

    // A query re-run by a commit it read, with an equal result, keeps its object.
    const { result } = renderHook(
      () => ({ summary: useQuery(api.messages.summary), list: useQuery(api.messages.list, { channel: "same" }) }),
      { wrapper },
    );
    await live.other.mutation(api.messages.send, { channel: "same", body: "one" });
    await waitFor(() => expect(result.current.list).toEqual(["one"]));
    const summary = result.current.summary;
    expect(summary).toEqual({ any: true });
    await live.other.mutation(api.messages.send, { channel: "same", body: "two" });
    await waitFor(() => expect(result.current.list).toEqual(["one", "two"]));
    expect(result.current.summary).toBe(summary);
  });

  it("compares args by value and unsubscribes the old query when they change", async () => {
    const { active, spy } = trackSubscriptions(live.client);
    try {
      const { result, rerender } = renderHook(({ channel }) => useQuery(api.messages.list, { channel }), {
        wrapper,
        initialProps: { channel: "args-a" },
      });
      await waitFor(() => expect(result.current).toEqual([]));
      const watches = spy.mock.calls.length;
      rerender({ channel: "args-a" }); // a new args object with the same value
      expect(spy.mock.calls.length).toBe(watches);
      expect(active.get('messages:list {"channel":"args-a"}')).toBe(1);

      await live.other.mutation(api.messages.send, { channel: "args-b", body: "in b" });
      rerender({ channel: "args-b" });
      await waitFor(() => expect(result.current).toEqual(["in b"]));
      expect(active.get('messages:list {"channel":"args-a"}')).toBe(0);
      expect(active.get('messages:list {"channel":"args-b"}')).toBe(1);
    } finally {
      spy.mockRestore();
    }
  });

  it('does not run a query whose args are "skip", and runs it once they are not', async () => {
    const { active, spy } = trackSubscriptions(live.client);
    try {
      const { result, rerender } = renderHook(
        ({ skip }) => useQuery(api.messages.list, skip ? "skip" : { channel: "skip" }),
        { wrapper, initialProps: { skip: true } },
      );
      expect(result.current).toBeUndefined();
      expect(spy).not.toHaveBeenCalled();
      rerender({ skip: false });
      await waitFor(() => expect(result.current).toEqual([]));
      rerender({ skip: true });
      expect(result.current).toBeUndefined();
      expect(active.get('messages:list {"channel":"skip"}')).toBe(0);
    } finally {
      spy.mockRestore();
    }
  });

  it("throws the query's error into the render, for the nearest error boundary", async () => {
    const consoleError = vi.spyOn(console, "error").mockImplementation(() => {});
    function Broken() {
      const value = useQuery(api.messages.broken, { reason: "on purpose" });
      return <p>value: {String(value)}</p>;
    }
    try {
      render(<ErrorBoundary><Broken /></ErrorBoundary>, { wrapper });
      expect(screen.getByText("value: undefined")).toBeTruthy();
      const caught = await screen.findByText(/^caught:/);
      expect(caught.textContent).toBe("caught: broken: on purpose");
    } finally {
      consoleError.mockRestore();
    }
  });
});

describe("useMutation", () => {
  it("returns a stable function; withOptimisticUpdate returns a new one and changes nothing", async () => {
    const { result, rerender } = renderHook(() => useMutation(api.messages.send), { wrapper });
    const send = result.current;
    rerender();
    expect(result.current).toBe(send);
    const optimistic = send.withOptimisticUpdate(() => {});
    expect(optimistic).not.toBe(send);
    expect(send.withOptimisticUpdate(() => {})).not.toBe(optimistic); // send itself was not changed
    expect(() => optimistic.withOptimisticUpdate(() => {})).toThrow(/withOptimisticUpdate twice/);
    await expect(send({ channel: "stable", body: "x" })).resolves.toBe("x");
  });

  it("shows an optimistic update at once, then the server's result", async () => {
    const { result } = renderHook(
      () => ({
        list: useQuery(api.messages.list, { channel: "optimistic" }),
        send: useMutation(api.messages.send).withOptimisticUpdate((store, { channel, body }) => {
          const list = store.getQuery(api.messages.list, { channel });
          if (list !== undefined) store.setQuery(api.messages.list, { channel }, [...list, `${body} (sending)`]);
        }),
      }),
      { wrapper },
    );
    await waitFor(() => expect(result.current.list).toEqual([]));
    let sent!: Promise<string>;
    act(() => {
      sent = result.current.send({ channel: "optimistic", body: "hi" });
    });
    expect(result.current.list).toEqual(["hi (sending)"]);
    await act(() => sent);
    expect(result.current.list).toEqual(["hi"]);
  });

  it("rolls the optimistic update back when the mutation fails", async () => {
    const { result } = renderHook(
      () => ({
        list: useQuery(api.messages.list, { channel: "rollback" }),
        send: useMutation(api.messages.sendThenFail).withOptimisticUpdate((store, { channel, body }) => {
          const list = store.getQuery(api.messages.list, { channel });
          if (list !== undefined) store.setQuery(api.messages.list, { channel }, [...list, body]);
        }),
      }),
      { wrapper },
    );
    await waitFor(() => expect(result.current.list).toEqual([]));
    let sent!: Promise<string>;
    act(() => {
      sent = result.current.send({ channel: "rollback", body: "doomed" });
    });
    expect(result.current.list).toEqual(["doomed"]);
    await act(() => expect(sent).rejects.toMatchObject({ code: "APPLICATION", message: "refused", data: { body: "doomed" } }));
    await waitFor(() => expect(result.current.list).toEqual([]));
  });
});

describe("useAction", () => {
  it("returns a stable function that runs the action", async () => {
    const { result, rerender } = renderHook(() => useAction(api.messages.shout), { wrapper });
    const shout = result.current;
    rerender();
    expect(result.current).toBe(shout);
    await expect(shout({ text: "hi" })).resolves.toBe("HI");
  });
});

describe("useConnectionState", () => {
  it("follows the client's connection: connected, then disconnected when the server goes away", async () => {
    const own = await startBackend();
    const ownClient = own.client();
    try {
      const { result } = renderHook(() => useConnectionState(), {
        wrapper: ({ children }) => <WalkinProvider client={ownClient}>{children}</WalkinProvider>,
      });
      await waitFor(() => expect(result.current).toMatchObject({ isWebSocketConnected: true, hasEverConnected: true }));
      const connected = result.current;
      await own.stopServer();
      await waitFor(() => expect(result.current.isWebSocketConnected).toBe(false));
      expect(result.current).not.toBe(connected);
      expect(result.current.hasEverConnected).toBe(true);
    } finally {
      await own.close();
    }
  });
});
