/**
 * A real server runtime (no window, no storage): with `ssrFriendly` the provider makes no
 * source, generates nothing and renders no ID; session queries skip.
 */
import { renderToString } from "react-dom/server";
import { describe, expect, it, vi } from "vitest";
import { WalkinClient } from "../../browser/index.js";
import { WalkinProvider } from "../../react/index.js";
import { api } from "./fixtures/backend.js";
import { SessionProvider, useSessionId, useSessionQuery } from "./index.js";

function Show() {
  const [id] = useSessionId();
  const notes = useSessionQuery(api.notes.list);
  return <p>{`${id ?? "none"} ${notes === undefined ? "loading" : "loaded"}`}</p>;
}

describe("server rendering in Node", () => {
  it("renders without an ID and without touching crypto", () => {
    expect(typeof window).toBe("undefined");
    const randomUUID = vi.spyOn(globalThis.crypto, "randomUUID");
    const client = new WalkinClient("http://127.0.0.1:1", { skipConnect: true });
    const html = renderToString(
      <WalkinProvider client={client}>
        <SessionProvider ssrFriendly>
          <Show />
        </SessionProvider>
      </WalkinProvider>,
    );
    expect(html).toBe("<p>none loading</p>");
    expect(randomUUID).not.toHaveBeenCalled();
  });

  it("renders the ID the server read, when given", () => {
    const client = new WalkinClient("http://127.0.0.1:1", { skipConnect: true });
    const id = "0c5f4a52-4c4b-4d46-9c44-0e0c8e7a3b11";
    const html = renderToString(
      <WalkinProvider client={client}>
        <SessionProvider ssrFriendly initialSessionId={id}>
          <Show />
        </SessionProvider>
      </WalkinProvider>,
    );
    expect(html).toBe(`<p>${id} loading</p>`);
  });

  it("without ssrFriendly, concurrent server renders never share an ID", () => {
    const client = new WalkinClient("http://127.0.0.1:1", { skipConnect: true });
    const render = () =>
      renderToString(
        <WalkinProvider client={client}>
          <SessionProvider>
            <Show />
          </SessionProvider>
        </WalkinProvider>,
      );
    const [a, b] = [render(), render()];
    expect(a).toMatch(/^<p>[0-9a-f-]{36} loading<\/p>$/);
    expect(b).not.toBe(a);
  });
});
