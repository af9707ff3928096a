/**
 * Function paths as clients spell them, made one spelling per function, as Convex's client
 * reads them: a module's file extension is dropped (`"dir/file.js:fn"` is `"dir/file:fn"`,
 * the server knows modules without it) and a module alone means its default export
 * (`"messages"` is `"messages:default"`).
 *
 * Two steps, because the server should see what the app wrote: `functionPath` is what goes on
 * the wire (only the extension dropped, so a mistyped `"messages.list"` still gets the
 * server's "did you mean "messages:list"?"), and `canonicalPath` is what identifies a query on
 * the client (query tokens, `getAllQueries`), so every spelling of one query shares one
 * subscription and one result.
 *
 * It lives beside `api.ts` because both sides read paths this way: the clients (walkin/browser,
 * walkin/react's server helpers) and the engine, which reads a path sent straight to the HTTP
 * API or the WebSocket as a client would have sent it (engine/functions.ts).
 */
import { getFunctionName, type AnyFunctionReference } from "./api.js";

/**
 * The path of `ref` as the client sends it: its module without a `.js` extension.
 * @example
 * functionPath("lib/users.js:get"); // "lib/users:get"
 * functionPath(api.messages.list);  // "messages:list"
 */
export function functionPath(ref: AnyFunctionReference | string): string {
  const [module, exported] = split(getFunctionName(ref));
  const bare = module.endsWith(".js") ? module.slice(0, -3) : module;
  return exported === undefined ? bare : `${bare}:${exported}`;
}

/**
 * The one spelling of `path` (from `functionPath`) that identifies its function on the client.
 * @example
 * canonicalPath("messages"); // "messages:default"
 */
export function canonicalPath(path: string): string {
  const [module, exported] = split(path);
  return exported === undefined ? `${module}:default` : path;
}

/** Module and export, split at the last `:` (a module path has none); no export for a module alone. */
function split(path: string): [module: string, exported: string | undefined] {
  const at = path.lastIndexOf(":");
  return at === -1 ? [path, undefined] : [path.slice(0, at), path.slice(at + 1)];
}
