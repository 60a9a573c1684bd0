/**
 * config-data-redirect.test.ts - data_redirect_file()/data_redirect_map()
 *                                rules and the uid that counts as mail_owner's.
 * See also: src/config/data-redirect.ts, postfix/src/global/data_redirect.c,
 *           test/unit/master-privileges.test.ts (looking mail_owner up)
 */

import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import {
  dataRedirectFile,
  dataRedirectMap,
  dataRedirectOwnerUid,
  type DataRedirectEnv,
} from "../../src/config/data-redirect.js";
import { captureMsgsEach } from "../helpers/msg-capture.js";
import { tempDir } from "../helpers/temp-dir.js";

const lines = captureMsgsEach();
const tmp = tempDir("tlsmgr-redirect-");
before(async () => {
  await mkdir(join(tmp, "mine"));
});

const myUid = process.geteuid?.() ?? 0;
const env = (ownerUid: number): DataRedirectEnv => ({ data_directory: "/var/lib/postfix", mail_owner: "postfix", ownerUid });

describe("data redirect", () => {
  it("leaves a path in a mail_owner-owned directory alone", async () => {
    assert.equal(await dataRedirectFile(`${tmp}/mine/prng_exch`, env(myUid)), `${tmp}/mine/prng_exch`);
    assert.equal(await dataRedirectMap(`btree:${tmp}/mine/x`, env(myUid)), `btree:${tmp}/mine/x`);
    assert.deepEqual(lines, []);
  });

  it("redirects a file, saying \"file\"", async () => {
    assert.equal(await dataRedirectFile(`${tmp}/mine/prng_exch`, env(myUid + 1)), "/var/lib/postfix/prng_exch");
    assert.deepEqual(lines, [
      `warning: request to update file ${tmp}/mine/prng_exch in non-postfix directory ${tmp}/mine`,
      "warning: redirecting the request to postfix-owned data_directory /var/lib/postfix",
    ]);
  });

  it("redirects file-based map types only, keeping the type", async () => {
    for (const t of ["hash", "btree", "lmdb", "dbm", "cdb", "sdbm", "dbz"]) {
      assert.equal(await dataRedirectMap(`${t}:${tmp}/mine/c`, env(myUid + 1)), `${t}:/var/lib/postfix/c`, t);
    }
    lines.length = 0;
    for (const t of ["memory", "internal", "redis", "proxy"]) {
      assert.equal(await dataRedirectMap(`${t}:${tmp}/mine/c`, env(myUid + 1)), `${t}:${tmp}/mine/c`, t);
    }
    assert.deepEqual(lines, []);
  });

  it("gives a bare name the default type, and names the map as written", async () => {
    assert.equal(await dataRedirectMap(`${tmp}/mine/c`, env(myUid + 1), "hash"), "hash:/var/lib/postfix/c");
    assert.equal(lines[0], `warning: request to update table ${tmp}/mine/c in non-postfix directory ${tmp}/mine`);
    lines.length = 0;
    assert.equal(await dataRedirectMap(`${tmp}/mine/c`, env(myUid), "lmdb"), `lmdb:${tmp}/mine/c`);
    assert.deepEqual(lines, []);
  });

  it("leaves a path whose directory does not exist alone", async () => {
    assert.equal(await dataRedirectMap(`btree:${tmp}/nope/c`, env(myUid + 1)), `btree:${tmp}/nope/c`);
    assert.deepEqual(lines, []);
  });

  it("takes mail_owner's uid as looked up, and this process's euid when there is no such account", () => {
    assert.equal(dataRedirectOwnerUid({ uid: 4242 }, "postfix"), 4242);
    assert.equal(dataRedirectOwnerUid({ uid: 0 }, "root"), 0);
    assert.equal(dataRedirectOwnerUid(undefined, "postfix"), myUid);
  });
});
