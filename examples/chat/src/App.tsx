import { useEffect, useRef, useState, type FormEvent } from "react";
import { useConnectionState, useMutation, useQuery } from "walkin/react";
import { isWalkinError } from "walkin/values";
import { api } from "../functions/_generated/api.js";
import { randomName } from "./names";

const NAME_KEY = "walkin-chat-name";

export function App() {
  const messages = useQuery(api.messages.list);
  const send = useMutation(api.messages.send);
  const connection = useConnectionState();
  const [name, setName] = useState(() => sessionStorage.getItem(NAME_KEY) ?? randomName());
  const [draft, setDraft] = useState("");
  const [error, setError] = useState<string | null>(null);
  const bottom = useRef<HTMLDivElement>(null);

  useEffect(() => {
    sessionStorage.setItem(NAME_KEY, name);
  }, [name]);
  useEffect(() => {
    bottom.current?.scrollIntoView({ block: "end" });
  }, [messages?.length]);

  async function onSubmit(event: FormEvent) {
    event.preventDefault();
    setError(null);
    try {
      await send({ author: name, body: draft });
      setDraft("");
    } catch (e) {
      setError(isWalkinError(e) ? e.message : "Could not send the message. Try again.");
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
      <label className="name">
        You are
        <input value={name} maxLength={40} onChange={(e) => setName(e.target.value)} aria-label="Your name" />
      </label>
      <ol className="messages" aria-live="polite">
        {messages === undefined && <li className="empty">Loading…</li>}
        {messages?.length === 0 && <li className="empty">No messages yet. Say hello!</li>}
        {messages?.map((m) => (
          <li key={m._id} className={m.author === name ? "mine" : ""}>
            <span className="author">{m.author}</span>
            <span className="body">{m.body}</span>
            <time dateTime={new Date(m._creationTime).toISOString()}>
              {new Date(m._creationTime).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}
            </time>
          </li>
        ))}
        <div ref={bottom} />
      </ol>
      <form onSubmit={onSubmit}>
        <input value={draft} onChange={(e) => setDraft(e.target.value)} placeholder="Write a message…" aria-label="Message" />
        <button type="submit">Send</button>
      </form>
      {error && <p role="alert" className="error">{error}</p>}
    </main>
  );
}
