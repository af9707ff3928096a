import { useEffect, useRef, useState, type FormEvent } from "react";
import { useConnectionState, useQuery } from "walkin/react";
import { useSessionId, useSessionMutation, useSessionQuery } from "walkin/sessions/react";
import { isWalkinError } from "walkin/values";
import { api } from "../functions/_generated/api.js";

export type SessionMode = "tab" | "browser";

function messageOf(error: unknown): string {
  return isWalkinError(error) ? error.message : "Something went wrong. Try again.";
}

export function App({ mode, onModeChange }: { mode: SessionMode; onModeChange: (mode: SessionMode) => void }) {
  const [sessionId] = useSessionId();
  const messages = useQuery(api.messages.list);
  const me = useSessionQuery(api.users.me);
  const ensure = useSessionMutation(api.users.ensure);
  const setName = useSessionMutation(api.users.setName);
  const send = useSessionMutation(api.messages.send);
  const connection = useConnectionState();
  const [draft, setDraft] = useState("");
  const [nameDraft, setNameDraft] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const bottom = useRef<HTMLDivElement>(null);

  // Every visitor gets a user (with a generated name) at once, no sign-up needed; again when
  // the session changes (a duplicated tab switches to its own session, for instance).
  useEffect(() => {
    if (sessionId) void ensure().catch((e: unknown) => setError(messageOf(e)));
  }, [ensure, sessionId]);
  useEffect(() => {
    bottom.current?.scrollIntoView({ block: "end" });
  }, [messages?.length]);

  async function onSend(event: FormEvent) {
    event.preventDefault();
    setError(null);
    try {
      await send({ body: draft });
      setDraft("");
    } catch (e) {
      setError(messageOf(e));
    }
  }

  async function onRename(event: FormEvent) {
    event.preventDefault();
    if (nameDraft === null) return;
    setError(null);
    try {
      await setName({ name: nameDraft });
      setNameDraft(null);
    } catch (e) {
      setError(messageOf(e));
    }
  }

  return (
    <main className="chat">
      <header>
        <h1>Walk-in chat</h1>
        <span className={`status ${connection.isWebSocketConnected ? "online" : "offline"}`}>
          {connection.isWebSocketConnected ? "live" : "reconnecting…"}
        </span>
      </header>
      <div className="bar">
        <form className="name" onSubmit={onRename}>
          <label htmlFor="name">You are</label>
          <input
            id="name"
            aria-label="Your name"
            maxLength={40}
            value={nameDraft ?? me?.name ?? ""}
            placeholder="…"
            onChange={(e) => setNameDraft(e.target.value)}
          />
          {nameDraft !== null && <button type="submit">Rename</button>}
        </form>
        <label className="mode" title="Per tab: each tab is its own visitor. Per browser: all tabs share one.">
          Session
          <select aria-label="Session scope" value={mode} onChange={(e) => onModeChange(e.target.value as SessionMode)}>
            <option value="tab">per tab</option>
            <option value="browser">per browser</option>
          </select>
        </label>
      </div>
      <ol className="messages" aria-live="polite">
        {messages === undefined && <li className="empty">Loading…</li>}
        {messages?.length === 0 && <li className="empty">No messages yet. Say hello!</li>}
        {messages?.map((m) => (
          <li key={m._id} className={m.authorId === me?._id ? "mine" : ""}>
            <span className="author">{m.author}</span>
            <span className="body">{m.body}</span>
            <time dateTime={new Date(m._creationTime).toISOString()}>
              {new Date(m._creationTime).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}
            </time>
          </li>
        ))}
        <div ref={bottom} />
      </ol>
      <form className="compose" onSubmit={onSend}>
        <input value={draft} onChange={(e) => setDraft(e.target.value)} placeholder="Write a message…" aria-label="Message" />
        <button type="submit">Send</button>
      </form>
      {error && <p role="alert" className="error">{error}</p>}
    </main>
  );
}
