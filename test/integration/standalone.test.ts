/**
 * standalone.test.ts - `tlsmgr -S`: one client on standard input and output,
 * served whole, then a clean exit (Postfix's stand-alone mode).
 * See also: src/main.ts
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DAEMON_MAIN } from "../helpers/daemon.js";

test("-S serves pipelined requests from stdin and exits 0 at end of input", () => {
  const home = mkdtempSync(join(tmpdir(), "tlsmgr-S-"));
  try {
    const input = Buffer.from(
      "request\0policy\0cache_type\0smtpd\0\0" +
        "request\0update\0cache_type\0smtpd\0cache_id\0k\0session\0AQID\0\0" +
        "request\0lookup\0cache_type\0smtpd\0cache_id\0k\0\0",
      "latin1",
    );
    const r = spawnSync(process.execPath, [DAEMON_MAIN, "--home", home, "-S"], { input, timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr.toString());
    assert.equal(
      r.stdout.toString("latin1"),
      "protocol\0tlsmgr_protocol\0\0" +
        "status\x000\0cachable\x001\0timeout\x003600\0\0" +
        "status\x000\0\0" +
        "status\x000\0session\0AQID\0\0",
    );
    assert.match(r.stderr.toString(), /^tlsmgr\[\d+\]: /m, "log lines go to stderr, not stdout");
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
