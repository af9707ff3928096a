/**
 * The browser entry points must bundle for browsers: nothing they import may need Node.js.
 * esbuild with `platform: "browser"` fails on any Node built-in, so this guards every future
 * import; the list of files pulled in from outside each entry's folder keeps them small.
 */
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const entries = [
  {
    name: "walkin/browser",
    entry: "./index.ts",
    ownFolders: ["src/values/", "src/browser/"],
    outside: ["src/server/api.ts", "src/server/functionPath.ts", "src/transport/protocol.ts"],
  },
  {
    name: "walkin/sessions/browser",
    entry: "../sessions/browser/index.ts",
    ownFolders: ["src/sessions/browser/"],
    outside: ["src/values/errors.ts"],
  },
  {
    // The server half of auth hashes tokens with node:crypto: none of it may leak in here.
    name: "walkin/auth/browser",
    entry: "../auth/browser/index.ts",
    ownFolders: ["src/auth/browser/", "src/values/", "src/browser/"],
    outside: ["src/sessions/browser/fallbackStorage.ts", "src/server/api.ts"],
  },
];

describe("browser bundles", () => {
  for (const { name, entry, ownFolders, outside } of entries) {
    it(`${name} bundles without Node.js modules, pulling in only what it needs`, async () => {
      const result = await build({
        entryPoints: [fileURLToPath(new URL(entry, import.meta.url))],
        bundle: true,
        platform: "browser",
        format: "esm",
        write: false,
        metafile: true,
        logLevel: "silent",
      });
      const inputs = Object.keys(result.metafile.inputs);
      // In any order: the bundler lists files in the order it reaches them, which says nothing.
      expect(inputs.filter((path) => !ownFolders.some((folder) => path.startsWith(folder))).sort()).toEqual([...outside].sort());
    });
  }
});
