/** The shell: the key form until a key is accepted, then the navigation and the screens. */
import { useEffect, useState, useSyncExternalStore, type FormEvent } from "react";
import { admin, AdminCallError, onUnauthorized, storedKey, storeKey, stream } from "./api.js";
import { navigate, useRoute } from "./router.js";
import { DataScreen } from "./Data.js";
import { FunctionsScreen } from "./Functions.js";
import { LogsScreen } from "./Logs.js";
import { UsersScreen } from "./Users.js";
import { SchedulerScreen } from "./Scheduler.js";

const SECTIONS = [
  ["data", "Data"],
  ["functions", "Functions"],
  ["logs", "Logs"],
  ["users", "Users & sessions"],
  ["scheduler", "Scheduler & health"],
] as const;

export function App() {
  const [signedIn, setSignedIn] = useState<boolean | null>(null);
  const [refused, setRefused] = useState(false);

  useEffect(() => {
    onUnauthorized(() => {
      stream.stop();
      storeKey(null);
      setRefused(true);
      setSignedIn(false);
    });
    const key = storedKey();
    if (!key) return setSignedIn(false);
    admin("health", undefined, key).then(
      () => setSignedIn(true),
      (error) => setSignedIn(error instanceof AdminCallError && error.status === 401 ? false : true),
    );
  }, []);

  useEffect(() => {
    if (!signedIn) return;
    stream.start();
    return () => stream.stop();
  }, [signedIn]);

  if (signedIn === null) return <div className="boot">Loading…</div>;
  if (!signedIn) {
    return (
      <KeyForm
        refused={refused}
        onAccepted={() => {
          setRefused(false);
          setSignedIn(true);
        }}
      />
    );
  }
  return <Shell />;
}

function KeyForm({ refused, onAccepted }: { refused: boolean; onAccepted: () => void }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState<string | null>(refused ? "That admin key was refused." : null);
  const [busy, setBusy] = useState(false);
  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await admin("health", undefined, key.trim());
      storeKey(key.trim());
      onAccepted();
    } catch (caught) {
      setError(caught instanceof AdminCallError && caught.status === 401 ? "That admin key was refused. Check it and try again." : (caught as Error).message);
    } finally {
      setBusy(false);
    }
  }
  return (
    <main className="gate">
      <form className="card gate-card" onSubmit={submit}>
        <h1>
          <span className="logo" aria-hidden>
            ◆
          </span>{" "}
          Walk-in dashboard
        </h1>
        <p className="muted">
          Enter the admin key. <code>walkin dev</code> prints a link with one; for <code>walkin start</code> it is the value of <code>WALKIN_ADMIN_KEY</code>.
        </p>
        <label htmlFor="admin-key">Admin key</label>
        <input id="admin-key" type="password" autoComplete="off" autoFocus value={key} onChange={(e) => setKey(e.target.value)} />
        {error && (
          <p className="error-text" role="alert">
            {error}
          </p>
        )}
        <button className="primary wide" disabled={busy || key.trim() === ""}>
          {busy ? "Checking…" : "Open the dashboard"}
        </button>
      </form>
    </main>
  );
}

function useConnected(): boolean {
  return useSyncExternalStore(
    (listener) => stream.onStatus(listener),
    () => stream.connected,
  );
}

function Shell() {
  const route = useRoute();
  const connected = useConnected();
  const label = SECTIONS.find(([id]) => id === route.section)?.[1];
  useEffect(() => {
    document.title = label ? `${label} · Walk-in dashboard` : "Walk-in dashboard";
  }, [label]);
  return (
    <div className="shell">
      <header className="topbar">
        <a className="brand" href="#/data">
          <span className="logo" aria-hidden>
            ◆
          </span>{" "}
          Walk-in
        </a>
        <nav aria-label="Sections">
          {SECTIONS.map(([id, label]) => (
            <a key={id} href={`#/${id}`} className={route.section === id ? "active" : ""} aria-current={route.section === id ? "page" : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <span className={`status ${connected ? "" : "offline"}`} role="status">
          {connected ? "live" : "reconnecting…"}
        </span>
        <button
          className="link"
          onClick={() => {
            stream.stop();
            storeKey(null);
            location.reload();
          }}
        >
          Lock
        </button>
      </header>
      <main className="content">
        <Section section={route.section} />
      </main>
    </div>
  );
}

function Section({ section }: { section: string }) {
  switch (section) {
    case "data":
      return <DataScreen />;
    case "functions":
      return <FunctionsScreen />;
    case "logs":
      return <LogsScreen />;
    case "users":
      return <UsersScreen />;
    case "scheduler":
      return <SchedulerScreen />;
    default:
      navigate("/data");
      return null;
  }
}
