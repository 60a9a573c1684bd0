/**
 * cli.ts - bin/tlsmgr-client: ask a running tlsmgr one question and print
 *          the answer, for administrators inspecting a server and for tests.
 * Owns: the command line (socket, request, arguments) and the printed form.
 *       Session bytes are printed only as a length and a SHA-256 digest
 *       unless --hex is given; key material is never printed. The stats
 *       request prints a table (stats/stats-table.ts), or with --json the
 *       document as the daemon sent it.
 * See also: src/client/tlsmgr-client.ts
 */

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { TlsmgrClient } from "./tlsmgr-client.js";
import { parseTicketKeyRecord } from "../tickets/ticket-keys.js";
import { ticketKeyLayout } from "../tickets/key-record-layout.js";
import { infoOption } from "../cli/usage.js";
import { CACHE_TYPES } from "../protocol/tlsmgr-proto.js";
import { statsTable } from "../stats/stats-table.js";

const PROGRAM = "tlsmgr-client";
const USAGE = `usage: tlsmgr-client [-s SOCKET] [--hex] [--json] [--no-announcement] REQUEST [ARGS]
       tlsmgr-client --help | --version
Requests:
  seed SIZE                      fresh PRNG bytes (SIZE 1..255); printed as a length
  policy TYPE                    cachable and timeout of a cache
  lookup TYPE ID                 look up a session
  update TYPE ID (FILE | -)      store a session read from FILE or standard input
  delete TYPE ID                 remove a session
  tktkey [NAME-HEX]              the current ticket key, or the key named (32 hex digits);
                                 printed as its name and deadline, never the key
  stats                          the daemon's statistics: per cache lookups (hit, miss,
                                 expired), hit rate since start, entries, bytes, evictions,
                                 sweeps; requests; ticket keys; PRNG; store errors and
                                 latencies; whether the shared stores are reachable and the
                                 ticket key in use is the shared one (an extension of this
                                 tlsmgr: Postfix's tlsmgr does not answer it)
TYPE is smtpd, smtp or lmtp; ID is the cache id (any text, as smtpd(8)/smtp(8) make them).
Options:
  -s, --socket SOCKET            the server's socket; default $queue_directory/private/tlsmgr
                                 of /etc/postfix (or $MAIL_CONFIG), from main.cf's
                                 queue_directory, else /var/spool/postfix/private/tlsmgr
  --hex                          lookup prints the session itself, as hexadecimal, instead
                                 of its length and a SHA-256 digest (session bytes are
                                 secrets: they resume a TLS session)
  --json                         stats: print the daemon's JSON document instead of the table
  --no-announcement              speak as a Postfix 3.5 client, to a server that sends no
                                 announcement (tlsmgr_server_announcement = no)
  -h, --help                     this text;  --version  the version
Exit status: 0 for status=0, 1 for another status, 2 for bad usage or no answer.`;

/** The arguments each request takes: [least, most]. */
const ARITY: Record<string, [number, number]> = {
  seed: [1, 1], policy: [1, 1], lookup: [2, 2], update: [3, 3], delete: [2, 2], tktkey: [0, 1], stats: [0, 0],
};

/** UsageError - bad command line: the message, then the usage, exit status 2 */
class UsageError extends Error {}

/** checkRequest - refuse a request the server would refuse or misread, before anything is sent */
function checkRequest(request: string | undefined, args: readonly string[]): void {
  if (request === undefined) throw new UsageError("missing REQUEST");
  const arity = Object.prototype.hasOwnProperty.call(ARITY, request) ? ARITY[request] : undefined;
  if (arity === undefined) throw new UsageError(`unknown request "${request}" (expecting ${Object.keys(ARITY).join(", ")})`);
  if (args.length < arity[0] || args.length > arity[1])
    throw new UsageError(`${request}: expecting ${arity[0] === arity[1] ? arity[0] : `${arity[0]} or ${arity[1]}`} argument(s), got ${args.length}`);
  if (request === "seed" && !(/^\d{1,3}$/.test(args[0]!) && Number(args[0]) >= 1 && Number(args[0]) <= 255))
    throw new UsageError(`seed: SIZE must be a whole number from 1 to 255, not "${args[0]}"`);
  if (["policy", "lookup", "update", "delete"].includes(request) && !(CACHE_TYPES as readonly string[]).includes(args[0]!))
    throw new UsageError(`${request}: unknown cache TYPE "${args[0]}" (expecting ${CACHE_TYPES.join(", ")})`);
  if (["lookup", "update", "delete"].includes(request) && args[1] === "") throw new UsageError(`${request}: empty ID`);
  if (request === "tktkey" && args[0] !== undefined && !/^[0-9a-fA-F]{32}$/.test(args[0]))
    throw new UsageError(`tktkey: NAME-HEX must be 32 hexadecimal digits (a 16-byte key name), not "${args[0]}"`);
}

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

/** run - parse, check, ask, print; the exit status */
async function run(argv: string[]): Promise<number> {
  if (infoOption(PROGRAM, argv, USAGE)) return 0;
  let socket: string | undefined;
  let hex = false;
  let noAnnouncement = false;
  let json = false;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "-s" || a === "--socket") {
      socket = argv[++i];
      if (socket === undefined || socket === "") throw new UsageError(`${a}: missing SOCKET`);
    } else if (a.startsWith("--socket=")) socket = a.slice("--socket=".length);
    else if (a === "--hex") hex = true;
    else if (a === "--json") json = true;
    else if (a === "--no-announcement") noAnnouncement = true;
    else if (a === "-h" || a === "--help") {
      process.stdout.write(USAGE + "\n");
      return 0;
    } else if (a === "--version") {
      return infoOption(PROGRAM, [a], USAGE) ? 0 : 2;
    } else if (a.startsWith("-") && a !== "-" && rest.length === 0) throw new UsageError(`unknown option ${a}`);
    else rest.push(a);
  }
  const [request, ...args] = rest;
  checkRequest(request, args);
  const client = await TlsmgrClient.connect(socket ?? defaultSocket(), { noAnnouncement });
  try {
    switch (request) {
      case "seed": {
        const r = await client.seed(Number(args[0]));
        console.log(`status=${r.status} seed=${r.seed.length} bytes`);
        return r.status === 0 ? 0 : 1;
      }
      case "policy": {
        const r = await client.policy(args[0]!);
        console.log(`status=${r.status} cachable=${r.cachable} timeout=${r.timeout}`);
        return r.status === 0 ? 0 : 1;
      }
      case "lookup": {
        const r = await client.lookup(args[0]!, args[1]!);
        console.log(`status=${r.status}` + (r.status === 0 ? ` session=${describe(r.session, hex)}` : ""));
        return r.status === 0 ? 0 : 1;
      }
      case "update": {
        const data = args[2] === "-" ? readFileSync(0) : readFileSync(args[2]!);
        const r = await client.update(args[0]!, args[1]!, data);
        console.log(`status=${r.status}`);
        return r.status === 0 ? 0 : 1;
      }
      case "delete": {
        const r = await client.delete(args[0]!, args[1]!);
        console.log(`status=${r.status}`);
        return r.status === 0 ? 0 : 1;
      }
      case "tktkey": {
        const r = await client.tktkey(args[0] ? Buffer.from(args[0], "hex") : undefined);
        if (r.status === 0 && r.keybuf.length === ticketKeyLayout().size) {
          const tout = parseTicketKeyRecord(r.keybuf).tout;
          console.log(`status=0 name=${r.keybuf.subarray(0, 16).toString("hex")} tout=${tout} (${new Date(tout * 1000).toISOString()})`);
        } else console.log(`status=${r.status}`);
        return r.status === 0 ? 0 : 1;
      }
      case "stats": {
        const r = await client.stats();
        if (r.stats === undefined) console.log(`status=${r.status}`);
        else console.log(json ? JSON.stringify(r.stats, null, 2) : statsTable(r.stats));
        return r.status === 0 ? 0 : 1;
      }
      default:
        throw new UsageError(`unknown request "${request}"`);
    }
  } finally {
    client.close();
  }
}

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    if (err instanceof UsageError) process.stderr.write(`${PROGRAM}: fatal: ${err.message}\n${USAGE}\n`);
    else process.stderr.write(`${PROGRAM}: fatal: ${err.message}\n`);
    process.exit(2);
  },
);
