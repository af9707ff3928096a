import { spawnSync } from "node:child_process";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openStorage, parseStorageUrl, redactUrl } from "./url.js";

describe("parseStorageUrl", () => {
  it("reads sqlite URLs and plain paths, relative to the working directory", () => {
    expect(parseStorageUrl("sqlite:data/app.sqlite", "/srv/app")).toEqual({ kind: "sqlite", filename: "/srv/app/data/app.sqlite" });
    expect(parseStorageUrl("sqlite:///var/lib/app.sqlite", "/srv")).toEqual({ kind: "sqlite", filename: "/var/lib/app.sqlite" });
    expect(parseStorageUrl("/tmp/x.sqlite", "/srv")).toEqual({ kind: "sqlite", filename: "/tmp/x.sqlite" });
    expect(parseStorageUrl(".walkin/data.sqlite", "/srv")).toEqual({ kind: "sqlite", filename: "/srv/.walkin/data.sqlite" });
    expect(parseStorageUrl("sqlite::memory:")).toEqual({ kind: "sqlite", filename: ":memory:" });
    expect(parseStorageUrl("postgresql://u@h/db")).toEqual({ kind: "postgres", url: "postgresql://u@h/db" });
  });

  it("refuses unknown schemes and empty URLs, listing what is supported, without printing passwords", () => {
    expect(() => parseStorageUrl("mysql://root:hunter2@db/app")).toThrow(/Unknown database URL scheme "mysql:" in mysql:\/\/root:\*\*\*@db\/app\. Supported: sqlite:<file>.*postgres:\/\//);
    expect(() => parseStorageUrl("mysql://root:hunter2@db/app")).not.toThrow(/hunter2/);
    expect(() => parseStorageUrl("  ")).toThrow(/empty/);
    expect(() => parseStorageUrl("sqlite:")).toThrow(/names no file/);
  });

  it("redacts the password of a URL", () => {
    expect(redactUrl("postgres://app:s3cret@127.0.0.1:5432/db")).toBe("postgres://app:***@127.0.0.1:5432/db");
    expect(redactUrl("postgres://app@127.0.0.1/db")).toBe("postgres://app@127.0.0.1/db");
  });

  it("redacts passwords that a pattern over the text would miss: in the query, or holding @, / or #", () => {
    expect(redactUrl("postgres://app@127.0.0.1/db?password=s3cret&sslmode=disable")).toBe("postgres://app@127.0.0.1/db?password=***&sslmode=disable");
    expect(redactUrl("postgres://app@h/db?sslpassword=s3cret")).toBe("postgres://app@h/db?sslpassword=***");
    expect(redactUrl("postgres://app:p@ssw0rd@127.0.0.1/db")).toBe("postgres://app:***@127.0.0.1/db");
    // The authority ends at the "/", "#" or "?": where the password ends cannot be told.
    expect(redactUrl("postgres://app:pa/ss1234@127.0.0.1:5432/db")).toBe("postgres://***");
    expect(redactUrl("postgres://app:123/abc@127.0.0.1/db")).toBe("postgres://***"); // parses: host app, port 123
    expect(redactUrl("postgres://app:pa#ss@127.0.0.1/db")).toBe("postgres://***");
    expect(redactUrl("postgres://app:12?x=y@127.0.0.1/db")).toBe("postgres://***");
  });

  it("redacts a URL that does not parse by its text, keeping what helps find the mistake", () => {
    expect(redactUrl("postgres://app:s3cret@localhost:notaport/db")).toBe("postgres://app:***@localhost:notaport/db");
    expect(redactUrl("postgres://app:p@ss@localhost:notaport/db?password=s3cret&x=1")).toBe("postgres://app:***@localhost:notaport/db?password=***&x=1");
    expect(redactUrl("postgres://app@localhost:notaport/db")).toBe("postgres://app@localhost:notaport/db");
  });

  it("leaves file paths and sqlite URLs as they are", () => {
    for (const path of ["./data.sqlite", "/var/lib/app.sqlite", "sqlite:.walkin/data.sqlite", "sqlite:///var/lib/app.sqlite", "sqlite::memory:"]) {
      expect(redactUrl(path)).toBe(path);
    }
  });
});

describe("openStorage", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "walkin-url-"));
  });
  afterEach(async () => {
    await chmod(dir, 0o700).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  });

  it("creates the folder of an SQLite file and opens it", async () => {
    const storage = await openStorage(`sqlite:${path.join(dir, "nested", "data.sqlite")}`);
    expect(storage.name).toBe(`sqlite:${path.join(dir, "nested", "data.sqlite")}`);
    await storage.close();
  });

  it("says why a path cannot work: a folder, or a place it cannot create", async () => {
    await mkdir(path.join(dir, "adir"));
    await expect(openStorage(path.join(dir, "adir"))).rejects.toThrow(/is a folder, not a database file/);
    await writeFile(path.join(dir, "afile"), "");
    await expect(openStorage(path.join(dir, "afile", "data.sqlite"))).rejects.toThrow(/Cannot create the folder/);
  });
});

describe("walkin start --db", () => {
  it("exits 1 on an unknown scheme, saying what is supported, with no stack trace", async () => {
    const bin = fileURLToPath(new URL("../../bin/walkin.js", import.meta.url));
    const dir = await mkdtemp(path.join(os.tmpdir(), "walkin-db-"));
    await mkdir(path.join(dir, "functions"));
    await writeFile(path.join(dir, "package.json"), `{ "type": "module" }\n`);
    const result = spawnSync(process.execPath, [bin, "start", "--port", "0", "--db", "mongodb://localhost/app"], {
      cwd: dir,
      env: { ...process.env, NO_COLOR: "1", WALKIN_CLI_FROM_SOURCE: "1", WALKIN_DB: "" },
      encoding: "utf8",
    });
    await rm(dir, { recursive: true, force: true });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/Unknown database URL scheme "mongodb:".*Supported: sqlite:<file>/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});
