/**
 * prng-sources.test.ts - the external entropy sources on real files, FIFOs and sockets:
 *                        dev: with its timeout, egd: against a real EGD server, a plain file.
 * See also: src/prng/source*.ts, test/helpers/egd-server.ts
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { constants, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { parseSourceSpec, SourceError } from "../../src/prng/source.js";
import { openSource } from "../../src/prng/source-keeper.js";
import { EgdServer } from "../helpers/egd-server.js";

let dir = "";
before(() => {
  dir = mkdtempSync(path.join(tmpdir(), "prng-src-"));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** rejectsWith - the promise fails with a SourceError whose message matches */
async function rejectsWith(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof SourceError, String(err));
    assert.match(err.message, re);
    return true;
  });
}

test("tls_random_source forms", () => {
  assert.deepEqual(parseSourceSpec("dev:/dev/urandom"), { kind: "dev", path: "/dev/urandom" });
  assert.deepEqual(parseSourceSpec("egd:/var/run/egd-pool"), { kind: "egd", path: "/var/run/egd-pool" });
  assert.deepEqual(parseSourceSpec("/etc/entropy"), { kind: "file", path: "/etc/entropy" });
  assert.equal(parseSourceSpec(""), undefined);
});

test("dev: reads at most 255 bytes from /dev/urandom", async () => {
  const src = await openSource({ kind: "dev", path: "/dev/urandom" });
  try {
    assert.equal((await src.read(32)).length, 32);
    assert.equal((await src.read(1000)).length, 255);
  } finally {
    await src.close();
  }
});

test("dev: a FIFO nobody writes times out; data written later is read", async () => {
  const fifo = path.join(dir, "fifo");
  execFileSync("mkfifo", [fifo]);
  const src = await openSource({ kind: "dev", path: fifo }, { timeoutMs: 300 });
  try {
    await rejectsWith(src.read(32), new RegExp(`^cannot read from entropy device ${fifo}: timed out$`));
    // A writer appears and writes 5 bytes: one read returns what is there.
    const w = await open(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    try {
      await w.write(Buffer.from("abcde"));
      assert.equal((await src.read(32)).toString(), "abcde");
    } finally {
      await w.close();
    }
  } finally {
    await src.close();
  }
});

test("dev: a missing device is an open error in Postfix's words", async () => {
  await rejectsWith(
    openSource({ kind: "dev", path: path.join(dir, "nodev") }),
    /^cannot open entropy device .*nodev: No such file or directory$/,
  );
});

test("file: reads tls_random_bytes from the start, fewer at end of file, fails when empty", async () => {
  const file = path.join(dir, "seedfile");
  writeFileSync(file, Buffer.from("0123456789abcdef"));
  const src = await openSource({ kind: "file", path: file });
  try {
    assert.equal((await src.read(10)).toString(), "0123456789");
    assert.equal((await src.read(10)).toString(), "0123456789", "always from offset 0");
    assert.equal((await src.read(100)).toString(), "0123456789abcdef");
  } finally {
    await src.close();
  }
  const empty = path.join(dir, "empty");
  writeFileSync(empty, "");
  const e = await openSource({ kind: "file", path: empty });
  try {
    await rejectsWith(e.read(32), /^cannot read from entropy file .*empty: file is empty$/);
  } finally {
    await e.close();
  }
});

test("egd: the protocol: 0x01 N, count byte, bytes; the request is capped at 255", async () => {
  const sock = path.join(dir, "egd1");
  const asked: number[] = [];
  const server = await EgdServer.start(sock, {
    bytes: (n) => {
      asked.push(n);
      return Buffer.alloc(n, 0x5a);
    },
  });
  try {
    const src = await openSource({ kind: "egd", path: sock });
    try {
      assert.deepEqual(await src.read(32), Buffer.alloc(32, 0x5a));
      assert.equal((await src.read(1000)).length, 255);
      assert.deepEqual(asked, [32, 255]);
      assert.equal(server.requests, 2);
      assert.equal(server.connections, 1, "one connection for both reads");
    } finally {
      await src.close();
    }
  } finally {
    await server.close();
  }
});

test("egd: a server with fewer bytes answers a shorter count", async () => {
  const sock = path.join(dir, "egd-short");
  const server = await EgdServer.start(sock, { available: 7 });
  try {
    const src = await openSource({ kind: "egd", path: sock });
    try {
      assert.equal((await src.read(32)).length, 7);
    } finally {
      await src.close();
    }
  } finally {
    await server.close();
  }
});

test("egd: a zero count is a failure", async () => {
  const sock = path.join(dir, "egd-zero");
  const server = await EgdServer.start(sock, { mode: "zero" });
  try {
    const src = await openSource({ kind: "egd", path: sock });
    try {
      await rejectsWith(src.read(32), new RegExp(`^EGD server ${sock} reports zero bytes available$`));
    } finally {
      await src.close();
    }
  } finally {
    await server.close();
  }
});

test("egd: a server that hangs up on the request", async () => {
  const sock = path.join(dir, "egd-hup");
  const server = await EgdServer.start(sock, { mode: "hangup" });
  try {
    const src = await openSource({ kind: "egd", path: sock });
    try {
      await rejectsWith(src.read(32), new RegExp(`^cannot read from EGD server ${sock}: lost connection$`));
      await rejectsWith(src.read(32), /^cannot write to EGD server /);
    } finally {
      await src.close();
    }
  } finally {
    await server.close();
  }
});

test("egd: a server that never answers times out", async () => {
  const sock = path.join(dir, "egd-silent");
  const server = await EgdServer.start(sock, { mode: "silent" });
  try {
    const src = await openSource({ kind: "egd", path: sock }, { timeoutMs: 300 });
    try {
      await rejectsWith(src.read(32), new RegExp(`^cannot read from EGD server ${sock}: timed out$`));
    } finally {
      await src.close();
    }
  } finally {
    await server.close();
  }
});

test("egd: no server is a connect error in Postfix's words", async () => {
  await rejectsWith(
    openSource({ kind: "egd", path: path.join(dir, "no-egd") }),
    /^cannot connect to EGD server .*no-egd: No such file or directory$/,
  );
});
