/**
 * floor-server.ts - a deliberately minimal tlsmgr-speaking Node server, the
 *                   floor against which the daemon's request path is judged.
 * Owns: nothing a real tlsmgr needs: an in-memory Map per cache type, no
 *       expiry, no sweep, no limits, fixed ticket key, Math.random seed bytes.
 *       It answers lookup/update/delete/tktkey/seed/policy correctly enough
 *       for the load generator, with one socket.write per reply.
 * Not here: anything to deploy; it exists only as `--impl node-floor`, to
 *           show what Node itself costs per request on this machine and that
 *           the load generator can drive more than the daemon under test.
 * See also: bench/targets.ts, docs/benchmarks.md
 *
 * Usage: node dist/bench/floor-server.js SOCKET
 */

import { createServer, type Socket } from "node:net";
import { rmSync } from "node:fs";
import { randomBytes } from "node:crypto";

const ANNOUNCE = "protocol\0tlsmgr_protocol\0\0";
const KEY = randomBytes(88);

// serve - one connection: split requests at list ends, answer each
function serve(sock: Socket, caches: Map<string, Map<string, Buffer>>): void {
  sock.write(ANNOUNCE, "latin1");
  let pending: Buffer | undefined;
  sock.on("data", (chunk: Buffer) => {
    const buf = pending === undefined ? chunk : Buffer.concat([pending, chunk]);
    pending = undefined;
    let pos = 0;
    for (;;) {
      const vals: string[] = [];
      const raw: Array<[number, number]> = [];
      let p = pos;
      let done = false;
      for (;;) {
        if (p >= buf.length) break;
        if (buf[p] === 0) { done = true; p++; break; }
        const ne = buf.indexOf(0, p);
        if (ne < 0) break;
        const ve = buf.indexOf(0, ne + 1);
        if (ve < 0) break;
        raw.push([ne + 1, ve]);
        vals.push(buf.toString("latin1", ne + 1, Math.min(ve, ne + 1 + 200)));
        p = ve + 1;
      }
      if (!done) { pending = buf.subarray(pos); return; }
      pos = p;
      sock.write(answer(buf, vals, raw, caches), "latin1");
      if (pos >= buf.length) return;
    }
  });
  sock.on("error", () => sock.destroy());
}

// answer - the reply text of one request
function answer(buf: Buffer, vals: string[], raw: Array<[number, number]>, caches: Map<string, Map<string, Buffer>>): string {
  const cache = caches.get(vals[1] ?? "");
  switch (vals[0]) {
    case "lookup": {
      const v = cache?.get(vals[2] ?? "");
      return v === undefined ? "status\x004294967295\0session\0\0\0" : "status\x000\0session\0" + v.toString("base64") + "\0\0";
    }
    case "update": {
      const [s, e] = raw[3]!;
      cache?.set(vals[2] ?? "", Buffer.from(buf.toString("latin1", s, e), "base64"));
      return "status\x000\0\0";
    }
    case "delete":
      return cache?.delete(vals[2] ?? "") ? "status\x000\0\0" : "status\x004294967295\0\0";
    case "tktkey":
      return "status\x000\0keybuf\0" + KEY.toString("base64") + "\0\0";
    case "seed": {
      const n = Number(vals[1]);
      const b = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) b[i] = (Math.random() * 256) | 0;
      return "status\x000\0seed\0" + b.toString("base64") + "\0\0";
    }
    case "policy":
      return "status\x000\0cachable\x001\0timeout\x003600\0\0";
    default:
      return "status\x004294967294\0\0";
  }
}

// main - listen on path until SIGTERM or SIGINT
function main(path: string): void {
  const caches = new Map([["smtpd", new Map<string, Buffer>()], ["smtp", new Map<string, Buffer>()]]);
  try { rmSync(path, { force: true }); } catch { /* not there */ }
  const srv = createServer((s) => serve(s, caches));
  srv.listen(path);
  const stop = () => srv.close(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

if (process.argv[1] !== undefined && /floor-server\.js$/.test(process.argv[1])) {
  const path = process.argv[2];
  if (path === undefined) {
    process.stderr.write("usage: node dist/bench/floor-server.js SOCKET\n");
    process.exit(2);
  }
  main(path);
}
