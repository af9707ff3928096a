// @vitest-environment jsdom
/**
 * Server rendering: the provider renders "loading" without touching storage, and the
 * browser hydrates over that HTML without a mismatch, then shows the stored sign-in.
 */
import { act, cleanup, screen } from "@testing-library/react";
import { hydrateRoot, type Root } from "react-dom/client";
import { renderToString } from "react-dom/server";
import { afterAll, afterEach, beforeAll, expect, it, vi } from "vitest";
import { WalkinClient } from "../../browser/index.js";
import { AuthClient } from "../browser/index.js";
import { startRealAuthBackend } from "../browser/fixtures/realAuth.js";
import { AuthLoading, AuthProvider, Authenticated, Unauthenticated } from "./index.js";

let backend: Awaited<ReturnType<typeof startRealAuthBackend>>;
const roots: Root[] = [];
beforeAll(async () => {
  backend = await startRealAuthBackend();
});
afterEach(async () => {
  await act(async () => roots.splice(0).forEach((r) => r.unmount()));
  cleanup();
  localStorage.clear();
  vi.restoreAllMocks();
});
afterAll(() => backend.close());

const app = (client: WalkinClient) => (
  <AuthProvider client={client}>
    <AuthLoading>loading</AuthLoading>
    <Unauthenticated>signed out</Unauthenticated>
    <Authenticated>signed in</Authenticated>
  </AuthProvider>
);

it("renders loading on the server without reading storage, then hydrates to the stored sign-in", async () => {
  const seed = new AuthClient(backend.client(), { channel: null });
  await seed.signIn("anonymous");
  seed.close();

  const getItem = vi.spyOn(Storage.prototype, "getItem");
  const html = renderToString(app(new WalkinClient(backend.url, { skipConnect: true })));
  expect(html).toBe("loading");
  expect(getItem).not.toHaveBeenCalled();

  const container = document.createElement("div");
  container.innerHTML = html;
  document.body.appendChild(container);
  const onRecoverableError = vi.fn();
  await act(async () => {
    roots.push(hydrateRoot(container, app(backend.client()), { onRecoverableError }));
  });
  await screen.findByText("signed in");
  expect(onRecoverableError).not.toHaveBeenCalled();
});
