/**
 * `useConnectionState`: the client's connection state, re-rendering when it changes.
 */
import { useCallback, useSyncExternalStore } from "react";
import type { ConnectionState } from "../browser/index.js";
import { useWalkin } from "./context.js";

/**
 * The connection state of the client from `<WalkinProvider>` (see `ConnectionState` in
 * `walkin/browser`). The client publishes a new state object only when a field changed, so
 * this re-renders only then.
 *
 * @example
 * const { isWebSocketConnected, hasEverConnected } = useConnectionState();
 * if (hasEverConnected && !isWebSocketConnected) return <Banner>Reconnecting…</Banner>;
 */
export function useConnectionState(): ConnectionState {
  const client = useWalkin();
  const subscribe = useCallback((onChange: () => void) => client.subscribeToConnectionState(onChange), [client]);
  const getSnapshot = useCallback(() => client.connectionState(), [client]);
  return useSyncExternalStore(subscribe, getSnapshot, getSnapshot);
}
