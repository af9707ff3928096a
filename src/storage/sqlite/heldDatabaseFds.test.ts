import { fstatSync, renameSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { heldDatabaseFd, heldDatabaseFdCount } from "./heldDatabaseFds.js";
import { openSqliteStorage } from "./sqliteStorage.js";
import { commit } from "../conformance/context.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "walkin-held-fds-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The device and inode a descriptor refers to, if it is still open (fstat throws EBADF otherwise). */
const identity = (fd: number) => {
  const { dev, ino } = fstatSync(fd);
  return `${dev}:${ino}`;
};

describe.skipIf(process.platform === "win32")("heldDatabaseFd", () => {
  it("gives one descriptor per file, whatever path names it", () => {
    const filename = path.join(dir, "one.sqlite");
    writeFileSync(filename, "");
    symlinkSync(filename, path.join(dir, "link.sqlite"));
    const before = heldDatabaseFdCount();
    const fd = heldDatabaseFd(filename)!;
    expect(heldDatabaseFd(filename)).toBe(fd);
    expect(heldDatabaseFd(path.join(dir, "link.sqlite"))).toBe(fd);
    expect(heldDatabaseFd(path.join(dir, ".", "one.sqlite"))).toBe(fd);
    expect(heldDatabaseFdCount()).toBe(before + 1);
    const { dev, ino } = statSync(filename);
    expect(identity(fd)).toBe(`${dev}:${ino}`);
  });

  it("gives a file put in place of another a descriptor of its own, and keeps the old one open", () => {
    const filename = path.join(dir, "replaced.sqlite");
    writeFileSync(filename, "first");
    const first = heldDatabaseFd(filename)!;
    const firstIdentity = identity(first);
    writeFileSync(path.join(dir, "new.sqlite"), "second");
    renameSync(path.join(dir, "new.sqlite"), filename);
    const second = heldDatabaseFd(filename)!;
    expect(second).not.toBe(first);
    expect(identity(second)).not.toBe(firstIdentity);
    // The replaced file's descriptor is still open: closing it is what must never happen.
    expect(identity(first)).toBe(firstIdentity);
  });

  it("answers null for a file that does not exist", () => {
    expect(heldDatabaseFd(path.join(dir, "missing.sqlite"))).toBeNull();
  });

  it("keeps the descriptor of a storage's database file open after its checkpoint worker and the storage closed", { timeout: 60_000 }, async () => {
    // The worker syncs the database file through this descriptor (checkpointer.ts, "Why the
    // worker syncs first"). Closing it would drop the locks that another storage on the same
    // file, here the second one, still holds through SQLite's own descriptors (heldDatabaseFds.ts).
    const filename = path.join(dir, "worker.sqlite");
    const options = { passPages: 20, restartPages: 1_000_000, backstopPages: 1_000_000, idleMs: 50 };
    const storage = await openSqliteStorage({ filename, synchronous: "normal", backgroundCheckpoints: options });
    const other = await openSqliteStorage({ filename, synchronous: "normal", backgroundCheckpoints: false });
    const body = JSON.stringify({ text: "x".repeat(5_000) });
    for (let ts = 1; ts <= 40; ts++) await commit(storage, { ts, documents: [{ id: `d${ts}`, table: "t", body }], indexes: [] }, ts - 1);
    expect(storage.checkpointer?.running).toBe(true);
    const count = heldDatabaseFdCount();
    await storage.close();
    // The worker's start held one descriptor for the file, which asking again finds, still open.
    const fd = heldDatabaseFd(filename)!;
    expect(heldDatabaseFdCount()).toBe(count);
    const { dev, ino } = statSync(filename);
    expect(identity(fd)).toBe(`${dev}:${ino}`);
    // And the other storage goes on reading and writing the file.
    await commit(other, { ts: 41, documents: [{ id: "d41", table: "t", body }], indexes: [] }, 40);
    expect(await other.latestTimestamp()).toBe(41);
    await other.close();
  });
});
