/**
 * cli.ts - bin/tlsmgr-client: ask a running tlsmgr one question and print
 *          the answer, for administrators inspecting a server and for tests.
 * Owns: the command line (socket, request, arguments) and the printed form.
 *       Session bytes are printed only as a length and a SHA-256 digest
 *       unless --hex is given; key material is never printed.
 * See also: src/client/tlsmgr-client.ts
 */

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { TlsmgrClient } from "./tlsmgr-client.js";
import { parseTicketKeyRecord } from "../tickets/ticket-keys.js";
import { ticketKeyLayout } from "../tickets/key-record-layout.js";

const USAGE = `usage: tlsmgr-client [-s SOCKET] [--hex] [--no-announcement] REQUEST [ARGS]
  seed SIZE                      fresh PRNG bytes (1..255); printed as a length
  policy TYPE                    cachable and timeout of a cache (smtpd, smtp, lmtp)
  lookup TYPE ID                 look up a session
  update TYPE ID (FILE | -)      store a session read from FILE or standard input
  delete TYPE ID                 remove a session
  tktkey [NAME-HEX]              the current ticket key, or the key named (32 hex digits)
SOCKET defaults to $queue_directory/private/tlsmgr of /etc/postfix (or $MAIL_CONFIG),
read from main.cf's queue_directory, else /var/spool/postfix/private/tlsmgr.
--no-announcement: speak as a Postfix 3.5 client, to a server that sends no announcement.`;

function defaultSocket(): string {
  const dir = process.env.MAIL_CONFIG ?? "/etc/postfix";
  let queue = "/var/spool/postfix";
  try {
    const m = /^queue_directory\s*=\s*(\S+)\s*$/m.exec(readFileSync(join(dir, "main.cf"), "utf8"));
    if (m && !m[1]!.includes("$")) queue = m[1]!;
  } catch {
    /* no main.cf: the default */
  }
  return join(queue, "private", "tlsmgr");
}

/** describe - a session as length and digest: never the bytes themselves. */
function describe(buf: Buffer, hex: boolean): string {
  if (hex) return buf.toString("hex");
  return `${buf.length} bytes, sha256 ${createHash("sha256").update(buf).digest("hex").slice(0, 16)}`;
}

async function run(argv: string[]): Promise<number> {
  let socket: string | undefined;
  let hex = false;
  let noAnnouncement = false;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "-s" || a === "--socket") socket = argv[++i];
    else if (a === "--hex") hex = true;
    else if (a === "--no-announcement") noAnnouncement = true;
    else if (a === "-h" || a === "--help") {
      process.stdout.write(USAGE + "\n");
      return 0;
    } else rest.push(a);
  }
  const [request, ...args] = rest;
  if (request === undefined) {
    process.stderr.write(USAGE + "\n");
    return 2;
  }
  const need = (n: number) => {
    if (args.length !== n) throw new UsageError();
  };
  const client = await TlsmgrClient.connect(socket ?? defaultSocket(), { noAnnouncement });
  try {
    switch (request) {
      case "seed": {
        need(1);
        const r = await client.seed(Number(args[0]));
        console.log(`status=${r.status} seed=${r.seed.length} bytes`);
        return r.status === 0 ? 0 : 1;
      }
      case "policy": {
        need(1);
        const r = await client.policy(args[0]!);
        console.log(`status=${r.status} cachable=${r.cachable} timeout=${r.timeout}`);
        return r.status === 0 ? 0 : 1;
      }
      case "lookup": {
        need(2);
        const r = await client.lookup(args[0]!, args[1]!);
        console.log(`status=${r.status}` + (r.status === 0 ? ` session=${describe(r.session, hex)}` : ""));
        return r.status === 0 ? 0 : 1;
      }
      case "update": {
        need(3);
        const data = args[2] === "-" ? readFileSync(0) : readFileSync(args[2]!);
        const r = await client.update(args[0]!, args[1]!, data);
        console.log(`status=${r.status}`);
        return r.status === 0 ? 0 : 1;
      }
      case "delete": {
        need(2);
        const r = await client.delete(args[0]!, args[1]!);
        console.log(`status=${r.status}`);
        return r.status === 0 ? 0 : 1;
      }
      case "tktkey": {
        if (args.length > 1) throw new UsageError();
        const r = await client.tktkey(args[0] ? Buffer.from(args[0], "hex") : undefined);
        if (r.status === 0 && r.keybuf.length === ticketKeyLayout().size) {
          const tout = parseTicketKeyRecord(r.keybuf).tout;
          console.log(`status=0 name=${r.keybuf.subarray(0, 16).toString("hex")} tout=${tout} (${new Date(tout * 1000).toISOString()})`);
        } else console.log(`status=${r.status}`);
        return r.status === 0 ? 0 : 1;
      }
      default:
        throw new UsageError();
    }
  } finally {
    client.close();
  }
}

class UsageError extends Error {}

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    if (err instanceof UsageError) process.stderr.write(USAGE + "\n");
    else process.stderr.write(`tlsmgr-client: fatal: ${err.message}\n`);
    process.exit(2);
  },
);
