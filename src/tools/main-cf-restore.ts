/**
 * main-cf-restore.ts - what of main.cf belongs to this daemon alone: the
 *                      settings `tlsmgr-postfix uninstall` comments out so that
 *                      Postfix's own tlsmgr accepts main.cf, and the names
 *                      `install` declares to postconf(1).
 * Owns: choosing those settings (this project's tlsmgr_* parameters, and
 *       session cache maps of a type Postfix lacks, such as redis: or memory:),
 *       and the smtpd_restriction_classes override that makes postconf count
 *       this project's parameters as used.
 * Not here: running postconf, the master.cf line (tools/tlsmgr-postfix.ts).
 * See also: postfix/src/postconf/postconf_user.c, postconf_unused.c, man/tlsmgr.8
 *
 * How postconf(1) (postfix check, reload, postmulti) decides that a main.cf
 * name it does not know is used (postconf_user.c): only when $name appears in
 * a parameter value, in main.cf or in a master.cf -o of a service that does
 * not set that name itself, or when the name is listed in
 * smtpd_restriction_classes. Everything else is "unused parameter". A daemon
 * reading a name is invisible to it, and `-o name=$name` on the tlsmgr line
 * only declares the master.cf copy (and would expand to itself at run time).
 * So install puts `-o smtpd_restriction_classes=NAME,...` on the tlsmgr
 * line, naming the tlsmgr_* parameters main.cf sets: a built-in parameter,
 * seen only by the tlsmgr process (which ignores it; smtpd never sees a
 * master.cf -o of another service), and the one list of user-defined names
 * postconf honours. A name listed there but missing from main.cf would make
 * postconf warn "undefined parameter", so install lists only what is set,
 * and is run again after main.cf changes which of them it sets.
 */

import { TLSMGR_OWN_PARAMS } from "../config/params.js";

/** This project's own main.cf parameters, in a fixed order. */
export const OWN_PARAMS: readonly string[] = [...TLSMGR_OWN_PARAMS];

/** The session cache parameters of tlsmgr(8). */
export const CACHE_PARAMS = ["smtpd_tls_session_cache_database", "smtp_tls_session_cache_database", "lmtp_tls_session_cache_database"];

/** The override install adds to the tlsmgr line. */
export const DECLARE_PARAM = "smtpd_restriction_classes";

/** parseNameValues - `postconf -n` output ("name = value" lines) as a map */
export function parseNameValues(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split("\n")) {
    const eq = line.indexOf(" = ");
    if (eq > 0) m.set(line.slice(0, eq), line.slice(eq + 3));
    else if (line.endsWith(" =")) m.set(line.slice(0, -2), "");
  }
  return m;
}

/** ownParamsSet - this project's parameters that main.cf sets, in OWN_PARAMS order */
export function ownParamsSet(mainCf: Map<string, string>): string[] {
  return OWN_PARAMS.filter((p) => mainCf.has(p));
}

/** declareArgs - the `-o smtpd_restriction_classes=...` words for these names ([] for none) */
export function declareArgs(names: readonly string[]): string[] {
  return names.length === 0 ? [] : ["-o", `${DECLARE_PARAM}=${names.join(",")}`];
}

/** withoutDeclareArgs - args without an -o smtpd_restriction_classes that names only this project's parameters */
export function withoutDeclareArgs(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const value = args[i] === "-o" ? args[i + 1] : undefined;
    if (value?.startsWith(`${DECLARE_PARAM}=`)) {
      const names = value.slice(DECLARE_PARAM.length + 1).split(/[\s,]+/).filter((n) => n !== "");
      if (names.every((n) => OWN_PARAMS.includes(n))) {
        i++;
        continue;
      }
    }
    out.push(args[i]!);
  }
  return out;
}

/** mapType - "redis" of "redis:/etc/postfix/x.cf"; "" when the value names no type */
export function mapType(value: string): string {
  const m = /^([A-Za-z0-9_-]+):/.exec(value.trim());
  return m ? m[1]! : "";
}

/**
 * settingsPostfixRefuses - the main.cf names to comment out for Postfix's
 * tlsmgr: this project's parameters that are set, and cache parameters whose
 * (expanded) map type is not in postfixMapTypes (`postconf -m`).
 */
export function settingsPostfixRefuses(mainCf: Map<string, string>, expandedCaches: Map<string, string>,
  postfixMapTypes: readonly string[]): string[] {
  const names = ownParamsSet(mainCf);
  for (const p of CACHE_PARAMS) {
    if (!mainCf.has(p)) continue;
    const type = mapType(expandedCaches.get(p) ?? mainCf.get(p) ?? "");
    if (type !== "" && !postfixMapTypes.includes(type)) names.push(p);
  }
  return names;
}
