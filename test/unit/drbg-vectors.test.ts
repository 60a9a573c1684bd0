/**
 * drbg-vectors.test.ts - the vector command on the shared NIST vectors, and its
 *                        report on a file with a wrong and a malformed vector.
 * See also: src/prng/drbg-vectors-cli.ts, ../shared/vectors/drbg/README.md
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { existsSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, "..", "..", "..");
const cli = path.join(repoRoot, "dist", "src", "prng", "drbg-vectors-cli.js");
// The project's shared vectors (beside the clone, as CI lays them out), else
// the copy kept in test/fixtures (NIST data) for a clone standing alone.
const sharedVectors = path.resolve(repoRoot, "..", "shared", "vectors", "drbg", "hmac-drbg-sha256.json");
const vectors = existsSync(sharedVectors)
  ? sharedVectors
  : path.join(repoRoot, "test", "fixtures", "drbg", "hmac-drbg-sha256.json");

function run(file: string) {
  return spawnSync(process.execPath, [cli, file], { encoding: "utf8" });
}

test("every shared HMAC_DRBG vector passes", () => {
  const count = (JSON.parse(readFileSync(vectors, "utf8")) as { tests: unknown[] }).tests.length;
  assert.ok(count > 0);
  const r = run(vectors);
  assert.equal(r.stdout.trim().split("\n").at(-1), `${count} passed, 0 failed`, r.stdout + r.stderr);
  assert.equal(r.status, 0);
});

test("a wrong and a malformed vector are reported by id, with the first differing byte", () => {
  const doc = JSON.parse(readFileSync(vectors, "utf8")) as {
    tests: Array<{ id: string; returnedBits: string; nonce: string }>;
  };
  const wrong = doc.tests[0]!;
  const bad = doc.tests[1]!;
  // Flip byte 5 of the expected output.
  const bits = Buffer.from(wrong.returnedBits, "hex");
  const was = bits[5]!;
  bits[5] = was ^ 0xff;
  wrong.returnedBits = bits.toString("hex");
  bad.nonce = "zz";
  const dir = mkdtempSync(path.join(tmpdir(), "drbg-vec-"));
  try {
    const file = path.join(dir, "v.json");
    writeFileSync(file, JSON.stringify(doc));
    const r = run(file);
    assert.equal(r.status, 1);
    const lines = r.stdout.trim().split("\n");
    const got = was.toString(16).padStart(2, "0");
    const expected = (was ^ 0xff).toString(16).padStart(2, "0");
    assert.ok(
      lines.includes(`FAIL ${wrong.id}: first difference at byte 5: expected ${expected}, got ${got}`),
      r.stdout,
    );
    assert.ok(lines.some((l) => l.startsWith(`FAIL ${bad.id}: malformed vector`)), r.stdout);
    assert.equal(lines.at(-1), `${doc.tests.length - 2} passed, 2 failed`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an unreadable file is a usage error, not a pass", () => {
  const r = run(path.join(tmpdir(), "no-such-drbg-vectors.json"));
  assert.equal(r.status, 2);
  assert.match(r.stderr, /cannot run/);
});
