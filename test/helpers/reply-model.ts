/**
 * reply-model.ts - an independent model of what a tlsmgr must answer to any
 *                  byte stream on one connection: the oracle of the fuzzing.
 * Owns: splitting input as the daemon's decoder must (bounds, the trigger
 *       first on a connection), the reply each complete list must get, with
 *       the status each request must get (the cache contents and the current
 *       ticket key are tracked), and which input ends in a close and where the
 *       daemon has seen enough to decide it (the cut).
 * Not here: sending and reading (robustness/fuzz-socket.test.ts,
 *           stress/fuzz.ts); the daemon's codec (src/protocol/attr0.ts), which
 *           the model must not share.
 * See also: postfix/src/tlsmgr/tlsmgr.c, postfix/src/util/attr_scan0.c,
 *           src/server/handlers.ts
 */

import type { RawAttr } from "./raw-conn.js";

export const STAT_OK = "0";
export const STAT_ERR = "4294967295";
export const STAT_FAIL = "4294967294";

/** What the model needs to know of the daemon's configuration. */
export interface ReplyModelConfig {
  nameLimit: number;
  valueLimit: number;
  countLimit: number;
  /** policy answers: cache type -> [cachable, timeout] */
  policy: Record<string, [string, string]>;
  /** The cache types whose cache is enabled. */
  enabled: string[];
  /**
   * lenient - true when the answer for (type, id) cannot be predicted here
   * (another connection may change it); then any well-formed answer is right
   * and the model keeps no state for it. `writes`: the request changes it.
   */
  lenient?: (type: string, id: string, writes: boolean) => boolean;
}

/** A check of one reply list: undefined when it is right, else why not. */
export type Check = (attrs: RawAttr[]) => string | undefined;

/** What the daemon must do with one connection's input. */
export interface Expectation {
  checks: Check[];
  /** The daemon must close the connection (trigger, bound exceeded, or our end-of-input). */
  closes: boolean;
  /** Send only this many bytes (the daemon decides to close there). */
  cut: number | undefined;
}

/** show - a reply for a message, long values cut. */
export const show = (attrs: ReadonlyArray<readonly [string, string]>) =>
  JSON.stringify(attrs.map(([n, v]) => [n, v.length > 60 ? `${v.slice(0, 60)}...(${v.length})` : v]));

/** exact - the reply must be exactly these attributes. */
export function exact(want: Array<[string, string]>): Check {
  return (got) => {
    const same = got.length === want.length && got.every(([n, v], i) => n === want[i]![0] && v === want[i]![1]);
    return same ? undefined : `expected ${show(want)}, got ${show(got)}`;
  };
}

export const B64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** modelInt - a request's integer as the daemon reads it (sscanf "%u" into an int). */
export function modelInt(v: Buffer): number | undefined {
  const m = /^([+-]?)([0-9]{1,20})$/.exec(v.toString("latin1"));
  if (!m) return undefined;
  const n = BigInt(m[2]!);
  if (n > 0xffffffffn) return undefined;
  return Number(BigInt.asIntN(32, m[1] === "-" ? -n : n));
}

/** modelData - a request's base64 data, undefined when malformed. */
export function modelData(v: Buffer): Buffer | undefined {
  const t = v.toString("latin1");
  return B64_RE.test(t) ? Buffer.from(t, "base64") : undefined;
}

type Scanned = string | number | Buffer;

// modelScan - attrs[1..] against a request's strict shape; undefined when it must fail
function modelScan(attrs: Array<[string, Buffer]>, spec: Array<[string, "str" | "int" | "data"]>): Scanned[] | undefined {
  const out: Scanned[] = [];
  for (let i = 0; i < spec.length; i++) {
    const a = attrs[1 + i];
    const [name, type] = spec[i]!;
    if (a === undefined || a[0] !== name) return undefined;
    const v = type === "str" ? a[1].toString("latin1") : type === "int" ? modelInt(a[1]) : modelData(a[1]);
    if (v === undefined) return undefined;
    out.push(v);
  }
  return out;
}

/** failReply - the -2 reply shaped for a request name. */
export function failReply(request: string | undefined): Check {
  switch (request) {
    case "seed":
      return exact([["status", STAT_FAIL], ["seed", ""]]);
    case "policy":
      return exact([["status", STAT_FAIL], ["cachable", "0"], ["timeout", "0"]]);
    case "lookup":
      return exact([["status", STAT_FAIL], ["session", ""]]);
    case "update":
    case "delete":
      return exact([["status", STAT_FAIL]]);
    case "tktkey":
      return exact([["status", STAT_FAIL], ["keybuf", ""]]);
    default:
      return exact([["status", STAT_FAIL]]);
  }
}

// wellFormed - any answer of the right shape to a lookup, update or delete whose state is not tracked
function wellFormed(request: string): Check {
  return (got) => {
    const status = got[0]?.[0] === "status" ? got[0][1] : undefined;
    if (request === "lookup") {
      const s = got[1];
      const ok = got.length === 2 && s?.[0] === "session" && B64_RE.test(s[1]) &&
        (status === STAT_OK || (status === STAT_ERR && s[1] === ""));
      return ok ? undefined : `expected a lookup answer, got ${show(got)}`;
    }
    return got.length === 1 && (status === STAT_OK || status === STAT_ERR) ? undefined : `expected status 0 or -1, got ${show(got)}`;
  };
}

/** ReplyModel - the state a tlsmgr's answers depend on, and the answers. */
export class ReplyModel {
  readonly caches = new Map<string, Map<string, Buffer>>();
  /** The current ticket key record (88 bytes), once one was handed out. */
  ticket: Buffer | undefined;

  constructor(readonly cfg: ReplyModelConfig) {
    for (const t of cfg.enabled) this.caches.set(t, new Map());
  }

  /** serve - the reply one complete list must get; applies its effect to the model. */
  serve(attrs: Array<[string, Buffer]>): Check {
    const first = attrs[0];
    if (first === undefined || first[0] !== "request") return exact([["status", STAT_FAIL]]);
    const request = first[1].toString("latin1");
    switch (request) {
      case "seed": {
        const v = modelScan(attrs, [["size", "int"]]);
        const n = v?.[0] as number | undefined;
        if (n === undefined || n <= 0 || n > 255) return failReply(request);
        return (got) => {
          const seed = got[1]?.[1] ?? "";
          const ok = got.length === 2 && got[0]![0] === "status" && got[0]![1] === STAT_OK && got[1]![0] === "seed" &&
            B64_RE.test(seed) && Buffer.from(seed, "base64").length === n;
          return ok ? undefined : `expected status 0 and ${n} seed bytes, got ${show(got)}`;
        };
      }
      case "policy": {
        const v = modelScan(attrs, [["cache_type", "str"]]);
        const p = v ? this.cfg.policy[v[0] as string] : undefined;
        if (!p) return failReply(request);
        return exact([["status", STAT_OK], ["cachable", p[0]], ["timeout", p[1]]]);
      }
      case "lookup":
      case "delete": {
        const v = modelScan(attrs, [["cache_type", "str"], ["cache_id", "str"]]);
        const cache = v ? this.caches.get(v[0] as string) : undefined;
        if (!v || !cache) return failReply(request);
        const id = v[1] as string;
        if (this.cfg.lenient?.(v[0] as string, id, request === "delete")) {
          cache.delete(id);
          return wellFormed(request);
        }
        const hit = cache.get(id);
        if (request === "delete") {
          cache.delete(id);
          return exact([["status", hit ? STAT_OK : STAT_ERR]]);
        }
        return exact(hit ? [["status", STAT_OK], ["session", hit.toString("base64")]] : [["status", STAT_ERR], ["session", ""]]);
      }
      case "update": {
        const v = modelScan(attrs, [["cache_type", "str"], ["cache_id", "str"], ["session", "data"]]);
        const cache = v ? this.caches.get(v[0] as string) : undefined;
        if (!v || !cache) return failReply(request);
        if (this.cfg.lenient?.(v[0] as string, v[1] as string, true)) {
          cache.delete(v[1] as string);
          return exact([["status", STAT_OK]]);
        }
        cache.set(v[1] as string, v[2] as Buffer);
        return exact([["status", STAT_OK]]);
      }
      case "tktkey": {
        const v = modelScan(attrs, [["keyname", "data"]]);
        if (!v) return failReply(request);
        const name = v[0] as Buffer;
        if (name.length !== 0 && name.length !== 16) return exact([["status", STAT_FAIL], ["keybuf", ""]]);
        // Decided when the reply arrives: the first empty-name request creates the key.
        return (got) => {
          const current = this.ticket;
          if (name.length === 16) {
            if (current && current.subarray(0, 16).equals(name))
              return exact([["status", STAT_OK], ["keybuf", current.toString("base64")]])(got);
            return exact([["status", STAT_ERR], ["keybuf", name.toString("base64")]])(got);
          }
          if (current) return exact([["status", STAT_OK], ["keybuf", current.toString("base64")]])(got);
          const keybuf = got[1]?.[1] ?? "";
          const rec = Buffer.from(keybuf, "base64");
          if (got.length !== 2 || got[0]![1] !== STAT_OK || got[1]![0] !== "keybuf" || rec.length !== 88)
            return `expected status 0 and an 88-byte key record, got ${show(got)}`;
          this.ticket = rec;
          return undefined;
        };
      }
      default:
        return exact([["status", STAT_FAIL]]);
    }
  }

  /**
   * run - what the daemon must do with `input` on one fresh connection:
   * split it as the daemon's decoder must (bounds, trigger), serve each
   * complete list in order. `ended`: the input is followed by our half-close.
   */
  run(input: Buffer, ended: boolean): Expectation {
    const { nameLimit, valueLimit, countLimit } = this.cfg;
    const checks: Check[] = [];
    let attrs: Array<[string, Buffer]> = [];
    let pos = 0;
    const fail = (cut: number): Expectation => {
      const first = attrs[0];
      checks.push(failReply(first && first[0] === "request" ? first[1].toString("latin1") : undefined));
      return { checks, closes: true, cut };
    };
    for (;;) {
      const nameEnd = input.indexOf(0, pos);
      if (nameEnd < 0) {
        if (input.length - pos > nameLimit) return fail(pos + nameLimit + 1);
        return { checks, closes: ended, cut: undefined };
      }
      if (nameEnd - pos > nameLimit) return fail(pos + nameLimit + 1);
      const name = input.subarray(pos, nameEnd);
      pos = nameEnd + 1;
      if (name.length === 0) {
        checks.push(this.serve(attrs));
        attrs = [];
        continue;
      }
      // A trigger is only the first thing on a connection, as master sends it.
      if (checks.length === 0 && attrs.length === 0 && name.length === 1 && name[0] === 0x57)
        return { checks, closes: true, cut: pos };
      if (attrs.length >= countLimit) return fail(pos);
      const valueEnd = input.indexOf(0, pos);
      if (valueEnd < 0) {
        if (input.length - pos > valueLimit) return fail(pos + valueLimit + 1);
        return { checks, closes: ended, cut: undefined };
      }
      if (valueEnd - pos > valueLimit) return fail(pos + valueLimit + 1);
      attrs.push([name.toString("latin1"), input.subarray(pos, valueEnd)]);
      pos = valueEnd + 1;
    }
  }
}
