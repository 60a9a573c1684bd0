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
import { printable } from "../log/msg.js";

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

/** Chunks shorter than this that arrive while others are held are copied into one tail buffer instead of being queued one by one. */
const SMALL_CHUNK = 4096;
/** Size of a new tail buffer (small chunks) and the least a token accumulator starts with. */
const TAIL_SIZE = 16 * 1024;

/**
 * Attr0Decoder - feed it socket chunks with push(), take complete events
 * with next(). After an "error" event the decoder is poisoned: the caller
 * replies if it can and closes the connection (the byte stream can no longer
 * be trusted to be at a list boundary).
 *
 * Work is proportional to the bytes received: each byte is searched for a
 * NUL once, and copied at most once more (plus the doubling of the buffer of
 * a token that spans chunks), however the peer splits its writes; a peer
 * that sends one byte per write costs no more per byte than one that sends
 * 64 KiB. Values are views of the received chunks (or of the token buffer
 * that gathered them), never overwritten once handed out.
 */
export class Attr0Decoder {
  readonly #limits: Attr0Limits;
  /** Chunks received and not yet reached by the scan, from #head on. */
  #queue: Buffer[] = [];
  #head = 0;
  /** Bytes in #queue[#head..], and how far the last one is filled when it is the tail buffer. */
  #queued = 0;
  /** The tail buffer small chunks are appended to (the last queue entry is a view of it). */
  #tail: Buffer | undefined;
  #tailUsed = 0;
  /** The chunk being scanned and the position in it. */
  #chunk: Buffer = Buffer.alloc(0);
  #pos = 0;
  /** The unfinished token's bytes from earlier chunks. */
  #token: Buffer | undefined;
  #tokenLen = 0;
  #state: State = State.Name;
  #attrs: Attr0Attr[] = [];
  /** Bytes of the names and values in #attrs (the unfinished list), NULs included. */
  #attrBytes = 0;
  #name = "";
  #failed = false;
  /** A trigger is only the first thing on a connection, as master sends it. */
  #sawList = false;

  constructor(limits: Attr0Limits = ATTR0_DEFAULT_LIMITS) {
    this.#limits = limits;
  }

  /** push - add bytes from the peer (kept as they are: the caller must not reuse the buffer). */
  push(chunk: Buffer): void {
    if (this.#failed || chunk.length === 0) return;
    this.#queued += chunk.length;
    if (chunk.length >= SMALL_CHUNK || this.#head >= this.#queue.length) {
      // A big chunk, or the only one held (the common case: one request per
      // read, scanned at once): queued as it is. Copying it into a fresh 16 KiB
      // tail cost an ArrayBuffer per request, whose external memory made V8
      // start a mark-compact every few tens of milliseconds under load.
      this.#tail = undefined;
      this.#queue.push(chunk);
      return;
    }
    // A trickle of small writes: gather them, so that a million one-byte
    // chunks cost a million bytes, not a million Buffer objects.
    const tail = this.#tail;
    const last = this.#queue.length - 1;
    if (tail !== undefined && last >= this.#head && tail.length - this.#tailUsed >= chunk.length) {
      chunk.copy(tail, this.#tailUsed);
      this.#tailUsed += chunk.length;
      const view = this.#queue[last]!;
      this.#queue[last] = tail.subarray(view.byteOffset - tail.byteOffset, this.#tailUsed);
      return;
    }
    const fresh = Buffer.allocUnsafe(TAIL_SIZE);
    chunk.copy(fresh, 0);
    this.#tail = fresh;
    this.#tailUsed = chunk.length;
    this.#queue.push(fresh.subarray(0, chunk.length));
  }

  /** pendingBytes - bytes received and not yet part of a returned event. */
  get pendingBytes(): number {
    return this.#attrBytes + this.#tokenLen + (this.#chunk.length - this.#pos) + this.#queued;
  }

  /** atListBoundary - true when no partial list is held. */
  get atListBoundary(): boolean {
    return this.#attrs.length === 0 && this.#state === State.Name && this.pendingBytes === 0;
  }

  /** #nextChunk - move the scan to the next queued chunk; false when none is left. */
  #nextChunk(): boolean {
    if (this.#head >= this.#queue.length) {
      if (this.#queue.length > 0) {
        this.#queue = [];
        this.#head = 0;
        this.#tail = undefined;
      }
      return false;
    }
    if (this.#head >= 1024 && this.#head * 2 >= this.#queue.length) {
      // A peer that keeps the queue from emptying: drop the scanned slots.
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    const chunk = this.#queue[this.#head]!;
    this.#queue[this.#head++] = EMPTY_CHUNK;
    if (this.#head === this.#queue.length) this.#tail = undefined; // a new small chunk must not extend a scanned view
    this.#queued -= chunk.length;
    this.#chunk = chunk;
    this.#pos = 0;
    return true;
  }

  /** #keep - append chunk[from..to) to the unfinished token. */
  #keep(from: number, to: number): void {
    const n = to - from;
    if (n === 0) return;
    const need = this.#tokenLen + n;
    let token = this.#token;
    if (token === undefined || token.length < need) {
      const grown = Buffer.allocUnsafe(Math.max(TAIL_SIZE, need, 2 * (token?.length ?? 0)));
      if (token !== undefined) token.copy(grown, 0, 0, this.#tokenLen);
      this.#token = token = grown;
    }
    this.#chunk.copy(token, this.#tokenLen, from, to);
    this.#tokenLen = need;
  }

  /** #limitFor - the bound of the token being read. */
  #limitFor(): number {
    return this.#state === State.Name ? this.#limits.nameLimit : this.#limits.valueLimit;
  }

  #limitError(): Attr0Event {
    return this.#state === State.Name
      ? this.#fail(`attribute name exceeds limit ${this.#limits.nameLimit}`)
      : this.#fail(`value of attribute ${printable(this.#name)} exceeds limit ${this.#limits.valueLimit}`);
  }

  /** next - the next complete event, or undefined when more bytes are needed. */
  next(): Attr0Event | undefined {
    if (this.#failed) return undefined;
    for (;;) {
      if (this.#pos >= this.#chunk.length && !this.#nextChunk()) return undefined;
      const chunk = this.#chunk;
      const nul = chunk.indexOf(0, this.#pos);
      if (nul < 0) {
        // The token goes on in a later chunk: keep what is here (once).
        if (this.#tokenLen + chunk.length - this.#pos > this.#limitFor()) return this.#limitError();
        this.#keep(this.#pos, chunk.length);
        this.#pos = chunk.length;
        continue;
      }
      const len = this.#tokenLen + nul - this.#pos;
      if (len > this.#limitFor()) return this.#limitError();
      let token: Buffer;
      if (this.#tokenLen === 0) {
        token = chunk.subarray(this.#pos, nul);
      } else {
        this.#keep(this.#pos, nul);
        token = this.#token!.subarray(0, this.#tokenLen);
        this.#token = undefined; // handed out: never written again
        this.#tokenLen = 0;
      }
      this.#pos = nul + 1;
      if (this.#state === State.Name) {
        if (len === 0) {
          // Lone NUL: end of list.
          const attrs = this.#attrs;
          this.#attrs = [];
          this.#attrBytes = 0;
          this.#sawList = true;
          return { kind: "list", attrs };
        }
        if (!this.#sawList && this.#attrs.length === 0 && len === 1 && token[0] === TRIGGER_REQ_WAKEUP) {
          return { kind: "trigger", code: TRIGGER_REQ_WAKEUP };
        }
        if (this.#attrs.length >= this.#limits.countLimit)
          return this.#fail(`attribute count exceeds limit ${this.#limits.countLimit}`);
        this.#name = token.toString("latin1");
        this.#attrBytes += len + 1; // and its NUL
        this.#state = State.Value;
      } else {
        this.#attrs.push({ name: this.#name, value: token });
        this.#attrBytes += len + 1; // and its NUL
        this.#state = State.Name;
      }
    }
  }

  #fail(reason: string): Attr0Event {
    this.#failed = true;
    const first = this.#attrs[0];
    const request = first && first.name === "request" ? first.value.toString("latin1") : undefined;
    this.#attrs = [];
    this.#attrBytes = 0;
    this.#queue = [];
    this.#head = 0;
    this.#queued = 0;
    this.#tail = undefined;
    this.#chunk = Buffer.alloc(0);
    this.#pos = 0;
    this.#token = undefined;
    this.#tokenLen = 0;
    return request === undefined ? { kind: "error", reason } : { kind: "error", reason, request };
  }
}

const EMPTY_CHUNK = Buffer.alloc(0);

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
