/** The dashboard page's entry: served at /_dashboard, talking only to /api/admin/*. */
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App.js";
import { adoptKeyFromUrl } from "./api.js";
import "./styles.css";

adoptKeyFromUrl(); // before the first render: see why in api.ts
createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
