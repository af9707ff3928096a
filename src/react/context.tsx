/**
 * The React context that carries one `WalkinClient` to every hook below `<WalkinProvider>`.
 *
 * The provider does nothing but hand the client down: it opens no socket and owns no state, so
 * it renders the same on the server and in the browser. The app creates the client once, at
 * module scope, and closes it when it is done with it. Not in a `useState` initializer: a new
 * client opens its socket at once, and StrictMode calls initializers twice and drops one
 * result, whose client nobody can close, so it stays connected for the page's life.
 */
import { createContext, useContext, type ReactNode } from "react";
import type { WalkinClient } from "../browser/index.js";
import { walkinError } from "../values/errors.js";

const WalkinContext = createContext<WalkinClient | undefined>(undefined);

export interface WalkinProviderProps {
  client: WalkinClient;
  children?: ReactNode;
}

/**
 * Makes `client` available to `useQuery`, `useMutation` and the other hooks below it.
 *
 * @example
 * const client = new WalkinClient("https://my-app.example.com");
 * createRoot(el).render(<WalkinProvider client={client}><App /></WalkinProvider>);
 */
export function WalkinProvider({ client, children }: WalkinProviderProps) {
  return <WalkinContext.Provider value={client}>{children}</WalkinContext.Provider>;
}

/** The client of the nearest `WalkinProvider`, or undefined outside one (for providers that also take a client prop). */
export function useOptionalWalkin(): WalkinClient | undefined {
  return useContext(WalkinContext);
}

/**
 * The client given to the nearest `<WalkinProvider>`; throws when there is none.
 *
 * @example
 * const client = useWalkin();
 * const onClick = () => client.mutation(api.messages.send, { body: "hi" });
 */
export function useWalkin(): WalkinClient {
  const client = useOptionalWalkin();
  if (client === undefined) {
    throw walkinError(
      "MISUSE",
      "Walk-in hooks need a client, and this component has none above it. " +
        "Did you forget to wrap your app in <WalkinProvider client={...}>?",
    );
  }
  return client;
}
