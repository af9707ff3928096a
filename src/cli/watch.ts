/**
 * Watches a functions directory and calls back once per burst of changes. Editors save in
 * several steps (temp file, rename, chmod), so events are debounced; codegen's own writes to
 * `_generated/` and editor droppings (dotfiles, `~` backups, swap files) are ignored so that
 * regenerating never triggers another reload.
 *
 * Watching is chokidar's, not Node's recursive `fs.watch`: on Linux, Node 20's recursive
 * watcher follows inodes, so a file saved by rename (`sed -i`, most editors' atomic save) was
 * never seen again after its first such save. chokidar watches each folder, re-attaches after
 * a rename, and picks up folders created later.
 */
import path from "node:path";
import { watch } from "chokidar";
import { GENERATED_DIR } from "./codegen.js";

export interface Watcher {
  close(): Promise<void>;
}

/** Whether a change to `filename` (relative to the watched directory) matters. */
export function isRelevantChange(filename: string | null): boolean {
  if (filename === null) return true;
  const segments = filename.split(path.sep).join("/").split("/");
  if (segments[0] === GENERATED_DIR) return false;
  const base = segments[segments.length - 1] ?? "";
  return !segments.some((s) => s.startsWith(".") || s === "node_modules") && !/(~|\.swp|\.swx|^4913)$/.test(base);
}

/**
 * Starts watching `dir` (and every folder below it, including ones created later) and resolves
 * once the initial scan is done, so that no change made after it resolves is missed.
 *
 * @example
 * const watcher = await watchDirectory("functions", () => console.log("changed"));
 * await watcher.close();
 */
export async function watchDirectory(
  dir: string,
  onChange: () => void,
  { debounceMs = 100, onError }: { debounceMs?: number; onError?: (error: Error) => void } = {},
): Promise<Watcher> {
  const root = path.resolve(dir);
  let timer: NodeJS.Timeout | undefined;
  // The parent folder is watched (for `root` alone), so that a functions directory removed and
  // created again (`rm -rf`, a branch switch, a scaffolder) is watched again once it is back.
  const parent = path.dirname(root);
  const watcher = watch(parent === root ? root : parent, {
    ignoreInitial: true,
    // Folds an editor's delete-then-recreate into one change instead of an unlink and an add.
    atomic: true,
    ignored: (file: string) => {
      if (file === parent) return false;
      const relative = path.relative(root, file);
      if (relative === ".." || relative.startsWith(`..${path.sep}`) || path.isAbsolute(relative)) return true;
      return relative !== "" && !isRelevantChange(relative);
    },
  });
  watcher.on("all", () => {
    clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
  });
  watcher.on("error", (error) => onError?.(error instanceof Error ? error : new Error(String(error))));
  await new Promise<void>((resolve) => watcher.once("ready", () => resolve()));
  return {
    async close() {
      clearTimeout(timer);
      await watcher.close();
    },
  };
}
