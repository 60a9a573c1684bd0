/**
 * master-procs.ts - the processes of a private Postfix instance, read from
 *                   /proc (what ps and pgrep read, without needing procps):
 *                   master(8), its children, our daemon among them.
 * Owns: /proc readers (ids, environment, parent, command name, argv, zombie
 *       or alive), master's pid and children, ourDaemonsUnderMaster (master's
 *       children that are not Postfix programs), running bin/tlsmgr-postfix
 *       for an instance (install's snapshots in a temporary versions
 *       directory of the test process), and a poll-until helper.
 * Not here: the instance itself (postfix-instance.ts).
 * See also: test/postfix/under-master.test.ts, test/postfix/release-matrix.test.ts
 */

import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { REPO_ROOT } from "./daemon.js";
import { exitHook } from "./exit-hook.js";
import type { PostfixInstance } from "./postfix-instance.js";

/** bin/tlsmgr-postfix of this clone. */
export const TLSMGR_POSTFIX = join(REPO_ROOT, "bin", "tlsmgr-postfix");

let versionsDir = "";
const installVersionsHook = exitHook(() => {
  if (versionsDir !== "") rmSync(versionsDir, { recursive: true, force: true });
});

/**
 * testVersionsDir - the versions directory `install` puts its snapshots in
 * for this test process (one temporary directory, removed at exit): never
 * the system's /var/lib/tlsmgr-ts
 */
export function testVersionsDir(): string {
  if (versionsDir === "") {
    installVersionsHook();
    versionsDir = mkdtempSync(join(tmpdir(), "tlsmgr-versions-"));
    chmodSync(versionsDir, 0o755); // mail_owner reads the snapshots
  }
  return versionsDir;
}

/**
 * snapshotSource - the tree a snapshot was made from (its build/snapshot.json),
 * for the snapshot holding file; undefined when file is in none
 */
export function snapshotSource(file: string): string | undefined {
  const real = realpathSync(file);
  const rel = relative(realpathSync(testVersionsDir()), real);
  if (rel.startsWith("..")) return undefined;
  try {
    const made = JSON.parse(readFileSync(join(realpathSync(testVersionsDir()), rel.split("/")[0]!, "build", "snapshot.json"), "utf8")) as { from: string };
    return made.from;
  } catch {
    return undefined;
  }
}

/**
 * tlsmgrPostfix - bin/tlsmgr-postfix ARGS with PATH (an instance's: its release's postconf first); its stdout.
 * An install without --versions or --in-place puts its snapshot in testVersionsDir().
 */
export function tlsmgrPostfix(path: string, ...args: string[]): Promise<string> {
  if (args[0] === "install" && !args.some((a) => a === "--in-place" || a.startsWith("--versions")))
    args = ["install", "--versions", testVersionsDir(), ...args.slice(1)];
  return new Promise((res, rej) => {
    execFile(TLSMGR_POSTFIX, args, { env: { ...process.env, PATH: path } },
      (err, stdout, stderr) => (err ? rej(new Error(`${TLSMGR_POSTFIX} ${args.join(" ")}: ${err.message}\n${stderr}`))
        : res(stdout)));
  });
}

/** procStatusIds - the Uid: and Gid: lines of /proc/PID/status (real, effective, saved, fs). */
export function procStatusIds(pid: number): { uid: number[]; gid: number[] } {
  const text = readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (name: string): number[] =>
    (new RegExp(`^${name}:\\s+(.*)$`, "m").exec(text)?.[1] ?? "").trim().split(/\s+/).map(Number);
  return { uid: field("Uid"), gid: field("Gid") };
}

/** procEnv - the environment of a process (empty when it is gone). */
export function procEnv(pid: number): Map<string, string> {
  const env = new Map<string, string>();
  try {
    for (const kv of readFileSync(`/proc/${pid}/environ`, "latin1").split("\0")) {
      const eq = kv.indexOf("=");
      if (eq > 0) env.set(kv.slice(0, eq), kv.slice(eq + 1));
    }
  } catch {
    /* gone */
  }
  return env;
}

/** procPpid - the parent pid of a process, or undefined when it is gone. */
export function procPpid(pid: number): number | undefined {
  try {
    const m = /^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** One process as pgrep sees it. */
export interface ProcInfo {
  pid: number;
  ppid: number;
  comm: string;
  argv: string[];
}

/** procs - every process now: pid, parent, command name and argv. */
export function procs(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0").filter((a) => a !== "");
      const comm = readFileSync(`/proc/${name}/comm`, "utf8").trim();
      const ppid = procPpid(Number(name));
      if (ppid !== undefined) out.push({ pid: Number(name), ppid, comm, argv });
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/** pidAlive - whether a process with this pid exists (and is not a zombie). */
export function pidAlive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return false;
  }
}

/** waitFor - poll until fn returns a value other than undefined; throws after timeoutMs. */
export async function waitFor<T>(what: string, timeoutMs: number, fn: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** escapeRe - a string as a literal in a regular expression. */
export function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** masterPid - master(8) of this instance. */
export function masterPid(pf: PostfixInstance): number {
  return Number(readFileSync(join(pf.queueDir, "pid", "master.pid"), "utf8").trim());
}

/** masterChildren - master's children named comm (smtpd, tlsmgr, ...). */
export function masterChildren(pf: PostfixInstance, comm: string): number[] {
  const master = masterPid(pf);
  return procs().filter((p) => p.ppid === master && p.comm === comm).map((p) => p.pid);
}

// exeOf - the real path of a process's executable ("" when gone or unreadable)
function exeOf(pid: number): string {
  try {
    return realpathSync(readlinkSync(`/proc/${pid}/exe`));
  } catch {
    return "";
  }
}

/**
 * ourDaemonsUnderMaster - master's live children that are not programs of
 * daemon_directory: our daemon, whatever it is called in ps (node, or tlsmgr
 * once it names itself so).
 */
export function ourDaemonsUnderMaster(pf: PostfixInstance, daemonDirectory: string): number[] {
  const master = masterPid(pf);
  const postfixDir = `${realpathSync(daemonDirectory)}/`;
  return procs().filter((p) => p.ppid === master && pidAlive(p.pid))
    .filter((p) => { const exe = exeOf(p.pid); return exe !== "" && !exe.startsWith(postfixDir); })
    .map((p) => p.pid);
}
