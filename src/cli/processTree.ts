/**
 * Stopping a process together with everything it started: `walkin dev --run "a && b"` runs a
 * shell whose children (a front end's dev server holding its port) must stop with it.
 *
 * Why not a process group of its own (`detached: true`, then a signal to the group): a command
 * in a background process group that reads the terminal (Vite reads keys for its shortcuts) is
 * stopped by SIGTTIN, so the front end would hang in `walkin dev`. The command stays in
 * walkin's group, in the foreground, and is stopped by its process IDs instead, step by step:
 *
 *  1. list every process with its parent (`ps`), and take the command's descendants from it;
 *  2. signal the command and then each descendant. Listing first matters: once the shell is
 *     gone, its children are re-parented (to PID 1 or a subreaper) and can no longer be found
 *     from it.
 * A process started between the listing and the signals escapes; a dev server's own children
 * are started when it starts, long before it is stopped.
 */
import { execFileSync } from "node:child_process";

/** Parent of each process, from `ps` (POSIX). Empty if `ps` cannot be run. */
function parents(): Map<number, number> {
  const parentOf = new Map<number, number>();
  let listing: string;
  try {
    listing = execFileSync("ps", ["-A", "-o", "pid=,ppid="], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  } catch {
    return parentOf;
  }
  for (const line of listing.split("\n")) {
    const [pid, ppid] = line.trim().split(/\s+/).map(Number);
    if (Number.isInteger(pid) && Number.isInteger(ppid)) parentOf.set(pid!, ppid!);
  }
  return parentOf;
}

/** Every process descended from `root` (children, their children...), in no particular order. */
export function descendantsOf(root: number): number[] {
  const childrenOf = new Map<number, number[]>();
  for (const [pid, ppid] of parents()) {
    const list = childrenOf.get(ppid);
    if (list) list.push(pid);
    else childrenOf.set(ppid, [pid]);
  }
  const found: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const child of childrenOf.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

/** Sends `signal` to `pid` and every process it started (see the top of this file). */
export function signalTree(pid: number, signal: NodeJS.Signals): void {
  if (process.platform === "win32") {
    try {
      execFileSync("taskkill", ["/pid", String(pid), "/T", "/F"], { stdio: "ignore" });
    } catch {
      // already gone
    }
    return;
  }
  const descendants = descendantsOf(pid);
  for (const target of [pid, ...descendants]) {
    try {
      process.kill(target, signal);
    } catch {
      // already gone
    }
  }
}
