/**
 * A TCP proxy to a PostgreSQL server, for tests that need a connection to fail at a chosen
 * moment: `cutAll` closes every connection at once (a server restart, a network cut), and
 * `cutAfterNextCommit` lets the next COMMIT reach the server, keeps its answer back and then
 * closes that connection (the commit landed, the client cannot know), and `freezeAll` stops
 * forwarding on every open connection without closing it (a failover or a firewall that dropped
 * the connections' state: nothing arrives, nothing fails), while new connections still work.
 */
import net from "node:net";

/** The simple-protocol COMMIT message node-postgres sends for `client.query("COMMIT")`. */
const COMMIT_MESSAGE = Buffer.concat([Buffer.from("Q"), Buffer.from([0, 0, 0, 11]), Buffer.from("COMMIT\0")]);

export interface TestProxy {
  /** The database URL, pointing at the proxy. */
  url: string;
  cutAll(): void;
  cutAfterNextCommit(): void;
  freezeAll(): void;
  close(): Promise<void>;
}

export async function startTestProxy(databaseUrl: string): Promise<TestProxy> {
  const target = new URL(databaseUrl);
  let armed = false;
  const pairs = new Set<[net.Socket, net.Socket]>();
  const frozen = new WeakSet<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    let holdingBack = false;
    client.on("error", () => {});
    upstream.on("error", () => {});
    upstream.on("data", (chunk) => {
      if (!holdingBack && !frozen.has(upstream)) client.write(chunk);
    });
    client.on("data", (chunk) => {
      if (frozen.has(client)) return;
      upstream.write(chunk);
      if (armed && chunk.includes(COMMIT_MESSAGE)) {
        armed = false;
        holdingBack = true;
        // Give the server time to finish committing, then cut the client off.
        setTimeout(() => {
          client.destroy();
          upstream.end();
        }, 300);
      }
    });
    const close = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("close", close);
    upstream.on("close", close);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = new URL(databaseUrl);
  url.host = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  const cutAll = () => {
    for (const [client, upstream] of pairs) {
      client.destroy();
      upstream.destroy();
    }
  };
  return {
    url: url.toString(),
    cutAll,
    cutAfterNextCommit: () => void (armed = true),
    freezeAll: () => {
      for (const [client, upstream] of pairs) frozen.add(client).add(upstream);
    },
    close: () => {
      cutAll();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
