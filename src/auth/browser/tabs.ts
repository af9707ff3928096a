/**
 * Telling the other tabs of this browser that the stored token changed, and hearing them.
 *
 * Storage is the one source of truth: messages carry no token, they only say "read the
 * storage again". Two channels carry them, because neither is enough alone:
 * - `storage` events, which every browser fires in the other tabs when localStorage changes
 *   (but some embedded browsers and a few privacy modes do not);
 * - a BroadcastChannel named after the storage key, where one exists.
 * A tab may hear one change twice; re-reading the storage makes that harmless.
 */
import type { ChannelLike } from "../../sessions/browser/source.js";

export type { ChannelLike };

export interface TabSync {
  /** Tells the other tabs that this tab wrote the key. */
  announce(): void;
  /** Stops listening. */
  close(): void;
}

/**
 * @example
 * const tabs = listenToOtherTabs("walkin-auth-token", undefined, () => adopt(storage.get(key)));
 * storage.set(key, token);
 * tabs.announce();
 */
export function listenToOtherTabs(key: string, channelOption: ChannelLike | null | undefined, onChange: () => void): TabSync {
  let closed = false;
  const changed = () => {
    if (!closed) onChange();
  };
  const channel =
    channelOption !== undefined ? channelOption : typeof BroadcastChannel === "function" ? new BroadcastChannel(key) : null;
  channel?.addEventListener("message", ({ data }) => {
    if (typeof data === "object" && data !== null && (data as { type?: unknown }).type === "walkin-auth-changed") changed();
  });
  const onStorage = (event: StorageEvent) => {
    // `key` null: the whole storage was cleared.
    if (event.key === key || event.key === null) changed();
  };
  if (typeof window !== "undefined") window.addEventListener("storage", onStorage);
  return {
    announce() {
      if (!closed) channel?.postMessage({ type: "walkin-auth-changed" });
    },
    close() {
      closed = true;
      channel?.close();
      if (typeof window !== "undefined") window.removeEventListener("storage", onStorage);
    },
  };
}
