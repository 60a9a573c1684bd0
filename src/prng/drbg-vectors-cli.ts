/**
 * drbg-vectors-cli.ts - run HMAC_DRBG (SHA-256) test vectors against prng/drbg.ts.
 * Owns: reading the ACVP-like JSON of NIST's vectors (test/fixtures/drbg/),
 *       running each test's steps, and the report: one line per failing id with
 *       the first differing byte, then `N passed, M failed`; exit 1 if M > 0,
 *       2 when the file cannot be read at all.
 * Not here: the DRBG itself (prng/drbg.ts).
 * See also: test/fixtures/drbg/hmac-drbg-sha256.json, test/unit/drbg-vectors.test.ts
 *
 * Usage: npm run -s drbg-vectors -- FILE   (node dist/src/prng/drbg-vectors-cli.js FILE)
 *
 * The steps run through the DRBG's public API: predResistance generates call
 * generate(n, additional, true), which reseeds from the entropy callback, here
 * fed with the step's entropyInput. Minimum input lengths are the pool's
 * policy, not the algorithm, so this runner accepts any length the file has.
 */
import { readFile } from "node:fs/promises";
import { pathToFileURL } from "node:url";
import { errorText } from "../log/errors.js";
import { HmacDrbg } from "./drbg.js";

export interface DrbgVectorStep {
  intendedUse: "reSeed" | "generate";
  additionalInput: string;
  entropyInput: string;
}

export interface DrbgVector {
  id: string;
  predResistance: boolean;
  reseed: boolean;
  returnedBitsLen: number;
  entropyInput: string;
  nonce: string;
  persoString: string;
  otherInput: DrbgVectorStep[];
  returnedBits: string;
}

export interface DrbgVectorResult {
  id: string;
  ok: boolean;
  /** Why it failed: the first differing byte, or what was malformed. */
  detail?: string;
}

/** hexBytes - strict hex to bytes (even length, hex digits only) */
function hexBytes(text: unknown, what: string): Buffer {
  if (typeof text !== "string" || text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text))
    throw new Error(`${what} is not a hex string`);
  return Buffer.from(text, "hex");
}

/** runDrbgVector - run one test's steps; returns the output of the last generate */
export function runDrbgVector(t: DrbgVector): Buffer {
  if (!Number.isSafeInteger(t.returnedBitsLen) || t.returnedBitsLen <= 0 || t.returnedBitsLen % 8 !== 0)
    throw new Error("returnedBitsLen is not a positive multiple of 8");
  if (!Array.isArray(t.otherInput)) throw new Error("otherInput is not a list");
  const pending: Buffer[] = [];
  const drbg = new HmacDrbg({
    minEntropyBytes: 0,
    minNonceBytes: 0,
    getEntropy: () => {
      const next = pending.shift();
      if (!next) throw new Error("a reseed asked for entropy the vector does not give");
      return next;
    },
  });
  drbg.instantiate(hexBytes(t.entropyInput, "entropyInput"), hexBytes(t.nonce, "nonce"), hexBytes(t.persoString ?? "", "persoString"));
  let last: Buffer | undefined;
  t.otherInput.forEach((step, i) => {
    const add = hexBytes(step.additionalInput ?? "", `otherInput[${i}].additionalInput`);
    const ent = hexBytes(step.entropyInput ?? "", `otherInput[${i}].entropyInput`);
    if (step.intendedUse === "reSeed") {
      drbg.reseed(ent, add);
    } else if (step.intendedUse === "generate") {
      if (t.predResistance) pending.push(ent);
      last = drbg.generate(t.returnedBitsLen / 8, add, t.predResistance === true);
      if (pending.length) throw new Error(`otherInput[${i}] entropy was not used`);
    } else {
      throw new Error(`otherInput[${i}].intendedUse is neither reSeed nor generate`);
    }
  });
  if (!last) throw new Error("no generate step");
  return last;
}

/** firstDifference - index of the first differing byte, or -1 when equal */
function firstDifference(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** checkDrbgVector - run one vector and compare with returnedBits */
export function checkDrbgVector(t: DrbgVector, index: number): DrbgVectorResult {
  const id = typeof t?.id === "string" && t.id ? t.id : `#${index}`;
  try {
    const expected = hexBytes(t.returnedBits, "returnedBits");
    const got = runDrbgVector(t);
    const at = firstDifference(expected, got);
    if (at < 0) return { id, ok: true };
    const hex = (b: Buffer) => (at < b.length ? b.subarray(at, at + 1).toString("hex") : "(end)");
    return { id, ok: false, detail: `first difference at byte ${at}: expected ${hex(expected)}, got ${hex(got)}` };
  } catch (err) {
    return { id, ok: false, detail: `malformed vector: ${errorText(err)}` };
  }
}

/** runDrbgVectorFile - all tests of one file */
export async function runDrbgVectorFile(file: string): Promise<DrbgVectorResult[]> {
  const doc = JSON.parse(await readFile(file, "utf8")) as { tests?: unknown };
  if (!doc || !Array.isArray(doc.tests)) throw new Error(`${file}: no "tests" list`);
  return (doc.tests as DrbgVector[]).map((t, i) => checkDrbgVector(t, i));
}

/** main - the command */
async function main(argv: string[]): Promise<number> {
  const files = argv.filter((a) => a !== "--");
  if (files.length === 0) {
    process.stderr.write("usage: drbg-vectors FILE...\n");
    return 2;
  }
  let passed = 0;
  let failed = 0;
  for (const file of files) {
    let results: DrbgVectorResult[];
    try {
      results = await runDrbgVectorFile(file);
    } catch (err) {
      process.stderr.write(`drbg-vectors: cannot run ${file}: ${errorText(err)}\n`);
      return 2;
    }
    for (const r of results) {
      if (r.ok) passed++;
      else {
        failed++;
        process.stdout.write(`FAIL ${r.id}: ${r.detail}\n`);
      }
    }
  }
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  return failed > 0 ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`drbg-vectors: ${errorText(err)}\n`);
      process.exitCode = 2;
    },
  );
}
