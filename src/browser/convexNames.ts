/**
 * Convex's names for what `walkin/browser` has, so that `convex/browser` imports work with only
 * the path changed. Each is the Walk-in export itself, not a wrapper.
 * @example
 * const client = new ConvexHttpClient(process.env.WALKIN_URL!);
 * const messages = await client.query(api.messages.list, {});
 */
import { WalkinHttpClient } from "./httpClient.js";

/** `WalkinHttpClient` under Convex's name: `new ConvexHttpClient(url)`. */
export const ConvexHttpClient = WalkinHttpClient;
/** `WalkinHttpClient` under Convex's name, as a type. */
export type ConvexHttpClient = WalkinHttpClient;
