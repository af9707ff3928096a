import { StrictMode, useState } from "react";
import { createRoot } from "react-dom/client";
import { WalkinClient } from "walkin/browser";
import { WalkinProvider } from "walkin/react";
import { SessionProvider, useLocalStorage, useSessionStorage } from "walkin/sessions/react";
import { App, type SessionMode } from "./App";
import "./styles.css";

// Served by `walkin start --static dist`, the app and the backend share an origin. During
// `vite` development, point VITE_WALKIN_URL at `walkin dev` (http://127.0.0.1:3210).
const client = new WalkinClient(import.meta.env.VITE_WALKIN_URL ?? window.location.origin);
const MODE_KEY = "walkin-chat-session-mode";

function Root() {
  // Per tab (sessionStorage) by default; per browser (localStorage) shares one session across tabs.
  const [mode, setMode] = useState<SessionMode>(() => (localStorage.getItem(MODE_KEY) === "browser" ? "browser" : "tab"));
  const choose = (next: SessionMode) => {
    localStorage.setItem(MODE_KEY, next);
    setMode(next);
  };
  return (
    // The storage hook must not change while a provider is mounted: a new key remounts it.
    <SessionProvider key={mode} storageKey="walkin-chat-session" useStorage={mode === "browser" ? useLocalStorage : useSessionStorage}>
      <App mode={mode} onModeChange={choose} />
    </SessionProvider>
  );
}

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <WalkinProvider client={client}>
      <Root />
    </WalkinProvider>
  </StrictMode>,
);
