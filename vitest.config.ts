import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// The examples import `walkin/*` like any app; in this repository that is the sources.
const sources = fileURLToPath(new URL("./src", import.meta.url));

export default defineConfig({
  resolve: { alias: [{ find: /^walkin\/(.*)$/, replacement: `${sources}/$1/index.ts` }] },
  test: {
    include: ["src/**/*.test.ts", "src/**/*.test.tsx", "docs/**/*.test.ts", "examples/*/functions/**/*.test.ts", "examples/*/src/**/*.test.tsx", "e2e/**/*.test.ts"],
    typecheck: { enabled: true, include: ["src/**/*.test-d.ts"], tsconfig: "./tsconfig.json" },
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
