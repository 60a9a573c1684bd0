/**
 * postfix-instance.ts - a private Postfix instance in a temporary directory,
 *                       for tests against the real tlsmgr clients: Debian's
 *                       installed Postfix, or a release built from source
 *                       (a release root, postfix-releases.ts).
 * Owns: the instance layout (config, queue and data directories, maillog),
 *       main.cf and master.cf generation (chroot off, smtpd on two free
 *       loopback ports, the second one discarding), start/stop/reload,
 *       sendmail, maillog polling, and the openssl s_client resumption probe
 *       (opensslResumes, over openssl-probe.ts opensslHandshake).
 * Not here: starting our daemon (test/helpers/daemon.ts); installing Postfix
 *           (scripts/ensure-system-deps.sh); building releases (postfix-releases.ts);
 *           when a missing Postfix is a skip (test/helpers/skip.ts); free ports
 *           (test/helpers/free-port.ts).
 * See also: postfix(1) (-c), master(5), postconf(1), test/postfix/*.test.ts
 *
 * Everything lives under one mkdtemp directory that destroy() removes after
 * `postfix stop`. Instances still alive when the test process exits are
 * stopped and removed by an exit hook.
 */

import { execFile, execFileSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { exitHook } from "./exit-hook.js";
import { freeLoopbackPort } from "./free-port.js";
import { opensslHandshake } from "./openssl-probe.js";
import { programPath, SBIN_PATH, skipReason } from "./skip.js";

export interface PostfixInstance {
  /** The temporary directory that holds everything below. */
  dir: string;
  configDir: string;
  queueDir: string;
  dataDir: string;
  maillog: string;
  /** smtpd with TLS (may), myhostname from main.cf. */
  smtpdPort: number;
  /** Second smtpd (myhostname other.test, content_filter discard:), the relayhost. */
  smtpdPort2: number;
  /** postconf -c configDir ARGS...; resolves to stdout. */
  postconf(...args: string[]): Promise<string>;
  start(): Promise<void>;
  stop(): Promise<void>;
  reload(): Promise<void>;
  /** sendmail -C configDir TO, the body as the message text. */
  sendmail(to: string, body?: string): Promise<void>;
  /** Poll maillog until a line matches re; resolves to that line. */
  waitForLog(re: RegExp, timeoutMs: number): Promise<string>;
  logText(): Promise<string>;
  /** $queue_directory/private/tlsmgr */
  tlsmgrSocket: string;
  /** PATH for this instance's commands (the release's usr/sbin first), e.g. for bin/tlsmgr-postfix. */
  path: string;
  /** The release root, or undefined for Debian's installed Postfix. */
  releaseRoot?: string;
  destroy(): Promise<void>;
}

/** A Postfix built from source, installed under root (postfix-releases.ts). */
export interface InstanceRelease {
  /** Holds usr/sbin, usr/libexec/postfix and etc/postfix (a symbolic link is fine: swap it to upgrade). */
  root: string;
  /** compatibility_level for main.cf ("2" on 3.5; the release's major.minor on 3.6 and later). */
  compatibilityLevel: string;
}

export interface PostfixInstanceOptions {
  /**
   * "postfix": master.cf keeps Postfix's own tlsmgr service.
   * "none": the tlsmgr service is removed (postconf -MX tlsmgr/unix) so an
   *         external daemon can own private/tlsmgr.
   * {command}: master.cf's tlsmgr service runs that command (master(5) takes
   *         it relative to daemon_directory).
   */
  tlsmgr: "postfix" | "none" | { command: string };
  /** Extra or overriding main.cf settings, applied last. */
  mainCf?: Record<string, string>;
  /** A release built from source instead of Debian's installed Postfix. */
  release?: InstanceRelease;
}

const POSTFIX_BINARIES = ["postfix", "postconf", "sendmail", "openssl"];
const MASTER_CF_SOURCES = ["/etc/postfix/master.cf", "/usr/share/postfix/master.cf.dist"];
const MAIL_OWNER = "postfix";

/** postfixAvailable - Postfix, its tools and openssl are installed here. */
export function postfixAvailable(): boolean {
  return POSTFIX_BINARIES.every((b) => programPath(b) !== undefined)
    && MASTER_CF_SOURCES.some((f) => existsSync(f));
}

/**
 * postfixSkipReason - undefined when Postfix tests must run; otherwise the
 * reason to skip them, which exists only when ensure-system-deps.sh reported
 * that it could not provide Postfix (not root, no apt-get). A missing Postfix
 * without that report is a test failure, not a skip (requirePostfix()).
 */
export function postfixSkipReason(): string | undefined {
  const problem = !postfixAvailable() ? "postfix not installed" : !isRoot() ? "postfix cannot run here" : undefined;
  return skipReason("real-Postfix", problem);
}

// isRoot - a private instance's master(8) must be started by root
function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** requirePostfix - throw a clear error when Postfix is missing or we are not root. */
export function requirePostfix(): void {
  if (postfixAvailable()) {
    const maps = execFileSync("postconf", ["-m"], { env: { ...process.env, PATH: `${SBIN_PATH}:${process.env["PATH"] ?? ""}` } });
    if (!maps.toString().split("\n").includes("lmdb")) {
      throw new Error("postfix-lmdb not installed (postconf -m lists no lmdb); run scripts/ensure-system-deps.sh as root");
    }
    if (isRoot()) return;
    throw new Error("a private Postfix instance must be started by root; run the tests as root "
      + "(or through scripts/ensure-system-deps.sh, which marks them skipped when not root)");
  }
  const missing = POSTFIX_BINARIES.filter((b) => programPath(b) === undefined);
  throw new Error(
    `postfix not installed (missing: ${missing.join(", ") || "master.cf"}); `
      + "run scripts/ensure-system-deps.sh as root, or apt-get install postfix postfix-lmdb openssl swaks",
  );
}

// instancePath - PATH for an instance's commands: the release's usr/sbin first, then the system's
function instancePath(releaseRoot: string | undefined): string {
  const sbin = releaseRoot === undefined ? SBIN_PATH : `${join(releaseRoot, "usr", "sbin")}:${SBIN_PATH}`;
  return `${sbin}:${process.env["PATH"] ?? ""}`;
}

// run - execFile with a clean PATH (opts.path: an instance's); rejects with the command, status and output
function run(file: string, args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; path?: string } = {}):
  Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, {
      env: { ...process.env, PATH: opts.path ?? instancePath(undefined), ...opts.env },
      timeout: opts.timeoutMs ?? 60_000,
      maxBuffer: 16 * 1024 * 1024,
    }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`${file} ${args.join(" ")}: ${err.message.trim()}\nstdout: ${stdout}\nstderr: ${stderr}`));
      } else {
        resolve({ stdout, stderr });
      }
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

// pidAlive - whether a process with this pid exists
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

// masterPid - the pid in $queue_directory/pid/master.pid, or undefined
function masterPid(queueDir: string): number | undefined {
  try {
    const n = Number.parseInt(readFileSync(join(queueDir, "pid", "master.pid"), "utf8").trim(), 10);
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

// rewriteMasterCf - chroot off on every service line, smtpd moved to PORT, plus the second smtpd
function rewriteMasterCf(text: string, port: number, port2: number): string {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || /^\s/.test(line) || line.startsWith("#")) {
      out.push(line);
      continue;
    }
    const f = line.trim().split(/\s+/);
    if (f.length < 8) {
      out.push(line);
      continue;
    }
    f[4] = "n";
    if (f[0] === "smtp" && f[1] === "inet") f[0] = `127.0.0.1:${port}`;
    out.push(f.join(" "));
  }
  out.push(`127.0.0.1:${port2} inet n - n - - smtpd`);
  out.push("  -o myhostname=other.test");
  out.push("  -o content_filter=discard:");
  out.push("");
  return out.join("\n");
}

// releaseMainCf - where a release built from source lives (shared/postfix-src/README.md)
function releaseMainCf(root: string): Record<string, string> {
  return {
    daemon_directory: join(root, "usr", "libexec", "postfix"),
    command_directory: join(root, "usr", "sbin"),
    meta_directory: join(root, "etc", "postfix"),
    shlib_directory: "no",
    sendmail_path: join(root, "usr", "sbin", "sendmail"),
    newaliases_path: join(root, "usr", "bin", "newaliases"),
    mailq_path: join(root, "usr", "bin", "mailq"),
    manpage_directory: join(root, "usr", "share", "man"),
  };
}

// mainCfText - the essentials of a private instance, then the caller's settings
function mainCfText(p: { dir: string; queueDir: string; dataDir: string; maillog: string; host: string;
  cert: string; key: string; port2: number; extra: Record<string, string>; release?: InstanceRelease }): string {
  const settings: Record<string, string> = {
    compatibility_level: p.release?.compatibilityLevel ?? "3.6",
    ...(p.release !== undefined ? releaseMainCf(p.release.root) : {}),
    queue_directory: p.queueDir,
    data_directory: p.dataDir,
    mail_owner: MAIL_OWNER,
    setgid_group: "postdrop",
    inet_interfaces: "127.0.0.1",
    inet_protocols: "ipv4",
    myhostname: p.host,
    mydestination: "",
    mynetworks: "127.0.0.0/8",
    alias_maps: "",
    alias_database: "",
    maillog_file: p.maillog,
    maillog_file_prefixes: p.dir,
    smtpd_tls_cert_file: p.cert,
    smtpd_tls_key_file: p.key,
    smtpd_tls_security_level: "may",
    smtpd_tls_loglevel: "2",
    smtpd_tls_session_cache_database: "lmdb:${data_directory}/smtpd_scache",
    smtp_tls_session_cache_database: "lmdb:${data_directory}/smtp_scache",
    smtp_tls_security_level: "encrypt",
    smtp_tls_loglevel: "2",
    relayhost: `[127.0.0.1]:${p.port2}`,
    smtp_host_lookup: "native",
    smtp_dns_support_level: "disabled",
    smtpd_peername_lookup: "no",
    biff: "no",
    ...p.extra,
  };
  return Object.entries(settings).map(([k, v]) => `${k} = ${v}`).join("\n") + "\n";
}

const live = new Set<{ configDir: string; queueDir: string; dir: string; path: string }>();

// installExitHook - stop and remove instances a test left behind
const installExitHook = exitHook(() => {
  for (const inst of live) {
    const pid = masterPid(inst.queueDir);
    if (pid !== undefined && pidAlive(pid)) {
      try {
        execFileSync("postfix", ["-c", inst.configDir, "abort"], { stdio: "ignore", env: { ...process.env, PATH: inst.path } });
      } catch {
        try { process.kill(pid, "SIGKILL"); } catch { /* gone */ }
      }
    }
    try { rmSync(inst.dir, { recursive: true, force: true }); } catch { /* best effort */ }
  }
});

/**
 * createPostfixInstance - lay out a private instance (not started).
 * The temporary directory is made traversable (0755) for the postfix user;
 * data_directory is owned by postfix, mode 0700.
 */
export async function createPostfixInstance(opts: PostfixInstanceOptions): Promise<PostfixInstance> {
  requirePostfix();
  const dir = await mkdtemp(join(tmpdir(), "tlsmgr-pf-"));
  await chmod(dir, 0o755);
  const configDir = join(dir, "etc");
  const queueDir = join(dir, "spool");
  const dataDir = join(dir, "data");
  const maillog = join(dir, "maillog");
  const releaseRoot = opts.release?.root;
  const path = instancePath(releaseRoot);
  const tracked = { configDir, queueDir, dir, path };
  live.add(tracked);
  installExitHook();

  try {
    await mkdir(configDir, { mode: 0o755 });
    await mkdir(queueDir, { mode: 0o755 });
    await mkdir(dataDir, { mode: 0o700 });
    const uid = Number(execFileSync("id", ["-u", MAIL_OWNER]).toString().trim());
    const gid = Number(execFileSync("id", ["-g", MAIL_OWNER]).toString().trim());
    await chown(dataDir, uid, gid);

    const cert = join(configDir, "cert.pem");
    const key = join(configDir, "key.pem");
    await run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=mx.test",
      "-days", "30", "-keyout", key, "-out", cert]);
    await chmod(key, 0o600);

    const smtpdPort = await freeLoopbackPort();
    let smtpdPort2 = await freeLoopbackPort();
    while (smtpdPort2 === smtpdPort) smtpdPort2 = await freeLoopbackPort();

    const host = `mx-${dir.slice(-6).toLowerCase().replace(/[^a-z0-9]/g, "x")}.test`;
    await writeFile(join(configDir, "main.cf"), mainCfText({
      dir, queueDir, dataDir, maillog, host, cert, key, port2: smtpdPort2, extra: opts.mainCf ?? {},
      ...(opts.release !== undefined ? { release: opts.release } : {}),
    }));
    const masterSrc = releaseRoot !== undefined ? join(releaseRoot, "etc", "postfix", "master.cf")
      : MASTER_CF_SOURCES.find((f) => existsSync(f));
    if (masterSrc === undefined) throw new Error("no master.cf to copy (postfix not installed?)");
    await writeFile(join(configDir, "master.cf"),
      rewriteMasterCf(await readFile(masterSrc, "utf8"), smtpdPort, smtpdPort2));

    const postconf = async (...args: string[]): Promise<string> =>
      (await run("postconf", ["-c", configDir, ...args], { path })).stdout;

    if (opts.tlsmgr === "none") {
      await postconf("-MX", "tlsmgr/unix");
    } else if (typeof opts.tlsmgr === "object") {
      await postconf("-M", `tlsmgr/unix=tlsmgr unix - - n 1000? 1 ${opts.tlsmgr.command}`);
    }

    let started = false;
    const inst: PostfixInstance = {
      dir, configDir, queueDir, dataDir, maillog, smtpdPort, smtpdPort2,
      tlsmgrSocket: join(queueDir, "private", "tlsmgr"),
      path,
      ...(releaseRoot !== undefined ? { releaseRoot } : {}),
      postconf,

      async start() {
        try {
          await run("postfix", ["-c", configDir, "start"], { path });
        } catch (e) {
          // postfix reports fatal errors to syslog or a tty only: ask again under script(1)
          let why = "";
          try {
            why = (await run("script", ["-qc", `postfix -c ${configDir} check`, "/dev/null"], { path })).stdout;
          } catch (e2) {
            why = (e2 as Error).message;
          }
          throw new Error(`postfix -c ${configDir} start failed: ${(e as Error).message}\ncheck: ${why}`);
        }
        started = true;
        // master writes its pid and opens its sockets at once; wait for the pid file
        for (let i = 0; i < 200 && masterPid(queueDir) === undefined; i++) await sleep(50);
        if (masterPid(queueDir) === undefined) throw new Error(`postfix master did not start in ${dir}`);
      },

      async stop() {
        const pid = masterPid(queueDir);
        if (pid === undefined || !pidAlive(pid)) return;
        try {
          await run("postfix", ["-c", configDir, "stop"], { path });
        } catch {
          /* fall through to the wait and the kill */
        }
        for (let i = 0; i < 200 && pidAlive(pid); i++) await sleep(50);
        if (pidAlive(pid)) {
          try { process.kill(pid, "SIGKILL"); } catch { /* gone */ }
        }
        started = false;
      },

      async reload() {
        await run("postfix", ["-c", configDir, "reload"], { path });
      },

      async sendmail(to: string, body?: string) {
        const text = body ?? `Subject: tlsmgr-ts test\n\ntest message to ${to}\n`;
        await run("sendmail", ["-C", configDir, "-f", `sender@${host}`, to], { input: text, path });
      },

      async logText() {
        try {
          return await readFile(maillog, "utf8");
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === "ENOENT") return "";
          throw e;
        }
      },

      async waitForLog(re: RegExp, timeoutMs: number) {
        const deadline = Date.now() + timeoutMs;
        const flags = re.flags.replace("g", "").replace("y", "");
        const lineRe = new RegExp(re.source, flags);
        for (;;) {
          const text = await inst.logText();
          const hit = text.split("\n").find((l) => lineRe.test(l));
          if (hit !== undefined) return hit;
          if (Date.now() > deadline) {
            const tail = text.split("\n").slice(-40).join("\n");
            throw new Error(`no maillog line matching ${re} within ${timeoutMs} ms; maillog tail:\n${tail}`);
          }
          await sleep(100);
        }
      },

      async destroy() {
        if (started || masterPid(queueDir) !== undefined) await inst.stop();
        await rm(dir, { recursive: true, force: true });
        live.delete(tracked);
      },
    };
    return inst;
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    live.delete(tracked);
    throw e;
  }
}

export interface OpensslResult {
  /** s_client printed a line beginning "Reused". */
  reused: boolean;
  /** stdout and stderr of s_client (of the last step). */
  output: string;
}

/**
 * opensslResumes - one `openssl s_client -starttls smtp` session on 127.0.0.1.
 * Without sessIn: a handshake on port that saves its session with -sess_out
 *   sessFile; with port2 it then tries to resume that session on port2 with
 *   -sess_in and returns that second result.
 * With sessIn: one handshake on port with -sess_in sessFile.
 * Each handshake is opensslHandshake (openssl-probe.ts) with its defaults.
 */
export async function opensslResumes(port: number, sessFile: string,
  opts: { sessIn?: boolean; port2?: number } = {}): Promise<OpensslResult> {
  if (opts.sessIn !== true && opts.port2 !== undefined) {
    await opensslResumes(port, sessFile, {});
    return opensslResumes(opts.port2, sessFile, { sessIn: true });
  }
  const r = await opensslHandshake(opts.sessIn === true ? { port, sessIn: sessFile } : { port, sessOut: sessFile });
  return { reused: r.reused, output: r.output };
}

/**
 * sessionTicketKeyName - the first 16 bytes (RFC 5077 key_name) of the
 * session ticket stored in an s_client -sess_out file, as hex; undefined when
 * the session carries no ticket.
 */
export async function sessionTicketKeyName(sessFile: string): Promise<string | undefined> {
  const { stdout } = await run("openssl", ["sess_id", "-in", sessFile, "-noout", "-text"]);
  const at = stdout.indexOf("TLS session ticket:");
  if (at < 0) return undefined;
  const hex: string[] = [];
  for (const line of stdout.slice(at).split("\n").slice(1)) {
    const m = /^\s*[0-9a-f]{4} - ((?:[0-9a-f]{2}[ -]){1,16})/i.exec(line);
    if (m === null) break;
    hex.push(...(m[1] ?? "").trim().split(/[ -]+/));
    if (hex.length >= 16) break;
  }
  return hex.length >= 16 ? hex.slice(0, 16).join("").toLowerCase() : undefined;
}
