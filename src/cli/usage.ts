/**
 * usage.ts - `--help`, `-h` and `--version` for every command (tlsmgr,
 *            tlsmgr-client, tlsmgr-postfix): the help texts, the version
 *            from package.json, and printing them with exit status 0.
 * Owns: the help text of each command, packageVersion(), the daemon's
 *       start-up line naming its version (startupLine()).
 * Not here: parsing the real options (cli/args.ts for the daemon,
 *           client/cli.ts, tools/tlsmgr-postfix.ts).
 * See also: man/tlsmgr.8 (SYNOPSIS), package.json
 *
 * Only a first argument counts (`tlsmgr --help`, `tlsmgr-postfix install -h`
 * is the subcommand's business): the daemon's getopt stops at nothing else,
 * and master(8) never passes these words.
 */

import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** packageFound - this project's package.json: its directory and "version" (undefined when it cannot be read) */
function packageFound(): { root: string; version: string } | undefined {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++, dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "tlsmgr-ts" && typeof pkg.version === "string") return { root: dir, version: pkg.version };
    } catch {
      /* not here: one level up */
    }
  }
  return undefined;
}

/** packageVersion - "version" of this project's package.json ("unknown" when it cannot be read) */
export function packageVersion(): string {
  return packageFound()?.version ?? "unknown";
}

/** startupLine - the daemon's start-up info line: its version, where its code is, the Node.js running it */
export function startupLine(): string {
  const found = packageFound();
  return `starting tlsmgr-ts ${found?.version ?? "unknown"} from ${found?.root ?? "an unknown directory"}, ` +
    `Node.js ${process.version} (${process.execPath})`;
}

export const DAEMON_HELP = `usage: tlsmgr [generic Postfix daemon options] [--config DIR] [--home DIR] [--socket PATH]
       tlsmgr --help | --version

The tlsmgr(8) of tlsmgr-ts: TLS session caches, session ticket keys and
PRNG seed for Postfix's smtpd(8), smtp(8) and lmtp. Meant to be started by
master(8) (see tlsmgr-postfix install); started by hand it serves on
$queue_directory/private/$tlsmgr_service_name and logs to standard error.

Generic Postfix daemon options (master(5)):
  -c            chroot to queue_directory after start-up
  -d            stay in the foreground, log to standard error too
  -D            debug (accepted; no debugger is started)
  -i TIME       max_idle (accepted; tlsmgr is a persistent process)
  -l            process limit 1 (required under master)
  -m COUNT      max_use (accepted; tlsmgr is a persistent process)
  -n NAME       master.cf service name (default tlsmgr)
  -o NAME=VALUE override a main.cf parameter (repeatable)
  -s COUNT      listening sockets from descriptor 6 on (default 1)
  -S            stand-alone: one client on standard input and output
  -t TRANSPORT  unix or inet
  -u            drop to mail_owner after opening what needs privileges
  -v            more verbose logging (repeatable)
  -V            log to standard error too
  -z            no process limit (accepted)
Other options:
  --config DIR  read DIR/main.cf (default $MAIL_CONFIG, else /etc/postfix)
  --home DIR    embedded mode: socket, caches and exchange file under DIR, no Postfix
  --socket PATH listen on PATH
  --help, -h    this text;  --version  the version

See man tlsmgr (man/tlsmgr.8 in the package).`;

/**
 * infoOption - handle `--help`/`-h`/`--version` as the first argument: print
 * to standard output and return true (the caller exits 0); false otherwise.
 */
export function infoOption(program: string, argv: readonly string[], help: string): boolean {
  const first = argv[0];
  if (first === "--help" || first === "-h") {
    process.stdout.write(help.endsWith("\n") ? help : `${help}\n`);
    return true;
  }
  if (first === "--version") {
    process.stdout.write(`${program} (tlsmgr-ts) ${packageVersion()}\n`);
    return true;
  }
  return false;
}
