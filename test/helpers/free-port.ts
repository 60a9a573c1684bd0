/**
 * free-port.ts - loopback TCP ports for test servers (redis-server, smtpd).
 * Owns: asking the kernel for a port that is free on 127.0.0.1 now (bind
 *       port 0, close), optionally with port + offset free too (a Redis
 *       Cluster node's bus port is port + 10000).
 * Not here: starting the servers (redis-server.ts, postfix-instance.ts).
 * See also: node:net Server.listen (port 0)
 *
 * A port free a moment ago may be taken by the time a server binds it; the
 * servers started on one report that in their own way (they fail to start).
 */

import { createServer } from "node:net";

/** portFree - can we listen on 127.0.0.1:port now? */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

/** anyPort - a port the kernel gives for 127.0.0.1, released again. */
function anyPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/**
 * freeLoopbackPort - a port that was free on 127.0.0.1 a moment ago; with
 * `alsoFree`, port + alsoFree was free too (and is a valid port).
 */
export async function freeLoopbackPort(alsoFree?: number): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const port = await anyPort();
    if (alsoFree === undefined) return port;
    if (port + alsoFree <= 65535 && (await portFree(port + alsoFree))) return port;
  }
  throw new Error("no free loopback port");
}
