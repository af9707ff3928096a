/**
 * `walkin/nextjs`: run functions from Next.js server code, as Convex's `convex/nextjs` does:
 * `preloadQuery` in a Server Component (its result goes to `usePreloadedQuery` from
 * `walkin/react` in a client component), `fetchQuery`, `fetchMutation` and `fetchAction` in
 * Server Components, Server Actions and Route Handlers.
 *
 * The server's address is `options.url`, else the environment variable
 * `NEXT_PUBLIC_WALKIN_URL`, else `NEXT_PUBLIC_CONVEX_URL`. Nothing here imports React, so it
 * loads where Server Components run. The calls are react/ssr.ts's, each with a time limit
 * (`timeoutMs`, browser/deadline.ts), because a page render waits for them.
 *
 * @example
 * // app/tasks/page.tsx (a Server Component)
 * const preloaded = await preloadQuery(api.tasks.list, { list: "default" }, { token });
 * return <Tasks preloaded={preloaded} />;
 */
export { fetchAction, fetchMutation, fetchQuery, preloadQuery, preloadedQueryResult, type NextjsOptions, type Preloaded } from "../react/ssr.js";
