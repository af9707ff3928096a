/**
 * The validator of `paginationOpts`, the argument a paginated query takes and passes to
 * `.paginate()`. It accepts every field Convex's does, so that code written for Convex (or a
 * client that sends them) passes validation:
 * - `endCursor`: `usePaginatedQuery` sends it to keep page boundaries fixed while data
 *   changes, so hand-written validators that omit it would reject every `loadMore`;
 * - `id`: a number Convex's `usePaginatedQuery` adds to tell its lists apart; `paginate` ignores it;
 * - `maximumRowsRead`, `maximumBytesRead`: read budgets that end a page early (see `PaginationOptions`).
 *
 * @example
 * export const list = query({
 *   args: { channel: v.string(), paginationOpts: paginationOptsValidator },
 *   handler: (ctx, { channel, paginationOpts }) =>
 *     ctx.db.query("messages").withIndex("by_channel", (q) => q.eq("channel", channel)).paginate(paginationOpts),
 * });
 */
import { v } from "../values/index.js";

export const paginationOptsValidator = v.object({
  numItems: v.number(),
  cursor: v.union(v.string(), v.null()),
  endCursor: v.optional(v.union(v.string(), v.null())),
  id: v.optional(v.number()),
  maximumRowsRead: v.optional(v.number()),
  maximumBytesRead: v.optional(v.number()),
});
