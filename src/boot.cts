/**
 * boot.cts - what bin/tlsmgr runs: the daemon's entry before its code is
 *            known to load. Checks the Node.js version against package.json's
 *            engines, then loads main.js; when either fails the cause goes to
 *            standard error and, under master(8), to the mail log through
 *            postlog(1), and the process exits 1.
 * Owns: the Node.js version check, the text of a load failure (the file and
 *       line of a syntax error, the module not found, where a throw came
 *       from), and exiting 1 after it was logged.
 * Not here: running postlog (log/postlog-command.cts); failures once main.js
 *           runs (master/multi-server.ts logs them, log/early-sink.ts before
 *           main.cf is read); which Node.js runs this (bin/tlsmgr).
 * See also: bin/tlsmgr, main.ts, package.json (engines), README "Upgrade"
 *
 * CommonJS with ES2015 syntax and no "node:" specifiers, so that an old
 * Node.js parses it and can say that it is too old. Under master(8) the
 * daemon's standard error goes nowhere: without this file a missing module
 * shows in the mail log only as master's "exit status 1" and "bad command
 * startup -- throttling".
 */

import fs = require("fs");
import path = require("path");
import url = require("url");
import childProcess = require("child_process");
import postlogCommand = require("./log/postlog-command.cjs");

/** The process name: the log tag's second half, as main.ts names it. */
const NAME = "tlsmgr";
/** This file is dist/src/boot.cjs. */
const ROOT = path.resolve(__dirname, "..", "..");
const MAIN_JS = path.join(ROOT, "dist", "src", "main.js");
/** When package.json cannot say: the engines.node of this release. */
const DEF_MIN_NODE = 20;

/**
 * importModule - import(), compiled only when called: Node.js 8 cannot parse
 * the word, and must get as far as saying that it is too old
 */
const importModule = (href: string): Promise<unknown> =>
  (new Function("href", "return import(href)") as (href: string) => Promise<unknown>)(href);

/** packageFacts - version and the lowest Node.js major of engines.node (">=20") from package.json */
function packageFacts(): { version: string; minNode: number } {
  let version = "unknown";
  let minNode = DEF_MIN_NODE;
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
    if (typeof pkg.version === "string") version = pkg.version;
    const m = /^\s*>=\s*(\d+)/.exec((pkg.engines && pkg.engines.node) || "");
    if (m !== null) minNode = Number(m[1]);
  } catch (e) {
    /* the defaults */
  }
  return { version, minNode };
}

/** fail - say why on standard error and, under master, in the mail log; exit 1 */
function fail(text: string): void {
  const line = postlogCommand.oneLine(text);
  try {
    process.stderr.write(`${NAME}[${process.pid}]: fatal: ${line}\n`);
  } catch (e) {
    /* no standard error */
  }
  const argv = process.argv.slice(2);
  if (postlogCommand.startedByMaster(process.env)) {
    const why = postlogCommand.postlogLine("fatal", line, { name: NAME, argv, env: process.env });
    if (why !== "") {
      try {
        process.stderr.write(`${NAME}[${process.pid}]: warning: cannot log to the mail log: ${why}\n`);
      } catch (e) {
        /* no standard error */
      }
    }
  }
  process.exit(1);
}

/** filePath - a file: URL as a path, anything else as it is */
function filePath(where: string): string {
  return where.indexOf("file://") === 0 ? url.fileURLToPath(where) : where;
}

/**
 * syntaxErrorPlace - "FILE, line N" of a syntax error, which Node.js prints
 * only when the error goes uncaught: load main.js again in a child (with
 * --version, which serves nothing) and read the first line it prints
 */
function syntaxErrorPlace(): string {
  try {
    const r = childProcess.spawnSync(process.execPath, [MAIN_JS, "--version"], {
      stdio: ["ignore", "ignore", "pipe"], encoding: "utf8", timeout: 10000,
    });
    const m = /^(file:\/\/\S+|\/\S+):(\d+)$/m.exec(String(r.stderr || ""));
    return m === null ? "" : `${filePath(m[1])}, line ${m[2]}`;
  } catch (e) {
    return "";
  }
}

/** thrownAt - "FILE, line N" of the first stack frame in this project's files, or "" */
function thrownAt(stack: string): string {
  const m = /\(?(file:\/\/[^\s()]+|\/[^\s():]+):(\d+):\d+\)?/.exec(stack.split("\n").slice(1).join("\n"));
  return m === null ? "" : `${filePath(m[1])}, line ${m[2]}`;
}

/** loadFailureText - why main.js did not load, as one line: place, error name or code, message */
export function loadFailureText(err: unknown): string {
  const e = (err !== null && typeof err === "object" ? err : { message: String(err) }) as
    { name?: string; code?: string; message?: string; stack?: string };
  const message = String(e.message || err);
  let place = "";
  if (e.name === "SyntaxError") place = syntaxErrorPlace();
  else if (!e.code) place = thrownAt(String(e.stack || ""));
  const kind = e.code ? e.code : e.name || "Error";
  return `cannot load ${MAIN_JS}: ${place ? `${place}: ` : ""}${kind}: ${message}`;
}

/** boot - check this Node.js, then run main.js */
function boot(): void {
  const facts = packageFacts();
  const major = Number(process.versions.node.split(".")[0]);
  if (!(major >= facts.minNode)) {
    fail(`Node.js ${process.version} (${process.execPath}) cannot run tlsmgr-ts ${facts.version}: ` +
      `it needs Node.js ${facts.minNode} or later (package.json engines)`);
    return;
  }
  importModule(url.pathToFileURL(MAIN_JS).href).catch((err: unknown) => fail(loadFailureText(err)));
}

if (require.main === module) boot();
