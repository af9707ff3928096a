/**
 * Opening PostgreSQL storage with a URL that cannot work fails at once with a message that names
 * what to fix, and never shows the password. Wrong passwords and silent servers come from small
 * fake servers on loopback (the test server trusts every local user).
 */
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { openStorage } from "../url.js";
import { openPostgresStorage } from "./postgresStorage.js";
import { testServerUrl, withDatabase } from "./testDatabase.js";

const PASSWORD = "hunter2-secret";
const servers: net.Server[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
});

/** A fake PostgreSQL server that answers every connection with `answer` (or never, if null). */
async function fakeServer(answer: Buffer | null): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.once("data", () => {
      if (answer !== null) socket.end(answer);
    });
  });
  server.on("close", () => sockets.forEach((s) => s.destroy()));
  const close = server.close.bind(server);
  server.close = ((cb?: (err?: Error) => void) => {
    sockets.forEach((s) => s.destroy());
    return close(cb);
  }) as typeof server.close;
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as net.AddressInfo).port;
}

/** A protocol ErrorResponse message, as a server sends it when it refuses a login. */
function errorResponse(code: string, message: string): Buffer {
  const fields = Buffer.concat([
    ...[["S", "FATAL"], ["V", "FATAL"], ["C", code], ["M", message]].map(([type, value]) => Buffer.from(`${type}${value}\0`)),
    Buffer.from([0]),
  ]);
  const header = Buffer.alloc(5);
  header.write("E", 0);
  header.writeInt32BE(fields.length + 4, 1);
  return Buffer.concat([header, fields]);
}

async function openError(url: string): Promise<Error> {
  const error = await openPostgresStorage({ url }).then(
    async (storage) => {
      await storage.close();
      throw new Error(`opening ${url} should have failed`);
    },
    (e: Error) => e,
  );
  expect(error.message).not.toContain(PASSWORD);
  return error;
}

describe("opening PostgreSQL storage with a URL that cannot work", () => {
  it("a malformed URL", async () => {
    const error = await openError(`postgres://app:${PASSWORD}@localhost:notaport/db`);
    expect(error.message).toMatch(/not a valid PostgreSQL URL.*postgres:\/\/user:password@host:5432\/database/);
    expect(error.message).toContain("postgres://app:***@");
  });

  it("nothing listening at the host and port", async () => {
    const closed = await fakeServer(null);
    servers.pop()!.close();
    const error = await openError(`postgres://app:${PASSWORD}@127.0.0.1:${closed}/db`);
    expect(error.message).toMatch(new RegExp(`nothing accepts connections at 127\\.0\\.0\\.1:${closed}.*Is PostgreSQL running`));
  });

  it("a host name that does not resolve", async () => {
    const error = await openError(`postgres://app:${PASSWORD}@no-such-host.invalid:5432/db`);
    expect(error.message).toMatch(/the host no-such-host\.invalid cannot be resolved/);
  });

  it("a server that never answers: fails after the connect timeout instead of hanging", async () => {
    const port = await fakeServer(null);
    const error = await openError(`postgres://app:${PASSWORD}@127.0.0.1:${port}/db`);
    expect(error.message).toMatch(new RegExp(`127\\.0\\.0\\.1:${port} did not answer within 5 s`));
  });

  it("a wrong password", async () => {
    const port = await fakeServer(errorResponse("28P01", 'password authentication failed for user "app"'));
    const error = await openError(`postgres://app:${PASSWORD}@127.0.0.1:${port}/db`);
    expect(error.message).toMatch(/refused the password for user "app"\. Check the user and password in the URL/);
  });

  it("a user the server does not know", async () => {
    const url = new URL(withDatabase(testServerUrl(), "test"));
    url.username = "walkin_no_such_user";
    url.password = PASSWORD;
    const error = await openError(url.toString());
    expect(error.message).toMatch(/refused user "walkin_no_such_user".*Check the user in the URL/);
  });

  it("a database that does not exist", async () => {
    const error = await openError(withDatabase(testServerUrl(), "walkin_no_such_database"));
    expect(error.message).toMatch(/the database "walkin_no_such_database" does not exist on .*Create it \(createdb walkin_no_such_database/);
  });

  it("openStorage reports the same errors for postgres:// URLs", async () => {
    await expect(openStorage(withDatabase(testServerUrl(), "walkin_no_such_database"))).rejects.toThrow(/does not exist/);
  });

  it("bad options", async () => {
    const url = withDatabase(testServerUrl(), "test");
    await expect(openPostgresStorage({ url, schema: "" })).rejects.toThrow(/schema name must be 1 to 63 bytes/);
    await expect(openPostgresStorage({ url, schema: "x".repeat(64) })).rejects.toThrow(/schema name/);
    await expect(openPostgresStorage({ url, poolSize: 0 })).rejects.toThrow(/poolSize must be a positive integer/);
  });
});
