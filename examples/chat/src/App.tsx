import { useEffect, useRef, useState, type FormEvent } from "react";
import { useConnectionState, useMutation, useQuery } from "walkin/react";
import { useAuth, useAuthActions } from "walkin/auth/react";
import { api } from "../functions/_generated/api.js";
import { AccountForm, type Flow } from "./Account";
import { messageOf } from "./errors";
import type { SessionMode } from "./scope";
import { PendingMessages, usePendingSends } from "./pending";
import { SessionsPanel } from "./Sessions";
import { useSignedOutNotice } from "./signedOut";
import { useAnonymousVisit } from "./visit";

export function App({ mode, onModeChange }: { mode: SessionMode; onModeChange: (mode: SessionMode) => void }) {
  const visit = useAnonymousVisit();
  const me = useQuery(api.users.me);
  const messages = useQuery(api.messages.list);
  const setName = useMutation(api.users.setName);
  const send = useMutation(api.messages.send);
  const { signOut } = useAuthActions();
  const auth = useAuth();
  const signedOut = useSignedOutNotice(auth);
  const connection = useConnectionState();
  const [draft, setDraft] = useState("");
  const [nameDraft, setNameDraft] = useState<string | null>(null);
  const [sendError, setSendError] = useState<string | null>(null);
  const [nameError, setNameError] = useState<string | null>(null);
  const [flow, setFlow] = useState<Flow | null>(null);
  const pending = usePendingSends();
  const bottom = useRef<HTMLDivElement>(null);
  const signedUp = me ? !me.isAnonymous : false;

  useEffect(() => {
    bottom.current?.scrollIntoView({ block: "end" });
  }, [messages?.length, pending.list.length]);
  // Another user now (signed out, revoked, signed in elsewhere): drop what was typed for the last one.
  useEffect(() => {
    setNameDraft(null);
    setNameError(null);
    if (signedUp) setFlow(null);
  }, [me?._id, signedUp]);

  /** Any success clears the errors shown: they are about what was tried before. */
  function succeeded() {
    setSendError(null);
    setNameError(null);
  }

  // The message shows at once as pending (offline, it waits for the connection; the client
  // sends it exactly once when it is back), and gives way to the real one when it commits.
  async function onSend(event: FormEvent) {
    event.preventDefault();
    const body = draft;
    setDraft("");
    try {
      await pending.track(body, send({ body }));
      succeeded();
    } catch (e) {
      setSendError(messageOf(e));
      setDraft((current) => (current === "" ? body : current));
    }
  }

  async function onRename(event: FormEvent) {
    event.preventDefault();
    if (nameDraft === null) return;
    try {
      await setName({ name: nameDraft });
      setNameDraft(null);
      succeeded();
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
              <button type="button" className="secondary" onClick={() => void signedOut.expect(signOut()).then(succeeded, (e: unknown) => setSendError(messageOf(e)))}>
                Sign out
              </button>
            )}
          </div>
        </header>
        {flow && !signedUp && <AccountForm flow={flow} onFlow={setFlow} onDone={() => setFlow(null)} />}
        {signedOut.notice && (
          <div role="status" className="notice signed-out">
            <span>
              <strong>This device was signed out.</strong> {signedOut.notice}
            </span>
            <span className="notice-actions">
              <button type="button" className="link" onClick={() => (signedOut.dismiss(), setFlow("signIn"))}>
                Sign in again
              </button>
              <button type="button" className="link" onClick={signedOut.dismiss}>
                OK
              </button>
            </span>
          </div>
        )}
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
          <PendingMessages pending={pending.list} author={me?.name ?? ""} connected={connection.isWebSocketConnected} />
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
