/**
 * The validator of `paginationOpts`, the argument a paginated query takes and passes to
 * `.paginate()`. `usePaginatedQuery` sends `endCursor` to keep page boundaries fixed while
 * data changes, so hand-written validators that omit it would reject every `loadMore`.
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
});
