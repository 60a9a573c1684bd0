/**
 * master-privileges.test.ts - dropping to mail_owner (uid, gid, supplementary
 * groups), chroot through the native addon, the refusal to serve as root,
 * and the fatal texts; each in a child process, since these cannot be undone.
 * As root (the test machine) it drops to the real postfix user; otherwise it
 * checks the fatal message a non-root process gets.
 * See also: src/master/privileges.ts, postfix/src/util/chroot_uid.c
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { treeReadableBy } from "../helpers/code-copy.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const SRC = fileURLToPath(new URL("../../src/", import.meta.url));
const AS_ROOT = process.getuid!() === 0;
const MAIL_OWNER = "postfix";
const NOBODY = 65534;

before(() => {
  if (!existsSync(path.join(ROOT, "build", "Release", "posix.node"))) {
    execFileSync(process.execPath, [path.join(ROOT, "scripts", "build-native.mjs")], { stdio: "inherit", cwd: ROOT });
  }
});

/** idOf - `id` of the mail owner: uid, gid, all groups */
function idOf(user: string): { uid: number; gid: number; groups: number[] } {
  const id = (flag: string): string => execFileSync("id", [flag, user], { encoding: "utf8" }).trim();
  return {
    uid: Number(id("-u")),
    gid: Number(id("-g")),
    groups: id("-G").split(/\s+/).map(Number).sort((a, b) => a - b),
  };
}

/** inChild - run body after the prelude; its stdout JSON, stderr, status, signal */
function inChild(
  body: string,
  env: NodeJS.ProcessEnv = {},
  src: string = SRC,
  ids: { uid?: number; gid?: number } = {},
): { out: unknown; stderr: string; status: number | null; signal: string | null } {
  const mod = (rel: string): string => JSON.stringify(path.join(src, rel));
  const code = `
    const { dropPrivileges, refuseRoot, lookupUser } = await import(${mod("master/privileges.js")});
    const { setMsgSinks } = await import(${mod("log/msg.js")});
    const fs = await import("node:fs");
    setMsgSinks([{ write: (l, t) => process.stderr.write(l + ": " + t + "\\n") }]);
    const report = (extra) => process.stdout.write(JSON.stringify({
      uid: process.getuid(), euid: process.geteuid(), gid: process.getgid(), egid: process.getegid(),
      groups: process.getgroups().sort((a, b) => a - b), cwd: process.cwd(), ...extra }));
    try { ${body} } catch (e) { if (e.code !== "TLSMGR_FATAL") throw e; report({ fatal: true }); process.exitCode = 1; }`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", code], {
    env: { PATH: process.env.PATH, ...env },
    encoding: "utf8",
    timeout: 60_000,
    ...ids,
  });
  return { out: r.stdout ? JSON.parse(r.stdout) : undefined, stderr: r.stderr, status: r.status, signal: r.signal };
}

test("lookupUser finds the mail owner as the system does, and not a missing user", () => {
  const r = inChild(`report({ pw: lookupUser(${JSON.stringify(MAIL_OWNER)}), none: lookupUser("no-such-user-tlsmgr") ?? null });`);
  assert.equal(r.status, 0, r.stderr);
  const want = idOf(MAIL_OWNER);
  const out = r.out as { pw: { uid: number; gid: number; name: string }; none: null; euid: number };
  assert.equal(out.pw.uid, want.uid);
  assert.equal(out.pw.gid, want.gid);
  assert.equal(out.pw.name, MAIL_OWNER);
  assert.equal(out.none, null);
  assert.equal(out.euid, process.geteuid!(), "effective uid restored after the look-up");
});

test("lookupUser gives root and any other user the same answer (the name service, not a file)", { skip: !AS_ROOT && "needs root to run a child as nobody" }, () => {
  const body = `report({ pw: lookupUser(${JSON.stringify(MAIL_OWNER)}), root: lookupUser("root"),
    numeric: lookupUser(String(lookupUser("root").uid)) ?? null, colon: lookupUser("root:x") ?? null });`;
  const asRoot = inChild(body);
  // The clone may be where nobody cannot read: then a copy is (test/helpers/code-copy.ts).
  const asNobody = inChild(body, {}, path.join(treeReadableBy(NOBODY, NOBODY), "dist", "src"), { uid: NOBODY, gid: NOBODY });
  assert.equal(asRoot.status, 0, asRoot.stderr);
  assert.equal(asNobody.status, 0, asNobody.stderr);
  const a = asRoot.out as { pw: unknown; root: { uid: number }; numeric: unknown; colon: unknown };
  const b = asNobody.out as { pw: unknown; root: unknown; numeric: unknown; colon: unknown; uid: number };
  assert.equal(b.uid, NOBODY, "the second child ran as nobody");
  assert.deepEqual(b.pw, a.pw);
  assert.deepEqual(b.root, a.root);
  assert.equal(a.root.uid, 0);
  assert.equal(a.numeric, null, "a number is not a user name (getent would take it for a uid)");
  assert.equal(a.colon, null);
});

test("-u: uid, gid and supplementary groups become mail_owner's; then refuseRoot is content", () => {
  const r = inChild(`dropPrivileges({ mailOwner: ${JSON.stringify(MAIL_OWNER)} }); refuseRoot(); report({});`);
  if (AS_ROOT) {
    assert.equal(r.status, 0, r.stderr);
    const want = idOf(MAIL_OWNER);
    assert.deepEqual(r.out, {
      uid: want.uid,
      euid: want.uid,
      gid: want.gid,
      egid: want.gid,
      groups: want.groups,
      cwd: process.cwd(),
    });
  } else {
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^fatal: (setgid\(\d+\)|initgroups): Operation not permitted\n$/);
  }
});

test("-u -c: chroot between setgid and setuid; the jail is the new root and cwd", () => {
  const jail = mkdtempSync(path.join(tmpdir(), "tlsmgr-jail-"));
  chmodSync(jail, 0o755);
  writeFileSync(path.join(jail, "marker"), "x");
  try {
    const r = inChild(
      `dropPrivileges({ mailOwner: ${JSON.stringify(MAIL_OWNER)}, chrootDir: ${JSON.stringify(jail)} });
       report({ marker: fs.existsSync("/marker"), outside: fs.existsSync(${JSON.stringify(jail)}) });`,
    );
    if (AS_ROOT) {
      assert.equal(r.status, 0, r.stderr);
      const out = r.out as { uid: number; cwd: string; marker: boolean; outside: boolean };
      assert.equal(out.uid, idOf(MAIL_OWNER).uid);
      assert.equal(out.cwd, "/");
      assert.equal(out.marker, true, "the jail's file is at /");
      assert.equal(out.outside, false, "the old path is gone");
    } else {
      assert.equal(r.status, 1);
      assert.match(r.stderr, /^fatal: /);
    }
  } finally {
    rmSync(jail, { recursive: true, force: true });
  }
});

test("the watchdog thread started before chroot and setuid still ends a stuck process", () => {
  const jail = mkdtempSync(path.join(tmpdir(), "tlsmgr-jail-"));
  chmodSync(jail, 0o755);
  try {
    const r = inChild(
      `const { watchdogCreate } = await import(${JSON.stringify(path.join(SRC, "master/watchdog.js"))});
       watchdogCreate(1);
       dropPrivileges({ mailOwner: ${JSON.stringify(MAIL_OWNER)}, chrootDir: ${JSON.stringify(jail)} });
       for (;;) {}`,
    );
    if (AS_ROOT) {
      assert.equal(r.signal, "SIGKILL");
      assert.match(r.stderr, /^tlsmgr\[\d+\]: fatal: watchdog timeout\n$/);
    } else {
      assert.equal(r.status, 1);
    }
  } finally {
    rmSync(jail, { recursive: true, force: true });
  }
});

test("chroot without the native addon: fatal before any change, telling to set the chroot column to n", () => {
  // A copy of the compiled code with no build/Release/posix.node beside it: the addon is absent there.
  const copy = mkdtempSync(path.join(tmpdir(), "tlsmgr-noaddon-"));
  cpSync(path.join(ROOT, "dist", "src"), path.join(copy, "dist", "src"), { recursive: true });
  writeFileSync(path.join(copy, "package.json"), '{ "type": "module" }\n');
  let r: ReturnType<typeof inChild>;
  try {
    r = inChild(
      `dropPrivileges({ mailOwner: ${JSON.stringify(MAIL_OWNER)}, chrootDir: "/var/spool/postfix", serviceName: "tlsmgr" });`,
      {},
      path.join(copy, "dist", "src"),
    );
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
  assert.equal(r.status, 1);
  assert.match(
    r.stderr,
    /^fatal: cannot chroot to \/var\/spool\/postfix: .*; set the chroot column of the tlsmgr service in master\.cf to n \(postconf -F tlsmgr\/unix\/chroot=n; postfix reload\)\n$/,
  );
  assert.equal((r.out as { uid: number }).uid, process.getuid!(), "still the same user");
});

test("unknown mail_owner is fatal with Postfix's text", () => {
  const r = inChild(`dropPrivileges({ mailOwner: "no-such-user-tlsmgr" });`);
  assert.equal(r.status, 1);
  assert.equal(r.stderr, "fatal: unknown user: no-such-user-tlsmgr\n");
});

test("refuseRoot: fatal with root privileges, silent without", () => {
  const r = inChild(`refuseRoot("tlsmgr"); report({});`);
  if (AS_ROOT) {
    assert.equal(r.status, 1);
    assert.equal(
      r.stderr,
      "fatal: tlsmgr must not serve requests with root privileges: set the unpriv column of the tlsmgr " +
        "service in master.cf to - or y, or give -u to drop to mail_owner\n",
    );
  } else {
    assert.equal(r.status, 0, r.stderr);
  }
});
