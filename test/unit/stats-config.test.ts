/**
 * stats-config.test.ts - the parameters of issue 16 as the daemon reads
 *                        them: tlsmgr_metrics_address and its loopback rule
 *                        (with tlsmgr_metrics_allow_remote), the cache limits,
 *                        and tlsmgr_smtpd_cache_shared_services rewriting
 *                        smtpd cache ids as Postfix's tls_server.c builds them.
 * See also: src/stats/metrics-server.ts, src/config/params.ts, src/cache/service-alias.ts
 */

import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { serviceAliasesParse, smtpdCacheIdAlias, smtpdServiceAliases } from "../../src/cache/service-alias.js";
import { SCACHE_LIMIT_PARAMS, TLSMGR_OWN_PARAMS, loadConfig, scacheLimitsOf } from "../../src/config/params.js";
import { isLoopback, metricsAddressOf, metricsAddressParse, yesNo } from "../../src/stats/metrics-server.js";
import { captureMsgs } from "../helpers/msg-capture.js";
import { tempDir } from "../helpers/temp-dir.js";

const tmp = tempDir("tlsmgr-stats-config-");

describe("tlsmgr_metrics_address", () => {
  it("takes host:port, [ipv6]:port, localhost:port or a port alone; no host names", () => {
    assert.deepEqual(metricsAddressParse("127.0.0.1:9715"), { host: "127.0.0.1", port: 9715, text: "127.0.0.1:9715" });
    assert.deepEqual(metricsAddressParse(" [::1]:9715 "), { host: "::1", port: 9715, text: "[::1]:9715" });
    assert.deepEqual(metricsAddressParse("localhost:80"), { host: "127.0.0.1", port: 80, text: "127.0.0.1:80" });
    assert.deepEqual(metricsAddressParse("9715"), { host: "127.0.0.1", port: 9715, text: "127.0.0.1:9715" });
    for (const bad of ["mx.example.com:9715", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "[127.0.0.1]:1", ":9715", "::1:9715", "127.0.0.1:x"])
      assert.ok("error" in metricsAddressParse(bad), bad);
  });

  it("loopback: 127.0.0.0/8, ::1 and mapped 127.x only", () => {
    for (const h of ["127.0.0.1", "127.1.2.3", "::1", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1"]) assert.equal(isLoopback(h), true, h);
    for (const h of ["0.0.0.0", "10.0.0.5", "::", "::ffff:10.0.0.5", "fe80::1", "128.0.0.1"]) assert.equal(isLoopback(h), false, h);
  });

  it("outside loopback: refused with a warning unless tlsmgr_metrics_allow_remote = yes", () => {
    const at = (address: string, remote: string) => captureMsgs(() => metricsAddressOf({ tlsmgr_metrics_address: address, tlsmgr_metrics_allow_remote: remote }));
    assert.deepEqual(at("", "no"), { result: undefined, lines: [] });
    assert.deepEqual(at("127.0.0.1:9715", "no").result?.text, "127.0.0.1:9715");
    const refused = at("0.0.0.0:9715", "no");
    assert.equal(refused.result, undefined);
    assert.deepEqual(refused.lines, [
      "warning: tlsmgr_metrics_address = 0.0.0.0:9715: not a loopback address: metrics are off (set tlsmgr_metrics_allow_remote = yes to serve them there)",
    ]);
    assert.equal(at("10.0.0.5:9715", "yes").result?.text, "10.0.0.5:9715");
    assert.equal(at("[::]:9715", "TRUE").result?.text, "[::]:9715");
    const odd = at("10.0.0.5:9715", "maybe");
    assert.equal(odd.result, undefined);
    assert.equal(odd.lines[0], "warning: tlsmgr_metrics_allow_remote = maybe: expecting yes or no: taken as no");
    assert.deepEqual(at("mx:1", "no").lines, [
      'warning: tlsmgr_metrics_address = mx:1: "mx" is not an IPv4 address (host names are not looked up; IPv6 goes in brackets): metrics are off',
    ]);
    assert.deepEqual([yesNo("Yes"), yesNo("false"), yesNo("1")], [true, false, undefined]);
  });
});

describe("the parameters", () => {
  it("are ours, off by default, and read from main.cf", () => {
    for (const n of ["tlsmgr_metrics_address", "tlsmgr_metrics_allow_remote", "tlsmgr_smtpd_cache_shared_services",
      ...Object.values(SCACHE_LIMIT_PARAMS).flatMap((p) => [p.entries, p.bytes])])
      assert.ok(TLSMGR_OWN_PARAMS.has(n), n);
    const cfgDir = join(tmp, "a");
    mkdirSync(cfgDir);
    const defaults = loadConfig({ configDir: cfgDir, allowMissingMainCf: true });
    assert.deepEqual([defaults.tlsmgr_metrics_address, defaults.tlsmgr_metrics_allow_remote, defaults.tlsmgr_smtpd_cache_shared_services], ["", "no", ""]);
    assert.deepEqual(scacheLimitsOf(defaults, "smtpd").limits, { entries: 0, bytes: 0 });
    writeFileSync(join(cfgDir, "main.cf"), "tlsmgr_smtp_cache_entry_limit = 1000\ntlsmgr_smtp_cache_byte_limit = 4000000\ntlsmgr_lmtp_cache_entry_limit = -5\n");
    const cfg = loadConfig({ configDir: cfgDir });
    assert.deepEqual(scacheLimitsOf(cfg, "smtp"), {
      limits: { entries: 1000, bytes: 4000000 },
      params: { entries: "tlsmgr_smtp_cache_entry_limit", bytes: "tlsmgr_smtp_cache_byte_limit" },
    });
    assert.deepEqual(scacheLimitsOf(cfg, "lmtp").limits, { entries: 0, bytes: 0 }, "0 or less: no limit");
  });
});

describe("tlsmgr_smtpd_cache_shared_services", () => {
  // tls_server.c GEN_CACHE_ID: hex(session id) "&s=" serverid "&l=" OpenSSL_version_num()
  const id = (service: string) => `3F2A9C&s=${service}&l=805306608`;

  it("stores a listed service's ids under the list's first name; others as they are", () => {
    const aliases = serviceAliasesParse("smtp, 192.0.2.1:smtp  [2001:db8::1]:smtp")!;
    assert.equal(smtpdCacheIdAlias(id("192.0.2.1:smtp"), aliases), id("smtp"));
    assert.equal(smtpdCacheIdAlias(id("[2001:db8::1]:smtp"), aliases), id("smtp"));
    assert.equal(smtpdCacheIdAlias(id("smtp"), aliases), id("smtp"));
    assert.equal(smtpdCacheIdAlias(id("submission"), aliases), id("submission"), "not listed");
    assert.equal(smtpdCacheIdAlias(id("192.0.2.1:smtps"), aliases), id("192.0.2.1:smtps"));
    assert.equal(smtpdCacheIdAlias("no-service-part", aliases), "no-service-part");
    assert.equal(smtpdCacheIdAlias("AB&l=1&s=192.0.2.1:smtp", aliases), "AB&l=1&s=192.0.2.1:smtp", "parts out of order: left alone");
    assert.equal(serviceAliasesParse(" , "), undefined);
  });

  it("applies to the smtpd cache only, and not at all when empty", () => {
    const seen: string[] = [];
    const ops = (label: string) => ({
      lookup: (i: string) => (seen.push(`${label} lookup ${i}`), undefined),
      update: (i: string) => (seen.push(`${label} update ${i}`), true),
      delete: (i: string) => (seen.push(`${label} delete ${i}`), true),
    });
    const smtpd = ops("smtpd");
    const smtp = ops("smtp");
    const caches = { get: (t: string) => (t === "smtpd" ? smtpd : t === "smtp" ? smtp : undefined), timeout: () => 3600 };
    assert.equal(smtpdServiceAliases(caches, ""), caches);
    const served = smtpdServiceAliases(caches, "smtp 127.0.0.1:2525");
    served.get("smtpd")!.lookup(id("127.0.0.1:2525"));
    served.get("smtpd")!.update(id("127.0.0.1:2525"), Buffer.alloc(1));
    served.get("smtpd")!.delete(id("127.0.0.1:2525"));
    served.get("smtp")!.lookup("smtp&s=127.0.0.1:2525&l=1");
    assert.equal(served.get("lmtp"), undefined);
    assert.equal(served.timeout("smtpd"), 3600);
    assert.deepEqual(seen, [
      `smtpd lookup ${id("smtp")}`, `smtpd update ${id("smtp")}`, `smtpd delete ${id("smtp")}`, "smtp lookup smtp&s=127.0.0.1:2525&l=1",
    ]);
  });
});
