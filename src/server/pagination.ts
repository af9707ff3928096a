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
import { v, type Validator } from "../values/index.js";

export const paginationOptsValidator = v.object({
  numItems: v.number(),
  cursor: v.union(v.string(), v.null()),
  endCursor: v.optional(v.union(v.string(), v.null())),
  id: v.optional(v.number()),
  maximumRowsRead: v.optional(v.number()),
  maximumBytesRead: v.optional(v.number()),
});

/**
 * The validator of what `.paginate()` returns, for a paginated query's `returns`, given the
 * validator of one item. Convex's shape: `splitCursor` and `pageStatus` are optional, because
 * `paginate` adds them only to a page that read near its budget (see `PaginationResult`).
 *
 * @example
 * export const list = query({
 *   args: { paginationOpts: paginationOptsValidator },
 *   returns: paginationResultValidator(v.object({ _id: v.id("messages"), _creationTime: v.number(), body: v.string() })),
 *   handler: (ctx, { paginationOpts }) => ctx.db.query("messages").paginate(paginationOpts),
 * });
 */
export function paginationResultValidator<Item extends Validator<any, "required", any>>(itemValidator: Item) {
  return v.object({
    page: v.array(itemValidator),
    continueCursor: v.string(),
    isDone: v.boolean(),
    splitCursor: v.optional(v.union(v.string(), v.null())),
    pageStatus: v.optional(v.union(v.literal("SplitRecommended"), v.literal("SplitRequired"), v.null())),
  });
}
