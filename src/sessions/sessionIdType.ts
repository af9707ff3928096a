/**
 * The `SessionId` type alone, with nothing Node-only next to it, so that browser code (the
 * session client, the React hooks) can name it and still type-check in a DOM-only project.
 */
declare const sessionIdBrand: unique symbol;

/**
 * A session ID, branded so that other strings are not passed where a session is meant. In a
 * handler it is the one-way digest of what the client sent (a string starting `sd1_`); in the
 * browser it is the raw ID the client generated, as convex-helpers types both.
 * @example
 * const logins = await ctx.db.query("logins").withIndex("by_sessionId", (q) => q.eq("sessionId", ctx.sessionId)).collect();
 */
export type SessionId = string & { readonly [sessionIdBrand]: "SessionId" };
