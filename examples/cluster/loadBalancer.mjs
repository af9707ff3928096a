// A small TCP load balancer for trying Walk-in on several nodes: each new connection goes to
// the next node, round robin, skipping nodes that refuse it. No sticky sessions: any node
// serves any client (the client's session ID and timestamps travel with it). In production,
// put a real one (nginx, HAProxy, a cloud load balancer) in front with WebSocket upgrades on.
import net from "node:net";

/**
 * @param {{ port: number, host?: string, backends: Array<{ host: string, port: number }> }} options
 * @returns {Promise<{ port: number, url: string, setBackends(list: Array<{ host: string, port: number }>): void, close(): Promise<void> }>}
 */
export async function startLoadBalancer({ port, host = "127.0.0.1", backends }) {
  let nodes = [...backends];
  let next = 0;
  const sockets = new Set();

  const connect = (client, tries) => {
    if (tries >= nodes.length || nodes.length === 0) return client.destroy();
    const node = nodes[next++ % nodes.length];
    const upstream = net.connect(node.port, node.host);
    let connected = false;
    upstream.once("connect", () => {
      connected = true;
      client.pipe(upstream).pipe(client);
      client.resume();
    });
    // Refused (the node is down): try the next one. Failed later: the client reconnects.
    upstream.once("error", () => (connected ? client.destroy() : connect(client, tries + 1)));
    upstream.once("close", () => connected && client.destroy());
    client.once("close", () => upstream.destroy());
    sockets.add(upstream);
    upstream.once("close", () => sockets.delete(upstream));
  };

  const server = net.createServer((client) => {
    client.pause();
    client.on("error", () => client.destroy());
    sockets.add(client);
    client.once("close", () => sockets.delete(client));
    connect(client, 0);
  });
  await new Promise((resolve, reject) => server.once("error", reject).listen(port, host, resolve));
  const bound = server.address().port;
  return {
    port: bound,
    url: `http://${host}:${bound}`,
    setBackends(list) {
      nodes = [...list];
    },
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
