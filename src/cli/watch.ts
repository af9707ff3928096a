/**
 * Watches a functions directory and calls back once per burst of changes. Editors save in
 * several steps (temp file, rename, chmod), so events are debounced; codegen's own writes to
 * `_generated/` and editor droppings (dotfiles, `~` backups, swap files) are ignored so that
 * regenerating never triggers another reload.
 */
import { watch } from "node:fs";
import path from "node:path";
import { GENERATED_DIR } from "./codegen.js";

export interface Watcher {
  close(): void;
}

/** Whether a change to `filename` (relative to the watched directory) matters. */
export function isRelevantChange(filename: string | null): boolean {
  if (filename === null) return true;
  const segments = filename.split(path.sep).join("/").split("/");
  if (segments[0] === GENERATED_DIR) return false;
  const base = segments[segments.length - 1] ?? "";
  return !segments.some((s) => s.startsWith(".") || s === "node_modules") && !/(~|\.swp|\.swx|^4913)$/.test(base);
}

export function watchDirectory(
  dir: string,
  onChange: () => void,
  { debounceMs = 100, onError }: { debounceMs?: number; onError?: (error: Error) => void } = {},
): Watcher {
  let timer: NodeJS.Timeout | undefined;
  const watcher = watch(dir, { recursive: true }, (_event, filename) => {
    if (!isRelevantChange(filename === null ? null : String(filename))) return;
    clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
  });
  watcher.on("error", (error) => onError?.(error));
  return {
    close() {
      clearTimeout(timer);
      watcher.close();
    },
  };
}
