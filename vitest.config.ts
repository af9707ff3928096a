import { fileURLToPath } from "node:url";
import { configDefaults, defineConfig } from "vitest/config";

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
          include: [
            "src/**/*.test.ts",
            "src/**/*.test.tsx",
            "docs/**/*.test.ts",
            "examples/*/functions/**/*.test.ts",
            "examples/*/src/**/*.test.tsx",
            "e2e/**/*.test.ts",
          ],
          // PostgreSQL's own tests run in the "postgres" project, which creates the run's database;
          // e2e/fixtures hold other packages' tests, run by the e2e tests themselves.
          exclude: [...configDefaults.exclude, "src/storage/postgres/**", "e2e/fixtures/**"],
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
      {
        // PostgreSQL: its storage tests, and the engine suite again on it (each test a fresh
        // schema of a database this run creates and drops; see src/storage/postgres/testDatabase.ts).
        extends: true,
        test: {
          name: "postgres",
          include: [
            "src/storage/postgres/*.test.ts",
            "src/engine/engine.test.ts",
            "src/engine/scheduler.test.ts",
            "src/engine/cronParity.test.ts",
            "src/engine/clientRequests.test.ts",
            "src/engine/fileStorage.test.ts",
            "src/engine/search.test.ts",
            "src/engine/searchReview.test.ts",
            "src/engine/searchReview2.test.ts",
            "src/engine/searchReview3.test.ts",
            "src/engine/searchLooseEnds.test.ts",
            "src/engine/vectorSearch.test.ts",
            "src/engine/vectorReview.test.ts",
            "src/transport/server.test.ts",
            "src/auth/auth.test.ts",
            "src/sessions/builders.test.ts",
            "src/sessions/anonymousUsers.test.ts",
            "src/sessions/articles.test.ts",
            "src/sessions/customBuilderDigest.test.ts",
            "src/sessions/targetedTables.test.ts",
          ],
          env: { WALKIN_TEST_STORAGE: "postgres" },
          globalSetup: ["src/storage/postgres/testDatabase.setup.ts"],
        },
      },
    ],
  },
});
