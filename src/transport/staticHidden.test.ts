/**
 * Static files: hidden files and folders (a path segment starting with a dot) are never
 * served, whatever the folder holds, with `.well-known` the one exception. A folder given as
 * `--static .` holds the project's .env, .git and .walkin (the database).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request as rawRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startHarness, type Harness } from "./fixtures/harness.js";

let harness: Harness;
let staticDir: string;

beforeAll(async () => {
  staticDir = mkdtempSync(join(tmpdir(), "walkin-static-hidden-"));
  writeFileSync(join(staticDir, "index.html"), "<!doctype html><title>app</title>");
  writeFileSync(join(staticDir, ".env"), "SECRET=do-not-serve");
  mkdirSync(join(staticDir, ".walkin"));
  writeFileSync(join(staticDir, ".walkin", "data.sqlite"), "the database");
  mkdirSync(join(staticDir, "assets", ".cache"), { recursive: true });
  writeFileSync(join(staticDir, "assets", ".cache", "x.js"), "cached");
  mkdirSync(join(staticDir, ".well-known"));
  writeFileSync(join(staticDir, ".well-known", "security.txt"), "Contact: mailto:security@example.com");
  harness = await startHarness({ staticDir });
});

afterAll(async () => {
  await harness?.dispose();
  rmSync(staticDir, { recursive: true, force: true });
});

/** Status and body of a GET with the path sent as written (fetch would normalise it). */
function get(path: string): Promise<[number, string]> {
  return new Promise((resolve, reject) => {
    const req = rawRequest({ host: "127.0.0.1", port: harness.server.port, path, method: "GET" }, (res) => {
      let text = "";
      res.on("data", (chunk) => (text += chunk));
      res.on("end", () => resolve([res.statusCode ?? 0, text]));
    });
    req.on("error", reject);
    req.end();
  });
}

it("answers 404 for hidden files and folders, encoded or not, and serves .well-known", async () => {
  for (const path of ["/.env", "/.walkin/data.sqlite", "/assets/.cache/x.js", "/%2eenv", "/%2Ewalkin/data.sqlite", "/assets/%2ecache/x.js"]) {
    const [status, body] = await get(path);
    expect([path, status]).toEqual([path, 404]);
    expect(body).not.toMatch(/do-not-serve|the database|cached/);
  }
  expect(await get("/.well-known/security.txt")).toEqual([200, "Contact: mailto:security@example.com"]);
  // The rest is served as before.
  expect(await get("/")).toEqual([200, "<!doctype html><title>app</title>"]);
});
