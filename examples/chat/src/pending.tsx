/**
 * Messages sent but not yet committed: shown at once, in grey, until the server has them.
 * Offline, `send` waits for the connection (the client re-sends it once, under the same
 * request id, so it is stored once); its promise resolves once the live list holds the new
 * message, so the pending copy and the real one never show together.
 */
import { useCallback, useRef, useState } from "react";

export interface PendingMessage {
  key: number;
  body: string;
}

export function usePendingSends() {
  const [list, setList] = useState<PendingMessage[]>([]);
  const nextKey = useRef(0);
  const track = useCallback(async <T,>(body: string, sending: Promise<T>): Promise<T> => {
    const key = nextKey.current++;
    setList((current) => [...current, { key, body }]);
    try {
      return await sending;
    } finally {
      setList((current) => current.filter((m) => m.key !== key));
    }
  }, []);
  return { list, track };
}

export function PendingMessages({ pending, author, connected }: { pending: PendingMessage[]; author: string; connected: boolean }) {
  return pending.map((m) => (
    <li key={`pending-${m.key}`} className="mine pending" aria-label="Not sent yet">
      <span className="pending-author">{author}</span>
      <span className="pending-body">{m.body}</span>
      <time>{connected ? "sending…" : "waiting for connection"}</time>
    </li>
  ));
}
