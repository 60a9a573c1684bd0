/**
 * drbg.ts - HMAC_DRBG with SHA-256, NIST SP 800-90A Rev. 1 section 10.1.2.
 * Owns: the DRBG state (Key, V, reseed_counter), instantiate, reseed, generate
 *       with personalization string, additional input, prediction resistance and
 *       the reseed interval (a forced reseed from the entropy callback; never an
 *       output from an unseeded or exhausted state).
 * Not here: where entropy comes from and what is mixed in (prng/pool.ts), the
 *       vector runner (prng/drbg-vectors-cli.ts).
 * See also: SP 800-90A Rev. 1 sections 9.1-9.3 and 10.1.2; test/fixtures/drbg/
 *       (NIST's vectors); docs/benchmarks.md (what a generate call costs)
 *
 * The HMAC is node:crypto's HMAC-SHA-256; nothing here is home-made crypto
 * beyond the DRBG's own update/generate steps as the standard writes them.
 * A generate of n bytes makes ceil(n / 32) + 2 HMACs, + 8 with additional
 * input; no step concatenates buffers (the parts go to update() one by one).
 */
import { createHmac } from "node:crypto";
import { TlsmgrError } from "../log/errors.js";

/** Output length of SHA-256 in bytes (outlen / 8). */
export const DRBG_OUTLEN = 32;
/** Highest security strength of HMAC_DRBG with SHA-256, in bits. */
export const DRBG_SECURITY_STRENGTH = 256;
/** SP 800-90A table 2: max_number_of_bits_per_request 2^19 bits. */
export const DRBG_MAX_REQUEST_BYTES = 1 << 16;
/** SP 800-90A table 2: reseed_interval at most 2^48. */
export const DRBG_MAX_RESEED_INTERVAL = 2 ** 48;
/** SP 800-90A table 2: max_length (entropy, personalization, additional input) 2^35 bits. */
export const DRBG_MAX_INPUT_BYTES = 2 ** 32;

/** The stable codes of DrbgError. */
export type DrbgErrorCode = "DRBG_UNINSTANTIATED" | "DRBG_BAD_INPUT" | "DRBG_NO_ENTROPY";

/** Thrown for misuse and for a missing entropy source; code names the cause. */
export class DrbgError extends TlsmgrError {
  declare readonly code: DrbgErrorCode;

  constructor(code: DrbgErrorCode, message: string) {
    super(message, code);
  }
}

export interface HmacDrbgOptions {
  /**
   * The entropy source (SP 800-90A Get_entropy_input): returns at least
   * minBytes of full-entropy bytes, or throws. Needed for prediction
   * resistance, for the forced reseed at the reseed interval, and for
   * instantiate/reseed without explicit entropy.
   */
  getEntropy?: (minBytes: number) => Buffer;
  /** Generate requests between reseeds (1 .. 2^48; default 2^48). */
  reseedInterval?: number;
  /** Least entropy input accepted, in bytes (default 32 = 256-bit strength). */
  minEntropyBytes?: number;
  /** Least nonce accepted, in bytes (default 16 = half the strength). */
  minNonceBytes?: number;
}

const EMPTY = Buffer.alloc(0);
const BYTE_00 = Buffer.from([0x00]);
const BYTE_01 = Buffer.from([0x01]);

/** hmac - HMAC-SHA-256(key, data) */
function hmac(key: Buffer, data: Buffer): Buffer {
  return createHmac("sha256", key).update(data).digest();
}

/** hmacSep - HMAC-SHA-256(key, v || sep || parts...) without concatenating */
function hmacSep(key: Buffer, v: Buffer, sep: Buffer, parts: readonly Buffer[]): Buffer {
  const h = createHmac("sha256", key).update(v).update(sep);
  for (const p of parts) if (p.length > 0) h.update(p);
  return h.digest();
}

/** setState - copy a fresh HMAC output into a state buffer (K or V), then zero the output */
function setState(state: Buffer, fresh: Buffer): void {
  fresh.copy(state);
  fresh.fill(0);
}

/** hasData - true when any part is non-empty (provided_data is not Null) */
function hasData(parts: readonly Buffer[]): boolean {
  for (const p of parts) if (p.length > 0) return true;
  return false;
}

export class HmacDrbg {
  /** K and V: these two buffers for the DRBG's life, overwritten in place (see #update). */
  readonly #key: Buffer = Buffer.alloc(DRBG_OUTLEN);
  readonly #v: Buffer = Buffer.alloc(DRBG_OUTLEN);
  #reseedCounter = 0;
  #instantiated = false;
  readonly #getEntropy: ((minBytes: number) => Buffer) | undefined;
  readonly #reseedInterval: number;
  readonly #minEntropy: number;
  readonly #minNonce: number;

  constructor(opts: HmacDrbgOptions = {}) {
    const interval = opts.reseedInterval ?? DRBG_MAX_RESEED_INTERVAL;
    if (!Number.isSafeInteger(interval) || interval < 1 || interval > DRBG_MAX_RESEED_INTERVAL)
      throw new DrbgError("DRBG_BAD_INPUT", `reseed interval ${interval} outside 1..2^48`);
    this.#getEntropy = opts.getEntropy;
    this.#reseedInterval = interval;
    this.#minEntropy = opts.minEntropyBytes ?? DRBG_SECURITY_STRENGTH / 8;
    this.#minNonce = opts.minNonceBytes ?? DRBG_SECURITY_STRENGTH / 16;
  }

  /** instantiated - true once instantiate() has run (and uninstantiate() has not) */
  get instantiated(): boolean {
    return this.#instantiated;
  }

  /** reseedCounter - generate requests since the last (re)seed, plus one (10.1.2.1) */
  get reseedCounter(): number {
    return this.#reseedCounter;
  }

  /**
   * update - HMAC_DRBG_Update (10.1.2.2) with provided_data as the
   * concatenation of parts. K and V stay in their two buffers: each new value
   * is copied in and the HMAC output that carried it zeroed (setState), so
   * no earlier state is left in memory.
   */
  #update(parts: readonly Buffer[]): void {
    setState(this.#key, hmacSep(this.#key, this.#v, BYTE_00, parts));
    setState(this.#v, hmac(this.#key, this.#v));
    if (!hasData(parts)) return;
    setState(this.#key, hmacSep(this.#key, this.#v, BYTE_01, parts));
    setState(this.#v, hmac(this.#key, this.#v));
  }

  /** entropy - explicit entropy input, or Get_entropy_input from the callback */
  #entropy(given: Buffer | undefined, minBytes: number, what: string): Buffer {
    if (given !== undefined) {
      if (given.length < minBytes)
        throw new DrbgError("DRBG_BAD_INPUT", `${what} of ${given.length} bytes is shorter than ${minBytes}`);
      checkLength(given, what);
      return given;
    }
    if (!this.#getEntropy) throw new DrbgError("DRBG_NO_ENTROPY", `no entropy source for ${what}`);
    const got = this.#getEntropy(Math.max(minBytes, 1));
    if (!Buffer.isBuffer(got) || got.length < minBytes)
      throw new DrbgError("DRBG_NO_ENTROPY", `entropy source returned too little for ${what}`);
    return got;
  }

  /**
   * instantiate - Instantiate_function (9.1) + HMAC_DRBG_Instantiate_algorithm (10.1.2.3).
   * Entropy and nonce come from getEntropy when not given.
   */
  instantiate(entropy?: Buffer, nonce?: Buffer, personalization: Buffer = EMPTY): void {
    checkLength(personalization, "personalization string");
    const ent = this.#entropy(entropy, this.#minEntropy, "entropy input");
    const non = this.#entropy(nonce, this.#minNonce, "nonce");
    this.#key.fill(0x00);
    this.#v.fill(0x01);
    this.#update([ent, non, personalization]);
    this.#reseedCounter = 1;
    this.#instantiated = true;
  }

  /** reseed - Reseed_function (9.2) + HMAC_DRBG_Reseed_algorithm (10.1.2.4) */
  reseed(entropy?: Buffer, additional: Buffer = EMPTY): void {
    if (!this.#instantiated) throw new DrbgError("DRBG_UNINSTANTIATED", "reseed of an uninstantiated DRBG");
    checkLength(additional, "additional input");
    const ent = this.#entropy(entropy, this.#minEntropy, "entropy input");
    this.#update([ent, additional]);
    this.#reseedCounter = 1;
  }

  /**
   * generate - Generate_function (9.3.1) + HMAC_DRBG_Generate_algorithm (10.1.2.5).
   * With predictionResistance, or when the reseed interval is reached, it first
   * reseeds from getEntropy with the additional input (which is then used up);
   * if that is impossible it throws and returns nothing.
   */
  generate(nBytes: number, additional: Buffer = EMPTY, predictionResistance = false): Buffer {
    if (!this.#instantiated) throw new DrbgError("DRBG_UNINSTANTIATED", "generate from an uninstantiated DRBG");
    if (!Number.isSafeInteger(nBytes) || nBytes < 0 || nBytes > DRBG_MAX_REQUEST_BYTES)
      throw new DrbgError("DRBG_BAD_INPUT", `request of ${nBytes} bytes outside 0..${DRBG_MAX_REQUEST_BYTES}`);
    checkLength(additional, "additional input");
    if (predictionResistance || this.#reseedCounter > this.#reseedInterval) {
      this.reseed(undefined, additional);
      additional = EMPTY;
    }
    if (additional.length > 0) this.#update([additional]);
    const out = Buffer.allocUnsafe(nBytes);
    let done = 0;
    while (done < nBytes) {
      setState(this.#v, hmac(this.#key, this.#v));
      done += this.#v.copy(out, done, 0, Math.min(DRBG_OUTLEN, nBytes - done));
    }
    this.#update([additional]);
    this.#reseedCounter += 1;
    return out;
  }

  /** uninstantiate - Uninstantiate_function (9.4): zero the state */
  uninstantiate(): void {
    this.#key.fill(0);
    this.#v.fill(0);
    this.#reseedCounter = 0;
    this.#instantiated = false;
  }
}

/** checkLength - refuse inputs longer than max_length */
function checkLength(buf: Buffer, what: string): void {
  if (!Buffer.isBuffer(buf)) throw new DrbgError("DRBG_BAD_INPUT", `${what} is not a Buffer`);
  if (buf.length > DRBG_MAX_INPUT_BYTES) throw new DrbgError("DRBG_BAD_INPUT", `${what} too long`);
}
