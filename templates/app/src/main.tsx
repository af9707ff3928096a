import { createRoot } from "react-dom/client";
import { WalkinClient } from "walkin/browser";
import { WalkinProvider } from "walkin/react";
import { App } from "./App.js";

// In development the page (Vite, port 5173) talks to `walkin dev` on port 3210; built with
// `npm run build`, it is served by `walkin start` itself, on the page's own origin.
const client = new WalkinClient(import.meta.env.DEV ? "http://127.0.0.1:3210" : location.origin);

createRoot(document.getElementById("root")!).render(
  <WalkinProvider client={client}>
    <App />
  </WalkinProvider>,
);
