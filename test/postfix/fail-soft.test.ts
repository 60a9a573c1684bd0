/**
 * fail-soft.test.ts - a mistake in main.cf never stops mail (issue 12, "What
 *                     must be shown", first test): our tlsmgr under Debian's
 *                     Postfix 3.7 master(8), one recoverable mistake after
 *                     another.
 * Owns: for each mistake that Postfix's tlsmgr survives (or that this daemon
 *       survives where Postfix's would too: see man/tlsmgr.8 DIAGNOSTICS),
 *       after `postfix reload` with the mistake: smtpd answers EHLO, a
 *       plain-text mail and a TLS mail are accepted and delivered (through
 *       smtp(8) with TLS to the instance's second smtpd), the new tlsmgr logs
 *       the cause once and never `fatal:`, and the cache (or key store)
 *       behaves as unavailable; after the fix and `postfix reload`: the cache
 *       (or store) works again, and master never throttled tlsmgr.
 * Not here: the fatal rows (robustness/bad-config.test.ts); the surrogate
 *           and the key fallback themselves (unit/unavailable-cache.test.ts);
 *           install, reload and kill -9 in general (under-master.test.ts).
 * See also: src/cache/unavailable-cache.ts, src/tickets/key-fallback.ts,
 *           test/helpers/postfix-instance.ts
 *
 * One instance, the mistakes in sequence. "Answers" is asserted, never a
 * time: swaks and tlsmgr-client have generous timeouts of their own, and the
 * proof that master did not throttle is the absence of its
 * `bad command startup -- throttling` line.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmod, writeFile } from "node:fs/promises";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { createPostfixInstance, postfixSkipReason, type PostfixInstance } from "../helpers/postfix-instance.js";
import { programPath } from "../helpers/skip.js";
import {
  TLSMGR_POSTFIX, escapeRe, masterChildren, pidAlive, tlsmgrPostfix, waitFor,
} from "../helpers/master-procs.js";
import { REPO_ROOT } from "../helpers/daemon.js";

const skip = postfixSkipReason() ?? (programPath("swaks") === undefined ? "swaks not installed" : undefined);
const CLIENT = join(REPO_ROOT, "bin", "tlsmgr-client");
const SBIN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin";
const PATH_WITH_SBIN = `${process.env["PATH"] ?? ""}:${SBIN_PATH}`;

/** One mistake: the main.cf settings (and files) that make it, and what must be seen. */
interface Mistake {
  what: string;
  /** main.cf settings with the mistake. */
  set: (pf: PostfixInstance) => Promise<Record<string, string>>;
  /** The new tlsmgr's line that names the cause (exactly one). */
  cause: (pf: PostfixInstance) => RegExp;
  /** While the mistake lasts: what the tlsmgr serves. */
  during: (pf: PostfixInstance) => Promise<void>;
  /** main.cf settings that fix it. */
  fix: (pf: PostfixInstance) => Promise<Record<string, string>>;
  /** After the fix: what works again. */
  after: (pf: PostfixInstance) => Promise<void>;
}

// run - a command's stdout; rejects with its output on failure
function run(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 60_000, env: { ...process.env, PATH: PATH_WITH_SBIN } },
      (err, stdout, stderr) => (err ? reject(new Error(`${file} ${args.join(" ")}: ${err.message}\n${stdout}${stderr}`)) : resolve(stdout)));
  });
}

// client - bin/tlsmgr-client against the instance's tlsmgr socket (master starts the daemon on
// demand); its output, also when it exits 1 for a status other than 0
function client(pf: PostfixInstance, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(CLIENT, ["-s", pf.tlsmgrSocket, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && !/^status=/.test(stdout)) reject(new Error(`tlsmgr-client ${args.join(" ")}: ${err.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
    child.stdin?.end(args[0] === "update" ? "session bytes\n" : undefined);
  });
}

let idN = 0;
// cacheWorks - an update then a lookup of a fresh id: "hit", or "miss" (the lookup's status -1)
async function cacheWorks(pf: PostfixInstance, type: string): Promise<"hit" | "miss"> {
  const id = `fail-soft-${++idN}`;
  await client(pf, "update", type, id, "-");
  const out = await client(pf, "lookup", type, id);
  if (/^status=0 /.test(out)) return "hit";
  assert.match(out, /^status=-1/, `lookup ${type} ${id}: ${out}`);
  return "miss";
}

// swaks - one SMTP session with smtpd; resolves to swaks's transcript
function swaks(pf: PostfixInstance, ...args: string[]): Promise<string> {
  return run("swaks", ["--server", `127.0.0.1:${pf.smtpdPort}`, "--timeout", "30", ...args]);
}

let mailN = 0;
// mailFlows - EHLO answered; a plain and a TLS mail accepted by smtpd and delivered over TLS by smtp(8)
async function mailFlows(pf: PostfixInstance): Promise<void> {
  const ehlo = await swaks(pf, "--quit-after", "EHLO");
  assert.match(ehlo, /^<- {2}220 /m, ehlo);
  assert.match(ehlo, /^<- {2}250[ -]/m, ehlo);
  for (const tls of [false, true]) {
    const to = `flow${++mailN}@example.com`;
    const out = await swaks(pf, "--to", to, "--from", "sender@example.com", ...(tls ? ["-tls"] : []));
    // swaks marks the lines of a TLS session <~ (in the clear: <-)
    assert.match(out, tls ? /^<~ {2}250 .*queued as/m : /^<- {2}250 .*queued as/m, out);
    if (tls) assert.match(out, /^=== TLS started with cipher /m, out);
    await pf.waitForLog(new RegExp(`to=<${escapeRe(to)}>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${pf.smtpdPort2}, .*status=sent`), 60_000);
  }
}

test("a recoverable mistake in main.cf: postfix reload keeps mail flowing; the fix and a reload restore the store",
  { skip: skip ?? false, timeout: 600_000 }, async (t) => {
    const pf = await createPostfixInstance({ tlsmgr: "postfix" });
    t.after(() => pf.destroy());
    await tlsmgrPostfix(PATH_WITH_SBIN, "install", pf.configDir);
    await pf.start();
    const good = {
      smtpd: "lmdb:${data_directory}/smtpd_scache",
      smtp: "lmdb:${data_directory}/smtp_scache",
    };
    let logFrom = 0;
    let oldPids: number[] = [];

    // newLog - the maillog since the last reload, without the lines of the tlsmgr that reload replaced
    const newLog = async (): Promise<string> => (await pf.logText()).slice(logFrom).split("\n")
      .filter((l) => !oldPids.some((p) => l.includes(`postfix/tlsmgr[${p}]: `))).join("\n");
    // reloadWith - main.cf settings, postfix reload, wait until the old tlsmgr and smtpd processes are gone
    const reloadWith = async (settings: Record<string, string>): Promise<void> => {
      for (const [k, v] of Object.entries(settings)) await pf.postconf("-e", `${k} = ${v}`);
      oldPids = masterChildren(pf, "tlsmgr");
      const old = [...oldPids, ...masterChildren(pf, "smtpd")];
      logFrom = (await pf.logText()).length;
      await pf.reload();
      await waitFor("the old tlsmgr and smtpd processes to exit after postfix reload", 30_000,
        () => (old.some(pidAlive) ? undefined : true));
    };
    // noThrottle - master never throttled tlsmgr, and no tlsmgr died, since the last reload
    const noThrottle = async (): Promise<void> => {
      const log = await newLog();
      assert.doesNotMatch(log, /bad command startup -- throttling/);
      assert.doesNotMatch(log, /postfix\/tlsmgr\[\d+\]: fatal: /);
      assert.doesNotMatch(log, /postfix\/master\[\d+\]: warning: process \S+tlsmgr pid \d+ exit status/);
    };

    const mistakes: Mistake[] = [
      {
        what: "a typo in the smtpd cache's map type (lmbd:)",
        set: async () => ({ smtpd_tls_session_cache_database: "lmbd:${data_directory}/smtpd_scache" }),
        cause: () => /: error: \S+main\.cf: parameter smtpd_tls_session_cache_database: unsupported dictionary type: lmbd$/,
        during: async (pf) => {
          assert.match(await client(pf, "policy", "smtpd"), /^status=0 cachable=1 timeout=3600/);
          assert.equal(await cacheWorks(pf, "smtpd"), "miss");
          assert.equal(await cacheWorks(pf, "smtp"), "hit", "the other cache is not affected");
          await pf.waitForLog(/postfix\/tlsmgr\[\d+\]: warning: \S+main\.cf: parameter smtpd_tls_session_cache_database: lmbd:\S+ is unavailable\. unsupported dictionary type: lmbd/, 10_000);
        },
        fix: async () => ({ smtpd_tls_session_cache_database: good.smtpd }),
        after: async (pf) => assert.equal(await cacheWorks(pf, "smtpd"), "hit"),
      },
      {
        what: "an smtpd cache in a directory that does not exist",
        set: async () => ({ smtpd_tls_session_cache_database: "lmdb:/nonexistent-tlsmgr-dir/smtpd_scache" }),
        cause: () => /: error: \S+main\.cf: parameter smtpd_tls_session_cache_database: cannot open lmdb:\/nonexistent-tlsmgr-dir\/smtpd_scache: No such file or directory$/,
        during: async (pf) => {
          assert.match(await client(pf, "policy", "smtpd"), /^status=0 cachable=1 /);
          assert.equal(await cacheWorks(pf, "smtpd"), "miss");
        },
        fix: async () => ({ smtpd_tls_session_cache_database: good.smtpd }),
        after: async (pf) => assert.equal(await cacheWorks(pf, "smtpd"), "hit"),
      },
      {
        what: "a redis: smtp cache whose table file has a line without '='",
        set: async (pf) => {
          const table = join(pf.configDir, "tls-redis.cf");
          await writeFile(table, "servers 127.0.0.1:6379\n");
          return { smtp_tls_session_cache_database: `redis:${table}` };
        },
        cause: (pf) => new RegExp(`: error: ${escapeRe(join(pf.configDir, "tls-redis.cf"))}, line 1: `),
        during: async (pf) => {
          assert.match(await client(pf, "policy", "smtp"), /^status=0 cachable=1 /);
          assert.equal(await cacheWorks(pf, "smtp"), "miss");
          assert.equal(await cacheWorks(pf, "smtpd"), "hit");
        },
        fix: async () => ({ smtp_tls_session_cache_database: good.smtp }),
        after: async (pf) => assert.equal(await cacheWorks(pf, "smtp"), "hit"),
      },
      {
        what: "a ticket key file that others may read (mode 0644)",
        set: async (pf) => {
          const keys = join(pf.dataDir, "tls-keys");
          await writeFile(keys, "");
          await chmod(keys, 0o644);
          return { tlsmgr_ticket_key_database: keys };
        },
        cause: (pf) => new RegExp(`: error: \\S+main\\.cf: parameter tlsmgr_ticket_key_database: ${escapeRe(join(pf.dataDir, "tls-keys"))}: mode 0644 lets others read or change the keys`),
        during: async (pf) => {
          assert.match(await client(pf, "tktkey"), /^status=0 name=[0-9a-f]{32} /, "keys from memory");
          assert.equal(statSync(join(pf.dataDir, "tls-keys")).size, 0, "nothing written to a file others can read");
          await pf.waitForLog(/postfix\/tlsmgr\[\d+\]: warning: .*tlsmgr_ticket_key_database: .* is unavailable: session ticket keys are kept in memory/, 10_000);
        },
        fix: async (pf) => {
          await chmod(join(pf.dataDir, "tls-keys"), 0o600);
          return {};
        },
        after: async (pf) => {
          assert.match(await client(pf, "tktkey"), /^status=0 name=[0-9a-f]{32} /);
          await waitFor("keys written to the key file", 10_000,
            () => (statSync(join(pf.dataDir, "tls-keys")).size > 0 ? true : undefined));
        },
      },
      {
        what: "an entropy device that does not exist (tls_random_source)",
        set: async () => ({ tls_random_source: "dev:/nonexistent-tlsmgr-random" }),
        cause: () => /: warning: cannot open entropy device \/nonexistent-tlsmgr-random: No such file or directory$/,
        during: async (pf) => {
          assert.match(await client(pf, "seed", "32"), /^status=0 /);
        },
        fix: async () => ({ tls_random_source: "dev:/dev/urandom" }),
        after: async (pf) => {
          assert.match(await client(pf, "seed", "32"), /^status=0 /);
          assert.doesNotMatch(await newLog(), /cannot open entropy device/);
        },
      },
    ];

    // a first tlsmgr, so that each reload below replaces a running one
    await mailFlows(pf);
    assert.equal(await cacheWorks(pf, "smtpd"), "hit");

    for (const m of mistakes) {
      await t.test(`${m.what}: mail flows, the cause is logged once, the fix restores it`, async () => {
        await reloadWith(await m.set(pf));
        await mailFlows(pf);
        await m.during(pf);
        const log = await newLog();
        const causeRe = m.cause(pf);
        const causes = log.split("\n").filter((l) => /postfix\/tlsmgr\[\d+\]: /.test(l) && causeRe.test(l));
        assert.equal(causes.length, 1, `lines matching ${causeRe}:\n${log}`);
        await noThrottle();

        await reloadWith(await m.fix(pf));
        await m.after(pf);
        await mailFlows(pf);
        const fixed = await newLog();
        assert.doesNotMatch(fixed, /postfix\/tlsmgr\[\d+\]: (error|fatal): /, fixed);
        await noThrottle();
      });
    }
    assert.ok(existsSync(TLSMGR_POSTFIX));
  });
