/**
 * Where the client's socket goes: the deployment address as users write it
 * (`http://127.0.0.1:3210`, `https://app.example.com`, or already `ws(s)://…`), turned into
 * the WebSocket endpoint `ws(s)://host/api/sync`.
 */
import { walkinError } from "../values/errors.js";

export const SYNC_PATH = "/api/sync";

/**
 * @example
 * syncUrl("http://127.0.0.1:3210");      // "ws://127.0.0.1:3210/api/sync"
 * syncUrl("https://example.com/app/");   // "wss://example.com/app/api/sync"
 */
export function syncUrl(address: string): string {
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    throw walkinError("MISUSE", `"${address}" is not a URL: pass the server's address, like "http://127.0.0.1:3210".`);
  }
  switch (url.protocol) {
    case "http:":
      url.protocol = "ws:";
      break;
    case "https:":
      url.protocol = "wss:";
      break;
    case "ws:":
    case "wss:":
      break;
    default:
      throw walkinError("MISUSE", `"${address}" has the scheme ${url.protocol}; use http(s):// or ws(s)://, like "http://127.0.0.1:3210".`);
  }
  const path = url.pathname.replace(/\/+$/, "");
  url.pathname = path.endsWith(SYNC_PATH) ? path : path + SYNC_PATH;
  url.hash = "";
  return url.toString();
}
