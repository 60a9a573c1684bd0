/**
 * postfix-instance.test.ts - the harness itself: layout, master.cf rewriting,
 *                            the tlsmgr modes, reload, and clean-up.
 * Owns: checks of test/helpers/postfix-instance.ts that the reuse tests rely on.
 * Not here: session reuse (postfix-baseline.test.ts, real-client.test.ts).
 * See also: postfix(1), master(5), postconf(1) (-M, -MX)
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { createPostfixInstance, postfixSkipReason } from "../helpers/postfix-instance.js";

const skip = postfixSkipReason();

test("a private instance: layout, reload, stop and destroy", { skip: skip ?? false }, async (t) => {
  const pf = await createPostfixInstance({ tlsmgr: "postfix", mainCf: { smtpd_banner: "$myhostname ESMTP harness" } });
  t.after(() => pf.destroy());

  assert.notEqual(pf.smtpdPort, pf.smtpdPort2);
  const data = await stat(pf.dataDir);
  assert.equal(data.uid, Number(execFileSync("id", ["-u", "postfix"]).toString().trim()));
  assert.equal(data.mode & 0o777, 0o700);
  assert.equal((await stat(pf.dir)).mode & 0o777, 0o755);
  // every service line has chroot n; smtpd moved to the two loopback ports
  const services = await pf.postconf("-M");
  for (const line of services.trim().split("\n")) assert.equal(line.split(/\s+/)[4], "n", line);
  assert.match(services, new RegExp(`^127\\.0\\.0\\.1:${pf.smtpdPort}\\s+inet\\b.*\\bsmtpd$`, "m"));
  assert.match(services, new RegExp(`^127\\.0\\.0\\.1:${pf.smtpdPort2}\\s+inet\\b.*smtpd -o myhostname=other\\.test -o content_filter=discard:$`, "m"));
  assert.doesNotMatch(services, /^smtp\s+inet\b/m);
  assert.equal((await pf.postconf("-h", "smtpd_banner")).trim(), "$myhostname ESMTP harness");
  assert.equal((await pf.postconf("-h", "relayhost")).trim(), `[127.0.0.1]:${pf.smtpdPort2}`);

  await pf.start();
  const pidFile = join(pf.queueDir, "pid", "master.pid");
  const pid = Number(readFileSync(pidFile, "utf8").trim());
  await pf.waitForLog(/postfix\/master\[\d+\]: daemon started/, 10_000);
  await pf.reload();
  await pf.waitForLog(/postfix\/master\[\d+\]: reload -- version/, 10_000);

  // still delivering after the reload
  await pf.sendmail("after-reload@example.com");
  await pf.waitForLog(/to=<after-reload@example\.com>.*relay=127\.0\.0\.1.*status=sent/, 60_000);

  await pf.stop();
  assert.throws(() => process.kill(pid, 0), /ESRCH/);
  await pf.destroy();
  assert.equal(existsSync(pf.dir), false);
});

test("tlsmgr modes: none removes the service, {command} replaces its command", { skip: skip ?? false }, async (t) => {
  const none = await createPostfixInstance({ tlsmgr: "none" });
  t.after(() => none.destroy());
  assert.equal((await none.postconf("-M", "tlsmgr/unix")).trim(), "");
  assert.equal(none.tlsmgrSocket, join(none.queueDir, "private", "tlsmgr"));

  const cmd = await createPostfixInstance({ tlsmgr: { command: "tlsmgr-ts -o smtp_tls_loglevel=2" } });
  t.after(() => cmd.destroy());
  assert.match(await cmd.postconf("-M", "tlsmgr/unix"),
    /^tlsmgr\s+unix\s+-\s+-\s+n\s+1000\?\s+1\s+tlsmgr-ts -o smtp_tls_loglevel=2$/m);
});
