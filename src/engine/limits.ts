/**
 * Documented limits. Each exists so one function cannot take the server down or hold a
 * transaction open forever; each error names the limit and how to stay under it.
 */
export const LIMITS = {
  /** Encoded size of one document. */
  maxDocumentBytes: 1024 * 1024,
  /** Documents one transaction (query or mutation) may read. */
  maxDocumentsRead: 16_384,
  /** Bytes of documents one transaction may read. */
  maxBytesRead: 16 * 1024 * 1024,
  /** Documents one mutation may write (insert, patch, replace or delete). */
  maxDocumentsWritten: 8_192,
  /** Bytes one mutation may write. */
  maxBytesWritten: 16 * 1024 * 1024,
  /** Items one `.take(n)` or `.paginate({ numItems })` may ask for. */
  maxPageSize: 8_192,
  /**
   * ctx.runQuery / ctx.runMutation calls nested below the function called from outside (a
   * client, the scheduler, an action): Convex's MAX_REACTOR_CALL_DEPTH. Also ctx.runAction
   * calls nested below the action (or HTTP action) called from outside.
   */
  maxCallDepth: 8,
  /** Times a mutation is re-run after conflicting with concurrent writes. */
  maxMutationRetries: 16,
} as const;
