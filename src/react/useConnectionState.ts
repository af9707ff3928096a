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
  return useSyncExternalStore(subscribe, getSnapshot, getServerSnapshot);
}

/** What a server renderer's client reports (it never connects): hydration must render the same. */
const SERVER_STATE: ConnectionState = Object.freeze({
  isWebSocketConnected: false,
  hasEverConnected: false,
  connectionCount: 0,
  connectionRetries: 0,
  hasInflightRequests: false,
  inflightMutations: 0,
  inflightActions: 0,
  oldestInflightRequestAt: null,
  timeOfOldestInflightRequest: null,
  lastTransitionTs: null,
  isAuthenticated: false,
});

function getServerSnapshot(): ConnectionState {
  return SERVER_STATE;
}
