// @vitest-environment jsdom
/**
 * Server rendering: no socket and no subscription while rendering on the server, and
 * preloaded queries that hydrate without a mismatch or a loading flash.
 */
import { act, cleanup, waitFor } from "@testing-library/react";
import { hydrateRoot, type Root } from "react-dom/client";
import { renderToString } from "react-dom/server";
import { WebSocket } from "ws";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { WalkinClient } from "../browser/index.js";
import { isWalkinError } from "../values/errors.js";
import { api, startBackend, type Backend } from "./fixtures/backend.js";
import {
  WalkinProvider,
  fetchQuery,
  preloadQuery,
  useConnectionState,
  useMutation,
  usePaginatedQuery,
  usePreloadedQuery,
  useQuery,
  type Preloaded,
} from "./index.js";

let backend: Backend;
let other: WalkinClient;
beforeAll(async () => {
  backend = await startBackend();
  other = backend.client();
});
afterEach(cleanup);
afterAll(() => backend.close());

/** A client as a server renderer makes it, with a WebSocket that records any use. */
function serverClient() {
  const webSocketConstructor = vi.fn();
  const client = new WalkinClient(backend.url, { skipConnect: true, webSocketConstructor: webSocketConstructor as never });
  const watchQuery = vi.spyOn(client, "watchQuery");
  return { client, webSocketConstructor, watchQuery };
}

function Everything() {
  const list = useQuery(api.messages.list, { channel: "ssr" });
  const pages = usePaginatedQuery(api.messages.page, { channel: "ssr" }, { initialNumItems: 5 });
  const { isWebSocketConnected } = useConnectionState();
  useMutation(api.messages.send);
  return (
    <p>
      {list === undefined ? "loading" : list.join(",")} / {pages.status} / {String(isWebSocketConnected)}
    </p>
  );
}

describe("server rendering", () => {
  it("opens no socket and subscribes to nothing", () => {
    const { client, webSocketConstructor, watchQuery } = serverClient();
    const html = renderToString(
      <WalkinProvider client={client}>
        <Everything />
      </WalkinProvider>,
    );
    expect(html).toBe("<p>loading<!-- --> / <!-- -->LoadingFirstPage<!-- --> / <!-- -->false</p>");
    expect(webSocketConstructor).not.toHaveBeenCalled();
    expect(watchQuery).not.toHaveBeenCalled();
  });
});

describe("fetchQuery against the server", () => {
  it("returns the result, and throws the query's error with its code and data", async () => {
    await other.mutation(api.messages.send, { channel: "fetch", body: "one" });
    expect(await fetchQuery(api.messages.list, { channel: "fetch" }, { url: backend.url })).toEqual(["one"]);
    const error = await fetchQuery(api.messages.broken, { reason: "x" }, { url: backend.url }).catch((e: unknown) => e);
    expect(isWalkinError(error)).toBe(true);
    expect(error).toMatchObject({ code: "APPLICATION", message: "broken: x", data: { reason: "x" } });
  });
});

describe("usePreloadedQuery", () => {
  function Messages({ preloaded }: { preloaded: Preloaded<typeof api.messages.list> }) {
    const messages = usePreloadedQuery(preloaded);
    const count = useQuery(api.counters.get, { name: "ssr" });
    return (
      <div>
        <ul>{messages.map((m) => <li key={m}>{m}</li>)}</ul>
        <p>count: {count ?? "loading"}</p>
      </div>
    );
  }

  it("hydrates the preloaded value without a mismatch, then follows the live query", async () => {
    await other.mutation(api.messages.send, { channel: "hydrate", body: "first" });
    // Server: preload, pass through JSON (as framework props are), render.
    const preloaded = JSON.parse(
      JSON.stringify(await preloadQuery(api.messages.list, { channel: "hydrate" }, { url: backend.url })),
    ) as Preloaded<typeof api.messages.list>;
    const server = serverClient();
    const html = renderToString(
      <WalkinProvider client={server.client}>
        <Messages preloaded={preloaded} />
      </WalkinProvider>,
    );
    expect(html).toContain("<li>first</li>");
    expect(server.webSocketConstructor).not.toHaveBeenCalled();

    // Browser: hydrate the server's HTML with a connected client.
    const container = document.createElement("div");
    container.innerHTML = html;
    document.body.appendChild(container);
    const client = new WalkinClient(backend.url, { webSocketConstructor: WebSocket as never, logger: false });
    const onRecoverableError = vi.fn();
    const consoleError = vi.spyOn(console, "error");
    const seen: string[] = [];
    const observer = new MutationObserver(() => seen.push(container.innerHTML));
    observer.observe(container, { subtree: true, childList: true, characterData: true });
    let root!: Root;
    try {
      await act(async () => {
        root = hydrateRoot(
          container,
          <WalkinProvider client={client}>
            <Messages preloaded={preloaded} />
          </WalkinProvider>,
          { onRecoverableError },
        );
      });
      await waitFor(() => expect(container.textContent).toContain("count: 0"));
      await other.mutation(api.messages.send, { channel: "hydrate", body: "second" });
      await waitFor(() => expect(container.querySelectorAll("li")).toHaveLength(2));
      expect(onRecoverableError).not.toHaveBeenCalled();
      expect(consoleError).not.toHaveBeenCalled();
      // The list was never empty on the way: no loading flash.
      expect(seen.every((snapshot) => snapshot.includes("<li>first</li>"))).toBe(true);
    } finally {
      observer.disconnect();
      consoleError.mockRestore();
      act(() => root.unmount());
      container.remove();
      await client.close();
    }
  });
});
