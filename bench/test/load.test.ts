/**
 * load.test.ts - the load generator against a scripted server on a
 * unix socket: replies cut into pieces are reassembled, every request sent
 * is counted once under its kind and status, failures are reported.
 * No timing assertions: only counts.
 * See also: bench/load.ts
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setImmediate as tick } from "node:timers/promises";
import { Attr0Decoder, attr0Encode } from "../../src/protocol/attr0.js";
import { currentTicketKeyName, openConnections, prefill, runLoad } from "../load.js";
import { makeKeyspace, makeSessionPool } from "../workload.js";

interface Scripted {
  server: Server;
  path: string;
  seen: Map<string, number>;
  stored: Map<string, Buffer>;
  close(): Promise<void>;
}

// scriptedServer - answers like a tlsmgr; every reply goes out in three pieces, one event-loop turn apart
async function scriptedServer(opts: { closeAfter?: number; store?: Map<string, Buffer> } = {}): Promise<Scripted> {
  const dir = mkdtempSync(join(tmpdir(), "bench-load-test-"));
  const path = join(dir, "tlsmgr");
  const seen = new Map<string, number>();
  const stored = opts.store ?? new Map<string, Buffer>();
  const sockets = new Set<Socket>();
  let total = 0;
  const send = async (s: Socket, text: string) => {
    const b = Buffer.from(text, "latin1");
    const a = Math.floor(b.length / 3);
    s.write(b.subarray(0, a));
    await tick();
    s.write(b.subarray(a, 2 * a));
    await tick();
    s.write(b.subarray(2 * a));
  };
  const server = createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => undefined);
    const d = new Attr0Decoder({ nameLimit: 100, valueLimit: 1 << 20, countLimit: 10 });
    void send(s, attr0Encode([["protocol", "tlsmgr_protocol"]]));
    s.on("data", async (chunk: Buffer) => {
      d.push(chunk);
      for (let e = d.next(); e !== undefined; e = d.next()) {
        assert.equal(e.kind, "list");
        if (e.kind !== "list") return;
        const v = (n: string) => e.attrs.find((a) => a.name === n)?.value.toString("latin1") ?? "";
        const req = v("request");
        seen.set(req, (seen.get(req) ?? 0) + 1);
        if (opts.closeAfter !== undefined && ++total > opts.closeAfter) {
          s.destroy();
          return;
        }
        switch (req) {
          case "lookup":
            await send(s, stored.has(v("cache_id"))
              ? attr0Encode([["status", 0], ["session", stored.get(v("cache_id"))!]])
              : attr0Encode([["status", -1], ["session", Buffer.alloc(0)]]));
            break;
          case "update":
            stored.set(v("cache_id"), Buffer.from(v("session"), "base64"));
            await send(s, attr0Encode([["status", 0]]));
            break;
          case "tktkey":
            await send(s, attr0Encode([["status", 0], ["keybuf", Buffer.alloc(88, 5)]]));
            break;
          default: // seed: a failure, to be counted as an error
            await send(s, attr0Encode([["status", -2], ["seed", Buffer.alloc(0)]]));
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  return {
    server, path, seen, stored,
    close: () => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => {
        rmSync(dir, { recursive: true, force: true });
        r();
      });
    }),
  };
}

test("pre-fill stores every id once; the load counts every request under its kind and status", async (t) => {
  const srv = await scriptedServer();
  t.after(() => srv.close());
  const ks = makeKeyspace(300, 2);
  const sessions = makeSessionPool(16, 1024, 4096, 2);
  const pf = await prefill(srv.path, ks, 0, 300, sessions, 7, 1);
  assert.equal(pf.entries, 300);
  assert.equal(pf.errors, 0);
  assert.equal(srv.stored.size, 300);
  for (const id of ks.ids) assert.ok(srv.stored.has(id));
  srv.seen.clear();

  const r = await runLoad({
    socket: srv.path, clients: 5, durationSec: 0.3, warmupSec: 0, keyspace: ks, sessions, seed: 3,
    mix: { lookup: 60, update: 25, tktkey: 10, seed: 5 }, seriesIntervalMs: 100,
  });
  assert.deepEqual(r.failures, []);
  const k = r.byKind;
  const n = (kind: "lookup" | "update" | "tktkey" | "seed") => k[kind]!.ok + k[kind]!.miss + k[kind]!.errors;
  // every request the server saw was counted once (plus the one tktkey that fetched the key name)
  assert.equal(n("lookup"), srv.seen.get("lookup") ?? 0);
  assert.equal(n("update"), srv.seen.get("update") ?? 0);
  assert.equal(n("tktkey") + 1, srv.seen.get("tktkey") ?? 0);
  assert.equal(n("seed"), srv.seen.get("seed") ?? 0);
  assert.equal(r.requests, n("lookup") + n("update") + n("tktkey") + n("seed"));
  assert.ok(r.requests > 20, `only ${r.requests} requests`);
  // statuses: seed always -2 here, lookups hit about 90 % (updates of fresh ids never looked up)
  assert.equal(k.seed!.errors, n("seed"));
  assert.equal(r.errors, n("seed"));
  assert.equal(k.update!.ok, n("update"));
  assert.equal(k.lookup!.errors, 0);
  assert.ok(k.lookup!.ok > k.lookup!.miss);
  assert.equal(r.all.count, r.requests);
  // the series covers the same replies
  assert.equal(r.seriesHists.reduce((a, h) => a + (h?.count ?? 0), 0), r.requests);
});

test("the current ticket key name is read from keybuf", async (t) => {
  const srv = await scriptedServer();
  t.after(() => srv.close());
  const [c] = await openConnections(srv.path, 1);
  assert.equal(await currentTicketKeyName(c!), Buffer.alloc(16, 5).toString("base64"));
  c!.close();
});

test("a server that drops connections: failures and errors are reported, the run ends", async (t) => {
  const srv = await scriptedServer({ closeAfter: 40 });
  t.after(() => srv.close());
  const ks = makeKeyspace(50, 2);
  const r = await runLoad({
    socket: srv.path, clients: 3, durationSec: 30, warmupSec: 0, keyspace: ks,
    sessions: makeSessionPool(4, 100, 200, 1), seed: 1, mix: { lookup: 1 },
  });
  assert.equal(r.failures.length, 3);
  assert.match(r.failures[0]!, /closed by server/);
  assert.equal(r.byKind.lookup!.errors, 3, "the request in flight on each dropped connection");
  assert.ok(r.windowSec < 30, "the run ended when every connection was gone");
});

test("a farm load: connections spread over the hosts, figures per host, hits on entries another host wrote", async (t) => {
  for (const shared of [true, false]) {
    const store = new Map<string, Buffer>();
    const a = await scriptedServer(shared ? { store } : {});
    const b = await scriptedServer(shared ? { store } : {});
    t.after(() => a.close());
    t.after(() => b.close());
    const ks = makeKeyspace(200, 4);
    const pools = [makeSessionPool(8, 100, 300, 1, 0), makeSessionPool(8, 100, 300, 2, 1)];
    await prefill(a.path, ks, 0, 100, pools[0]!, 3, 1);
    await prefill(b.path, ks, 100, 200, pools[1]!, 3, 2);
    a.seen.clear();
    b.seen.clear();
    const r = await runLoad({
      socket: a.path, sessions: pools[0]!, clients: 4, durationSec: 0.3, warmupSec: 0, keyspace: ks, seed: 5,
      mix: { lookup: 80, update: 20 }, trackOrigin: true,
      hosts: [{ socket: a.path, sessions: pools[0]! }, { socket: b.path, sessions: pools[1]! }],
    });
    assert.deepEqual(r.failures, []);
    assert.equal(r.perHost.length, 2);
    const [ha, hb] = r.perHost as [typeof r.perHost[0], typeof r.perHost[0]];
    assert.equal(ha.requests, (a.seen.get("lookup") ?? 0) + (a.seen.get("update") ?? 0), "host 1's requests went to its socket");
    assert.equal(hb.requests, (b.seen.get("lookup") ?? 0) + (b.seen.get("update") ?? 0));
    assert.equal(ha.requests + hb.requests, r.requests);
    assert.equal(r.all.count, r.requests, "the total merges every host's histogram");
    for (const h of r.perHost) {
      assert.equal(h.hitsOwn + h.hitsOther + h.hitsUntagged, h.byKind.lookup!.ok, "every hit is put down to a writer");
      assert.equal(h.hitsUntagged, 0);
      if (shared) assert.ok(h.hitsOther > 0 && h.hitsOwn > 0, `shared store: hits of both hosts' entries (${h.hitsOwn} own, ${h.hitsOther} other)`);
      else assert.equal(h.hitsOther, 0, "a cache per host holds only its own entries");
    }
  }
});
