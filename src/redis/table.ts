/**
 * table.ts - the table file of a "redis:" map, in the manner of Postfix's
 *            memcache_table(5): "name = value" lines.
 * Owns: the names a redis table knows, their defaults and value checks, the
 *       files they name (password, TLS material) read at start-up, and the
 *       fatal messages for bad tables (file, line and name).
 * Not here: connecting (redis/link.ts); the key wrap secret
 *           itself (tickets/key-wrap.ts reads key_wrap_file).
 * See also: memcache_table(5), postfix/src/global/cfg_parser.c,
 *           config/main-cf.ts (splitNameval), man/tlsmgr.8
 *
 * Names (only servers is required):
 *   servers        host:port, inet:host:port, [ipv6]:port, host (port 6379),
 *                  unix:/path or /path; several, separated by space or comma
 *   cluster        yes|no (no): servers are seeds of a Redis Cluster
 *   database       number >= 0 (0); must be 0 with cluster = yes
 *   key_prefix     text before every key (tlsmgr:)
 *   username       Redis 6 ACL user (none)
 *   password_file  absolute path; its first line is the password (none);
 *                  a secret file (master/secret-file.ts: root's, mode 0600)
 *   tls            yes|no (no): TLS to the servers
 *   tls_ca_file, tls_cert_file, tls_key_file  absolute paths (PEM)
 *   tls_server_name  name to verify in the server certificate (the host)
 *   timeout        per-request bound, NUMBER[ms|s] (50ms; no unit = ms)
 *   key_wrap_file  absolute path of the 0600 secret that seals session
 *                  cache entries and wraps ticket keys (required: a redis:
 *                  cache and a redis: key store refuse to start without it)
 *
 * Logical lines as main.cf: '#' comments, blank lines, continuation lines
 * start with white space. A name given twice: warning, the later one wins.
 */

import { readFileSync } from "node:fs";
import { isAbsolute } from "node:path";
import { splitNameval } from "../config/main-cf.js";
import { errorText } from "../log/errors.js";
import { msgFatal, msgWarn } from "../log/msg.js";
import { readSecretFile } from "../master/secret-file.js";

/** One server: TCP host and port, or a UNIX-domain socket path. */
export type RedisServer = { host: string; port: number } | { path: string };

export interface RedisTlsSettings {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  servername?: string;
}

/** A parsed table file. */
export interface RedisTable {
  /** The table file, as named after "redis:". */
  path: string;
  servers: RedisServer[];
  cluster: boolean;
  database: number;
  keyPrefix: string;
  username: string | undefined;
  /** Read from password_file; never logged. */
  password: string | undefined;
  /** undefined: no TLS. */
  tls: RedisTlsSettings | undefined;
  /** Per-request bound in milliseconds. */
  timeoutMs: number;
  /** Absolute path, or undefined when not set. */
  keyWrapFile: string | undefined;
}

export const REDIS_DEFAULT_PORT = 6379;
export const REDIS_DEFAULT_KEY_PREFIX = "tlsmgr:";
export const REDIS_DEFAULT_TIMEOUT_MS = 50;
/** Largest timeout accepted (a bound larger than this is no bound for a mail server). */
export const REDIS_MAX_TIMEOUT_MS = 60_000;

export const REDIS_TABLE_NAMES = [
  "servers",
  "cluster",
  "database",
  "key_prefix",
  "username",
  "password_file",
  "tls",
  "tls_ca_file",
  "tls_cert_file",
  "tls_key_file",
  "tls_server_name",
  "timeout",
  "key_wrap_file",
] as const;
type TableName = (typeof REDIS_TABLE_NAMES)[number];

interface Entry {
  value: string;
  line: number;
}

/** tableLines - main.cf's logical lines with the first physical line number of each. */
function tableLines(text: string): { text: string; line: number }[] {
  const out: { text: string; line: number }[] = [];
  const phys = text.split("\n");
  let cur: { text: string; line: number } | undefined;
  phys.forEach((raw, i) => {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    const body = line.trimStart();
    if (body === "" || body.startsWith("#")) return;
    if (cur !== undefined && /^[ \t]/.test(line)) {
      cur.text += line;
      return;
    }
    if (cur !== undefined) out.push(cur);
    cur = { text: line, line: i + 1 };
  });
  if (cur !== undefined) out.push(cur);
  return out;
}

/** readNamedFile - a file named in the table: absolute, readable, at start-up. */
function readNamedFile(where: string, name: string, value: string): Buffer {
  if (!isAbsolute(value)) msgFatal(`${where}: ${name}: "${value}" is not an absolute pathname`);
  try {
    return readFileSync(value);
  } catch (err) {
    return msgFatal(`${where}: ${name}: cannot read ${value}: ${errorText(err)}`);
  }
}

/** parseServer - one word of "servers"; a string result is the error. */
export function parseRedisServer(word: string): RedisServer | string {
  let w = word;
  if (w.startsWith("unix:")) {
    const p = w.slice(5);
    return isAbsolute(p) ? { path: p } : `"${word}": a UNIX-domain socket needs an absolute pathname`;
  }
  if (w.startsWith("/")) return { path: w };
  if (w.startsWith("inet:")) w = w.slice(5);
  let host: string;
  let portText: string | undefined;
  if (w.startsWith("[")) {
    const close = w.indexOf("]");
    if (close < 0) return `"${word}": missing "]"`;
    host = w.slice(1, close);
    const rest = w.slice(close + 1);
    if (rest !== "" && !rest.startsWith(":")) return `"${word}": text after "]" must be ":port"`;
    portText = rest === "" ? undefined : rest.slice(1);
  } else {
    const colon = w.lastIndexOf(":");
    if (colon >= 0 && w.indexOf(":") !== colon) return `"${word}": write an IPv6 address as [address]:port`;
    host = colon >= 0 ? w.slice(0, colon) : w;
    portText = colon >= 0 ? w.slice(colon + 1) : undefined;
  }
  if (host === "") return `"${word}": missing host`;
  let port = REDIS_DEFAULT_PORT;
  if (portText !== undefined) {
    if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535)
      return `"${word}": bad port "${portText}"`;
    port = Number(portText);
  }
  return { host, port };
}

/** parseRedisTimeout - "50ms", "1s", "50" (ms) to milliseconds; undefined when bad. */
export function parseRedisTimeout(value: string): number | undefined {
  const m = /^([0-9]{1,9})\s*(ms|s)?$/.exec(value);
  if (m === null) return undefined;
  const ms = Number(m[1]) * (m[2] === "s" ? 1000 : 1);
  return ms >= 1 && ms <= REDIS_MAX_TIMEOUT_MS ? ms : undefined;
}

/** parseBool - yes/no as Postfix spells it (also true/false, 1/0); undefined when bad. */
function parseBool(value: string): boolean | undefined {
  const v = value.toLowerCase();
  if (v === "yes" || v === "true" || v === "1") return true;
  if (v === "no" || v === "false" || v === "0") return false;
  return undefined;
}

/**
 * redisTableParse - the table from its text. `path` names it in messages.
 * Files the table names are read here (start-up, synchronous). Any bad
 * name or value is fatal: "PATH, line N: NAME: ...".
 */
export function redisTableParse(text: string, path: string): RedisTable {
  const entries = new Map<TableName, Entry>();
  for (const ll of tableLines(text)) {
    const nv = splitNameval(ll.text);
    if (typeof nv === "string") msgFatal(`${path}, line ${ll.line}: ${nv}: "${ll.text.slice(0, 100)}"`);
    if (!(REDIS_TABLE_NAMES as readonly string[]).includes(nv.name))
      msgFatal(
        `${path}, line ${ll.line}: unknown name "${nv.name.slice(0, 100)}" (known: ${REDIS_TABLE_NAMES.join(", ")})`,
      );
    const name = nv.name as TableName;
    const old = entries.get(name);
    if (old !== undefined) msgWarn(`${path}, line ${ll.line}: overriding earlier entry of ${name} (line ${old.line})`);
    entries.set(name, { value: nv.value, line: ll.line });
  }

  const where = (name: TableName): string => `${path}, line ${entries.get(name)!.line}`;
  const bad = (name: TableName, why: string): never =>
    msgFatal(`${where(name)}: ${name}: bad value "${entries.get(name)!.value.slice(0, 100)}": ${why}`);
  const get = (name: TableName): string | undefined => entries.get(name)?.value;
  const bool = (name: TableName): boolean => {
    const v = get(name);
    if (v === undefined) return false;
    return parseBool(v) ?? bad(name, "expected yes or no");
  };
  const file = (name: TableName): Buffer | undefined => {
    const v = get(name);
    return v === undefined || v === "" ? undefined : readNamedFile(where(name), name, v);
  };

  const serversText = get("servers");
  if (serversText === undefined || serversText.trim() === "")
    msgFatal(`${path}: missing required name "servers" (e.g. servers = 127.0.0.1:6379)`);
  const servers: RedisServer[] = [];
  for (const word of serversText.split(/[\s,]+/)) {
    if (word === "") continue;
    const s = parseRedisServer(word);
    if (typeof s === "string") bad("servers", s);
    else servers.push(s);
  }

  const cluster = bool("cluster");
  if (cluster && servers.some((s) => "path" in s))
    bad("servers", "a Redis Cluster is reached over TCP only (no UNIX-domain sockets)");

  let database = 0;
  const dbText = get("database");
  if (dbText !== undefined) {
    if (!/^[0-9]{1,5}$/.test(dbText)) bad("database", "expected a number >= 0");
    database = Number(dbText);
    if (cluster && database !== 0) bad("database", "a Redis Cluster has database 0 only");
  }

  let timeoutMs = REDIS_DEFAULT_TIMEOUT_MS;
  const timeoutText = get("timeout");
  if (timeoutText !== undefined) {
    timeoutMs = parseRedisTimeout(timeoutText) ?? bad("timeout", `expected 1ms to ${REDIS_MAX_TIMEOUT_MS / 1000}s`);
  }

  let password: string | undefined;
  const pwPath = get("password_file");
  let pw: Buffer | undefined;
  if (pwPath !== undefined && pwPath !== "") {
    if (!isAbsolute(pwPath)) msgFatal(`${where("password_file")}: password_file: "${pwPath}" is not an absolute pathname`);
    try {
      pw = readSecretFile(pwPath);
    } catch (err) {
      msgFatal(`${where("password_file")}: password_file ${pwPath}: ${errorText(err)}`);
    }
  }
  if (pw !== undefined) {
    password = pw.toString("utf8").split("\n")[0]!.replace(/\r$/, "");
    pw.fill(0);
    if (password === "") msgFatal(`${where("password_file")}: password_file: ${get("password_file")} holds no password`);
  }
  const username = get("username") || undefined;
  if (username !== undefined && password === undefined)
    msgFatal(`${where("username")}: username: a username needs a password_file`);

  let tls: RedisTlsSettings | undefined;
  if (bool("tls")) {
    tls = {};
    const ca = file("tls_ca_file");
    const cert = file("tls_cert_file");
    const key = file("tls_key_file");
    if ((cert === undefined) !== (key === undefined))
      msgFatal(`${path}: tls_cert_file and tls_key_file go together: set both or neither`);
    if (ca) tls.ca = ca;
    if (cert) tls.cert = cert;
    if (key) tls.key = key;
    const sn = get("tls_server_name");
    if (sn) tls.servername = sn;
  } else {
    for (const n of ["tls_ca_file", "tls_cert_file", "tls_key_file", "tls_server_name"] as const)
      if (get(n)) msgWarn(`${where(n)}: ${n} is ignored without tls = yes`);
  }

  let keyWrapFile: string | undefined;
  const kw = get("key_wrap_file");
  if (kw !== undefined && kw !== "") {
    if (!isAbsolute(kw)) bad("key_wrap_file", "expected an absolute pathname");
    keyWrapFile = kw;
  }

  return {
    path,
    servers,
    cluster,
    database,
    keyPrefix: get("key_prefix") ?? REDIS_DEFAULT_KEY_PREFIX,
    username,
    password,
    tls,
    timeoutMs,
    keyWrapFile,
  };
}

/** redisTableRead - read and parse the table file PATH (start-up only); fatal when unreadable. */
export function redisTableRead(path: string): RedisTable {
  if (!isAbsolute(path)) msgFatal(`redis:${path}: the table file needs an absolute pathname`);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    return msgFatal(`open redis table ${path}: ${errorText(err)}`);
  }
  return redisTableParse(text, path);
}
