import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, rename, rm, unlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isRelevantChange, watchDirectory, type Watcher } from "./watch.js";

describe("isRelevantChange", () => {
  it("ignores codegen output, dotfiles and editor droppings", () => {
    for (const name of ["_generated/api.ts", "_generated", ".messages.ts.swp", "messages.ts~", "lib/.#users.ts", "4913", "node_modules/x/index.js"]) {
      expect(isRelevantChange(name), name).toBe(false);
    }
    for (const name of ["messages.ts", "lib/users.ts", "lib/_generated/x.ts", "schema.ts", null]) {
      expect(isRelevantChange(name), String(name)).toBe(true);
    }
  });
});

describe("watchDirectory", () => {
  let dir: string;
  let watcher: Watcher;
  let calls = 0;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const file = (name: string) => path.join(dir, name);

  /** Runs `save` and waits until it has produced a callback (fails after 10 s without one). */
  async function expectReload(what: string, save: () => Promise<unknown> | void): Promise<void> {
    const before = calls;
    await save();
    for (let waited = 0; calls === before; waited += 20) {
      if (waited > 10_000) throw new Error(`No reload after: ${what}`);
      await sleep(20);
    }
    // Let the burst end, so that its tail is not counted for the next save.
    await sleep(150);
  }

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "walkin-watch-"));
    await writeFile(file("a.ts"), "export const a = 1;\n");
    calls = 0;
    watcher = await watchDirectory(dir, () => calls++, { debounceMs: 50 });
  });
  afterEach(async () => {
    await watcher.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("calls back once per burst of changes, not for _generated/ or dotfiles", async () => {
    await writeFile(file("a.ts"), "1");
    await writeFile(file("b.ts"), "1");
    await writeFile(file("a.ts"), "2");
    await sleep(400);
    expect(calls).toBe(1);

    await mkdir(file("_generated"));
    await writeFile(file("_generated/api.ts"), "x");
    await writeFile(file(".a.ts.swp"), "x");
    await sleep(400);
    expect(calls).toBe(1);
  });

  it("sees every kind of save, and keeps seeing a file after it was saved by rename", async () => {
    await expectReload("a write in place", () => writeFile(file("a.ts"), "export const a = 2;\n"));
    await expectReload("an atomic save (temp file renamed over the original)", async () => {
      await writeFile(file(".a.ts.tmp-1"), "export const a = 3;\n");
      await rename(file(".a.ts.tmp-1"), file("a.ts"));
    });
    await expectReload("sed -i", () => {
      const sed = spawnSync("sed", ["-i", "s/= 3/= 4/", file("a.ts")]);
      expect(sed.status).toBe(0);
    });
    // The bug this watcher fixes: Node 20's recursive fs.watch lost the file after a rename.
    await expectReload("a write in place after saves by rename", () => writeFile(file("a.ts"), "export const a = 5;\n"));
    await expectReload("a second sed -i", () => void spawnSync("sed", ["-i", "s/= 5/= 6/", file("a.ts")]));
    await expectReload("vim's backup-then-write", async () => {
      await writeFile(file("4913"), "");
      await unlink(file("4913"));
      await rename(file("a.ts"), file("a.ts~"));
      await writeFile(file("a.ts"), "export const a = 7;\n");
      await unlink(file("a.ts~"));
    });
    await expectReload("a rename", () => rename(file("a.ts"), file("b.ts")));
    await expectReload("a delete", () => unlink(file("b.ts")));
    await expectReload("a new file in a new folder", async () => {
      await mkdir(file("lib/deep"), { recursive: true });
      await writeFile(file("lib/deep/users.ts"), "export const u = 1;\n");
    });
    await expectReload("a write in the new folder", () => writeFile(file("lib/deep/users.ts"), "export const u = 2;\n"));
    await expectReload("a sed -i in the new folder", () => void spawnSync("sed", ["-i", "s/= 2/= 3/", file("lib/deep/users.ts")]));
    await expectReload("a folder renamed", () => rename(file("lib"), file("shared")));
    await expectReload("a write in the renamed folder", () => writeFile(file("shared/deep/users.ts"), "export const u = 4;\n"));
    await expectReload("a folder deleted", () => rm(file("shared"), { recursive: true }));
  });
});
