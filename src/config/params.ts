/**
 * params.ts - the parameters tlsmgr reads, their defaults and bounds, and the typed result.
 * Owns: the parameter table (Postfix's VAR_X/DEF_X/MIN/MAX, as in tlsmgr.c main()
 *       and mail_params.c), the lookup order (-o overrides, then main.cf, then
 *       defaults), value conversion and its fatal diagnostics.
 * Not here: main.cf syntax and $name expansion (config/main-cf.ts), time units
 *       (config/units.ts), timeout sanitising (< 120 => 120: cache layer).
 * See also: postfix/src/tlsmgr/tlsmgr.c, global/mail_params.[hc], mail_conf_{str,int,time}.c,
 *           master/multi_server.c (-o); *_tls_loglevel stay text here, read by
 *           config/tls-log-mask.ts where they are used (as Postfix does)
 *
 * Defaults equal `postconf -d` of Postfix 3.7, except process_name (the
 * program's own name), the tlsmgr_* parameters that are ours, and those of
 * later releases (TLSMGR_NEWER_POSTFIX_PARAMS). At start-up the release's own
 * values of default_database_type and default_cache_db_type replace these
 * (config/postfix-release.ts, through LoadConfigOptions.defaults).
 */

import { join } from "node:path";
import { msgFatal } from "../log/msg.js";
import { MacExpandError, macExpand, mainCfRead, splitNameval } from "./main-cf.js";
import { parseInteger, parseTime, timeUnitOf } from "./units.js";

export interface TlsmgrConfig {
  config_directory: string; queue_directory: string; data_directory: string; mail_owner: string;
  tlsmgr_service_name: string; daemon_timeout: number; ipc_timeout: number; max_idle: number; max_use: number;
  syslog_facility: string; syslog_name: string; maillog_file: string; maillog_file_prefixes: string;
  postlog_service_name: string; import_environment: string;
  smtpd_tls_session_cache_database: string; smtpd_tls_session_cache_timeout: number; smtpd_tls_loglevel: string;
  smtp_tls_session_cache_database: string;  smtp_tls_session_cache_timeout: number;  smtp_tls_loglevel: string;
  lmtp_tls_session_cache_database: string;  lmtp_tls_session_cache_timeout: number;  lmtp_tls_loglevel: string;
  command_directory: string; default_database_type: string; default_cache_db_type: string;
  tlsmgr_server_announcement: string;
  tls_random_source: string; tls_random_bytes: number; tls_random_exchange_name: string;
  tls_random_reseed_period: number; tls_random_prng_update_period: number;
  tlsmgr_ticket_key_database: string;
  tlsmgr_attr_name_limit: number; tlsmgr_attr_value_limit: number; tlsmgr_attr_count_limit: number;
  /** where main.cf was read from, for diagnostics ("" when there was none) */
  main_cf_path: string;
  /** expanded value of any other parameter (undefined when not set and no default) */
  lookup(name: string): string | undefined;
}

export interface LoadConfigOptions {
  configDir: string;            // directory holding main.cf
  overrides?: string[];         // "-o name=value" values, in order
  defaults?: Record<string, string>; // replaces built-in defaults of the names it has (embedded `--home` mode)
  allowMissingMainCf?: boolean; // no main.cf => use defaults (else fatal "open FILE: No such file...")
}

/** kind: str (min/max = length), time (seconds), int; a 0 or absent bound is not checked (as Postfix). */
export interface ParamSpec {
  name: string;
  kind: "str" | "time" | "int";
  def: string;
  min?: number;
  max?: number;
}

const MAX_SCACHETIME = 8640000; // MAX_SMTPD_TLS_SCACHETIME etc.

export const TLSMGR_PARAMS: ReadonlyArray<ParamSpec> = [
  { name: "config_directory", kind: "str", def: "/etc/postfix" },
  { name: "queue_directory", kind: "str", def: "/var/spool/postfix", min: 1 },
  { name: "data_directory", kind: "str", def: "/var/lib/postfix", min: 1 },
  { name: "mail_owner", kind: "str", def: "postfix", min: 1 },
  { name: "process_name", kind: "str", def: "tlsmgr" },
  { name: "multi_instance_name", kind: "str", def: "" },
  { name: "tlsmgr_service_name", kind: "str", def: "tlsmgr", min: 1 },
  { name: "daemon_timeout", kind: "time", def: "18000s", min: 1 },
  { name: "ipc_timeout", kind: "time", def: "3600s", min: 1 },
  { name: "max_idle", kind: "time", def: "100s", min: 1 },
  { name: "max_use", kind: "int", def: "100", min: 1 },
  { name: "syslog_facility", kind: "str", def: "mail", min: 1 },
  { name: "syslog_name", kind: "str", def: "${multi_instance_name?{$multi_instance_name}:{postfix}}", min: 1 },
  { name: "maillog_file", kind: "str", def: "" },
  { name: "maillog_file_prefixes", kind: "str", def: "/var, /dev/stdout", min: 1 },
  { name: "postlog_service_name", kind: "str", def: "postlog", min: 1 },
  {
    name: "import_environment", kind: "str",
    def: "MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ XAUTHORITY DISPLAY LANG=C POSTLOG_SERVICE POSTLOG_HOSTNAME",
  },
  { name: "tls_random_source", kind: "str", def: "dev:/dev/urandom" },
  { name: "tls_random_exchange_name", kind: "str", def: "${data_directory}/prng_exch" },
  { name: "smtpd_tls_session_cache_database", kind: "str", def: "" },
  { name: "smtp_tls_session_cache_database", kind: "str", def: "" },
  { name: "lmtp_tls_session_cache_database", kind: "str", def: "" },
  { name: "smtpd_tls_loglevel", kind: "str", def: "0" },
  { name: "smtp_tls_loglevel", kind: "str", def: "0" },
  { name: "lmtp_tls_loglevel", kind: "str", def: "0" },
  { name: "tls_random_reseed_period", kind: "time", def: "3600s", min: 1 },
  { name: "tls_random_prng_update_period", kind: "time", def: "3600s", min: 1 },
  { name: "smtpd_tls_session_cache_timeout", kind: "time", def: "3600s", min: 0, max: MAX_SCACHETIME },
  { name: "smtp_tls_session_cache_timeout", kind: "time", def: "3600s", min: 0, max: MAX_SCACHETIME },
  { name: "lmtp_tls_session_cache_timeout", kind: "time", def: "3600s", min: 0, max: MAX_SCACHETIME },
  { name: "tls_random_bytes", kind: "int", def: "32", min: 1 },
  { name: "tlsmgr_ticket_key_database", kind: "str", def: "" },
  { name: "tlsmgr_attr_name_limit", kind: "int", def: "256", min: 1 },
  { name: "tlsmgr_attr_value_limit", kind: "int", def: "1048576", min: 1 },
  { name: "tlsmgr_attr_count_limit", kind: "int", def: "16", min: 1 },
  // for $name in main.cf values, and how the Postfix release is found (config/postfix-release.ts)
  { name: "command_directory", kind: "str", def: "/usr/sbin" },
  { name: "default_database_type", kind: "str", def: "hash" },
  { name: "default_cache_db_type", kind: "str", def: "btree" },
  { name: "tlsmgr_server_announcement", kind: "str", def: "auto" },
];

/** Parameters that are not Postfix's (postconf does not know them). */
export const TLSMGR_OWN_PARAMS: ReadonlySet<string> = new Set([
  "tlsmgr_ticket_key_database", "tlsmgr_attr_name_limit", "tlsmgr_attr_value_limit", "tlsmgr_attr_count_limit",
  "tlsmgr_server_announcement",
]);

/** Postfix parameters that Postfix 3.7 does not know, and the release that added each. */
export const TLSMGR_NEWER_POSTFIX_PARAMS: ReadonlyMap<string, string> = new Map([["default_cache_db_type", "3.11"]]);

/** convert - a parameter's expanded value checked and converted as Postfix's get_mail_conf_*(). */
function convert(where: string, p: ParamSpec, value: string): string | number {
  switch (p.kind) {
    case "str":
      if (p.min && value.length < p.min)
        msgFatal(`${where}: bad string length ${value.length} < ${p.min}: ${p.name} = ${value}`);
      if (p.max && value.length > p.max)
        msgFatal(`${where}: bad string length ${value.length} > ${p.max}: ${p.name} = ${value}`);
      return value;
    case "time": {
      const t = parseTime(value, timeUnitOf(p.def));
      if (t === undefined) msgFatal(`${where}: parameter ${p.name}: bad time value or unit: ${value}`);
      if (p.min && t < p.min) msgFatal(`${where}: invalid ${p.name}: ${t} (min ${p.min})`);
      if (p.max && t > p.max) msgFatal(`${where}: invalid ${p.name}: ${t} (max ${p.max})`);
      return t;
    }
    case "int": {
      const n = parseInteger(value);
      if (n === undefined) msgFatal(`${where}: bad numerical configuration: ${p.name} = ${value}`);
      if (p.min && n < p.min) msgFatal(`${where}: invalid ${p.name} parameter value ${n} < ${p.min}`);
      if (p.max && n > p.max) msgFatal(`${where}: invalid ${p.name} parameter value ${n} > ${p.max}`);
      return n;
    }
  }
}

/** parseOverrides - "-o name=value" strings as multi_server.c does, later ones win. */
function parseOverrides(list: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const o of list) {
    const nv = splitNameval(o);
    if (typeof nv === "string") msgFatal(`invalid "-o ${o}" option value: ${nv}`);
    out.set(nv.name, nv.value);
  }
  return out;
}

/** loadConfig - read main.cf, apply -o overrides and defaults, convert and check every parameter. */
export function loadConfig(opts: LoadConfigOptions): TlsmgrConfig {
  const path = join(opts.configDir, "main.cf");
  const defaults = new Map<string, string>(TLSMGR_PARAMS.map((p) => [p.name, p.def]));
  for (const [k, v] of Object.entries(opts.defaults ?? {})) defaults.set(k, v);
  defaults.set("config_directory", opts.configDir);
  const mainCf = mainCfRead(path, opts.allowMissingMainCf === true);
  const overrides = parseOverrides(opts.overrides ?? []);

  const raw = (name: string): string | undefined => overrides.get(name) ?? mainCf?.get(name) ?? defaults.get(name);
  const lookup = (name: string): string | undefined => {
    const value = raw(name);
    if (value === undefined) return undefined;
    try {
      return macExpand(value, raw, name);
    } catch (err) {
      if (err instanceof MacExpandError) msgFatal(`${path}: parameter ${name}: ${err.message}`);
      throw err;
    }
  };

  const values: Record<string, string | number> = {};
  for (const p of TLSMGR_PARAMS) values[p.name] = convert(path, p, lookup(p.name) ?? p.def);
  return { ...values, main_cf_path: mainCf === undefined ? "" : path, lookup } as unknown as TlsmgrConfig;
}
