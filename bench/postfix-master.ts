/**
 * postfix-master.ts - a bare private Postfix instance for the benchmark:
 *                     master(8) running Postfix's own tlsmgr and nothing else.
 * Owns: the instance directory (main.cf, a master.cf of the tlsmgr and
 *       postlog services alone, queue and data directories, maillog),
 *       `postfix start` and `postfix stop`, master's pid, and removing it all.
 * Not here: which cache settings are measured (bench/targets.ts); the full
 *           instance the tests use, with smtpd, TLS and delivery
 *           (test/helpers/postfix-instance.ts: the benchmark does not depend
 *           on test/, and measures tlsmgr without other services beside it).
 * See also: postfix/conf/master.cf (the tlsmgr line), postconf(5) maillog_file
 *
 * Needs root (master(8) starts as root and drops to mail_owner postfix).
 */

import { execFile } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

const SBIN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin";
const MAIL_OWNER = "postfix";
/** The services of the instance: Postfix's tlsmgr line with chroot off, and postlogd for maillog_file. */
const MASTER_CF = "tlsmgr unix - - n 1000? 1 tlsmgr\npostlog unix-dgram n - n - 1 postlogd\n";

export interface PostfixMaster {
  /** The temporary directory that holds everything. */
  dir: string;
  queueDir: string;
  dataDir: string;
  /** $queue_directory/private/tlsmgr */
  tlsmgrSocket: string;
  /** mail_version, e.g. "3.7.11" */
  version: string;
  /** master's pid while it runs */
  masterPid(): number | undefined;
  /** postfix stop (SIGKILL when master outlives it), then remove the directory */
  destroy(): Promise<void>;
}

/** postfixAvailable - postfix and postconf are installed here */
export function postfixAvailable(): boolean {
  return ["postfix", "postconf"].every((name) =>
    `${process.env["PATH"] ?? ""}:${SBIN_PATH}`.split(":").some((d) => {
      try {
        return d !== "" && statSync(join(d, name)).isFile();
      } catch {
        return false;
      }
    }),
  );
}

// run - a Postfix command with the sbin directories on PATH; rejects with its output
function run(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { env: { ...process.env, PATH: `${SBIN_PATH}:${process.env["PATH"] ?? ""}` }, timeout: 60_000 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${file} ${args.join(" ")}: ${err.message.trim()}\n${stdout}${stderr}`));
        else resolve(stdout);
      });
  });
}

// pidAlive - whether a process with this pid exists (the bench reads /proc anyway: proc-stats.ts)
function pidAlive(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

/**
 * startPostfixMaster - lay out an instance under baseDir (default
 * os.tmpdir()) with mainCf's settings applied last, and start master;
 * resolves once master has written its pid file.
 */
export async function startPostfixMaster(opts: { baseDir?: string; mainCf: Record<string, string> }): Promise<PostfixMaster> {
  if (process.getuid?.() !== 0) throw new Error("a private Postfix instance must be started by root");
  const dir = await mkdtemp(join(opts.baseDir ?? tmpdir(), "tlsmgr-bench-pf-"));
  const configDir = join(dir, "etc");
  const queueDir = join(dir, "spool");
  const dataDir = join(dir, "data");
  const maillog = join(dir, "maillog");
  const masterPid = (): number | undefined => {
    try {
      const n = Number.parseInt(readFileSync(join(queueDir, "pid", "master.pid"), "utf8").trim(), 10);
      return Number.isInteger(n) && n > 0 && pidAlive(n) ? n : undefined;
    } catch {
      return undefined;
    }
  };
  const destroy = async (): Promise<void> => {
    const pid = masterPid();
    if (pid !== undefined) {
      await run("postfix", ["-c", configDir, "stop"]).catch(() => undefined);
      for (let i = 0; i < 200 && pidAlive(pid); i++) await sleep(50);
      if (pidAlive(pid)) process.kill(pid, "SIGKILL");
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await chmod(dir, 0o755); // master's children run as postfix
    await mkdir(configDir, { mode: 0o755 });
    await mkdir(queueDir, { mode: 0o755 });
    await mkdir(dataDir, { mode: 0o700 });
    const uid = Number((await run("id", ["-u", MAIL_OWNER])).trim());
    const gid = Number((await run("id", ["-g", MAIL_OWNER])).trim());
    await chown(dataDir, uid, gid);
    const settings: Record<string, string> = {
      compatibility_level: "3.6",
      queue_directory: queueDir,
      data_directory: dataDir,
      mail_owner: MAIL_OWNER,
      setgid_group: "postdrop",
      inet_interfaces: "127.0.0.1",
      inet_protocols: "ipv4",
      alias_maps: "",
      alias_database: "",
      maillog_file: maillog,
      maillog_file_prefixes: dir,
      ...opts.mainCf,
    };
    await writeFile(join(configDir, "main.cf"), Object.entries(settings).map(([k, v]) => `${k} = ${v}`).join("\n") + "\n");
    await writeFile(join(configDir, "master.cf"), MASTER_CF);
    try {
      await run("postfix", ["-c", configDir, "start"]);
    } catch (e) {
      const log = existsSync(maillog) ? await readFile(maillog, "utf8") : "";
      throw new Error(`${(e as Error).message}\nmaillog:\n${log}`);
    }
    for (let i = 0; i < 200 && masterPid() === undefined; i++) await sleep(50);
    if (masterPid() === undefined) throw new Error(`postfix master did not start in ${dir}`);
    const version = (await run("postconf", ["-c", configDir, "-h", "mail_version"])).trim();
    return { dir, queueDir, dataDir, tlsmgrSocket: join(queueDir, "private", "tlsmgr"), version, masterPid, destroy };
  } catch (e) {
    await destroy();
    throw e;
  }
}
