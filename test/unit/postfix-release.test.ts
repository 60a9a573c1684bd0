/**
 * postfix-release.test.ts - finding the Postfix release at start-up and what
 * follows: the server announcement for 3.6-20200920 and later (or when none is
 * found), none for older ones; the built-ins the release reports; the
 * tlsmgr_server_announcement override; the line that says which and why.
 * The postconf asked is a script of the test's own in a command_directory of
 * its own, so that every answer (and every failure) is exact.
 * See also: src/config/postfix-release.ts
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  parseMailVersion, parsePostconf, probePostfixRelease, releaseAnnounces, serverAnnouncement,
} from "../../src/config/postfix-release.js";
import { captureMsgs } from "../helpers/msg-capture.js";
import { tempDir } from "../helpers/temp-dir.js";
import { fakeCommandDirectory, postconfSays } from "../helpers/fake-postconf.js";

const dir = tempDir("tlsmgr-release-");
let n = 0;

/** fakePostfix - a config directory whose main.cf names a command_directory of its own (fake-postconf.ts). */
function fakePostfix(script: string | undefined): string {
  const base = join(dir, `pf${++n}`);
  const bin = fakeCommandDirectory(base, script);
  writeFileSync(join(base, "main.cf"), `command_directory = ${bin}\n`);
  return base;
}

test("parseMailVersion and releaseAnnounces: 3.6-20200920 is the first release that announces", () => {
  assert.deepEqual(parseMailVersion("3.5.27"), { major: 3, minor: 5 });
  assert.deepEqual(parseMailVersion("3.6-20200920"), { major: 3, minor: 6, date: 20200920 });
  assert.deepEqual(parseMailVersion("3.11.6-nonprod"), { major: 3, minor: 11 });
  assert.equal(parseMailVersion("unknown"), undefined);
  for (const v of ["2.11.3", "3.4.14", "3.5.0", "3.5.27", "3.6-20200905", "3.6-20200919"]) assert.equal(releaseAnnounces(v), false, v);
  for (const v of ["3.6-20200920", "3.6.0", "3.6.14", "3.7.11", "3.8.20", "3.10.13", "3.11.6", "3.12-20260101", "4.0.0"])
    assert.equal(releaseAnnounces(v), true, v);
  assert.equal(releaseAnnounces("x.y"), undefined);
});

test("parsePostconf: name = value lines, an empty value kept", () => {
  assert.deepEqual(parsePostconf("mail_version = 3.5.27\ndefault_database_type = hash\nempty =\n"),
    { mail_version: "3.5.27", default_database_type: "hash", empty: "" });
});

test("found: 3.5 reports no default_cache_db_type; 3.11 without Berkeley DB reports lmdb for both", async () => {
  const old = await probePostfixRelease({
    configDir: fakePostfix(postconfSays({ mail_version: "3.5.27", default_database_type: "hash" }, ["default_cache_db_type"])),
    overrides: [], embedded: false,
  });
  assert.equal(old.kind, "found");
  assert.equal(old.version, "3.5.27");
  assert.match(old.command!, /\/sbin\/postconf -d mail_version$/);
  assert.deepEqual(old.builtins, { mail_version: "3.5.27", default_database_type: "hash" });
  const nobdb = await probePostfixRelease({
    configDir: fakePostfix(postconfSays({ mail_version: "3.11.6", default_database_type: "lmdb", default_cache_db_type: "lmdb" })),
    overrides: [], embedded: false,
  });
  assert.deepEqual(nobdb.builtins, { mail_version: "3.11.6", default_database_type: "lmdb", default_cache_db_type: "lmdb" });
});

test("command_directory from -o wins over main.cf", async () => {
  const other = fakePostfix(postconfSays({ mail_version: "3.8.20" }));
  const cfgDir = fakePostfix(postconfSays({ mail_version: "3.5.27" }));
  const r = await probePostfixRelease({ configDir: cfgDir, overrides: [`command_directory=${join(other, "sbin")}`], embedded: false });
  assert.equal(r.version, "3.8.20");
});

test("not found: no postconf, a failing one, one that hangs (bounded), one that prints no release", async () => {
  const absent = await probePostfixRelease({ configDir: fakePostfix(undefined), overrides: [], embedded: false });
  assert.equal(absent.kind, "absent");
  assert.match(absent.why!, /\/sbin\/postconf: No such file or directory$/);
  const failing = await probePostfixRelease({ configDir: fakePostfix("echo 'postconf: fatal: bad' >&2; exit 1"), overrides: [], embedded: false });
  assert.equal(failing.kind, "failed");
  assert.match(failing.why!, /postconf -d mail_version: exit status 1: postconf: fatal: bad$/);
  const hung = await probePostfixRelease({ configDir: fakePostfix("exec sleep 30"), overrides: [], embedded: false, timeoutMs: 300 });
  assert.equal(hung.kind, "failed");
  assert.match(hung.why!, /: no answer within 0\.3s$/);
  const junk = await probePostfixRelease({ configDir: fakePostfix("echo hello"), overrides: [], embedded: false });
  assert.equal(junk.kind, "failed");
  assert.match(junk.why!, /no release number in its output$/);
  const embedded = await probePostfixRelease({ configDir: fakePostfix(postconfSays({ mail_version: "3.5.27" })), overrides: [], embedded: true });
  assert.equal(embedded.kind, "embedded");
  const badCf = fakePostfix(postconfSays({ mail_version: "3.5.27" }));
  writeFileSync(join(badCf, "main.cf"), "this line has no equals sign\n");
  const { result: probe, lines } = captureMsgs(() => probePostfixRelease({ configDir: badCf, overrides: [], embedded: false }));
  assert.equal((await probe!).kind, "config");
  assert.deepEqual(lines, [], "the real load reports a bad main.cf, not the probe");
});

test("serverAnnouncement: the line says which release and what follows", () => {
  const found = (version: string) => ({ kind: "found" as const, version, command: "/usr/sbin/postconf -d mail_version", builtins: {} });
  const cases: Array<[string, Parameters<typeof serverAnnouncement>[1], boolean, boolean, string]> = [
    ["auto", found("3.5.27"), true, false,
      "info: postfix release 3.5.27 (from /usr/sbin/postconf -d mail_version): no server announcement: clients before postfix 3.6 take it for the reply to their first request"],
    ["auto", found("3.7.11"), true, true,
      "info: postfix release 3.7.11 (from /usr/sbin/postconf -d mail_version): sending the server announcement that clients of postfix 3.6 and later wait for"],
    ["no", found("3.7.11"), true, false,
      "info: tlsmgr_server_announcement = no: no server announcement; postfix release 3.7.11 (from /usr/sbin/postconf -d mail_version)"],
    ["YES", found("3.5.27"), true, true,
      "info: tlsmgr_server_announcement = yes: sending server announcement; postfix release 3.5.27 (from /usr/sbin/postconf -d mail_version)"],
    ["auto", { kind: "absent", why: "/x/postconf: No such file or directory", builtins: {} }, true, true,
      "warning: no postfix release found: /x/postconf: No such file or directory: sending the server announcement (as postfix 3.6 and later; set tlsmgr_server_announcement = no for postfix 3.5)"],
    ["auto", { kind: "absent", why: "/x/postconf: No such file or directory", builtins: {} }, false, true,
      "info: no postfix release found: /x/postconf: No such file or directory: sending the server announcement (as postfix 3.6 and later; set tlsmgr_server_announcement = no for postfix 3.5)"],
    ["auto", { kind: "embedded", why: "embedded mode (--home)", builtins: {} }, false, true,
      "info: no postfix release found: embedded mode (--home): sending the server announcement (as postfix 3.6 and later; set tlsmgr_server_announcement = no for postfix 3.5)"],
  ];
  for (const [setting, probe, underMaster, want, line] of cases) {
    const { result, lines } = captureMsgs(() => serverAnnouncement(setting, probe, underMaster));
    assert.equal(result, want, `${setting} ${probe.version ?? probe.kind}`);
    assert.deepEqual(lines, [line]);
  }
  const { result, lines } = captureMsgs(() => serverAnnouncement("sometimes", found("3.5.27"), true));
  assert.equal(result, false, "an unknown value means auto");
  assert.equal(lines[0], 'warning: unknown tlsmgr_server_announcement value "sometimes" (expected auto, yes or no): using auto');
});
