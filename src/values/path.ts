/**
 * Human-readable paths into values, for error messages: `args.items[2].qty`, `doc["first name"]`.
 *
 * Internal to the values layer. Paths are only ever built once an error has been found, so the
 * walkers keep bare key lists and call `formatPath` on the failure path alone.
 */

/** A step into a value: an array index or an object key. */
export type PathKey = string | number;

// Keys that read naturally after a dot; anything else is written as `["..."]`.
const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
// Keys come from user input (record keys, bad field names): never print a huge one.
const MAX_KEY_CHARS = 64;

/**
 * Joins `root` and `keys` into a path such as `args.items[2].qty`.
 *
 * @example
 * formatPath("args", ["items", 2, "qty"]); // "args.items[2].qty"
 * formatPath("doc", ["first name"]);       // 'doc["first name"]'
 */
export function formatPath(root: string, keys: readonly PathKey[]): string {
  let path = root;
  for (const key of keys) {
    if (typeof key === "number") path += `[${key}]`;
    else if (IDENTIFIER.test(key) && key.length <= MAX_KEY_CHARS) path += `.${key}`;
    else path += `[${JSON.stringify(truncate(key, MAX_KEY_CHARS))}]`;
  }
  return path;
}

/** Cuts `text` to at most `max` characters, marking the cut with "...". */
export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}...`;
}
