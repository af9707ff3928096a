import { useEffect, useRef, useState, type FormEvent } from "react";
import { useConnectionState, useMutation, useQuery } from "walkin/react";
import { useAuthActions } from "walkin/auth/react";
import { api } from "../functions/_generated/api.js";
import { AccountForm, type Flow } from "./Account";
import { messageOf } from "./errors";
import type { SessionMode } from "./scope";
import { SessionsPanel } from "./Sessions";
import { useAnonymousVisit } from "./visit";

export function App({ mode, onModeChange }: { mode: SessionMode; onModeChange: (mode: SessionMode) => void }) {
  const visit = useAnonymousVisit();
  const me = useQuery(api.users.me);
  const messages = useQuery(api.messages.list);
  const setName = useMutation(api.users.setName);
  const send = useMutation(api.messages.send);
  const { signOut } = useAuthActions();
  const connection = useConnectionState();
  const [draft, setDraft] = useState("");
  const [nameDraft, setNameDraft] = useState<string | null>(null);
  const [sendError, setSendError] = useState<string | null>(null);
  const [nameError, setNameError] = useState<string | null>(null);
  const [flow, setFlow] = useState<Flow | null>(null);
  const bottom = useRef<HTMLDivElement>(null);
  const signedUp = me ? !me.isAnonymous : false;

  useEffect(() => {
    bottom.current?.scrollIntoView({ block: "end" });
  }, [messages?.length]);
  // Another user now (signed out, revoked, signed in elsewhere): drop what was typed for the last one.
  useEffect(() => {
    setNameDraft(null);
    setNameError(null);
    if (signedUp) setFlow(null);
  }, [me?._id, signedUp]);

  async function onSend(event: FormEvent) {
    event.preventDefault();
    setSendError(null);
    try {
      await send({ body: draft });
      setDraft("");
    } catch (e) {
      setSendError(messageOf(e));
    }
  }

  async function onRename(event: FormEvent) {
    event.preventDefault();
    if (nameDraft === null) return;
    setNameError(null);
    try {
      await setName({ name: nameDraft });
      setNameDraft(null);
    } catch (e) {
      setNameError(messageOf(e));
    }
  }

  return (
    <div className="page">
      <main className="chat" data-user-id={me?._id ?? ""}>
        <header className="top">
          <div className="brand">
            <h1>Walk-in chat</h1>
            <span className={`status ${connection.isWebSocketConnected ? "online" : "offline"}`}>
              {connection.isWebSocketConnected ? "live" : "reconnecting…"}
            </span>
          </div>
          <div className="account" aria-label="Account">
            {me && (
              <span className="who">
                <span className="avatar" aria-hidden="true">
                  {me.name.slice(0, 1).toUpperCase()}
                </span>
                <span className="who-text">
                  <span className="who-name">{me.name}</span>
                  <span className="who-kind">{signedUp ? me.email : "guest"}</span>
                </span>
              </span>
            )}
            {me && !signedUp && (
              <>
                <button type="button" onClick={() => setFlow("signUp")}>
                  Sign up
                </button>
                <button type="button" className="secondary" onClick={() => setFlow("signIn")}>
                  Sign in
                </button>
              </>
            )}
            {signedUp && (
              <button type="button" className="secondary" onClick={() => void signOut().catch((e: unknown) => setSendError(messageOf(e)))}>
                Sign out
              </button>
            )}
          </div>
        </header>
        {flow && !signedUp && <AccountForm flow={flow} onFlow={setFlow} onDone={() => setFlow(null)} />}
        {visit.needsCaptcha && <div id="captcha" className="captcha" />}
        {visit.error && (
          <p role="alert" className="error banner">
            {visit.error}{" "}
            <button type="button" className="link" onClick={visit.retry}>
              Try again
            </button>
          </p>
        )}
        <div className="bar">
          <form className="name" onSubmit={onRename}>
            <label htmlFor="name">You are</label>
            <input
              id="name"
              aria-label="Your name"
              aria-invalid={nameError !== null}
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
        {nameError && (
          <p role="alert" className="error name-error">
            {nameError}
          </p>
        )}
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
          <input value={draft} onChange={(e) => setDraft(e.target.value)} placeholder="Write a message…" aria-label="Message" aria-invalid={sendError !== null} />
          <button type="submit">Send</button>
        </form>
        {sendError && (
          <p role="alert" className="error send-error">
            {sendError}
          </p>
        )}
      </main>
      {signedUp && <SessionsPanel mode={mode} />}
    </div>
  );
}
