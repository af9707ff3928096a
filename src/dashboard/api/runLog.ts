/**
 * The function-run log behind the dashboard's Logs screen: the engine calls `observe` around
 * every run (EngineOptions.observeRun); each run becomes one entry with its time, caller kind,
 * duration, conflict retries, outcome, error and the `console.*` lines it printed.
 *
 * Console lines are attributed with a continuation context (engine/continuationContext.ts,
 * free of promise hooks where it can be): `console.*` is wrapped once,
 * process-wide, and a line printed inside a run (however its awaits interleave with other
 * runs) lands in that run's entry, and still reaches the real console. Arguments and results
 * are never recorded (they may hold secrets); auth tokens and session digests printed by app
 * code are masked (secrets.ts).
 *
 * Memory is bounded: the newest MAX_ENTRIES entries are served (at most half as many again
 * are held between bulk trims), with at most MAX_LINES lines of at most MAX_LINE_CHARS each
 * and an error of at most MAX_ERROR_CHARS.
 */
import { format } from "node:util";
import { continuationContext } from "../../engine/continuationContext.js";
import type { FunctionRunTrace } from "../../engine/engine.js";
import { maskSecrets } from "./secrets.js";

export type CallerKind = "client" | "http" | "scheduler" | "cron" | "dashboard" | "server";

export interface RunEntry {
  id: number;
  /** When the run started (ms since the epoch). */
  time: number;
  type: FunctionRunTrace["type"];
  path: string;
  caller: CallerKind;
  durationMs: number;
  retries: number;
  outcome: "success" | "error";
  error: string | null;
  logs: string[];
}

const MAX_ENTRIES = 2_000;
const MAX_LINES = 40;
const MAX_LINE_CHARS = 2_000;
/** An error message is cut there too: app code may put a client's input in it, of any size. */
const MAX_ERROR_CHARS = 2_000;

interface Capture {
  lines: string[];
  dropped: number;
}

const captures = continuationContext<Capture>("walkin.runLog");
let consoleWrapped = false;

/** Wraps console.log/info/warn/error/debug once, so lines printed inside a run are captured. */
function wrapConsole(): void {
  if (consoleWrapped) return;
  consoleWrapped = true;
  for (const level of ["log", "info", "warn", "error", "debug"] as const) {
    const original = console[level].bind(console);
    console[level] = (...args: unknown[]) => {
      const capture = captures.get();
      if (capture) {
        if (capture.lines.length < MAX_LINES) {
          const text = maskSecrets(format(...args));
          capture.lines.push(`${level === "log" ? "" : `[${level}] `}${text.length > MAX_LINE_CHARS ? `${text.slice(0, MAX_LINE_CHARS)}…` : text}`);
        } else capture.dropped++;
      }
      original(...args);
    };
  }
}

/** A run's error as the log keeps it: tokens and session digests masked, at most MAX_ERROR_CHARS. */
function errorText(failure: unknown): string {
  const text = maskSecrets(String((failure as Error).message ?? failure));
  return text.length > MAX_ERROR_CHARS ? `${text.slice(0, MAX_ERROR_CHARS)}…` : text;
}

function callerKind(trace: FunctionRunTrace): CallerKind {
  return trace.caller.kind ?? (trace.caller.fromClient ? "client" : "server");
}

export class RunLog {
  /** `kindOf` may name a run's caller more precisely than the engine can (crons). */
  constructor(private readonly kindOf: (trace: FunctionRunTrace) => CallerKind | null = () => null) {}

  private readonly entries: RunEntry[] = [];
  private nextId = 1;
  private readonly listeners = new Set<(entry: RunEntry) => void>();
  /** Durations of recent runs, for the health figures' p50 / p99. */
  private readonly durations: number[] = [];
  /** Results of recent runs that look like auth cleanup reports (see users.ts). */
  readonly cleanupReports: Array<{ time: number; report: Record<string, unknown> }> = [];

  /** The engine's `observeRun`. */
  readonly observe = async <T>(trace: FunctionRunTrace, run: () => Promise<T>): Promise<T> => {
    wrapConsole();
    const capture: Capture = { lines: [], dropped: 0 };
    const time = Date.now();
    const started = performance.now();
    let error: unknown = null;
    let result: T | undefined;
    try {
      result = await captures.run(capture, run);
      return result;
    } catch (thrown) {
      error = thrown;
      throw thrown;
    } finally {
      const failure = error ?? trace.error;
      if (capture.dropped > 0) capture.lines.push(`… ${capture.dropped} more lines not kept`);
      this.add({
        id: 0,
        time,
        type: trace.type,
        path: trace.path,
        caller: this.kindOf(trace) ?? callerKind(trace),
        durationMs: Math.round((performance.now() - started) * 100) / 100,
        retries: trace.retries,
        outcome: failure ? "error" : "success",
        error: failure ? errorText(failure) : null,
        logs: capture.lines,
      });
      if (!failure && trace.type === "mutation") this.noteCleanupReport(time, result);
    }
  };

  private add(entry: RunEntry): void {
    entry.id = this.nextId++;
    // Trimmed in bulk, once half a log's worth has piled up: O(1) per run, not a shift of 2,000.
    this.entries.push(entry);
    if (this.entries.length > MAX_ENTRIES * 1.5) this.entries.splice(0, this.entries.length - MAX_ENTRIES);
    this.durations.push(entry.durationMs);
    if (this.durations.length > 1_500) this.durations.splice(0, this.durations.length - 1_000);
    for (const listener of this.listeners) listener(entry);
  }

  /** walkin/auth's cleanup returns `{ sessions, anonymousUsers, codes, verifiers, rateLimits, more }`. */
  private noteCleanupReport(time: number, result: unknown): void {
    const value = (result as { value?: unknown } | undefined)?.value;
    if (typeof value !== "object" || value === null) return;
    const report = value as Record<string, unknown>;
    if (typeof report.anonymousUsers !== "number" || typeof report.sessions !== "number" || typeof report.rateLimits !== "number") return;
    this.cleanupReports.unshift({ time, report });
    this.cleanupReports.length = Math.min(this.cleanupReports.length, 10);
  }

  /** The newest entries, oldest first. */
  recent(limit = 500): RunEntry[] {
    return this.entries.slice(-Math.min(limit, MAX_ENTRIES));
  }

  onEntry(listener: (entry: RunEntry) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** p50 and p99 of recent run durations, in ms (null before any run). */
  percentiles(): { p50: number | null; p99: number | null } {
    if (this.durations.length === 0) return { p50: null, p99: null };
    const sorted = this.durations.slice(-1_000).sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
    return { p50: at(0.5), p99: at(0.99) };
  }
}
