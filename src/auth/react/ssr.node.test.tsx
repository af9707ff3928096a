// @vitest-environment node
/**
 * Server rendering where there is no `window` at all (Node): the provider and the gates render
 * "loading", and nothing reaches for browser globals.
 */
import { renderToString } from "react-dom/server";
import { expect, it } from "vitest";
import { WalkinClient } from "../../browser/index.js";
import { AuthLoading, AuthProvider, Authenticated, Unauthenticated, useAuth } from "./index.js";

function State() {
  return <>{JSON.stringify(useAuth())}</>;
}

it("renders loading with no window, storage or socket", () => {
  expect(typeof window).toBe("undefined");
  const client = new WalkinClient("http://127.0.0.1:1", { skipConnect: true });
  const html = renderToString(
    <AuthProvider client={client} storage="localStorage">
      <AuthLoading>loading</AuthLoading>
      <Unauthenticated>signed out</Unauthenticated>
      <Authenticated>signed in</Authenticated>
      <State />
    </AuthProvider>,
  );
  expect(html.replaceAll("<!-- -->", "").replaceAll("&quot;", '"')).toBe(
    'loading{"isLoading":true,"isAuthenticated":false,"isAnonymous":false,"userId":null}',
  );
});
