/**
 * postfix-release.ts - which Postfix release this daemon serves, and so
 *                      whether it sends the server announcement.
 * Owns: asking the Postfix of this configuration for its release once at
 *       start-up (`$command_directory/postconf -d mail_version ...`, before
 *       privileges are dropped and before chroot, bounded by a timeout), the
 *       release's built-in parameter values it reports (default_database_type,
 *       default_cache_db_type), the decision (tlsmgr_server_announcement =
 *       auto: announce unless the release is older than 3.6-20200920; yes; no)
 *       and the start-up line that says which and why.
 * Not here: sending it (server/connection.ts); the parameter table (config/params.ts).
 * See also: postfix/src/tls/tls_mgr.c (3.6+: tls_mgr_handshake waits for
 *           "protocol = tlsmgr_protocol"; 3.5: writes its request at once and
 *           reads the first list as the reply), RELEASE_NOTES-3.6 ("Internal
 *           protocols have changed"), README.md "Postfix releases"
 *
 * Deterministic, no timing guess: a Postfix upgrade across 3.6 needs
 * `postfix stop` and `postfix start` (RELEASE_NOTES-3.6), and any start,
 * reload or restart of master ends this process and starts a new one, which
 * asks again; the release on disk is the one whose clients master starts.
 */

import { execFile } from "node:child_process";
import { join } from "node:path";
import { FatalError, getMsgSinks, msgInfo, msgWarn, setMsgSinks } from "../log/msg.js";
import { loadConfig } from "./params.js";

/** The first snapshot whose clients wait for the announcement (ATTR_CLNT_CTL_HANDSHAKE). */
const FIRST_ANNOUNCING = { major: 3, minor: 6, date: 20200920 };

/** Bound on the postconf run (it takes milliseconds; a hung one must not stop the start). */
export const POSTCONF_TIMEOUT_MS = 10_000;

/** The Postfix built-ins asked for besides mail_version (absent ones are not reported by older releases). */
const BUILTINS = ["default_database_type", "default_cache_db_type"];

/** What the start-up probe found. */
export interface PostfixReleaseProbe {
  /** found: postconf answered; absent: no postconf there; failed: it did not answer; embedded / config: not asked. */
  kind: "found" | "absent" | "failed" | "embedded" | "config";
  /** mail_version, when found. */
  version?: string;
  /** The command asked ("/usr/sbin/postconf -d mail_version"), when one was run. */
  command?: string;
  /** Why no release was found. */
  why?: string;
  /** Built-in parameter values the release reported (for $name in main.cf). */
  builtins: Record<string, string>;
}

export interface ProbeOptions {
  configDir: string;
  /** -o name=value overrides (command_directory may be one). */
  overrides: string[];
  /** --home mode: no Postfix to ask. */
  embedded: boolean;
  timeoutMs?: number;
}

/**
 * commandDirectory - command_directory of this configuration (main.cf, -o,
 * default), read quietly: a bad main.cf is reported by the real load that
 * follows, so here it only means "do not ask" (undefined).
 */
function commandDirectory(opts: ProbeOptions): string | undefined {
  const sinks = getMsgSinks();
  setMsgSinks([]);
  try {
    return loadConfig({ configDir: opts.configDir, overrides: opts.overrides, allowMissingMainCf: true }).command_directory;
  } catch (err) {
    if (err instanceof FatalError) return undefined;
    throw err;
  } finally {
    setMsgSinks(sinks);
  }
}

/** parsePostconf - "name = value" lines of postconf -d into a record. */
export function parsePostconf(stdout: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of stdout.split("\n")) {
    const m = /^([A-Za-z0-9_]+) = ?(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

/** parseMailVersion - major, minor and snapshot date of "3.5.27", "3.6-20200920", "3.11.6-nonprod". */
export function parseMailVersion(version: string): { major: number; minor: number; date?: number } | undefined {
  const m = /^(\d+)\.(\d+)(?:\.\d+)?(?:-(\d{8}))?/.exec(version);
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]), ...(m[3] !== undefined ? { date: Number(m[3]) } : {}) };
}

/** releaseAnnounces - do this release's clients wait for the server announcement (>= 3.6-20200920)? */
export function releaseAnnounces(version: string): boolean | undefined {
  const v = parseMailVersion(version);
  if (v === undefined) return undefined;
  const f = FIRST_ANNOUNCING;
  if (v.major !== f.major) return v.major > f.major;
  if (v.minor !== f.minor) return v.minor > f.minor;
  return v.date === undefined || v.date >= f.date; // 3.6.x releases, and snapshots from 20200920
}

/**
 * probePostfixRelease - run `$command_directory/postconf -d mail_version
 * default_database_type default_cache_db_type` (postconf prints what it
 * knows and warns about the rest); never throws.
 */
export async function probePostfixRelease(opts: ProbeOptions): Promise<PostfixReleaseProbe> {
  if (opts.embedded) return { kind: "embedded", why: "embedded mode (--home)", builtins: {} };
  const dir = commandDirectory(opts);
  if (dir === undefined) return { kind: "config", why: "main.cf could not be read", builtins: {} };
  const postconf = join(dir, "postconf");
  const command = `${postconf} -d mail_version`;
  return new Promise((resolve) => {
    execFile(postconf, ["-d", "mail_version", ...BUILTINS], {
      timeout: opts.timeoutMs ?? POSTCONF_TIMEOUT_MS, killSignal: "SIGKILL", maxBuffer: 64 * 1024, encoding: "utf8",
    }, (err, stdout, stderr) => {
      const code = (err as NodeJS.ErrnoException | null)?.code;
      if (code === "ENOENT" || code === "EACCES") {
        resolve({ kind: "absent", command, why: `${postconf}: ${code === "ENOENT" ? "No such file or directory" : "Permission denied"}`, builtins: {} });
        return;
      }
      if (err) {
        const killed = (err as { killed?: boolean }).killed === true;
        const how = killed ? `no answer within ${(opts.timeoutMs ?? POSTCONF_TIMEOUT_MS) / 1000}s`
          : `exit status ${String((err as { code?: unknown }).code ?? "?")}`;
        const said = stderr.trim().split("\n").slice(-1)[0] ?? "";
        resolve({ kind: "failed", command, why: `${command}: ${how}${said ? `: ${said}` : ""}`, builtins: {} });
        return;
      }
      const values = parsePostconf(stdout);
      const version = values["mail_version"];
      if (version === undefined || parseMailVersion(version) === undefined) {
        resolve({ kind: "failed", command, why: `${command}: no release number in its output`, builtins: {} });
        return;
      }
      const builtins: Record<string, string> = { mail_version: version };
      for (const name of BUILTINS) if (values[name] !== undefined && values[name] !== "") builtins[name] = values[name]!;
      resolve({ kind: "found", version, command, builtins });
    });
  });
}

/** The three settings of tlsmgr_server_announcement. */
export type AnnouncementSetting = "auto" | "yes" | "no";

/** announcementSetting - the parameter's value; an unknown one is a warning and means auto. */
export function announcementSetting(value: string): AnnouncementSetting {
  const v = value.trim().toLowerCase();
  if (v === "auto" || v === "yes" || v === "no") return v;
  msgWarn(`unknown tlsmgr_server_announcement value "${value}" (expected auto, yes or no): using auto`);
  return "auto";
}

/**
 * serverAnnouncement - send the announcement? Logs one line that says which
 * release was found (or why none) and what follows; a warning when master
 * runs us and no release could be found (a 3.5 installation would fail).
 */
export function serverAnnouncement(setting: string, probe: PostfixReleaseProbe, underMaster: boolean): boolean {
  const mode = announcementSetting(setting);
  const found = probe.kind === "found" ? `postfix release ${probe.version} (from ${probe.command})` : undefined;
  if (mode !== "auto") {
    const announce = mode === "yes";
    msgInfo(`tlsmgr_server_announcement = ${mode}: ${announce ? "sending" : "no"} server announcement`
      + (found ? `; ${found}` : probe.why ? `; no postfix release found: ${probe.why}` : ""));
    return announce;
  }
  if (found !== undefined) {
    const announce = releaseAnnounces(probe.version!) !== false;
    msgInfo(announce
      ? `${found}: sending the server announcement that clients of postfix 3.6 and later wait for`
      : `${found}: no server announcement: clients before postfix 3.6 take it for the reply to their first request`);
    return announce;
  }
  const text = `no postfix release found: ${probe.why ?? "unknown"}: sending the server announcement`
    + " (as postfix 3.6 and later; set tlsmgr_server_announcement = no for postfix 3.5)";
  if (underMaster && probe.kind !== "embedded") msgWarn(text);
  else msgInfo(text);
  return true;
}
