/**
 * master-status.ts - the wire facts of the master(8) to child protocol.
 * Owns: the inherited descriptor numbers (flow pipe 3/4, status 5, listen 6..),
 *       the 12-byte status message {int pid; unsigned gen; int avail} in the
 *       machine's byte order, and the GENERATION environment value (octal).
 * Not here: opening fd 5, sending, watching for EOF (master/master-link.ts),
 *           the command line (cli/args.ts).
 * See also: postfix/src/master/master_proto.h, master_proto.c (master_notify),
 *           master_status.c (the reader), master_spawn.c (GENERATION=%o)
 *
 * The flow-control pipe (MASTER_FLOW_READ/WRITE) throttles mail-receiving
 * servers (in_flow_delay); tlsmgr does not use it and leaves both fds alone.
 */

import { endianness } from "node:os";

export const MASTER_FLOW_READ = 3;
export const MASTER_FLOW_WRITE = 4;
export const MASTER_STATUS_FD = 5;
export const MASTER_LISTEN_FD = 6;

export const MASTER_GEN_NAME = "GENERATION";

export const MASTER_STAT_TAKEN = 0;
export const MASTER_STAT_AVAIL = 1;

/** sizeof(MASTER_STATUS): three 32-bit ints (int and unsigned are 32 bits on every Postfix platform) */
export const MASTER_STATUS_SIZE = 12;

export interface MasterStatus {
  pid: number;
  gen: number;
  avail: number;
}

const LITTLE = endianness() === "LE";

/** masterStatusEncode - the struct master_notify() writes, native byte order */
export function masterStatusEncode(pid: number, gen: number, avail: number): Buffer {
  const buf = Buffer.alloc(MASTER_STATUS_SIZE);
  if (LITTLE) {
    buf.writeInt32LE(pid | 0, 0);
    buf.writeUInt32LE(gen >>> 0, 4);
    buf.writeInt32LE(avail | 0, 8);
  } else {
    buf.writeInt32BE(pid | 0, 0);
    buf.writeUInt32BE(gen >>> 0, 4);
    buf.writeInt32BE(avail | 0, 8);
  }
  return buf;
}

/** masterStatusDecode - the reader's view (tests, diagnostics) */
export function masterStatusDecode(buf: Buffer): MasterStatus {
  if (buf.length !== MASTER_STATUS_SIZE) throw new RangeError(`status message of ${buf.length} bytes`);
  return LITTLE
    ? { pid: buf.readInt32LE(0), gen: buf.readUInt32LE(4), avail: buf.readInt32LE(8) }
    : { pid: buf.readInt32BE(0), gen: buf.readUInt32BE(4), avail: buf.readInt32BE(8) };
}

/**
 * parseGeneration - GENERATION as multi_server_main reads it: digits only
 * (else undefined), taken as octal into an unsigned 32-bit (OCTAL_TO_UNSIGNED).
 */
export function parseGeneration(text: string): number | undefined {
  if (!/^[0-9]+$/.test(text)) return undefined;
  let gen = 0;
  for (const ch of text) gen = ((gen << 3) + (ch.charCodeAt(0) - 48)) >>> 0;
  return gen;
}
