/**
 * native-posix.test.ts - the POSIX addon: flock(2) as flock(1) sees it,
 *                        unix datagrams, chroot, errors with errno codes.
 * See also: src/native/posix.ts, native/posix.c
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, openSync, closeSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  closeFd,
  flock,
  isWouldBlock,
  nativeAvailable,
  nativeLoadError,
  unixDgramSend,
  unixDgramSocket,
} from "../../src/native/posix.js";

const posixModule = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../src/native/posix.js");

function tmp(): string {
  return mkdtempSync(path.join(tmpdir(), "posix-"));
}

test("the addon is built and loads (scripts/build-native.mjs)", () => {
  assert.equal(nativeAvailable(), true, nativeLoadError());
  assert.equal(nativeLoadError(), "");
});

test("flock: exclusive locks exclude each other and flock(1)", () => {
  const dir = tmp();
  try {
    const file = path.join(dir, "lockfile");
    writeFileSync(file, "");
    const a = openSync(file, "r+");
    const b = openSync(file, "r+");
    try {
      flock(a, "ex", true);
      assert.throws(
        () => flock(b, "ex", true),
        (err: unknown) => isWouldBlock(err) && (err as { syscall?: string }).syscall === "flock",
      );
      assert.throws(() => flock(b, "sh", true), (err: unknown) => (err as { code?: string }).code === "EWOULDBLOCK");
      // flock(1) -n gives up with status 1 while we hold the lock.
      assert.equal(spawnSync("flock", ["-n", "-x", file, "true"]).status, 1);
      flock(a, "un");
      assert.equal(spawnSync("flock", ["-n", "-x", file, "true"]).status, 0);
      flock(a, "sh", true);
      flock(b, "sh", true);
      assert.equal(spawnSync("flock", ["-n", "-s", file, "true"]).status, 0, "shared locks share");
      assert.equal(spawnSync("flock", ["-n", "-x", file, "true"]).status, 1);
    } finally {
      closeSync(a);
      closeSync(b);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a system call error carries code, errno and syscall", () => {
  assert.throws(
    () => flock(987654, "ex", true),
    (err: unknown) => {
      const e = err as { code: string; errno: number; syscall: string; message: string };
      return e.code === "EBADF" && e.errno === 9 && e.syscall === "flock" && /^flock: /.test(e.message);
    },
  );
});

test("unix datagram: one datagram reaches a bound socket; a missing path is ENOENT", () => {
  const dir = tmp();
  try {
    const sockPath = path.join(dir, "log");
    // A receiver in python3 (Node has no unix datagram server): prints what it gets.
    const script = [
      "import socket,sys",
      "s=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)",
      `s.bind(${JSON.stringify(sockPath)})`,
      "sys.stdout.write('ready\\n'); sys.stdout.flush()",
      "s.settimeout(10)",
      "sys.stdout.write(s.recv(1000).decode()+'\\n')",
    ].join("\n");
    const child = spawnSync(
      "bash",
      [
        "-c",
        `python3 -c "$0" & pid=$!; for i in $(seq 100); do [ -S ${sockPath} ] && break; sleep 0.05; done; ` +
          `node --input-type=module -e "import * as p from '${posixModule}'; const fd=p.unixDgramSocket(); ` +
          `p.unixDgramSend(fd, '${sockPath}', Buffer.from('<22>postfix/tlsmgr[1]: hello')); p.closeFd(fd);"; wait $pid`,
        script,
      ],
      { encoding: "utf8", timeout: 20_000 },
    );
    assert.equal(child.status, 0, child.stderr);
    assert.match(child.stdout, /<22>postfix\/tlsmgr\[1\]: hello/);

    const fd = unixDgramSocket();
    try {
      assert.throws(
        () => unixDgramSend(fd, path.join(dir, "absent"), Buffer.from("x")),
        (err: unknown) => (err as { code: string; syscall: string }).code === "ENOENT" && (err as { syscall: string }).syscall === "sendto",
      );
    } finally {
      closeFd(fd);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("chroot: a child process sees the new root (root) or gets EPERM (not root)", () => {
  const dir = tmp();
  try {
    writeFileSync(path.join(dir, "marker"), "in jail");
    const r = spawnSync(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `import * as p from '${posixModule}'; import fs from 'node:fs';` +
          `try { p.chroot(${JSON.stringify(dir)}); console.log(fs.readFileSync('/marker','utf8')); }` +
          `catch (e) { console.log('error', e.code, e.syscall); }`,
      ],
      { encoding: "utf8" },
    );
    assert.equal(r.status, 0, r.stderr);
    if (process.getuid?.() === 0) assert.equal(r.stdout.trim(), "in jail");
    else assert.equal(r.stdout.trim(), "error EPERM chroot");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
