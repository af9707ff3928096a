// The app's entry, as Convex's templates write it; only the import paths were changed.
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { ConvexProvider, ConvexReactClient } from "walkin/react";
import { SessionProvider } from "walkin/sessions/react";
import { Chat } from "./Chat";

const convex = new ConvexReactClient(import.meta.env.VITE_WALKIN_URL ?? location.origin);

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <ConvexProvider client={convex}>
      <SessionProvider>
        <Chat />
      </SessionProvider>
    </ConvexProvider>
  </StrictMode>,
);
