import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// The examples import `walkin/*` like any app; in this repository that is the sources.
const sources = fileURLToPath(new URL("./src", import.meta.url));

export default defineConfig({
  resolve: { alias: [{ find: /^walkin\/(.*)$/, replacement: `${sources}/$1/index.ts` }] },
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    projects: [
      {
        extends: true,
        test: {
          name: "walkin",
          include: ["src/**/*.test.ts", "src/**/*.test.tsx", "docs/**/*.test.ts", "examples/*/functions/**/*.test.ts", "e2e/**/*.test.ts"],
          typecheck: { enabled: true, include: ["src/**/*.test-d.ts"], tsconfig: "./tsconfig.json" },
        },
      },
      {
        // The engine suite again, on a storage that answers like a networked database (every
        // read 0–3 ms, every commit 4 ms): nothing may be correct only because SQLite is instant.
        extends: true,
        test: {
          name: "latency",
          include: [
            "src/engine/*.test.ts",
            "src/transport/server.test.ts",
            "src/browser/client.test.ts",
            "src/auth/auth.test.ts",
            "src/sessions/builders.test.ts",
          ],
          exclude: ["src/engine/anyStorage.test.ts"],
          env: { WALKIN_TEST_STORAGE: "latency" },
        },
      },
    ],
  },
});
