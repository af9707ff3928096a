/**
 * `walkin/sessions/browser` must bundle for browsers: esbuild with `platform: "browser"` fails
 * on any Node built-in, so this guards every future import.
 */
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

describe("walkin/sessions/browser bundle", () => {
  it("bundles for the browser without Node.js modules, and stays small", async () => {
    const result = await build({
      entryPoints: [fileURLToPath(new URL("./index.ts", import.meta.url))],
      bundle: true,
      platform: "browser",
      format: "esm",
      write: false,
      metafile: true,
      logLevel: "silent",
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.filter((path) => !path.startsWith("src/sessions/browser/"))).toEqual(["src/values/errors.ts"]);
  });
});
