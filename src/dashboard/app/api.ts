/**
 * The page's side of the admin API: the key (kept in sessionStorage, sent only in the
 * Authorization header), JSON calls, and the live stream (read with fetch, reconnecting).
 */
const KEY_STORAGE = "walkin-dashboard-key";

export class AdminCallError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

// Where sessionStorage is refused (some private modes), the key lives as long as the page.
let keyForThisPage: string | null = null;

export function storedKey(): string | null {
  try {
    return sessionStorage.getItem(KEY_STORAGE);
  } catch {
    return keyForThisPage;
  }
}

export function storeKey(key: string | null): void {
  keyForThisPage = key;
  try {
    if (key === null) sessionStorage.removeItem(KEY_STORAGE);
    else sessionStorage.setItem(KEY_STORAGE, key);
  } catch {
    // Kept in keyForThisPage only.
  }
}

/**
 * Adopts a key handed over in the URL fragment (`walkin dev` prints one) and takes it out of the
 * address bar. Called once, synchronously, when the page's script runs, before React renders:
 * React runs effects a task or more later, and anything that changes the fragment in between
 * (a click, a script, a test driving the page) would otherwise overwrite the key before it was
 * read, and the page would ask for a key it had been given.
 */
export function adoptKeyFromUrl(): void {
  const match = /(?:^#|&)key=([^&]+)/.exec(location.hash);
  if (!match) return;
  history.replaceState(null, "", `${location.pathname}${location.search}#/data`);
  storeKey(decodeURIComponent(match[1]!));
}

let unauthorized: () => void = () => {};
/** What to do when the server refuses the key (back to the key form). */
export function onUnauthorized(handler: () => void): void {
  unauthorized = handler;
}

export async function admin<T = any>(path: string, body?: unknown, key = storedKey()): Promise<T> {
  const response = await fetch(`/api/admin/${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { Authorization: `Bearer ${key ?? ""}`, ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const payload = await response.json().catch(() => null);
  if (response.status === 401) {
    unauthorized();
    throw new AdminCallError(401, "UNAUTHENTICATED", "The admin key was refused.");
  }
  if (!response.ok) {
    const error = payload?.error ?? {};
    throw new AdminCallError(response.status, error.code ?? "ERROR", error.message ?? `The server answered ${response.status}.`);
  }
  return payload as T;
}

export type StreamEvent =
  | { type: "hello"; streamId: string }
  | { type: "runs"; runs: RunEntry[]; missed: number }
  | { type: "commit"; tables: string[] }
  | { type: "watch"; watchId: string; outcome: { ok: true; value: unknown } | { ok: false; error: string } }
  | { type: "health"; health: Health };

export interface RunEntry {
  id: number;
  time: number;
  type: "query" | "mutation" | "action";
  path: string;
  caller: string;
  durationMs: number;
  retries: number;
  outcome: "success" | "error";
  error: string | null;
  logs: string[];
}

export interface Health {
  connectedClients: number;
  liveQueries: number;
  commitsPerSecond: number;
  conflictRetriesPerSecond: number;
  commits: number;
  conflictRetries: number;
  p50: number | null;
  p99: number | null;
  storageBytes: number | null;
}

type Listener = (event: StreamEvent) => void;

/** One live stream per page; listeners come and go with the screens. */
export class LiveStream {
  streamId: string | null = null;
  connected = false;
  private readonly listeners = new Set<Listener>();
  private readonly statusListeners = new Set<() => void>();
  private abort: AbortController | null = null;
  /** Each start runs its own loop; a stop or a newer start ends the older one. */
  private generation = 0;

  start(): void {
    this.abort?.abort();
    void this.loop(++this.generation);
  }

  stop(): void {
    this.generation++;
    this.abort?.abort();
  }

  on(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onStatus(listener: () => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  private setConnected(connected: boolean, streamId: string | null) {
    this.connected = connected;
    this.streamId = streamId;
    for (const listener of this.statusListeners) listener();
  }

  private async loop(generation: number): Promise<void> {
    let delay = 500;
    const stopped = () => generation !== this.generation;
    while (!stopped()) {
      this.abort = new AbortController();
      try {
        const response = await fetch("/api/admin/stream", { headers: { Authorization: `Bearer ${storedKey() ?? ""}` }, signal: this.abort.signal });
        if (response.status === 401) {
          unauthorized();
          return;
        }
        if (!response.ok || !response.body) throw new Error(`stream: ${response.status}`);
        delay = 500;
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end: number;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const chunk = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            if (!chunk.startsWith("data: ")) continue;
            const event = JSON.parse(chunk.slice(6)) as StreamEvent;
            if (event.type === "hello") this.setConnected(true, event.streamId);
            for (const listener of this.listeners) listener(event);
          }
        }
      } catch {
        // Reconnect below (server restart, network change); a stop aborts on purpose.
      }
      if (stopped()) return;
      this.setConnected(false, null);
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 5_000);
    }
  }
}

export const stream = new LiveStream();
