/**
 * Several processes on one SQLite file (processFloors.ts): a process prunes history and trims
 * the log only below the floors the other processes keep in `read_floors`, a row of a process
 * that is gone stops counting, and a process's commits reach the other processes' watchers.
 *
 * The other process is real where it can be (reader-child.fixture.ts, spawned with tsx); rows
 * of processes in states a test cannot wait for (two minutes without a heartbeat) are written
 * into the table directly.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { commit, put } from "../conformance/context.js";
import { FLOOR_STALE_MS, PROCESS_HOST, ProcessFloorRow } from "./processFloors.js";
import { openSqliteStorage, type SqliteStorage } from "./sqliteStorage.js";

const fixture = fileURLToPath(new URL("./reader-child.fixture.ts", import.meta.url));
const projectRoot = fileURLToPath(new URL("../../..", import.meta.url));

let dir: string;
let filename: string;
const cleanups: Array<() => Promise<unknown> | unknown> = [];

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "walkin-process-floors-"));
  filename = path.join(dir, "walkin.sqlite");
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await rm(dir, { recursive: true, force: true });
});

async function open(): Promise<SqliteStorage> {
  const storage = await openSqliteStorage({ filename, synchronous: "normal" });
  cleanups.push(() => storage.close());
  return storage;
}

/** Commits `d` = `v<ts>` at each ts of `from..to`. */
async function updates(storage: SqliteStorage, from: number, to: number): Promise<void> {
  for (let ts = from; ts <= to; ts++) await commit(storage, { ts, documents: [put("d", `v${ts}`)], indexes: [] }, ts - 1);
}

/** Everything pruning at `ts` may take, for this connection: the sweep, versions written since, the log. */
async function pruneAt(storage: SqliteStorage, ts: number): Promise<void> {
  storage.raiseReadFloor(ts);
  for (let pass = 0; pass < 5; pass++) await storage.pruneHistory(ts);
}

/** The versions of `d` stored in the file, oldest first. */
function versionsOfD(storage: SqliteStorage): number[] {
  return storage.db.prepare<[], number>("SELECT ts FROM documents WHERE id = 'd' ORDER BY ts").pluck().all();
}

/** Another process's row, as it would have written it. */
function otherRow(storage: SqliteStorage, row: { floor: number; seenAt?: number; host?: string; pid?: number }): void {
  storage.db
    .prepare("INSERT INTO read_floors (instance, floor, seen_at, host, pid) VALUES (?, ?, ?, ?, ?)")
    .run(`other-${row.floor}-${row.pid ?? 0}`, row.floor, row.seenAt ?? Date.now(), row.host ?? PROCESS_HOST, row.pid ?? process.ppid);
}

/** A reader-child.fixture.ts process on the file, driven line by line; `wrap` runs it under another command. */
class OtherProcess {
  readonly child: ChildProcess;
  private readonly lines: string[] = [];
  private waiting: (() => void) | null = null;
  private stderr = "";

  constructor(wrap: (argv: string[]) => [string, string[]] = (argv) => [argv[0]!, argv.slice(1)]) {
    const [command, args] = wrap([process.execPath, "--import", "tsx", fixture, filename]);
    this.child = spawn(command, args, { cwd: projectRoot, stdio: ["pipe", "pipe", "pipe"] });
    this.child.stderr!.on("data", (chunk: Buffer) => (this.stderr += chunk.toString()));
    createInterface({ input: this.child.stdout! }).on("line", (line) => {
      this.lines.push(line);
      this.waiting?.();
    });
    cleanups.push(async () => {
      if (this.child.exitCode === null && this.child.signalCode === null) {
        const exited = new Promise((resolve) => this.child.once("exit", resolve));
        this.child.kill("SIGKILL");
        await exited;
      }
    });
  }

  /** The next line it prints (fails on exit or after 30 s). */
  async next(): Promise<string> {
    const deadline = Date.now() + 30_000;
    while (this.lines.length === 0) {
      if (this.child.exitCode !== null || Date.now() > deadline) throw new Error(`the other process printed nothing more:\n${this.stderr}`);
      await new Promise<void>((resolve) => {
        this.waiting = resolve;
        setTimeout(resolve, 100);
      });
    }
    return this.lines.shift()!;
  }

  async ask(line: string): Promise<string> {
    this.child.stdin!.write(`${line}\n`);
    return this.next();
  }

  async killed(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once("exit", resolve));
    this.child.kill("SIGKILL");
    await exited;
  }
}

/** Whether this machine lets the test start a process in a PID namespace of its own (root, util-linux). */
const canUnshare =
  process.platform === "linux" &&
  spawnSync("unshare", ["--pid", "--fork", "--mount-proc", "--kill-child", "sh", "-c", "echo 4000 > /proc/sys/kernel/ns_last_pid"], { timeout: 10_000 }).status === 0;

/** A PID that no process of this PID namespace has (the child will have it in its own namespace). */
function freePid(): number {
  for (let pid = 20_000; pid < 30_000; pid++) {
    try {
      process.kill(pid, 0);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ESRCH") return pid;
    }
  }
  throw new Error("no free PID found");
}

/** This process commits `d` at 1..5, then another process opens the file (at 5). */
async function anotherProcessAt5(): Promise<{ storage: SqliteStorage; other: OtherProcess }> {
  const storage = await open();
  await updates(storage, 1, 5);
  const other = new OtherProcess();
  expect(await other.next()).toMatch(/^opened 5 /);
  return { storage, other };
}

/**
 * This process commits `d` at 1..5, another process opens the file (at 5), then this one commits
 * 6..40 and prunes everything it may at 40.
 */
async function prunedUnderAnotherProcess(): Promise<{ storage: SqliteStorage; other: OtherProcess }> {
  const { storage, other } = await anotherProcessAt5();
  await updates(storage, 6, 40);
  await pruneAt(storage, 40);
  return { storage, other };
}

describe("SQLite: processes sharing a file keep each other's snapshots", () => {
  it("does not prune what another process's snapshot still reads, and prunes it once that process has moved on", async () => {
    const { storage, other } = await prunedUnderAnotherProcess();
    // The other process reads at the snapshot it opened at: v5, which v6 replaced long ago.
    expect(await other.ask("read d 5")).toBe("doc v5");
    expect(versionsOfD(storage)).toContain(5);

    // It promises to read nothing below 30; after its next heartbeat its row says so, and the
    // versions below what it reads go. (The heartbeat is every 10 s: the test writes what it
    // would.)
    expect(await other.ask("floor 30")).toBe("floor");
    storage.db.prepare("UPDATE read_floors SET floor = 30, seen_at = ? WHERE pid = ?").run(Date.now(), other.child.pid!);
    await new Promise((resolve) => setTimeout(resolve, 1_100)); // written here: see the stale row's test
    await pruneAt(storage, 40);
    expect(versionsOfD(storage)).toEqual(Array.from({ length: 11 }, (_, i) => i + 30));
    expect(await other.ask("read d 30")).toBe("doc v30");
    expect(await other.ask("read d 35")).toBe("doc v35");
    expect(await other.ask("close")).toBe("closed");
    // Its row went with it.
    expect(storage.db.prepare("SELECT count(*) FROM read_floors WHERE pid = ?").pluck().get(other.child.pid!)).toBe(0);
  });

  it("keeps the log rows another process may still ask about", async () => {
    const { storage, other } = await prunedUnderAnotherProcess();
    // The other process could still be deciding a commit of its own at 5 (committer.ts,
    // `findCommits`): the log keeps what comes after its floor.
    const view = await storage.commitsSince(5, 100);
    expect(view.trimmedThrough).toBeLessThanOrEqual(5);
    expect(view.commits.map((c) => c.ts)).toEqual(Array.from({ length: 35 }, (_, i) => i + 6));
    expect(await other.ask("close")).toBe("closed");
  });

  it("stops counting a process that was killed, at once", async () => {
    const { storage, other } = await anotherProcessAt5();
    await other.killed();
    // Its row is still there (nothing ran to delete it), but it names a process of this host
    // that is gone.
    expect(storage.db.prepare("SELECT count(*) FROM read_floors WHERE pid = ?").pluck().get(other.child.pid!)).toBe(1);
    await updates(storage, 6, 40);
    await pruneAt(storage, 40);
    expect(versionsOfD(storage)).toEqual([40]);
  });

  it("counts another host's row while it is fresh, and this host's while its process runs, however silent", async () => {
    const storage = await open();
    await updates(storage, 1, 22);
    const exited = spawnSync(process.execPath, ["-e", ""]).pid;
    // A process of another host (a container on a shared volume) at 5, heard from just now.
    otherRow(storage, { floor: 5, host: "another-host", pid: 1 });
    // One of this host at 3 that is running (this test's parent) but has not beaten for longer
    // than a row stays fresh: stopped at a breakpoint, say. It resumes at its snapshot.
    otherRow(storage, { floor: 3, seenAt: Date.now() - FLOOR_STALE_MS - 1_000 });
    // One of this host at 1, just heard from, whose process has exited since.
    otherRow(storage, { floor: 1, pid: exited });
    await pruneAt(storage, 20);
    // Pruned at 3: what 3 or an older version replaced is gone, everything from 3 on stays.
    expect(versionsOfD(storage)).toEqual(Array.from({ length: 20 }, (_, i) => i + 3));
    // The running one closes (its row goes): pruned at the other host's 5. Then that row goes
    // stale: pruned at 20. (Written through this connection, the changes do not show in its
    // `data_version`, so each waits out the second a read of the rows is kept.)
    storage.db.prepare("DELETE FROM read_floors WHERE pid = ?").run(process.ppid);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await pruneAt(storage, 20);
    expect(versionsOfD(storage)).toEqual(Array.from({ length: 18 }, (_, i) => i + 5));
    storage.db.prepare("UPDATE read_floors SET seen_at = ? WHERE host = 'another-host'").run(Date.now() - FLOOR_STALE_MS - 1_000);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await pruneAt(storage, 20);
    expect(versionsOfD(storage)).toEqual([20, 21, 22]);
  });

  it("keeps one row per process and file, written before the connection reads, and deletes it at the last close", async () => {
    const rows = (storage: SqliteStorage) => storage.db.prepare<[], { floor: number; pid: number }>("SELECT floor, pid FROM read_floors").all();
    const first = await openSqliteStorage({ filename, synchronous: "normal" });
    await updates(first, 1, 3);
    const second = await openSqliteStorage({ filename, synchronous: "normal" });
    // The first connection registered at 0, before any commit; the second one shares its row.
    expect(rows(second)).toEqual([{ floor: 0, pid: process.pid }]);
    await first.close();
    expect(rows(second)).toEqual([{ floor: 0, pid: process.pid }]);
    await second.close();
    const third = await open();
    // Registered anew, at the latest commit.
    expect(rows(third)).toEqual([{ floor: 3, pid: process.pid }]);
  });
});

describe("SQLite: reclaiming an index's entries (reclaimIndex)", () => {
  const allow = { metaKey: "registry", allows: () => true };
  const entriesOf = (storage: SqliteStorage) => storage.scan({ indexId: "retired", range: {}, order: "asc", readTs: 1, limit: 10 });

  it("removes nothing while another process has the file open, and reclaims once it has closed or was killed", async () => {
    const storage = await open();
    await commit(storage, { ts: 1, documents: [put("a", "a")], indexes: [{ indexId: "retired", key: Uint8Array.of(1), docId: "a" }] });
    const other = new OtherProcess();
    expect(await other.next()).toMatch(/^opened 1 /);
    expect(await storage.reclaimIndex("retired", allow)).toBe(false);
    expect(await entriesOf(storage)).toHaveLength(1);
    expect(await other.ask("close")).toBe("closed");
    expect(await storage.reclaimIndex("retired", allow)).toBe(true);
    expect(await entriesOf(storage)).toEqual([]);

    // A process killed with its row left behind no longer counts.
    await commit(storage, { ts: 2, documents: [], indexes: [{ indexId: "retired", key: Uint8Array.of(2), docId: "a" }] });
    const killed = new OtherProcess();
    expect(await killed.next()).toMatch(/^opened 2 /);
    await killed.killed();
    expect(await storage.reclaimIndex("retired", allow)).toBe(true);
  });

  it("removes nothing while another host's row is fresh", async () => {
    const storage = await open();
    await commit(storage, { ts: 1, documents: [put("a", "a")], indexes: [{ indexId: "retired", key: Uint8Array.of(1), docId: "a" }] });
    otherRow(storage, { floor: 1, host: "another-container" });
    expect(await storage.reclaimIndex("retired", allow)).toBe(false);
    storage.db.prepare("UPDATE read_floors SET seen_at = ? WHERE host = 'another-container'").run(Date.now() - FLOOR_STALE_MS - 1_000);
    expect(await storage.reclaimIndex("retired", allow)).toBe(true);
  });
});

describe("SQLite: another process's commits are announced", () => {
  it("calls the watcher soon after a commit of another connection, and not for its own", async () => {
    const storage = await open();
    const heard: number[] = [];
    const stop = storage.watchCommits!(() => heard.push(Date.now()));
    await updates(storage, 1, 3);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(heard).toEqual([]);
    const other = await openSqliteStorage({ filename, synchronous: "normal" });
    await commit(other, { ts: 4, documents: [put("d", "v4")], indexes: [] }, 3);
    await other.close();
    const deadline = Date.now() + 5_000;
    while (heard.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(heard.length).toBeGreaterThan(0);
    stop();
    const before = heard.length;
    const third = await openSqliteStorage({ filename, synchronous: "normal" });
    await commit(third, { ts: 5, documents: [put("d", "v5")], indexes: [] }, 4);
    await third.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(heard.length).toBe(before);
  });

  it("has nothing to watch on an in-memory database, which no other connection can open", async () => {
    const memory = await openSqliteStorage({ filename: ":memory:" });
    cleanups.push(() => memory.close());
    expect(memory.watchCommits).toBeUndefined();
    expect(memory.db.prepare("SELECT count(*) FROM read_floors").pluck().get()).toBe(0);
  });
});

describe("SQLite: a process's heartbeat", () => {
  it("records the process's lowest floor, never lower than before, and clears out rows of processes that are gone", async () => {
    const storage = await open();
    await updates(storage, 1, 3);
    let floor = 7;
    let mayWriteNow = true;
    const row = new ProcessFloorRow(() => floor, () => ({ db: storage.db, mayWriteNow }));
    row.register(storage.db);
    cleanups.push(() => row.remove(storage.db));
    const floorOf = (instance: string) =>
      storage.db.prepare<[string], number>("SELECT floor FROM read_floors WHERE instance = ?").pluck().get(instance);
    // Registered at the latest commit, then each beat writes the connections' lowest floor.
    expect(floorOf(row.instance)).toBe(3);
    row.touch();
    expect(floorOf(row.instance)).toBe(7);
    floor = 5;
    row.touch();
    expect(floorOf(row.instance)).toBe(7);
    // A beat that would have to wait (the checkpointer's restart) is skipped.
    floor = 9;
    mayWriteNow = false;
    row.touch();
    expect(floorOf(row.instance)).toBe(7);
    mayWriteNow = true;

    // A process of this host that has exited, one of another host silent for more than an
    // hour, and a live one of another host: the beat deletes the first two.
    const exited = spawnSync(process.execPath, ["-e", ""]).pid;
    otherRow(storage, { floor: 1, pid: exited });
    otherRow(storage, { floor: 2, seenAt: Date.now() - 3_601_000, host: "another-host", pid: 2 });
    otherRow(storage, { floor: 4, host: "another-host", pid: 4 });
    // Another process forgot this one's row (it had not beaten for an hour): the beat writes it again.
    storage.db.prepare("DELETE FROM read_floors WHERE instance = ?").run(row.instance);
    row.touch();
    const rows = storage.db.prepare<[], { floor: number; host: string }>("SELECT floor, host FROM read_floors ORDER BY floor").all();
    expect(rows).toEqual([
      { floor: 0, host: PROCESS_HOST }, // the storage's own row: registered when it opened the empty file
      { floor: 4, host: "another-host" },
      { floor: 9, host: PROCESS_HOST },
    ]);
  });
});

describe("SQLite: processes sharing a file, where a hostname and a heartbeat alone would be wrong", () => {
  it.skipIf(!canUnshare)(
    "counts a live process of this hostname that runs in another PID namespace (a container with host networking)",
    async () => {
      const storage = await open();
      await updates(storage, 1, 5);
      // `docker run --network host` (or Kubernetes' hostNetwork) gives a container the host's
      // hostname and a PID namespace of its own. Its process's PID, as written in its row, names
      // no process here (or an unrelated one).
      const pid = freePid();
      const other = new OtherProcess((argv) => [
        "unshare",
        ["--pid", "--fork", "--mount-proc", "--kill-child", "sh", "-c", `echo ${pid - 1} > /proc/sys/kernel/ns_last_pid; "$@"; exit $?`, "sh", ...argv],
      ]);
      expect(await other.next()).toBe(`opened 5 ${pid}`);
      // Its row is there, under the same hostname as this process's.
      expect(storage.db.prepare("SELECT count(*) FROM read_floors WHERE pid = ?").pluck().get(pid)).toBe(1);

      await updates(storage, 6, 40);
      await pruneAt(storage, 40);
      // The other process is alive and reads at the snapshot it opened at.
      expect(await other.ask("read d 5")).toBe("doc v5");
      expect(await other.ask("close")).toBe("closed");
    },
    60_000,
  );

  it("protects a connection opened after the process's earlier connections were closed without close", async () => {
    // A tool (or a test) whose storage went away without `close`: the process's row stays in the
    // file, and its heartbeat stops writing it (no open connection has a floor to give).
    const first = await openSqliteStorage({ filename, synchronous: "normal" });
    await updates(first, 1, 5);
    await first.checkpointer?.close();
    first.db.close();
    // Two minutes later (written here: the test cannot wait for it), the row is stale.
    const raw = new Database(filename);
    raw.prepare("UPDATE read_floors SET seen_at = ? WHERE pid = ?").run(Date.now() - FLOOR_STALE_MS - 1_000, process.pid);
    raw.close();

    // The process opens the file again; its engine reads at 5 from now on.
    const second = await open();
    expect(await second.latestTimestamp()).toBe(5);
    // Another process writes and prunes meanwhile (well within one heartbeat of `second`).
    const other = new OtherProcess();
    expect(await other.next()).toMatch(/^opened 5 /);
    expect(await other.ask("commit 6 40")).toBe("committed");
    expect(await other.ask("prune 40")).toBe("pruned");
    const read = await second.getDocument("d", 5);
    expect(read?.body).toBe("v5");
    expect(await other.ask("close")).toBe("closed");
  });

  it("keeps the snapshot of a process of this host that is alive but was stopped for longer than a row stays fresh", async () => {
    const { storage, other } = await anotherProcessAt5();
    const pid = other.child.pid!;
    // Stopped at a debugger's breakpoint, or with Ctrl-Z in its terminal (SIGSTOP): it runs
    // again later, at the snapshot it holds. Its heartbeat stops meanwhile; two minutes of it
    // are written here (through a connection of its own, as the other process's write would be).
    other.child.kill("SIGSTOP");
    cleanups.push(() => other.child.kill("SIGCONT"));
    const raw = new Database(filename);
    raw.prepare("UPDATE read_floors SET seen_at = ? WHERE pid = ?").run(Date.now() - FLOOR_STALE_MS - 1_000, pid);
    raw.close();
    // The process is there: this process can tell, as it tells that a killed one is gone.
    expect(() => process.kill(pid, 0)).not.toThrow();
    await updates(storage, 6, 40);
    await pruneAt(storage, 40);
    other.child.kill("SIGCONT");
    expect(await other.ask("read d 5")).toBe("doc v5");
    expect(await other.ask("close")).toBe("closed");
  });

  it("skips a beat rather than stall the event loop while another process holds the write lock", async () => {
    const storage = await open();
    await updates(storage, 1, 3);
    let floor = 3;
    const row = new ProcessFloorRow(() => floor, () => ({ db: storage.db, mayWriteNow: true }));
    row.register(storage.db);
    cleanups.push(() => row.remove(storage.db));
    const floorOfRow = () => storage.db.prepare<[string], number>("SELECT floor FROM read_floors WHERE instance = ?").pluck().get(row.instance);
    const other = new OtherProcess();
    expect(await other.next()).toMatch(/^opened 3 /);
    // A long write of the other process (an index built in one commit, a large batch).
    expect(await other.ask("lock 2500")).toBe("locked");
    // The beat runs on the event loop: every request of this process would wait for it. The
    // row was written a moment ago and counts for two minutes: the beat skips, writing nothing,
    // where waiting out the lock would have written the new floor once the lock was free.
    floor = 7;
    row.touch();
    expect(floorOfRow()).toBe(3);
    expect(await other.next()).toBe("unlocked");
    row.touch();
    expect(floorOfRow()).toBe(7);
    expect(await other.ask("close")).toBe("closed");
  });
});

describe("SQLite: rows of this process's own PID", () => {
  it("are not left behind when the last close comes while another process writes", async () => {
    const first = await openSqliteStorage({ filename, synchronous: "normal" });
    await updates(first, 1, 5);
    first.writePendingVersions(); // nothing left for close to write: close itself needs no lock
    const other = new OtherProcess();
    expect(await other.next()).toMatch(/^opened 5 /);
    // The other process is in the middle of a write (a commit, a materialization) as this one
    // closes the file: an ordinary moment on a file two servers share.
    expect(await other.ask("lock 1500")).toBe("locked");
    await first.close();
    expect(await other.next()).toBe("unlocked");
    expect(await other.ask("close")).toBe("closed");
    // Nothing of the closed storage reads the file any more: its row went.
    const again = await open();
    expect(again.db.prepare<[number], { floor: number }>("SELECT floor FROM read_floors WHERE pid = ?").all(process.pid)).toEqual([{ floor: 5 }]);
    await updates(again, 6, 40);
    await pruneAt(again, 40);
    expect(versionsOfD(again)).toEqual([40]);
  }, 60_000);

  it("count while fresh or kept by this process, and stop counting once a row no one keeps goes stale", async () => {
    // A row under this process's PID that it does not keep: left behind (a close that could not
    // delete it), an earlier process that had this PID (a restarted container's PID 1), or a
    // storage in a worker thread of this process, which beats like any other.
    const storage = await open();
    await updates(storage, 1, 20);
    const row = (instance: string, floor: number, seenAt: number) =>
      storage.db
        .prepare("INSERT INTO read_floors (instance, floor, seen_at, host, pid) VALUES (?, ?, ?, ?, ?)")
        .run(instance, floor, seenAt, PROCESS_HOST, process.pid);
    row("beating", 4, Date.now());
    row("left-behind", 2, Date.now() - FLOOR_STALE_MS - 1_000);
    await pruneAt(storage, 20);
    expect(versionsOfD(storage)).toEqual(Array.from({ length: 17 }, (_, i) => i + 4));
    storage.db.prepare("UPDATE read_floors SET seen_at = ? WHERE instance = 'beating'").run(Date.now() - FLOOR_STALE_MS - 1_000);
    await new Promise((resolve) => setTimeout(resolve, 1_100)); // written here: see the stale row's test
    await pruneAt(storage, 20);
    expect(versionsOfD(storage)).toEqual([20]);
  });
});

