/**
 * `walkin/react`: React bindings over the framework-free `WalkinClient` of `walkin/browser`.
 *
 * Every hook reads the client given to `<WalkinProvider>`; reads go through
 * `useSyncExternalStore`, subscriptions start only after commit, and nothing here opens a
 * socket while rendering on the server.
 */
export { WalkinProvider, useWalkin, type WalkinProviderProps } from "./context.js";
export { ConvexProvider, ConvexReactClient, useConvex } from "./convexNames.js";
export { useQuery, type OptionalRestArgsOrSkip } from "./useQuery.js";
export { useQueries, type RequestForQueries } from "./useQueries.js";
export { useMutation, useAction, type ReactMutation, type ReactAction } from "./useMutation.js";
export {
  usePaginatedQuery,
  type PaginatedQueryArgs,
  type PaginatedQueryItem,
  type PaginatedQueryReference,
  type PaginationStatus,
  type UsePaginatedQueryResult,
} from "./usePaginatedQuery.js";
export {
  insertAtBottomIfLoaded,
  insertAtPosition,
  insertAtTop,
  optimisticallyUpdateValueInPaginatedQuery,
} from "./paginatedOptimistic.js";
export { useConnectionState } from "./useConnectionState.js";
export type { ConnectionState, OptimisticLocalStore, OptimisticUpdate } from "../browser/index.js";
export { fetchQuery, preloadQuery, type FetchQueryOptions, type Preloaded } from "./ssr.js";
export { usePreloadedQuery } from "./usePreloadedQuery.js";
