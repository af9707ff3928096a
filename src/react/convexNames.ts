/**
 * Convex's names for the React setup, so that `convex/react` imports work with only the path
 * changed to `walkin/react`. Each is the Walk-in export itself, not a wrapper.
 * @example
 * const convex = new ConvexReactClient(import.meta.env.VITE_WALKIN_URL);
 * root.render(<ConvexProvider client={convex}><App /></ConvexProvider>);
 */
import { WalkinClient } from "../browser/index.js";
import { WalkinProvider, useWalkin } from "./context.js";

/** `WalkinClient` under Convex's name: `new ConvexReactClient(url, options)`. */
export const ConvexReactClient = WalkinClient;
/** `WalkinClient` under Convex's name, as a type. */
export type ConvexReactClient = WalkinClient;
/** `WalkinProvider` under Convex's name: `<ConvexProvider client={client}>`. */
export const ConvexProvider = WalkinProvider;
/** `useWalkin` under Convex's name: the client of the nearest provider. */
export const useConvex = useWalkin;
