/**
 * attr0.ts - Postfix's attr0 encoding (attr_print0 / attr_scan0), streaming.
 * Owns: splitting a byte stream into attribute lists (name NUL value NUL ...
 *       NUL) whatever the chunking, the trigger form ('W' NUL), the bounds
 *       (longest name, longest value, most attributes per list), and the
 *       encoding of replies (strings, unsigned 32-bit integers, base64 data).
 * Not here: what a list means (protocol/attr0-scan.ts checks a list against
 *           an expected shape; server/handlers.ts serves it).
 * See also: postfix/src/util/attr_scan0.c, attr_print0.c
 */

import { TRIGGER_REQ_WAKEUP } from "./tlsmgr-proto.js";

export interface Attr0Limits {
  /** Longest attribute name, in bytes. */
  nameLimit: number;
  /** Longest attribute value, in bytes as sent (base64 text for data). */
  valueLimit: number;
  /** Most attributes in one list. */
  countLimit: number;
}

/**
 * Defaults: names on the tlsmgr wire are at most 10 bytes; a session with a
 * long certificate chain is tens of KiB (base64 adds a third), 1 MiB of
 * base64 leaves ample room; a tlsmgr request has at most 4 attributes.
 */
export const ATTR0_DEFAULT_LIMITS: Readonly<Attr0Limits> = {
  nameLimit: 256,
  valueLimit: 1024 * 1024,
  countLimit: 16,
};

/** One attribute as received: the value is a view of the input, not a copy. */
export interface Attr0Attr {
  name: string;
  value: Buffer;
}

export type Attr0Event =
  | { kind: "list"; attrs: Attr0Attr[] }
  | { kind: "trigger"; code: number }
  | {
      kind: "error";
      /** Why, for a warning line: "attribute name exceeds limit 256" ... */
      reason: string;
      /** The request name when the list's first attribute was complete. */
      request?: string;
    };

const enum State {
  Name,
  Value,
}

/**
 * Attr0Decoder - feed it socket chunks with push(), take complete events
 * with next(). After an "error" event the decoder is poisoned: the caller
 * replies if it can and closes the connection (the byte stream can no longer
 * be trusted to be at a list boundary).
 */
export class Attr0Decoder {
  readonly #limits: Attr0Limits;
  #buf: Buffer = Buffer.alloc(0);
  /** Start of the token being read (name or value). */
  #tokenStart = 0;
  /** Where the search for the next NUL resumes. */
  #scanPos = 0;
  #state: State = State.Name;
  #attrs: Attr0Attr[] = [];
  #name = "";
  #failed = false;
  /** A trigger is only the first thing on a connection, as master sends it. */
  #sawList = false;

  constructor(limits: Attr0Limits = ATTR0_DEFAULT_LIMITS) {
    this.#limits = limits;
  }

  /** push - add bytes from the peer. */
  push(chunk: Buffer): void {
    if (this.#failed || chunk.length === 0) return;
    if (this.#tokenStart >= this.#buf.length) {
      // Nothing pending: take the chunk as it is (the common case: no copy).
      this.#buf = chunk;
      this.#tokenStart = 0;
      this.#scanPos = 0;
    } else {
      // Keep only the unfinished token; finished values are views that stay valid.
      const rest = this.#buf.subarray(this.#tokenStart);
      this.#scanPos -= this.#tokenStart;
      this.#tokenStart = 0;
      this.#buf = Buffer.concat([rest, chunk], rest.length + chunk.length);
    }
  }

  /** pendingBytes - bytes received and not yet part of a returned event. */
  get pendingBytes(): number {
    return this.#buf.length - this.#tokenStart;
  }

  /** atListBoundary - true when no partial list is held. */
  get atListBoundary(): boolean {
    return this.#attrs.length === 0 && this.#state === State.Name && this.#tokenStart >= this.#buf.length;
  }

  /** next - the next complete event, or undefined when more bytes are needed. */
  next(): Attr0Event | undefined {
    if (this.#failed) return undefined;
    const buf = this.#buf;
    for (;;) {
      const nul = buf.indexOf(0, this.#scanPos);
      if (nul < 0) {
        this.#scanPos = buf.length;
        const pending = buf.length - this.#tokenStart;
        if (this.#state === State.Name && pending > this.#limits.nameLimit)
          return this.#fail(`attribute name exceeds limit ${this.#limits.nameLimit}`);
        if (this.#state === State.Value && pending > this.#limits.valueLimit)
          return this.#fail(`value of attribute ${this.#name} exceeds limit ${this.#limits.valueLimit}`);
        return undefined;
      }
      const start = this.#tokenStart;
      this.#tokenStart = nul + 1;
      this.#scanPos = nul + 1;
      if (this.#state === State.Name) {
        if (nul - start > this.#limits.nameLimit)
          return this.#fail(`attribute name exceeds limit ${this.#limits.nameLimit}`);
        if (nul === start) {
          // Lone NUL: end of list.
          const attrs = this.#attrs;
          this.#attrs = [];
          this.#sawList = true;
          return { kind: "list", attrs };
        }
        if (!this.#sawList && this.#attrs.length === 0 && nul - start === 1 && buf[start] === TRIGGER_REQ_WAKEUP) {
          return { kind: "trigger", code: TRIGGER_REQ_WAKEUP };
        }
        if (this.#attrs.length >= this.#limits.countLimit)
          return this.#fail(`attribute count exceeds limit ${this.#limits.countLimit}`);
        this.#name = buf.toString("latin1", start, nul);
        this.#state = State.Value;
      } else {
        if (nul - start > this.#limits.valueLimit)
          return this.#fail(`value of attribute ${this.#name} exceeds limit ${this.#limits.valueLimit}`);
        this.#attrs.push({ name: this.#name, value: buf.subarray(start, nul) });
        this.#state = State.Name;
      }
    }
  }

  #fail(reason: string): Attr0Event {
    this.#failed = true;
    const first = this.#attrs[0];
    const request = first && first.name === "request" ? first.value.toString("latin1") : undefined;
    this.#attrs = [];
    this.#buf = Buffer.alloc(0);
    this.#tokenStart = 0;
    this.#scanPos = 0;
    return request === undefined ? { kind: "error", reason } : { kind: "error", reason, request };
  }
}

/** A reply attribute value: string (str), number (int, sent unsigned), Buffer (data, base64). */
export type Attr0Value = string | number | Buffer;

/**
 * attr0Encode - one list as Postfix's attr_print0 writes it, as a latin1
 * string ready for socket.write(s, "latin1"). Integers go out as unsigned
 * 32-bit decimal (-1 is 4294967295), data as base64.
 */
export function attr0Encode(attrs: ReadonlyArray<readonly [string, Attr0Value]>): string {
  let out = "";
  for (const [name, value] of attrs) {
    out += name + "\0";
    if (typeof value === "number") out += (value >>> 0).toString(10);
    else if (typeof value === "string") out += value;
    else out += value.toString("base64");
    out += "\0";
  }
  return out + "\0";
}
