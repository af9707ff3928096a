/**
 * `useConnectionState`: the client's connection state, re-rendering when it changes.
 */
import { useCallback, useSyncExternalStore } from "react";
import type { ConnectionState } from "../browser/index.js";
import { useWalkin } from "./context.js";

/**
 * The connection state of the client from `<WalkinProvider>`; see `ConnectionState` in
 * `walkin/browser` for the states and their transitions.
 *
 * @example
 * const state = useConnectionState();
 * if (state.status !== "connected") return <Banner>Reconnecting…</Banner>;
 */
export function useConnectionState(): ConnectionState {
  const client = useWalkin();
  const subscribe = useCallback((onChange: () => void) => client.subscribeToConnectionState(onChange), [client]);
  const getSnapshot = useCallback(() => client.connectionState(), [client]);
  return useSyncExternalStore(subscribe, getSnapshot, getSnapshot);
}
