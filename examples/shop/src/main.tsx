import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { WalkinClient } from "walkin/browser";
import { WalkinProvider } from "walkin/react";
import { SessionProvider } from "walkin/sessions/react";
import { AuthProvider } from "walkin/auth/react";
import { App } from "./App";
import "./styles.css";

// Served by `walkin start --static dist`, the app and the backend share an origin. During
// `vite` development, point VITE_WALKIN_URL at `walkin dev` (http://127.0.0.1:3210).
const client = new WalkinClient(import.meta.env.VITE_WALKIN_URL ?? window.location.origin);

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <WalkinProvider client={client}>
      {/* Per tab (sessionStorage, the default): each tab runs its own checkout. */}
      <SessionProvider storageKey="walkin-shop-tab">
        {/* Per browser (localStorage, the default): one user, so one cart, in every tab. */}
        <AuthProvider storageKey="walkin-shop-auth">
          <App />
        </AuthProvider>
      </SessionProvider>
    </WalkinProvider>
  </StrictMode>,
);
