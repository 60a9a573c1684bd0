/**
 * postfix-releases.ts - the Postfix releases the test matrix runs against, and
 *                       their builds from source, cached outside the clone.
 * Owns: the release list (3.5.27, Debian's 3.7, 3.8.20, 3.10.13, 3.11.6) and
 *       what differs between them for an instance (compatibility_level, the
 *       release root), where the sources are (../shared/postfix-src, or
 *       $TLSMGR_POSTFIX_SRC), the skip when they are absent (said once), and
 *       building a release once into
 *       ${XDG_CACHE_HOME:-~/.cache}/tlsmgr-ts/postfix/RELEASE-HASH/root, keyed by
 *       the tarball's SHA-256, built in a temporary directory beside it and
 *       renamed into place (two runs building at once both succeed; one build wins).
 * Not here: running an instance (postfix-instance.ts, which takes the root);
 *           installing the build tools (scripts/ensure-system-deps.sh).
 * See also: /work/shared/postfix-src/README.md, test/postfix/release-matrix.test.ts
 */

import { execFile, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, existsSync, readdirSync, statSync } from "node:fs";
import { chmod, mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "./daemon.js";
import { postfixSkipReason } from "./postfix-instance.js";

/** One release of the matrix. */
export interface PostfixRelease {
  /** "3.5.27", or "3.7" for Debian's package. */
  name: string;
  /** The tarball in the sources directory; undefined: the installed Debian package. */
  tarball?: string;
  /** compatibility_level that keeps its start-up quiet (3.5 knows no "3.6"-style values). */
  compatibilityLevel: string;
  /** Its clients wait for the server announcement (Postfix >= 3.6). */
  announces: boolean;
}

export const POSTFIX_RELEASES: ReadonlyArray<PostfixRelease> = [
  { name: "3.5.27", tarball: "postfix-3.5.27.tar.gz", compatibilityLevel: "2", announces: false },
  { name: "3.7", compatibilityLevel: "3.6", announces: true },
  { name: "3.8.20", tarball: "postfix-3.8.20.tar.gz", compatibilityLevel: "3.8", announces: true },
  { name: "3.10.13", tarball: "postfix-3.10.13.tar.gz", compatibilityLevel: "3.10", announces: true },
  { name: "3.11.6", tarball: "postfix-3.11.6.tar.gz", compatibilityLevel: "3.11", announces: true },
];

/** Where the release tarballs are: $TLSMGR_POSTFIX_SRC, else ../shared/postfix-src beside the clone. */
export const POSTFIX_SRC_DIR = process.env["TLSMGR_POSTFIX_SRC"] ?? join(REPO_ROOT, "..", "shared", "postfix-src");

/** The build cache: ${XDG_CACHE_HOME:-$HOME/.cache}/tlsmgr-ts/postfix. */
export const POSTFIX_BUILD_CACHE = join(process.env["XDG_CACHE_HOME"] || join(homedir(), ".cache"), "tlsmgr-ts", "postfix");

const BUILD_PATH = "/usr/sbin:/usr/bin:/sbin:/bin";
const BUILD_TOOLS = ["gcc", "make", "m4"];
const BUILD_HEADERS = ["/usr/include/db.h", "/usr/include/openssl/ssl.h"];

let skipBase: { why: string | undefined } | undefined;
let skipSources: { why: string | undefined } | undefined;

/**
 * releaseMatrixSkipReason - why the matrix cannot run a release here (without
 * a release: the releases built from source), said once on stderr; undefined
 * when it can. Absent sources (a user's own clone) skip the built releases;
 * what postfixSkipReason() reports (not root, no Postfix) skips them all.
 * One small function for the project's skip helper to fold in.
 */
export function releaseMatrixSkipReason(release?: PostfixRelease): string | undefined {
  skipBase ??= { why: postfixSkipReason() };
  if (skipBase.why !== undefined) return skipBase.why;
  if (release !== undefined && release.tarball === undefined) return undefined; // the installed package
  if (skipSources === undefined) {
    const tarballs = existsSync(POSTFIX_SRC_DIR) ? readdirSync(POSTFIX_SRC_DIR).filter((f) => f.endsWith(".tar.gz")) : [];
    const why = tarballs.length > 0 ? undefined
      : `no Postfix release sources in ${POSTFIX_SRC_DIR} (set TLSMGR_POSTFIX_SRC to a directory of postfix-X.Y.Z.tar.gz)`;
    if (why !== undefined) process.stderr.write(`\n*** warning: SKIPPING the Postfix releases built from source: ${why} ***\n\n`);
    skipSources = { why };
  }
  return skipSources.why;
}

// sha256File - hex SHA-256 of a file
function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash("sha256");
    createReadStream(path).on("error", reject).on("data", (d) => h.update(d)).on("end", () => resolve(h.digest("hex")));
  });
}

// run - a build step in cwd, its output appended to log; rejects with the log's tail
function run(cmd: string, args: string[], cwd: string, log: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, env: { ...process.env, PATH: `${BUILD_PATH}:${process.env["PATH"] ?? ""}`, LC_ALL: "C" },
      maxBuffer: 256 * 1024 * 1024, timeout: 900_000 }, (err, stdout, stderr) => {
      log.push(`$ ${cmd} ${args.join(" ")}`, stdout, stderr);
      if (err) reject(new Error(`${cmd} ${args.join(" ")} in ${cwd}: ${err.message}\n${log.join("\n").split("\n").slice(-40).join("\n")}`));
      else resolve();
    });
  });
}

// haveBuildTools - the compiler, make, m4 and the Berkeley DB and OpenSSL headers are installed
function haveBuildTools(): boolean {
  const onPath = (t: string): boolean => `${BUILD_PATH}:${process.env["PATH"] ?? ""}`.split(":")
    .some((d) => d !== "" && existsSync(join(d, t)));
  return BUILD_TOOLS.every(onPath) && BUILD_HEADERS.every((f) => existsSync(f));
}

// ensureBuildTools - install them through scripts/ensure-system-deps.sh (root), else say what is missing
function ensureBuildTools(): void {
  if (haveBuildTools()) return;
  if (process.getuid?.() === 0) {
    execFileSync("bash", [join(REPO_ROOT, "scripts", "ensure-system-deps.sh")], { stdio: ["ignore", "ignore", "inherit"] });
  }
  if (!haveBuildTools()) {
    throw new Error(`cannot build Postfix: needs ${BUILD_TOOLS.join(", ")}, libdb5.3-dev and libssl-dev `
      + "(run scripts/ensure-system-deps.sh as root)");
  }
}

/** The parts of a built release a test uses. */
export interface ReleaseBuild {
  release: PostfixRelease;
  /** The install root: usr/sbin (postfix, postconf, sendmail), usr/libexec/postfix, etc/postfix. */
  root: string;
  /** Built by this call (false: found in the cache). */
  built: boolean;
}

/**
 * postfixReleaseRoot - the install root of a release, built first when the
 * cache has none for this tarball. Safe when several processes build the same
 * release at once: each builds in its own temporary directory and the first
 * rename wins; the others remove theirs and use it.
 */
export async function postfixReleaseRoot(release: PostfixRelease): Promise<ReleaseBuild> {
  if (release.tarball === undefined) throw new Error(`Postfix ${release.name} is the installed package, not a build`);
  const tarball = join(POSTFIX_SRC_DIR, release.tarball);
  const hash = (await sha256File(tarball)).slice(0, 16);
  const final = join(POSTFIX_BUILD_CACHE, `${release.name}-${hash}`);
  const root = join(final, "root");
  if (existsSync(join(root, "usr", "sbin", "postconf"))) return { release, root, built: false };

  ensureBuildTools();
  process.stderr.write(`building Postfix ${release.name} from ${tarball} into ${final} (once; about 25 s)\n`);
  await mkdir(POSTFIX_BUILD_CACHE, { recursive: true });
  const tmp = await mkdtemp(join(POSTFIX_BUILD_CACHE, `.build-${release.name}-`));
  await chmod(tmp, 0o755); // as an install root would be (mkdtemp makes it 0700)
  const log: string[] = [];
  try {
    await run("tar", ["-xzf", tarball, "-C", tmp], tmp, log);
    const src = join(tmp, `postfix-${release.name}`);
    if (!statSync(src).isDirectory()) throw new Error(`${tarball} has no postfix-${release.name}/`);
    await run("make", ["makefiles", "CCARGS=-DUSE_TLS -DNO_NIS -DNO_PCRE -DNO_EAI", "AUXLIBS=-lssl -lcrypto",
      "OPT=-O1", "DEBUG="], src, log);
    await run("make", ["-j2"], src, log);
    await run("make", ["non-interactive-package", `install_root=${join(tmp, "root")}`,
      "manpage_directory=/usr/share/man", "readme_directory=no", "html_directory=no"], src, log);
    await rm(src, { recursive: true, force: true });
    await writeFile(join(tmp, "BUILD-INFO"), `${release.tarball} sha256 ${hash}... built ${new Date().toISOString()}\n`);
    try {
      await rename(tmp, final);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== "ENOTEMPTY" && code !== "EEXIST") || !existsSync(join(root, "usr", "sbin", "postconf"))) throw err;
      await rm(tmp, { recursive: true, force: true }); // another run finished first: use its build
      return { release, root, built: false };
    }
    return { release, root, built: true };
  } catch (err) {
    await writeFile(join(POSTFIX_BUILD_CACHE, `build-${release.name}.log`), log.join("\n")).catch(() => undefined);
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** releaseMailVersion - mail_version as the release's own postconf reports it. */
export async function releaseMailVersion(root: string | undefined): Promise<string> {
  const postconf = root === undefined ? "/usr/sbin/postconf" : join(root, "usr", "sbin", "postconf");
  return new Promise((resolve, reject) => {
    execFile(postconf, ["-dh", "mail_version"], (err, stdout) => (err ? reject(err) : resolve(stdout.trim())));
  });
}
