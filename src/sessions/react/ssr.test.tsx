// @vitest-environment jsdom
/**
 * Server rendering with sessions: `ssrFriendly` renders no ID on the server and in the
 * hydrating render, then the stored one; a cookie-backed ID known to the server
 * (`initialSessionId`) renders the session's own data and hydrates with the same ID.
 */
import { act, cleanup, waitFor } from "@testing-library/react";
import { hydrateRoot, type Root } from "react-dom/client";
import { renderToString } from "react-dom/server";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { WalkinClient } from "../../browser/index.js";
import { WalkinProvider, preloadQuery, usePreloadedQuery, type Preloaded } from "../../react/index.js";
import { api, startSessionBackend } from "./fixtures/backend.js";
import { SessionProvider, useCookieStorage, useSessionId, useSessionMutation, useSessionQuery, type SessionProviderProps } from "./index.js";

let backend: Awaited<ReturnType<typeof startSessionBackend>>;
let client: WalkinClient;
const roots: Root[] = [];
beforeAll(async () => {
  backend = await startSessionBackend();
  client = backend.client();
});
afterEach(async () => {
  await act(async () => roots.splice(0).forEach((r) => r.unmount()));
  cleanup();
  sessionStorage.clear();
  document.cookie = "walkin-session-id=; Max-Age=0; Path=/";
});
afterAll(() => backend.close());

const serverClient = () => new WalkinClient(backend.url, { skipConnect: true });

/** Server-renders `app(serverClient)`, then hydrates `app(client)` over that HTML. */
async function renderThenHydrate(app: (c: WalkinClient) => React.ReactNode) {
  const html = renderToString(app(serverClient()));
  captured = {}; // keep what the hydrating render made, not the server's
  const container = document.createElement("div");
  container.innerHTML = html;
  document.body.appendChild(container);
  const onRecoverableError = vi.fn();
  await act(async () => {
    roots.push(hydrateRoot(container, app(client), { onRecoverableError }));
  });
  return { html, container, onRecoverableError };
}

let captured: { promise?: Promise<string>; send?: (args: { text: string }) => Promise<unknown>; firstId?: string | null } = {};
function Notes() {
  const [sessionId, , promise] = useSessionId();
  const notes = useSessionQuery(api.notes.list);
  const add = useSessionMutation(api.notes.add);
  captured.promise ??= promise;
  if (captured.firstId === undefined) captured.firstId = sessionId ?? null;
  captured.send ??= add;
  return (
    <p>{`id: ${sessionId ?? "none"}; notes: ${notes === undefined ? "loading" : notes.join(",")}`}</p>
  );
}

const tree = (props: Omit<SessionProviderProps, "children">, children = <Notes />) => (c: WalkinClient) => (
  <WalkinProvider client={c}>
    <SessionProvider {...props}>{children}</SessionProvider>
  </WalkinProvider>
);

describe("ssrFriendly", () => {
  it("renders no ID on the server and while hydrating, then the stored ID, with no mismatch", async () => {
    const { html, container, onRecoverableError } = await renderThenHydrate(tree({ ssrFriendly: true }));
    expect(html).toContain("id: none; notes: loading");
    const id = sessionStorage.getItem("walkin-session-id")!;
    await waitFor(() => expect(container.textContent).toBe(`id: ${id}; notes: `));
    expect(onRecoverableError).not.toHaveBeenCalled();
    // The hydrating render had no ID; its promise and mutation function resolve with / use it.
    expect(captured.firstId).toBeNull();
    await expect(captured.promise).resolves.toBe(id);
    await act(() => captured.send!({ text: "hydrated" }));
    await waitFor(() => expect(container.textContent).toBe(`id: ${id}; notes: hydrated`));
  });

  it("without ssrFriendly, a client-only render has the ID at once", async () => {
    const container = document.createElement("div");
    const { createRoot } = await import("react-dom/client");
    const root = createRoot(container);
    roots.push(root);
    await act(async () => root.render(tree({})(client)));
    expect(container.textContent).toMatch(/^id: [0-9a-f-]{36}; /);
  });
});

describe("cookie storage with initialSessionId", () => {
  it("the server renders the session's own data, and the client hydrates with the same ID", async () => {
    const id = "0c5f4a52-4c4b-4d46-9c44-0e0c8e7a3b11";
    await client.mutation(api.notes.add, { sessionId: id, text: "from the server" });
    document.cookie = `walkin-session-id=${id}; Path=/`; // what the server read the ID from
    const preloaded = await preloadQuery(api.notes.list, { sessionId: id }, { url: backend.url });

    function Preloaded({ notes }: { notes: Preloaded<typeof api.notes.list> }) {
      const [sessionId] = useSessionId();
      return <p>{`id: ${sessionId}; notes: ${usePreloadedQuery(notes).join(",")}`}</p>;
    }
    const props = { ssrFriendly: true, useStorage: useCookieStorage, initialSessionId: id };
    const { html, container, onRecoverableError } = await renderThenHydrate(tree(props, <Preloaded notes={preloaded} />));
    expect(html).toContain(`id: ${id}; notes: from the server`);
    expect(container.textContent).toBe(`id: ${id}; notes: from the server`);
    expect(onRecoverableError).not.toHaveBeenCalled();
  });

  it("adopts the server's ID when the cookie is missing on the client", async () => {
    const id = "7d1c7e8a-1f2b-4c3d-8e4f-5a6b7c8d9e0f";
    const { container, onRecoverableError } = await renderThenHydrate(tree({ ssrFriendly: true, useStorage: useCookieStorage, initialSessionId: id }));
    await waitFor(() => expect(container.textContent).toBe(`id: ${id}; notes: `));
    expect(document.cookie).toContain(`walkin-session-id=${id}`);
    expect(onRecoverableError).not.toHaveBeenCalled();
  });
});
