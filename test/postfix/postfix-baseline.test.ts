/**
 * postfix-baseline.test.ts - the real-Postfix harness proven with Postfix's
 *                            own tlsmgr(8), independent of our daemon.
 * Owns: the baseline that test/postfix/real-client.test.ts repeats with ours:
 *       server-side resumption (openssl -sess_out/-sess_in, Reused, also
 *       across the two smtpd services) and client-side reuse (two deliveries,
 *       the second logs "Reusing old session").
 * Not here: our daemon (real-client.test.ts).
 * See also: test/helpers/postfix-instance.ts, openssl-s_client(1) (-sess_out, -sess_in)
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  createPostfixInstance, opensslResumes, postfixSkipReason, sessionTicketKeyName,
  type PostfixInstance,
} from "../helpers/postfix-instance.js";
import { tlsmgrLookup, tlsmgrTktkey } from "../helpers/daemon.js";

const skip = postfixSkipReason();

test("Postfix's own tlsmgr: server-side resumption and client-side reuse (baseline)", { skip: skip ?? false }, async (t) => {
  const pf: PostfixInstance = await createPostfixInstance({ tlsmgr: "postfix" });
  t.after(() => pf.destroy());

  // master.cf keeps the tlsmgr service; the smtpd cache is lmdb
  assert.match(await pf.postconf("-M", "tlsmgr/unix"), /^tlsmgr\s+unix\b.*\btlsmgr\s*$/m);
  assert.equal((await pf.postconf("-h", "smtpd_tls_session_cache_database")).trim(),
    "lmdb:${data_directory}/smtpd_scache");
  await pf.start();

  await t.test("openssl -sess_out then -sess_in reports Reused, on both smtpd services", async () => {
    const sess = join(pf.dir, "sess1.pem");
    const first = await opensslResumes(pf.smtpdPort, sess);
    assert.equal(first.reused, false, first.output);
    assert.match(first.output, /^New,/m);
    const keyName = await sessionTicketKeyName(sess);
    assert.ok(keyName !== undefined && /^[0-9a-f]{32}$/.test(keyName), "the saved session carries a ticket");

    // the ticket was sealed with the current key of Postfix's tlsmgr (88-byte record, name first)
    const key = await tlsmgrTktkey(pf.tlsmgrSocket);
    assert.equal(key.status, 0);
    assert.equal(key.keybuf.length, 88);
    assert.equal(key.keybuf.subarray(0, 16).toString("hex"), keyName);

    const again = await opensslResumes(pf.smtpdPort, sess, { sessIn: true });
    assert.equal(again.reused, true, again.output);
    const other = await opensslResumes(pf.smtpdPort2, sess, { sessIn: true });
    assert.equal(other.reused, true, `second smtpd service: ${other.output}`);
    await pf.waitForLog(/other postfix\/smtpd\[\d+\]: .*Reusing old session \(RFC 5077 session ticket\)/, 10_000);

    // the two-step form: fresh session on one service, resumed on the other
    const cross = await opensslResumes(pf.smtpdPort2, join(pf.dir, "sess2.pem"), { port2: pf.smtpdPort });
    assert.equal(cross.reused, true, cross.output);
  });

  await t.test("two deliveries: the second one logs Reusing old session", async () => {
    await pf.sendmail("first@example.com");
    await pf.waitForLog(/to=<first@example\.com>.*relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+.*status=sent/, 60_000);
    const miss = await pf.waitForLog(/looking for session smtp&\[127\.0\.0\.1\]:\d+&/, 1_000);
    assert.ok(miss.includes(`[127.0.0.1]:${pf.smtpdPort2}&`), miss);
    assert.doesNotMatch(await pf.logText(), /postfix\/smtp\[\d+\]: .*Reusing old session/);

    await pf.sendmail("second@example.com");
    await pf.waitForLog(/to=<second@example\.com>.*status=sent/, 60_000);
    const reuse = await pf.waitForLog(/postfix\/smtp\[\d+\]: .*Reusing old session/, 1_000);
    assert.match(reuse, new RegExp(`postfix/smtp\\[\\d+\\]: 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${pf.smtpdPort2}: Reusing old session`));
    // Postfix's tlsmgr served the hit: it logged the lookup and the read of that entry
    const log = await pf.logText();
    assert.match(log, /postfix\/tlsmgr\[\d+\]: lookup smtp session id=smtp&\[127\.0\.0\.1\]:\d+&127\.0\.0\.1&127\.0\.0\.1&&[0-9A-Fa-f]{64}/);
    assert.match(log, /postfix\/tlsmgr\[\d+\]: read smtp TLS cache entry smtp&/);
    // and still holds it: a lookup of the logged cache id is a hit
    const id = /looking for session (smtp&\S+) in smtp cache/.exec(miss)?.[1] ?? "";
    const hit = await tlsmgrLookup(pf.tlsmgrSocket, "smtp", id);
    assert.equal(hit.status, 0);
    assert.ok(hit.session.length > 100, `session of ${hit.session.length} bytes`);
    const absent = await tlsmgrLookup(pf.tlsmgrSocket, "smtp", id.replace(/[0-9A-F]{64}$/, "0".repeat(64)));
    assert.equal(absent.status, -1);
  });
});
