/**
 * real-client.test.ts - our tlsmgr daemon serving Debian's real smtpd(8) and
 *                       smtp(8) (issue 2, "a test against the real client").
 * Owns: the end-to-end proof: a private Postfix instance with its master.cf
 *       tlsmgr line removed and our daemon, started outside master with
 *       MAIL_CONFIG, on that instance's private/tlsmgr. Server side: openssl
 *       -sess_out then -sess_in is Reused on both smtpd services, with tickets
 *       sealed by our daemon's current key. Client side: two deliveries; the
 *       second logs "Reusing old session" and our daemon served the lookup hit.
 * Not here: the same checks with Postfix's own tlsmgr (postfix-baseline.test.ts).
 * See also: test/helpers/postfix-instance.ts, test/helpers/daemon.ts
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import {
  createPostfixInstance, opensslResumes, postfixSkipReason, sessionTicketKeyName,
} from "../helpers/postfix-instance.js";
import { startDaemon, tlsmgrLookup, tlsmgrTktkey } from "../helpers/daemon.js";

const skip = postfixSkipReason();

test("our tlsmgr under a real Postfix: ticket keys for smtpd and the smtp session cache", { skip: skip ?? false }, async (t) => {
  const pf = await createPostfixInstance({ tlsmgr: "none" });
  let daemon: Awaited<ReturnType<typeof startDaemon>> | undefined;
  t.after(async () => {
    if (daemon !== undefined) await daemon.stop();
    await pf.destroy();
  });

  // master.cf has no tlsmgr service: nothing but our daemon can answer on private/tlsmgr
  assert.equal((await pf.postconf("-M", "tlsmgr/unix")).trim(), "");
  await pf.start();
  daemon = await startDaemon({ configDir: pf.configDir });
  const d = daemon;
  assert.equal(d.socket, pf.tlsmgrSocket);

  await t.test("the socket is reachable by the postfix user: 0666 in the postfix-owned 0700 private/", async () => {
    const sock = await stat(pf.tlsmgrSocket);
    assert.ok(sock.isSocket());
    assert.equal(sock.mode & 0o777, 0o666, `socket mode ${(sock.mode & 0o777).toString(8)}`);
    const priv = await stat(dirname(pf.tlsmgrSocket));
    assert.equal(priv.mode & 0o777, 0o700, `private/ mode ${(priv.mode & 0o777).toString(8)}`);
    assert.equal(priv.uid, Number(execFileSync("id", ["-u", "postfix"]).toString().trim()), "private/ owner");
  });

  await t.test("server side: -sess_out then -sess_in is Reused, on both smtpd services, with our ticket key", async () => {
    const sess = join(pf.dir, "sess.pem");
    const first = await opensslResumes(pf.smtpdPort, sess);
    assert.equal(first.reused, false, first.output);
    assert.match(first.output, /^New,/m);

    // the ticket openssl holds names the current key our daemon hands out
    const ticketKey = await sessionTicketKeyName(sess);
    assert.ok(ticketKey !== undefined, "the saved session carries a session ticket");
    const key = await tlsmgrTktkey(d.socket);
    assert.equal(key.status, 0);
    assert.equal(key.keybuf.length, 88);
    assert.equal(key.keybuf.subarray(0, 16).toString("hex"), ticketKey);

    const same = await opensslResumes(pf.smtpdPort, sess, { sessIn: true });
    assert.equal(same.reused, true, same.output);
    const other = await opensslResumes(pf.smtpdPort2, sess, { sessIn: true });
    assert.equal(other.reused, true, `second smtpd service: ${other.output}`);
    await pf.waitForLog(/other postfix\/smtpd\[\d+\]: .*Reusing old session \(RFC 5077 session ticket\)/, 10_000);
  });

  await t.test("client side: the second delivery reuses the session our daemon cached", async () => {
    await pf.sendmail("first@example.com");
    await pf.waitForLog(/to=<first@example\.com>.*relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+.*status=sent/, 60_000);
    const looking = await pf.waitForLog(/postfix\/smtp\[\d+\]: looking for session smtp&\S+ in smtp cache/, 1_000);
    const id = /looking for session (smtp&\S+) in smtp cache/.exec(looking)?.[1] ?? "";
    assert.match(id, new RegExp(`^smtp&\\[127\\.0\\.0\\.1\\]:${pf.smtpdPort2}&127\\.0\\.0\\.1&127\\.0\\.0\\.1&&[0-9A-F]{64}$`));
    await pf.waitForLog(/postfix\/smtp\[\d+\]: save session smtp&\S+ to smtp cache/, 1_000);
    assert.doesNotMatch(await pf.logText(), /postfix\/smtp\[\d+\]: .*Reusing old session/);

    await pf.sendmail("second@example.com");
    await pf.waitForLog(/to=<second@example\.com>.*status=sent/, 60_000);
    await pf.waitForLog(new RegExp(`postfix/smtp\\[\\d+\\]: 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${pf.smtpdPort2}: Reusing old session`), 1_000);
    await pf.waitForLog(/postfix\/smtp\[\d+\]: reloaded session smtp&\S+ from smtp cache/, 1_000);

    // the hit came from our daemon: smtp's two lookups (the miss, then the hit
    // with its read) are in its log as Postfix's tlsmgr writes them with
    // smtp_tls_loglevel = 2 (read before our own lookup below adds lines) ...
    const err = d.stderr();
    const lookups = err.split("\n").filter((l) => l.endsWith(`: lookup smtp session id=${id}`));
    assert.ok(lookups.length >= 2, `daemon stderr:\n${err}`);
    assert.ok(err.includes(`: read smtp TLS cache entry ${id}: time=`), `daemon stderr:\n${err}`);
    assert.match(err, /^tlsmgr\[\d+\]: put smtp session id=smtp&/m);
    // ... and it still holds the entry
    const hit = await tlsmgrLookup(d.socket, "smtp", id);
    assert.equal(hit.status, 0);
    assert.ok(hit.session.length > 100, `session of ${hit.session.length} bytes`);
  });

  await t.test("no other tlsmgr ran, nobody complained, and SIGTERM ends the daemon cleanly", async () => {
    const log = await pf.logText();
    assert.doesNotMatch(log, /postfix\/tlsmgr\[/);
    assert.doesNotMatch(log, /(warning|fatal|panic): .*tlsmgr/);
    assert.doesNotMatch(d.stderr(), /(warning|error|fatal|panic): /);
    assert.equal(await d.stop(), 0);
  });
});
