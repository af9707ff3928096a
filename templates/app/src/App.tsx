import { Component, useState, type ReactNode } from "react";
import { useMutation, useQuery } from "walkin/react";
import { api } from "../functions/_generated/api.js";

export function App() {
  return (
    <main>
      <h1>Messages</h1>
      {/* A failing query throws during render: the boundary shows it instead of a blank page. */}
      <ErrorBoundary>
        <Messages />
      </ErrorBoundary>
      <SendForm />
    </main>
  );
}

function Messages() {
  const messages = useQuery(api.messages.list); // undefined while loading, then live
  if (messages === undefined) return <p>Loading…</p>;
  return (
    <ul>
      {messages.map((m) => (
        <li key={m._id}>
          <b>{m.author}</b>: {m.body}
        </li>
      ))}
    </ul>
  );
}

function SendForm() {
  const send = useMutation(api.messages.send);
  const [body, setBody] = useState("");
  const [error, setError] = useState<string | null>(null);
  return (
    <form
      onSubmit={(event) => {
        event.preventDefault();
        setBody("");
        // A failed mutation rejects: show why, and clear it on the next success.
        send({ author: "Ada", body }).then(
          () => setError(null),
          (e: unknown) => setError(e instanceof Error ? e.message : String(e)),
        );
      }}
    >
      <input value={body} onChange={(event) => setBody(event.target.value)} placeholder="Say something" />
      <button type="submit">Send</button>
      {error && <p role="alert">{error}</p>}
    </form>
  );
}

class ErrorBoundary extends Component<{ children: ReactNode }, { error: Error | null }> {
  override state = { error: null as Error | null };
  static getDerivedStateFromError(error: Error) {
    return { error };
  }
  override render() {
    if (!this.state.error) return this.props.children;
    return (
      <p role="alert">
        Could not load the messages: {this.state.error.message}{" "}
        <button onClick={() => this.setState({ error: null })}>Retry</button>
      </p>
    );
  }
}
