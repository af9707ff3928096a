// A component written for Convex and convex-helpers (convex/react, convex-helpers/react/sessions);
// only the import paths were changed to walkin/*.
import { useState, type FormEvent } from "react";
import { useQuery } from "walkin/react";
import { useSessionId, useSessionMutation, useSessionQuery } from "walkin/sessions/react";
import { api } from "../functions/_generated/api";

export function Chat() {
  const me = useSessionQuery(api.users.get);
  const messages = useQuery(api.messages.list);
  const setName = useSessionMutation(api.users.setName);
  const send = useSessionMutation(api.messages.send);
  const moveTo = useSessionMutation(api.users.moveTo);
  const [, refreshSessionId] = useSessionId();
  const [draft, setDraft] = useState("");
  const [name, setNameDraft] = useState("");

  const onSend = async (event: FormEvent) => {
    event.preventDefault();
    await send({ body: draft });
    setDraft("");
  };

  return (
    <main>
      <p aria-label="me">{me === undefined ? "…" : (me.name ?? "no name yet")}</p>
      <form
        onSubmit={async (event) => {
          event.preventDefault();
          await setName({ name });
        }}
      >
        <input aria-label="name" value={name} onChange={(e) => setNameDraft(e.target.value)} />
        <button type="submit">Save name</button>
      </form>
      <ul aria-label="messages">
        {messages?.map((message) => (
          <li key={message._id}>
            {message.author}: {message.body}
          </li>
        ))}
      </ul>
      <form onSubmit={onSend}>
        <input aria-label="message" value={draft} onChange={(e) => setDraft(e.target.value)} />
        <button type="submit">Send</button>
      </form>
      {/* A new session ID that keeps the profile: the callback's ID fits a vSessionId argument. */}
      <button onClick={() => refreshSessionId((newSessionId) => moveTo({ to: newSessionId }))}>New session, same profile</button>
    </main>
  );
}
