import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

// Inside the Walk-in repository the example uses the library's sources directly, so it runs
// without a build of the package; an app that installed `walkin` from npm needs no alias.
const walkinSources = fileURLToPath(new URL("../../src", import.meta.url));

export default defineConfig({
  resolve: {
    alias: [{ find: /^walkin\/(.*)$/, replacement: `${walkinSources}/$1/index.ts` }],
  },
  build: { outDir: "dist", emptyOutDir: true },
});
