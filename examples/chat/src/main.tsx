import { StrictMode, useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from "react";
import { createRoot } from "react-dom/client";
import { WalkinClient } from "walkin/browser";
import { WalkinProvider } from "walkin/react";
import { AuthProvider } from "walkin/auth/react";
import { App } from "./App";
import { sharedTokenStorage, storedMode, switchMode, TOKEN_KEY, watchForDuplicateTab, type SessionMode } from "./scope";
import "./styles.css";

// Served by `walkin start --static dist`, the app and the backend share an origin. During
// `vite` development, point VITE_WALKIN_URL at `walkin dev` (http://127.0.0.1:3210).
const client = new WalkinClient(import.meta.env.VITE_WALKIN_URL ?? window.location.origin);

function Root() {
  const [mode, setMode] = useState<SessionMode>(storedMode);
  // Bumped to start over with whatever token the storage holds now (a new AuthProvider).
  const [epoch, setEpoch] = useState(0);
  const restart = useCallback(() => {
    // The page's client still holds the previous token: a new AuthProvider without one
    // would otherwise keep calling as the previous user.
    client.clearAuth();
    setEpoch((n) => n + 1);
  }, []);

  // Which AuthProvider is the current one, for its storage to tell a late write of an old one.
  const current = useRef({ mode, epoch });
  useLayoutEffect(() => {
    current.current = { mode, epoch };
  }, [mode, epoch]);
  const storage = useMemo(
    () => (mode === "browser" ? sharedTokenStorage(() => current.current.mode === mode && current.current.epoch === epoch, restart) : "sessionStorage"),
    [mode, epoch, restart],
  );

  useEffect(() => (mode === "tab" ? watchForDuplicateTab(restart) : undefined), [mode, restart]);
  // Per browser: another tab signed in, up or out, so this one takes the token it left.
  useEffect(() => {
    if (mode !== "browser") return;
    const onStorage = (event: StorageEvent) => {
      if (event.storageArea === localStorage && (event.key === TOKEN_KEY || event.key === null)) restart();
    };
    window.addEventListener("storage", onStorage);
    return () => window.removeEventListener("storage", onStorage);
  }, [mode, restart]);

  const choose = (next: SessionMode) => {
    if (next === mode) return;
    switchMode(next);
    restart();
    setMode(next);
  };

  return (
    // The token's storage must not change while an AuthProvider is mounted: a new key remounts it.
    <AuthProvider key={`${mode}:${epoch}`} storage={storage} storageKey={TOKEN_KEY}>
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
