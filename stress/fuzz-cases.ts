/**
 * fuzz-cases.ts - the inputs of `npm run fuzz`: real requests (as smtpd and
 *                 smtp send them), mutated.
 * Owns: the real requests of one fuzzing connection (its cache ids carry its
 *       tag, "f<k>."), the mutations (of attributes: boundary values, lengths
 *       at the limits, dropped, swapped, extra and renamed attributes; of
 *       bytes: flips, NULs, cuts, copies, inserted bytes, a trigger or a lone
 *       NUL in front), and the delivery (write cut points, half-close).
 * Not here: sending and judging (stress/fuzz.ts, test/helpers/reply-model.ts).
 * See also: robustness/fuzz-socket.test.ts (the suite's fuzzing, with fast-check)
 */

import { Rng } from "../bench/mix.js";

/** The limits the fuzzed daemon runs with (stress/fuzz.ts passes them to main.cf). */
export const FUZZ_LIMITS = { nameLimit: 256, valueLimit: 65536, countLimit: 16 };

/** One case: the bytes for one fresh connection, and how to write them. */
export interface FuzzCase {
  input: Buffer;
  /** Write boundaries, increasing, inside the input. */
  cuts: number[];
  /** Half-close after the input. */
  end: boolean;
  /** Mutations applied, for the report of a failing case. */
  mutations: string[];
}

type Attr = [string, Buffer];
type List = Attr[];

const b = (s: string) => Buffer.from(s, "latin1");
const CACHE_TYPES = ["smtpd", "smtp", "lmtp"];
const REQUESTS = ["lookup", "update", "delete", "seed", "policy", "tktkey"];
const INT_EDGES = ["", "0", "1", "32", "255", "256", "-1", "+32", "032", "4294967295", "4294967296", "-4294967296", "12x", " 7",
  "99999999999999999999"];

/** FuzzGen - the cases of one fuzzing connection (its ids carry `tag`). */
export class FuzzGen {
  readonly #rng: Rng;
  /** A name of a ticket key this connection was given, for lookups by name. */
  knownKeyName: Buffer | undefined;

  constructor(
    readonly tag: string,
    seed: number,
  ) {
    this.#rng = new Rng(seed);
  }

  #int(n: number): number {
    return this.#rng.int(n);
  }

  #pick<T>(a: readonly T[]): T {
    return a[this.#int(a.length)]!;
  }

  #bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.#int(256);
    return out;
  }

  /** #id - a cache id of this connection, from a small set so that lookups hit. */
  #id(type: string): string {
    const n = this.#int(24);
    return type === "smtp" ? `${this.tag}smtp&[127.0.0.1]:25&${n}` : `${this.tag}${n.toString(16).padStart(8, "0")}`;
  }

  #session(): Buffer {
    const r = this.#int(100);
    const size = r < 90 ? 200 + this.#int(3000) : r < 98 ? this.#int(200) : 40000 + this.#int(9000);
    return b(this.#bytes(size).toString("base64"));
  }

  /** real - one request as Postfix's clients send it. */
  real(): List {
    const req = (name: string, ...rest: Attr[]): List => [["request", b(name)], ...rest];
    const type = this.#pick(["smtpd", "smtpd", "smtp", "lmtp"]);
    switch (this.#int(10)) {
      case 0:
      case 1:
      case 2:
        return req("lookup", ["cache_type", b(type)], ["cache_id", b(this.#id(type))]);
      case 3:
      case 4:
        return req("update", ["cache_type", b(type)], ["cache_id", b(this.#id(type))], ["session", this.#session()]);
      case 5:
        return req("delete", ["cache_type", b(type)], ["cache_id", b(this.#id(type))]);
      case 6:
        return req("seed", ["size", b(String(this.#pick([32, 32, 16, 1, 255])))]);
      case 7:
        return req("policy", ["cache_type", b(type)]);
      default: {
        const name = this.knownKeyName && this.#int(2) === 0 ? this.knownKeyName : Buffer.alloc(0);
        return req("tktkey", ["keyname", b(name.toString("base64"))]);
      }
    }
  }

  /** #mutateList - one change to the attributes of a list. */
  #mutateList(list: List, notes: string[]): void {
    const i = list.length > 0 ? this.#int(list.length) : 0;
    switch (this.#int(9)) {
      case 0:
        if (list[i]) list[i]![1] = b(this.#pick(INT_EDGES));
        notes.push(`value ${i} an integer edge`);
        break;
      case 1: {
        const n = FUZZ_LIMITS.valueLimit + this.#pick([-1, 0, 1]);
        if (list[i]) list[i]![1] = Buffer.alloc(n, this.#pick([0x41, 0x2f, 0xff]));
        notes.push(`value ${i} of ${n} bytes`);
        break;
      }
      case 2: {
        const n = FUZZ_LIMITS.nameLimit + this.#pick([-1, 0, 1]);
        if (list[i]) list[i]![0] = "n".repeat(n);
        notes.push(`name ${i} of ${n} bytes`);
        break;
      }
      case 3:
        list.splice(i, 1);
        notes.push(`attribute ${i} dropped`);
        break;
      case 4:
        if (list.length > 1) {
          const j = this.#int(list.length);
          [list[i], list[j]] = [list[j]!, list[i]!];
        }
        notes.push(`attributes swapped`);
        break;
      case 5:
        list.splice(i, 0, [this.#pick(["request", "cache_type", "cache_id", "session", "size", "keyname", "x", "W"]), Buffer.from(this.#bytes(this.#int(20)).map((x) => x || 1))]);
        notes.push(`attribute inserted at ${i}`);
        break;
      case 6:
        if (list[0]) list[0][1] = b(this.#pick([...REQUESTS, "frobnicate", "", "LOOKUP"]));
        notes.push(`request renamed`);
        break;
      case 7:
        for (let k = 0; k < 14; k++) list.push([`extra${k}`, b("x")]);
        notes.push(`17+ attributes`);
        break;
      default:
        if (list[i]) list[i]![1] = b(this.#pick([...CACHE_TYPES, "pop3", "SMTPD", ""]));
        notes.push(`value ${i} a cache type`);
    }
  }

  /** #mutateBytes - one change to the encoded bytes. */
  #mutateBytes(input: Buffer, notes: string[]): Buffer {
    const n = input.length;
    const at = n > 0 ? this.#int(n) : 0;
    switch (this.#int(8)) {
      case 0: {
        const out = Buffer.from(input);
        if (n) out[at] = out[at]! ^ (1 << this.#int(8));
        notes.push(`bit flipped at ${at}`);
        return out;
      }
      case 1: {
        const out = Buffer.from(input);
        if (n) out[at] = 0;
        notes.push(`NUL at ${at}`);
        return out;
      }
      case 2:
        notes.push(`NUL inserted at ${at}`);
        return Buffer.concat([input.subarray(0, at), Buffer.alloc(1), input.subarray(at)]);
      case 3: {
        const len = 1 + this.#int(20);
        notes.push(`${len} bytes cut at ${at}`);
        return Buffer.concat([input.subarray(0, at), input.subarray(at + len)]);
      }
      case 4: {
        const len = 1 + this.#int(40);
        notes.push(`${len} bytes copied at ${at}`);
        return Buffer.concat([input.subarray(0, at + len), input.subarray(at, at + len), input.subarray(at + len)]);
      }
      case 5: {
        const extra = this.#bytes(1 + this.#int(30));
        notes.push(`${extra.length} random bytes at ${at}`);
        return Buffer.concat([input.subarray(0, at), extra, input.subarray(at)]);
      }
      case 6:
        notes.push(`truncated at ${at}`);
        return input.subarray(0, at);
      default: {
        const head = this.#pick(["W\0", "\0", "\0\0", "W\0\0"]);
        notes.push(`${JSON.stringify(head)} in front`);
        return Buffer.concat([b(head), input]);
      }
    }
  }

  /** next - a case: 1-6 real requests, 0-3 mutations, cut into writes, sometimes half-closed. */
  next(): FuzzCase {
    const mutations: string[] = [];
    const lists = Array.from({ length: 1 + this.#int(this.#int(4) === 0 ? 6 : 2) }, () => this.real());
    const r = this.#int(10);
    const changes = r < 2 ? 0 : r < 6 ? 1 : r < 9 ? 2 : 3;
    let byteChanges = 0;
    for (let k = 0; k < changes; k++) {
      if (this.#int(2) === 0) this.#mutateList(lists[this.#int(lists.length)]!, mutations);
      else byteChanges++;
    }
    let input: Buffer = Buffer.concat(lists.map((l) => Buffer.concat([...l.flatMap(([n, v]) => [b(n), Buffer.alloc(1), v, Buffer.alloc(1)]), Buffer.alloc(1)])));
    for (let k = 0; k < byteChanges; k++) input = this.#mutateBytes(input, mutations);
    const cuts = [...new Set(Array.from({ length: this.#int(5) }, () => this.#int(input.length + 1)))]
      .filter((c) => c > 0 && c < input.length)
      .sort((x, y) => x - y);
    return { input, cuts, end: this.#int(5) === 0, mutations };
  }
}
