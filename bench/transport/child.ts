/**
 * Child processes with a request/answer channel over Node's IPC: the parent sends
 * `{ id, op, ... }`, the child answers `{ id, ok, value | error }`. Children started here are
 * `node --import tsx` on a file of this folder, with the soft open-file limit raised to the hard
 * one when the shell allows it, and exit by themselves when the parent goes away.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

export interface FdLimits {
  soft: number;
  hard: number;
}

/** This process's open-file limits (a shell started from it inherits them). */
export function fdLimits(): FdLimits {
  const [soft, hard] = execFileSync("sh", ["-c", "ulimit -Sn; ulimit -Hn"], { encoding: "utf8" }).trim().split("\n");
  const parse = (value: string | undefined) => (value === "unlimited" ? Number.MAX_SAFE_INTEGER : Number(value));
  return { soft: parse(soft), hard: parse(hard) };
}

type Answer = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

export class Child {
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  private readonly exited: Promise<void>;

  private constructor(private readonly proc: ChildProcess, readonly label: string) {
    proc.on("message", (raw) => {
      const answer = raw as Answer;
      const waiter = this.waiting.get(answer.id);
      if (!waiter) return;
      this.waiting.delete(answer.id);
      if (answer.ok) waiter.resolve(answer.value);
      else waiter.reject(new Error(`${label}: ${answer.error}`));
    });
    this.exited = new Promise((resolve) => {
      proc.on("exit", (code, signal) => {
        for (const waiter of this.waiting.values()) waiter.reject(new Error(`${label} exited (${signal ?? code}) before answering`));
        this.waiting.clear();
        resolve();
      });
    });
  }

  /**
   * Starts `node [nodeFlags] --import tsx bench/transport/<file>` in the repository root (plus
   * `--import ./bench/compiled.mjs` when this process runs the compiled package). The
   * shell raises the soft open-file limit to the hard one (`ulimit -n`), then becomes node.
   */
  static start(file: string, label: string, nodeFlags: string[] = []): Child {
    const script = fileURLToPath(new URL(file, import.meta.url));
    const child = spawn(
      "sh",
      // A parent running the compiled package (bench/compiled.mjs) starts its children the same way.
      ["-c", 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', "sh", process.execPath, ...nodeFlags, "--import", "tsx", ...compiledFlags(), script],
      { cwd: repoRoot, stdio: ["ignore", "inherit", "inherit", "ipc"] },
    );
    return new Child(child, label);
  }

  /** Sends one request; rejects if the child reports an error, exits, or takes longer than `timeoutMs`. */
  request<T>(message: { op: string } & Record<string, unknown>, timeoutMs = 60_000): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`${this.label}: no answer to ${message.op} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value as T);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.proc.send({ ...message, id });
    });
  }

  /** Kills the child at once (kill -9: no shutdown, nothing flushed) and waits for it to be gone. */
  async crash(): Promise<void> {
    this.proc.kill("SIGKILL");
    await this.exited;
  }

  /** Asks the child to exit; kills it (this one process, by its handle) if it has not within 5 s. */
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    if (this.proc.connected) this.proc.send({ op: "exit", id: -1 });
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), 5_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/**
 * The child's side: answers each request with `handle`'s result, one request at a time in
 * arrival order. `{ op: "exit" }` ends the process; so does the parent going away.
 */
export function serveRequests(handle: (message: { op: string } & Record<string, unknown>) => Promise<unknown>): void {
  let queue: Promise<void> = Promise.resolve();
  process.on("disconnect", () => process.exit(0));
  process.on("message", (raw) => {
    const message = raw as { id: number; op: string } & Record<string, unknown>;
    if (message.op === "exit") {
      process.disconnect();
      process.exit(0);
    }
    queue = queue.then(async () => {
      let answer: Answer;
      try {
        answer = { id: message.id, ok: true, value: await handle(message) };
      } catch (error) {
        answer = { id: message.id, ok: false, error: (error as Error).stack ?? String(error) };
      }
      process.send!(answer);
    });
  });
}

function compiledFlags(): string[] {
  return process.env.WALKIN_BENCH_CODE === undefined ? [] : ["--import", "./bench/compiled.mjs"];
}
