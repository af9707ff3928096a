// @vitest-environment jsdom
/**
 * `SessionProvider` under StrictMode, which calls the `useState` initializer twice and keeps
 * the first source: the one it throws away must take no part in the tabs' conversation (see
 * provider.tsx). The other tab is a real source on a real BroadcastChannel.
 */
import { cleanup, render, waitFor } from "@testing-library/react";
import { StrictMode } from "react";
import { afterEach, expect, it, vi } from "vitest";
import { createSessionIdSource, memoryStore } from "../browser/index.js";
import { SessionProvider, useSessionId } from "./index.js";

const KEY = "walkin-session-id";
const CHANNEL = `walkin-session:${KEY}`;

/** Every BroadcastChannel opened from now on, and whether it was closed. */
function trackChannels() {
  const opened: { name: string; closed: boolean }[] = [];
  const Real = globalThis.BroadcastChannel;
  class Tracked extends Real {
    private readonly entry: { name: string; closed: boolean };
    constructor(name: string) {
      super(name);
      this.entry = { name, closed: false };
      opened.push(this.entry);
    }
    override close() {
      this.entry.closed = true;
      super.close();
    }
  }
  vi.stubGlobal("BroadcastChannel", Tracked);
  return { open: (name: string) => opened.filter((c) => c.name === name && !c.closed).length };
}

let shown: string | undefined;
function ShowId() {
  shown = useSessionId()[0];
  return null;
}

afterEach(() => {
  cleanup();
  sessionStorage.clear();
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

it("under StrictMode, the provider holds one channel to the other tabs, closed on unmount", async () => {
  const channels = trackChannels();
  const view = render(
    <StrictMode>
      <SessionProvider>
        <ShowId />
      </SessionProvider>
    </StrictMode>,
  );
  expect(channels.open(CHANNEL)).toBe(1);
  view.unmount();
  await waitFor(() => expect(channels.open(CHANNEL)).toBe(0));
});

it("under StrictMode, a duplicated tab takes one new ID, calls onDuplicateTab once, and stores the ID it shows", async () => {
  const id = "3b241101-e2bb-4255-8caf-4136c566a962";
  // The original tab started first and holds the ID that the duplicate's sessionStorage copied.
  const now = vi.spyOn(Date, "now").mockReturnValue(1000);
  const original = createSessionIdSource({ store: memoryStore("original-tab"), scope: "tab", initialId: id, tabId: "original", channelName: CHANNEL });
  try {
    now.mockReturnValue(2000);
    sessionStorage.setItem(KEY, id);
    const onDuplicateTab = vi.fn(async () => {});
    render(
      <StrictMode>
        <SessionProvider onDuplicateTab={onDuplicateTab}>
          <ShowId />
        </SessionProvider>
      </StrictMode>,
    );
    now.mockRestore();
    await waitFor(() => expect(shown).not.toBe(id));
    // A reload must come back to the ID the tab used, with the server-side copy made once.
    await waitFor(() => expect(sessionStorage.getItem(KEY)).toBe(shown));
    expect(onDuplicateTab).toHaveBeenCalledTimes(1);
    expect(onDuplicateTab).toHaveBeenCalledWith(id, shown);
    expect(original.current).toBe(id);
  } finally {
    original.dispose();
  }
});
