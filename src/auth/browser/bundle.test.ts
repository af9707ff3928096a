/**
 * `walkin/auth/browser` must bundle for browsers: nothing it imports may need Node.js (the
 * server half of auth hashes tokens with node:crypto; none of it may leak in here), and it
 * pulls in only the client it builds on.
 */
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

it("walkin/auth/browser bundles without Node.js modules and without the auth server", async () => {
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
  const outside = inputs.filter((path) => !path.startsWith("src/auth/browser/"));
  expect(outside.filter((path) => !/^src\/(values|browser)\//.test(path))).toEqual(["src/server/api.ts"]);
});
