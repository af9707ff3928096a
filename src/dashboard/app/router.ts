/** Hash routing: `#/data/messages?doc=…`, `#/functions`, `#/logs`, `#/users/<id>`, `#/scheduler`. */
import { useSyncExternalStore } from "react";

export interface Route {
  section: string;
  rest: string[];
  params: URLSearchParams;
}

function parse(): Route {
  const hash = location.hash.replace(/^#/, "") || "/data";
  const [pathPart, query = ""] = hash.split("?");
  const [section = "data", ...rest] = pathPart!.split("/").filter(Boolean).map(decodeURIComponent);
  return { section, rest, params: new URLSearchParams(query) };
}

let current = parse();
const listeners = new Set<() => void>();
window.addEventListener("hashchange", () => {
  current = parse();
  for (const listener of listeners) listener();
});

export function useRoute(): Route {
  return useSyncExternalStore(
    (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    () => current,
  );
}

export function navigate(path: string): void {
  location.hash = path;
}
