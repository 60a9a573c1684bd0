/**
 * metrics-under-master.test.ts - /metrics of our tlsmgr as Debian's Postfix
 *                                master(8) runs it (installed with
 *                                `bin/tlsmgr-postfix install`, -u, and
 *                                chrooted when the native addon is there).
 * Owns: the proofs that the HTTP server is bound after the privilege drop
 *       (the kernel's owner of the listening socket, /proc/net/tcp, is the
 *       postfix user), that a scrape shows the traffic of real smtpd
 *       processes, that `postfix check` says nothing about the parameter, and
 *       that after `postfix reload` the new process serves the port again.
 * Not here: metrics outside master (test/integration/stats.test.ts,
 *           test/postfix/stats-postfix.test.ts).
 * See also: src/stats/metrics-server.ts, src/main.ts (post-init),
 *           test/postfix/under-master.test.ts
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { readFileSync, readlinkSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { nativeAvailable } from "../../src/native/posix.js";
import { TlsmgrClient } from "../../src/client/tlsmgr-client.js";
import { createPostfixInstance, opensslResumes, postfixSkipReason, type PostfixInstance } from "../helpers/postfix-instance.js";
import { freeLoopbackPort } from "../helpers/free-port.js";
import { ourDaemonsUnderMaster, pidAlive, procStatusIds, tlsmgrPostfix, waitFor } from "../helpers/master-procs.js";
import { sample, waitForScrape } from "../helpers/metrics-scrape.js";

const skip = postfixSkipReason();
const SBIN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin";
const PATH_WITH_SBIN = `${process.env["PATH"] ?? ""}:${SBIN_PATH}`;

/** listenerUid - the uid that owns the TCP socket listening on 127.0.0.1:port (/proc/net/tcp), or undefined. */
function listenerUid(port: number): number | undefined {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  for (const line of readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] === local && f[3] === "0A") return Number(f[7]);
  }
  return undefined;
}

/** postfixCheck - everything `postfix check` prints. */
function postfixCheck(pf: PostfixInstance): Promise<string> {
  return new Promise((res) => {
    execFile("postfix", ["-c", pf.configDir, "check"], { env: { ...process.env, PATH: `${SBIN_PATH}:${process.env["PATH"] ?? ""}` } },
      (err, stdout, stderr) => res(`${stdout}${stderr}${err ? `(exit: ${err.message})` : ""}`));
  });
}

test("/metrics of our tlsmgr under master(8): bound as the postfix user, real traffic, postfix reload",
  { skip: skip ?? false, timeout: 120_000 }, async (t) => {
    const port = await freeLoopbackPort();
    const url = `http://127.0.0.1:${port}/metrics`;
    const pf = await createPostfixInstance({ tlsmgr: "postfix", mainCf: { tlsmgr_metrics_address: `127.0.0.1:${port}` } });
    t.after(() => pf.destroy());
    await tlsmgrPostfix(PATH_WITH_SBIN, "install", pf.configDir);
    const chroot = nativeAvailable();
    if (chroot) await pf.postconf("-F", "tlsmgr/unix/chroot=y");
    else t.diagnostic("native addon missing: the tlsmgr service runs without chroot here");
    const line = (await pf.postconf("-M", "tlsmgr/unix")).trim();
    assert.match(line, /-o smtpd_restriction_classes=tlsmgr_metrics_address$/, line);
    assert.equal(await postfixCheck(pf), "", "postfix check says nothing about tlsmgr_metrics_address");
    await pf.start();
    const daemonDir = (await pf.postconf("-h", "daemon_directory")).trim();
    const postfixUid = Number(execFileSync("id", ["-u", "postfix"]).toString().trim());

    // a session made on one smtpd service and resumed on the other starts our tlsmgr (master: on demand)
    const resume = async (n: number) => {
      const r = await opensslResumes(pf.smtpdPort, join(pf.dir, `s${n}.pem`), { port2: pf.smtpdPort2 });
      assert.equal(r.reused, true, r.output);
    };
    await resume(1);
    const pid = await waitFor("our tlsmgr under master", 20_000, () => {
      const p = ourDaemonsUnderMaster(pf, daemonDir);
      return p.length === 1 ? p[0] : undefined;
    });

    await t.test("the listening socket belongs to the postfix user: bound after the privilege drop", async () => {
      const m = await waitForScrape(url, 20_000).catch(async (e: Error) => {
        const log = (await pf.logText()).split("\n").filter((l) => l.includes("postfix/tlsmgr[")).join("\n");
        throw new Error(`${e.message}; tlsmgr's log lines:\n${log}`);
      });
      assert.equal(m.status, 200);
      assert.equal(listenerUid(port), postfixUid);
      assert.equal(procStatusIds(pid).uid[1], postfixUid, "effective uid of the daemon");
      if (chroot) assert.equal(readlinkSync(`/proc/${pid}/root`), realpathSync(pf.queueDir), "chrooted to queue_directory");
      await pf.waitForLog(new RegExp(`postfix/tlsmgr\\[${pid}\\]: metrics: serving http://127\\.0\\.0\\.1:${port}/metrics`), 10_000);
    });

    await t.test("a scrape shows the smtpd traffic: one key made, the second service's smtpd found it by name", async () => {
      const m = await waitForScrape(url);
      assert.equal(sample(m, "tlsmgr_ticket_keys_made_total"), 1);
      assert.equal(sample(m, "tlsmgr_ticket_key_lookups_total", { result: "found" }), 1);
      assert.ok(sample(m, "tlsmgr_requests_total", { request: "tktkey", status: "ok" }) >= 2);
      assert.ok(sample(m, "tlsmgr_requests_total", { request: "policy", status: "ok" }) >= 2);
      // the stats request works in the jail too, and agrees
      const c = await TlsmgrClient.connect(pf.tlsmgrSocket);
      const st = (await c.stats()).stats!;
      c.close();
      assert.deepEqual(st.tickets!.lookups, { found: 1, not_found: 0, stale: 0 });
      assert.equal(st.requests.policy.ok, sample(m, "tlsmgr_requests_total", { request: "policy", status: "ok" }));
      assert.equal(st.metrics_address, `127.0.0.1:${port}`);
    });

    await t.test("after postfix reload, the new tlsmgr serves the port again", async () => {
      await pf.reload();
      await waitFor(`tlsmgr ${pid} to exit`, 20_000, () => (pidAlive(pid) ? undefined : true));
      await resume(2);
      const next = await waitFor("a new tlsmgr", 20_000, () => {
        const p = ourDaemonsUnderMaster(pf, daemonDir).filter((x) => x !== pid);
        return p.length === 1 ? p[0] : undefined;
      });
      await pf.waitForLog(new RegExp(`postfix/tlsmgr\\[${next}\\]: metrics: serving http://127\\.0\\.0\\.1:${port}/metrics`), 20_000);
      const m = await waitForScrape(url);
      assert.equal(sample(m, "tlsmgr_ticket_keys_made_total"), 1, "the new process counts from its own start");
      assert.equal(listenerUid(port), postfixUid);
      assert.doesNotMatch(await pf.logText(), /postfix\/tlsmgr\[\d+\]: (warning|error|fatal|panic): /);
    });
  });
