/**
 * params.ts - the parameters tlsmgr reads, their defaults and bounds, and the typed result.
 * Owns: the parameter table (Postfix's VAR_X/DEF_X/MIN/MAX, as in tlsmgr.c main()
 *       and mail_params.c), the typed configuration derived from it
 *       (TlsmgrConfig: each name typed by its kind, plus the per-cache record
 *       cfg.caches.smtpd.database/timeout/loglevel), the lookup order (-o
 *       overrides, then main.cf, then defaults), value conversion and its fatal diagnostics, the one "-o"
 *       check, and the config_directory default.
 * Not here: main.cf syntax and $name expansion (config/main-cf.ts), time units
 *       (config/units.ts), timeout sanitising (< 120 => 120: cache layer).
 * See also: postfix/src/tlsmgr/tlsmgr.c, global/mail_params.[hc], mail_conf_{str,int,time}.c,
 *           master/multi_server.c (-o); config/tls-log-mask.ts (*_tls_loglevel)
 *
 * Defaults equal `postconf -d` of Postfix 3.7, except process_name (the
 * program's own name), the tlsmgr_* parameters that are ours, and those of
 * later releases (TLSMGR_NEWER_POSTFIX_PARAMS). At start-up the release's own
 * values of default_database_type and default_cache_db_type replace these
 * (config/postfix-release.ts, through LoadConfigOptions.defaults).
 */

import { join } from "node:path";
import { msgFatal } from "../log/msg.js";
import type { CacheType } from "../protocol/tlsmgr-proto.js";
import { MacExpandError, macExpand, mainCfRead, splitNameval } from "./main-cf.js";
import { parseInteger, parseTime, timeUnitOf } from "./units.js";

export interface LoadConfigOptions {
  configDir: string;            // directory holding main.cf
  overrides?: string[];         // "-o name=value" values, in order
  defaults?: Record<string, string>; // replaces built-in defaults of the names it has (embedded `--home` mode)
  allowMissingMainCf?: boolean; // no main.cf => use defaults (else fatal "open FILE: No such file...")
}

/**
 * A parameter: kind str (min/max = length), time (seconds) or int; a 0 or absent bound is not
 * checked (as Postfix).
 */
export interface ParamSpec {
  readonly name: string;
  readonly kind: "str" | "time" | "int";
  readonly def: string;
  readonly min?: number;
  readonly max?: number;
}

/** What each kind of parameter becomes. */
interface ParamKindValue {
  str: string;
  time: number;
  int: number;
}

/** The typed values of a parameter table: each name with the type of its kind. */
export type ParamValues<T extends ReadonlyArray<ParamSpec>> = {
  readonly [P in T[number] as P["name"]]: ParamKindValue[P["kind"]];
};

/** The default of config_directory (Postfix's DEF_CONFIG_DIR), the one place it is written. */
export const DEF_CONFIG_DIR = "/etc/postfix";

const MAX_SCACHETIME = 8640000; // MAX_SMTPD_TLS_SCACHETIME etc.

export const TLSMGR_PARAMS = [
  { name: "config_directory", kind: "str", def: DEF_CONFIG_DIR },
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
  // statistics over HTTP, bounded caches, the smtpd cache's service names (stats/, cache/cache-bound.ts, cache/service-alias.ts)
  { name: "tlsmgr_metrics_address", kind: "str", def: "" },
  { name: "tlsmgr_metrics_allow_remote", kind: "str", def: "no" },
  { name: "tlsmgr_smtpd_cache_entry_limit", kind: "int", def: "0" },
  { name: "tlsmgr_smtp_cache_entry_limit", kind: "int", def: "0" },
  { name: "tlsmgr_lmtp_cache_entry_limit", kind: "int", def: "0" },
  { name: "tlsmgr_smtpd_cache_byte_limit", kind: "int", def: "0" },
  { name: "tlsmgr_smtp_cache_byte_limit", kind: "int", def: "0" },
  { name: "tlsmgr_lmtp_cache_byte_limit", kind: "int", def: "0" },
  { name: "tlsmgr_smtpd_cache_shared_services", kind: "str", def: "" },
] as const satisfies ReadonlyArray<ParamSpec>;

/** Parameters that are not Postfix's (postconf does not know them). */
export const TLSMGR_OWN_PARAMS: ReadonlySet<string> = new Set([
  "tlsmgr_ticket_key_database", "tlsmgr_attr_name_limit", "tlsmgr_attr_value_limit", "tlsmgr_attr_count_limit",
  "tlsmgr_server_announcement", "tlsmgr_metrics_address", "tlsmgr_metrics_allow_remote",
  "tlsmgr_smtpd_cache_entry_limit", "tlsmgr_smtp_cache_entry_limit", "tlsmgr_lmtp_cache_entry_limit",
  "tlsmgr_smtpd_cache_byte_limit", "tlsmgr_smtp_cache_byte_limit", "tlsmgr_lmtp_cache_byte_limit",
  "tlsmgr_smtpd_cache_shared_services",
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

/**
 * overrideSplit - one "-o name=value" as multi_server.c takes it: split as
 * split_nameval(), fatal in multi_server's words when malformed.
 */
export function overrideSplit(text: string): { name: string; value: string } {
  const nv = splitNameval(text);
  if (typeof nv === "string") msgFatal(`invalid "-o ${text}" option value: ${nv}`);
  return nv;
}

/** parseOverrides - "-o name=value" strings, later ones win. */
function parseOverrides(list: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const o of list) {
    const nv = overrideSplit(o);
    out.set(nv.name, nv.value);
  }
  return out;
}

/** The parameter names of each TLS session cache (Postfix's VAR_{SMTPD,SMTP,LMTP}_TLS_SCACHE_DB etc.). */
export const SCACHE_PARAMS = {
  smtpd: {
    database: "smtpd_tls_session_cache_database",
    timeout: "smtpd_tls_session_cache_timeout",
    loglevel: "smtpd_tls_loglevel",
  },
  smtp: {
    database: "smtp_tls_session_cache_database",
    timeout: "smtp_tls_session_cache_timeout",
    loglevel: "smtp_tls_loglevel",
  },
  lmtp: {
    database: "lmtp_tls_session_cache_database",
    timeout: "lmtp_tls_session_cache_timeout",
    loglevel: "lmtp_tls_loglevel",
  },
} as const satisfies Record<CacheType, { database: string; timeout: string; loglevel: string }>;

/** The names of each cache's limits (cache/cache-bound.ts); 0 (or less) is no limit. */
export const SCACHE_LIMIT_PARAMS = {
  smtpd: { entries: "tlsmgr_smtpd_cache_entry_limit", bytes: "tlsmgr_smtpd_cache_byte_limit" },
  smtp: { entries: "tlsmgr_smtp_cache_entry_limit", bytes: "tlsmgr_smtp_cache_byte_limit" },
  lmtp: { entries: "tlsmgr_lmtp_cache_entry_limit", bytes: "tlsmgr_lmtp_cache_byte_limit" },
} as const satisfies Record<CacheType, { entries: string; bytes: string }>;

/** scacheLimitsOf - one cache's limits and their names, from the typed values. */
export function scacheLimitsOf(
  values: TlsmgrParams,
  type: CacheType,
): { limits: { entries: number; bytes: number }; params: { entries: string; bytes: string } } {
  const params = SCACHE_LIMIT_PARAMS[type];
  return { limits: { entries: Math.max(0, values[params.entries]), bytes: Math.max(0, values[params.bytes]) }, params };
}

/** One cache's configuration: its three parameters' values and names. */
export interface ScacheConfig {
  /** *_tls_session_cache_database: "type:name", or "" (off) */
  database: string;
  /** *_tls_session_cache_timeout, seconds, as main.cf gave it (not sanitised) */
  timeout: number;
  /** *_tls_loglevel as written; read by tls_log_mask where it is used (config/tls-log-mask.ts) */
  loglevel: string;
  /** the names of the three parameters, for diagnostics */
  param: { readonly database: string; readonly timeout: string; readonly loglevel: string };
}

/** The typed values of TLSMGR_PARAMS. */
export type TlsmgrParams = ParamValues<typeof TLSMGR_PARAMS>;

/** The configuration tlsmgr runs with: every parameter of the table, typed by its kind, and more. */
export interface TlsmgrConfig extends TlsmgrParams {
  /** the session caches' parameters, by cache type */
  readonly caches: Readonly<Record<CacheType, ScacheConfig>>;
  /** where main.cf was read from, for diagnostics ("" when there was none) */
  readonly main_cf_path: string;
  /** expanded value of any other parameter (undefined when not set and no default) */
  lookup(name: string): string | undefined;
}

/** scacheConfigOf - the per-cache record of one cache type from the typed values. */
function scacheConfigOf(values: TlsmgrParams, type: CacheType): ScacheConfig {
  const param = SCACHE_PARAMS[type];
  return { database: values[param.database], timeout: values[param.timeout], loglevel: values[param.loglevel], param };
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

  const converted: Record<string, string | number> = {};
  for (const p of TLSMGR_PARAMS) converted[p.name] = convert(path, p, lookup(p.name) ?? p.def);
  // Each value was converted by its parameter's kind: the shape ParamValues gives the table.
  const values = converted as TlsmgrParams;
  return {
    ...values,
    caches: { smtpd: scacheConfigOf(values, "smtpd"), smtp: scacheConfigOf(values, "smtp"), lmtp: scacheConfigOf(values, "lmtp") },
    main_cf_path: mainCf === undefined ? "" : path,
    lookup,
  };
}
