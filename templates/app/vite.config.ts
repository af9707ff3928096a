import { defineConfig } from "vite";

export default defineConfig({
  // One copy of React, also when walkin is linked from a folder (npm install ../walkin).
  resolve: { dedupe: ["react", "react-dom"] },
});
