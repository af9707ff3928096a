// @vitest-environment jsdom
// The component against a real backend (engine, WebSocket server, client), as a Convex app's
// component test would run against a deployment.
import { cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import type { ReactNode } from "react";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ConvexProvider } from "walkin/react";
import WebSocket from "ws";
import {
  ConvexReactSessionClient,
  SessionClient,
  SessionProvider,
  createSessionIdSource,
  type SessionArgsArray,
  type SessionQueryArgsArray,
} from "walkin/sessions/react";
import { memoryStore } from "walkin/sessions/browser";
import { startLiveBackend, type LiveBackend } from "walkin/testing";
import { api } from "../functions/_generated/api";
import * as auth from "../functions/auth";
import * as sessions from "../functions/lib/sessions";
import * as messages from "../functions/messages";
import schema from "../functions/schema";
import * as users from "../functions/users";

let backend: LiveBackend;
beforeAll(async () => {
  backend = await startLiveBackend(schema, { auth, messages, users, "lib/sessions": sessions });
});
afterEach(() => {
  cleanup();
  sessionStorage.clear();
});
afterAll(() => backend.close());

function App({ children }: { children: ReactNode }) {
  return (
    <ConvexProvider client={backend.client()}>
      <SessionProvider>{children}</SessionProvider>
    </ConvexProvider>
  );
}

describe("a Convex-style React component", () => {
  it("names the session, sends messages and shows them live; a refreshed session keeps the profile", async () => {
    const { Chat } = await import("./Chat");
    render(<Chat />, { wrapper: App });
    await waitFor(() => expect(screen.getByLabelText("me").textContent).toBe("no name yet"));

    fireEvent.change(screen.getByLabelText("name"), { target: { value: "Ada" } });
    fireEvent.click(screen.getByText("Save name"));
    await waitFor(() => expect(screen.getByLabelText("me").textContent).toBe("Ada"));

    fireEvent.change(screen.getByLabelText("message"), { target: { value: "hello" } });
    fireEvent.click(screen.getByText("Send"));
    await waitFor(() => expect(within(screen.getByLabelText("messages")).getByText("Ada: hello")).toBeTruthy());

    const before = sessionStorage.getItem("walkin-session-id");
    fireEvent.click(screen.getByText("New session, same profile"));
    await waitFor(() => expect(sessionStorage.getItem("walkin-session-id")).not.toBe(before));
    await waitFor(() => expect(screen.getByLabelText("me").textContent).toBe("Ada"));
  });
});

describe("the non-React session client (convex-helpers' ConvexReactSessionClient surface)", () => {
  it("sessionQuery / sessionMutation / sessionAction add the ID; setSessionId switches it", async () => {
    const source = createSessionIdSource({ store: memoryStore("compat"), scope: "tab", channel: null });
    const client = new SessionClient(backend.client(), source);
    await client.sessionMutation(api.users.setName, { name: "Grace" });
    expect((await client.sessionQuery(api.users.get)).name).toBe("Grace");
    expect(await client.sessionAction(api.messages.countMine)).toBe(0);

    const first = client.getSessionId();
    const next = crypto.randomUUID();
    client.setSessionId(next);
    expect(client.getSessionId()).toBe(next);
    expect((await client.sessionQuery(api.users.get)).name).toBeUndefined(); // a new session: no profile
    client.setSessionId(first);
    expect((await client.sessionQuery(api.users.get)).name).toBe("Grace");
    expect(() => client.setSessionId("not-a-session-id")).toThrow(/UUID v4/);

    // convex-helpers' helper types: the args without sessionId, "skip" allowed for queries.
    const args: SessionArgsArray<typeof api.users.setName> = [{ name: "x" }];
    const skip: SessionQueryArgsArray<typeof api.users.get> = ["skip"];
    expect([args.length, skip[0]]).toEqual([1, "skip"]);
    source.dispose();
  });
});

describe("ConvexReactSessionClient, constructed as with convex-helpers", () => {
  it("keeps the ID in the given storage and adds it to calls; a non-UUID ID is refused", async () => {
    const values = new Map<string, string>();
    const storage = { getItem: (key: string) => values.get(key) ?? null, setItem: (key: string, value: string) => void values.set(key, value) };
    const client = new ConvexReactSessionClient(backend.url, { storage, storageKey: "compat-key", webSocketConstructor: WebSocket as never });
    expect(values.get("compat-key")).toBe(client.getSessionId());
    await client.sessionMutation(api.users.setName, { name: "Lin" });
    expect((await client.sessionQuery(api.users.get)).name).toBe("Lin");
    expect(() => new ConvexReactSessionClient(backend.url, { sessionId: "test-session-id", storage, webSocketConstructor: WebSocket as never })).toThrow(/UUID v4/);
    await client.close();
  });
});
