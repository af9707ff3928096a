import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { isRelevantChange, watchDirectory } from "./watch.js";

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
  it("calls back once per burst of changes, also in new subfolders, not for _generated/", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "walkin-watch-"));
    let calls = 0;
    const watcher = watchDirectory(dir, () => calls++, { debounceMs: 50 });
    try {
      await writeFile(path.join(dir, "a.ts"), "1");
      await writeFile(path.join(dir, "b.ts"), "1");
      await writeFile(path.join(dir, "a.ts"), "2");
      await new Promise((r) => setTimeout(r, 300));
      expect(calls).toBe(1);

      await mkdir(path.join(dir, "_generated"));
      await writeFile(path.join(dir, "_generated", "api.ts"), "x");
      await new Promise((r) => setTimeout(r, 300));
      expect(calls).toBe(1);

      await mkdir(path.join(dir, "lib"));
      await new Promise((r) => setTimeout(r, 300));
      const before = calls;
      await writeFile(path.join(dir, "lib", "users.ts"), "x");
      await new Promise((r) => setTimeout(r, 300));
      expect(calls).toBe(before + 1);
    } finally {
      watcher.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
