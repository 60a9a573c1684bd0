/**
 * attr0-scan.ts - check a received attribute list against the shape a
 *                 request must have, as attr_scan(ATTR_FLAG_STRICT) does.
 * Owns: strict order, missing and extra attributes, integer and base64
 *       conversion of values, and the warning text for each fault.
 * Not here: the byte stream (protocol/attr0.ts), request semantics (server/).
 * See also: postfix/src/util/attr_scan0.c (attr_vscan0, attr_scan0_number,
 *           attr_scan0_data)
 */

import type { Attr0Attr } from "./attr0.js";
import { printable } from "../log/msg.js";

export type Attr0Type = "str" | "int" | "data";

export type Attr0Spec = ReadonlyArray<readonly [name: string, type: Attr0Type]>;

/** A scanned value: str -> string (latin1), int -> number (signed 32-bit), data -> Buffer. */
export type Attr0Scanned = string | number | Buffer;

export type Attr0ScanResult =
  | { ok: true; values: Attr0Scanned[]; warning?: string }
  | { ok: false; warning: string };

/**
 * attr0ScanStrict - match attrs[from..] against spec in order. A missing or
 * out-of-order attribute, a malformed number or base64 text fail; an extra
 * attribute after the expected ones is reported but the list is served, as
 * Postfix does. `peer` names the client in warnings.
 */
export function attr0ScanStrict(attrs: Attr0Attr[], from: number, spec: Attr0Spec, peer: string): Attr0ScanResult {
  const values: Attr0Scanned[] = new Array(spec.length);
  for (let i = 0; i < spec.length; i++) {
    const [wanted, type] = spec[i]!;
    const attr = attrs[from + i];
    if (attr === undefined) return { ok: false, warning: `missing attribute ${wanted} in input from ${peer}` };
    if (attr.name !== wanted)
      return {
        ok: false,
        warning: `unexpected attribute ${printable(attr.name)} from ${peer} (expecting: ${wanted})`,
      };
    if (type === "str") {
      values[i] = attr.value.toString("latin1");
    } else if (type === "int") {
      const n = attr0ParseInt(attr.value);
      if (n === undefined)
        return {
          ok: false,
          warning: `malformed numerical data from ${peer} while reading input attribute value: ${printable(attr.value)}`,
        };
      values[i] = n;
    } else {
      const data = attr0DecodeBase64(attr.value);
      if (data === undefined)
        return { ok: false, warning: `malformed base64 data from ${peer}: ${printable(attr.value)}` };
      values[i] = data;
    }
  }
  const extra = attrs[from + spec.length];
  if (extra !== undefined)
    return {
      ok: true,
      values,
      warning: `unexpected attribute ${printable(extra.name)} from ${peer} (expecting: (list terminator))`,
    };
  return { ok: true, values };
}

/**
 * attr0ParseInt - decimal text as sscanf("%u") takes it: an optional sign and
 * digits, nothing after; the value wraps to 32 bits and is returned signed
 * (so "4294967295" and "-1" both give -1). undefined when malformed.
 */
export function attr0ParseInt(text: Buffer): number | undefined {
  let i = 0;
  const n = text.length;
  let negative = false;
  if (n > 0 && (text[0] === 0x2b || text[0] === 0x2d)) {
    negative = text[0] === 0x2d;
    i = 1;
  }
  if (i >= n || n - i > 20) return undefined;
  let value = 0;
  for (; i < n; i++) {
    const c = text[i]! - 0x30;
    if (c < 0 || c > 9) return undefined;
    value = value * 10 + c;
  }
  // Out-of-range text: sscanf's %u gives ULONG_MAX-style saturation on glibc;
  // treat anything beyond 32 bits as malformed rather than guess.
  if (value > 0xffffffff) return undefined;
  return (negative ? -value : value) | 0;
}

const B64 = (() => {
  const t = new Int8Array(256).fill(-1);
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (let i = 0; i < 64; i++) t[alphabet.charCodeAt(i)] = i;
  return t;
})();

/**
 * attr0DecodeBase64 - strict standard base64 with '=' padding (as Postfix's
 * base64_decode): length a multiple of 4, only alphabet characters, padding
 * only at the end. Empty text is empty data. undefined when malformed.
 */
export function attr0DecodeBase64(text: Buffer): Buffer | undefined {
  const n = text.length;
  if (n === 0) return Buffer.alloc(0);
  if (n % 4 !== 0) return undefined;
  let pad = 0;
  if (text[n - 1] === 0x3d) pad = text[n - 2] === 0x3d ? 2 : 1;
  const body = n - pad;
  for (let i = 0; i < body; i++) if (B64[text[i]!]! < 0) return undefined;
  // Bits past the last full byte must be zero for the text to be canonical;
  // Postfix ignores them, so do we (Buffer.from ignores them too).
  return Buffer.from(text.toString("latin1"), "base64");
}
