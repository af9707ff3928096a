import { StrictMode, useCallback, useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import { WalkinClient } from "walkin/browser";
import { WalkinProvider } from "walkin/react";
import { AuthProvider } from "walkin/auth/react";
import { App } from "./App";
import { storedMode, switchMode, TOKEN_KEY, watchForDuplicateTab, type SessionMode } from "./scope";
import "./styles.css";

// Served by `walkin start --static dist`, the app and the backend share an origin. During
// `vite` development, point VITE_WALKIN_URL at `walkin dev` (http://127.0.0.1:3210).
const client = new WalkinClient(import.meta.env.VITE_WALKIN_URL ?? window.location.origin);

function Root() {
  const [mode, setMode] = useState<SessionMode>(storedMode);
  // Bumped to start over with whatever token the storage holds now (a new AuthProvider).
  const [epoch, setEpoch] = useState(0);
  const restart = useCallback(() => setEpoch((n) => n + 1), []);

  // Per tab, a duplicated tab drops the token it copied and starts as a new guest.
  useEffect(() => (mode === "tab" ? watchForDuplicateTab(restart) : undefined), [mode, restart]);

  const choose = (next: SessionMode) => {
    if (next === mode) return;
    switchMode(next);
    restart();
    setMode(next);
  };

  return (
    // Per browser, walkin/auth keeps the tabs on one sign-in (localStorage is shared). The
    // token's storage must not change while an AuthProvider is mounted: a new key remounts it.
    <AuthProvider key={`${mode}:${epoch}`} storage={mode === "browser" ? "localStorage" : "sessionStorage"} storageKey={TOKEN_KEY}>
      <App mode={mode} onModeChange={choose} />
    </AuthProvider>
  );
}

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <WalkinProvider client={client}>
      <Root />
    </WalkinProvider>
  </StrictMode>,
);
