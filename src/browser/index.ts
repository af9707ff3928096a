/**
 * `walkin/browser`: the framework-free client. Runs in browsers and in Node.js (pass
 * `webSocketConstructor` from the `ws` package there); imports nothing Node-only.
 *
 * @example
 * import { WalkinClient } from "walkin/browser";
 * const client = new WalkinClient("http://127.0.0.1:3210");
 * const watch = client.watchQuery(api.messages.list);
 * watch.onUpdate(() => console.log(watch.localQueryResult()));
 * await client.mutation(api.messages.send, { body: "hi" });
 */
export {
  WalkinClient,
  type ConnectionState,
  type MutationOptions,
  type PrewarmQueryOptions,
  type Watch,
  type WalkinClientOptions,
} from "./client.js";
export { WalkinHttpClient, type HttpMutationOptions, type WalkinHttpClientOptions } from "./httpClient.js";
export { ConvexHttpClient } from "./convexNames.js";
export type { OptimisticLocalStore, OptimisticUpdate } from "./optimisticUpdates.js";
export type { FetchToken } from "./authState.js";
export type { Logger } from "./connection.js";
