/**
 * `WALKIN_MAX_FILE_BYTES`: the largest file `ctx.storage` takes under `walkin start` and
 * `walkin dev` (docs/files.md). A value that is no size stops the server with one line that
 * says what to write; a good one is the limit uploads meet. `bin/walkin.js` spawned in a
 * temporary project, as in cli.test.ts.
 */
import path from "node:path";
import { rm } from "node:fs/promises";
import { afterEach, describe, expect, it } from "vitest";
import { Cli, SCHEMA, tempProject as makeTempProject, TSCONFIG } from "./fixtures/cli.js";

const tempDirs: string[] = [];
let running: Cli | null = null;
afterEach(async () => {
  if (running?.child.exitCode === null) running.child.kill("SIGKILL");
  running = null;
  for (const dir of tempDirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

const PROJECT = {
  "package.json": `{ "name": "files-app", "type": "module" }\n`,
  "tsconfig.json": TSCONFIG,
  "functions/schema.ts": SCHEMA,
  "functions/files.ts": `import { mutation } from "walkin/server";\nexport const uploadUrl = mutation({ args: {}, handler: (ctx) => ctx.storage.generateUploadUrl() });\n`,
};

describe("WALKIN_MAX_FILE_BYTES", () => {
  it.each(["ten", "-5", "1.5", "0"])("%s is refused in one line, and nothing is served", async (value) => {
    const dir = await makeTempProject(tempDirs, "walkin-file-limit-", PROJECT);
    running = new Cli(["start", "--port", "0", "--db", path.join(dir, "data.sqlite")], dir, { WALKIN_MAX_FILE_BYTES: value });
    expect(await running.exited).toBe(1);
    expect(running.output).toMatch(new RegExp(`WALKIN_MAX_FILE_BYTES must be a whole number of bytes, like 104857600 for 100 MiB; got "${value.replace(".", "\\.")}"`));
    expect(running.output).not.toMatch(/^\s+at /m);
  });

  it("is the limit an upload meets", async () => {
    const dir = await makeTempProject(tempDirs, "walkin-file-limit-", PROJECT);
    running = new Cli(["start", "--port", "0", "--db", path.join(dir, "data.sqlite")], dir, { WALKIN_MAX_FILE_BYTES: "10" });
    const [, url] = await running.waitFor(/Walk-in server: (\S+)/);
    const answer = (await (await fetch(`${url}/api/mutation`, { method: "POST", body: JSON.stringify({ path: "files:uploadUrl", args: {} }) })).json()) as { value: string };
    const post = (size: number) => fetch(answer.value, { method: "POST", headers: { "Content-Type": "text/plain" }, body: new Uint8Array(size) });
    const tooBig = await post(11);
    expect([tooBig.status, ((await tooBig.json()) as { message: string }).message]).toEqual([413, expect.stringMatching(/up to 10 bytes/)]);
    expect((await post(10)).status).toBe(200);
  });
});
