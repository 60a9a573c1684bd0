/**
 * args.ts - the command line of the daemon: Postfix's generic daemon options
 *           (master(5), GETOPT "cdDi:lm:n:o:s:St:uvVz") plus our long options.
 * Owns: parsing argv into DaemonArgs, the Postfix fatal texts for bad option
 *       values, and the MAIL_CONFIG / MAIL_VERBOSE / MAIL_DEBUG environment.
 * Not here: what the options do (master/multi-server.ts, log/setup.ts),
 *           telling whether master(8) started us (master/master-link.ts
 *           masterPresent: the caller says), name=value, time and number
 *           syntax and the config_directory default (config/).
 * See also: postfix/src/master/multi_server.c (multi_server_main),
 *           config/params.ts (overrideSplit), config/units.ts
 *
 * Parsing follows getopt(3) with Postfix's "+" (stop at the first operand):
 * clustered flags (-lu), attached or separate values (-ntlsmgr, -n tlsmgr),
 * "--" ends the options. Long options (--config, --home, --socket, with a
 * separate value or "=value") may appear anywhere among the options.
 */

import { msgFatal } from "../log/msg.js";
import { DEF_CONFIG_DIR, overrideSplit } from "../config/params.js";
import { parseInteger, parseTime } from "../config/units.js";

export interface DaemonArgs {
  /** -c: chroot to queue_directory after start-up */
  chroot: boolean;
  /** -D (or MAIL_DEBUG in the environment): run debugger_command */
  debugger: boolean;
  /** -i: max_idle override, seconds */
  maxIdle?: number;
  /** -l: solitary (master.cf process limit 1) */
  solitary: boolean;
  /** -m: max_use override */
  maxUse?: number;
  /** -n: master.cf service name, default "tlsmgr" */
  serviceName: string;
  /** -o name=value, in order (each checked as Postfix's split_nameval does) */
  overrides: string[];
  /** -s: number of listening sockets from fd 6 on, default 1 */
  socketCount: number;
  /** -S: stand-alone, one client on stdin/stdout */
  standalone: boolean;
  /** -t: transport (unix or inet); "unix" when not given outside master */
  transport: string;
  /** -u: drop to mail_owner */
  dropPrivileges: boolean;
  /** -v count (plus 1 for MAIL_VERBOSE in the environment) */
  verbose: number;
  /** -V: also log to stderr (Postfix's msg_vstream_init) */
  verify: boolean;
  /** -z: master.cf process limit 0 */
  z: boolean;
  /** -d: stay in the foreground */
  foreground: boolean;
  /** --socket PATH: listen here instead of $queue_directory/private/$service */
  socket?: string;
  /** --home DIR: embedded mode, everything under DIR */
  home?: string;
  /** --config DIR, else MAIL_CONFIG, else config_directory's default (config/params.ts) */
  configDir: string;
  /** started by master (as the caller found: master/master-link.ts masterPresent) */
  underMaster: boolean;
  /** words after the options (Postfix passes them to the service; tlsmgr ignores them) */
  operands: string[];
}

/** The generic daemon options, as in Postfix's multi_server.c. */
export const DAEMON_GETOPT = "cdDi:lm:n:o:s:St:uvVz";

export const DAEMON_USAGE =
  "usage: tlsmgr [-cdDlSuvVz] [-i max_idle] [-m max_use] [-n service_name] [-o name=value] " +
  "[-s socket_count] [-t transport] [--config DIR] [--home DIR] [--socket PATH]";

export const DEF_SERVICE_NAME = "tlsmgr";

const LONG_OPTIONS = new Set(["config", "home", "socket"]);

/** usageFatal - one fatal line: the usage and what was wrong */
function usageFatal(problem: string): never {
  msgFatal(`${DAEMON_USAGE} (${problem})`);
}

/** What the caller knows that the command line does not say. */
export interface DaemonArgsContext {
  /** master(8) started this process (master/master-link.ts masterPresent); default false */
  underMaster?: boolean;
}

/**
 * parseDaemonArgs - argv WITHOUT the node and script names (process.argv.slice(2)).
 * Bad usage: msgFatal (throws FatalError), with Postfix's text where Postfix has one.
 */
export function parseDaemonArgs(argv: string[], env: NodeJS.ProcessEnv, context: DaemonArgsContext = {}): DaemonArgs {
  const args: DaemonArgs = {
    chroot: false,
    debugger: env.MAIL_DEBUG !== undefined,
    solitary: false,
    serviceName: DEF_SERVICE_NAME,
    overrides: [],
    socketCount: 1,
    standalone: false,
    transport: "",
    dropPrivileges: false,
    verbose: env.MAIL_VERBOSE !== undefined ? 1 : 0,
    verify: false,
    z: false,
    foreground: false,
    configDir: env.MAIL_CONFIG || DEF_CONFIG_DIR,
    underMaster: context.underMaster ?? false,
    operands: [],
  };
  let transportGiven = false;

  /** shortOption - one letter with its value (undefined for a flag) */
  const shortOption = (c: string, value: string | undefined): void => {
    switch (c) {
      case "c":
        args.chroot = true;
        break;
      case "d":
        args.foreground = true;
        break;
      case "D":
        args.debugger = true;
        break;
      case "i": {
        // As a max_idle value: Postfix time units (seconds when none), at least 1.
        const sec = parseTime(value!, "s");
        if (sec === undefined || sec < 1) msgFatal(`invalid "-i ${value}" option value: bad max_idle time`);
        args.maxIdle = sec;
        break;
      }
      case "l":
        args.solitary = true;
        break;
      case "m": {
        const n = parseInteger(value!);
        if (n === undefined || n < 1) msgFatal(`invalid "-m ${value}" option value: bad max_use count`);
        args.maxUse = n;
        break;
      }
      case "n":
        if (value === "") usageFatal("empty service name");
        args.serviceName = value!;
        break;
      case "o":
        overrideSplit(value!); // fatal when malformed, as multi_server_main
        args.overrides.push(value!);
        break;
      case "s": {
        const n = parseInteger(value!);
        if (n === undefined || n <= 0) msgFatal(`invalid socket_count: ${value}`);
        args.socketCount = n;
        break;
      }
      case "S":
        args.standalone = true;
        break;
      case "t":
        args.transport = value!;
        transportGiven = true;
        break;
      case "u":
        args.dropPrivileges = true;
        break;
      case "v":
        args.verbose++;
        break;
      case "V":
        args.verify = true;
        break;
      case "z":
        args.z = true;
        break;
      default:
        usageFatal(`invalid option: -${c}`);
    }
  };

  let i = 0;
  for (; i < argv.length; i++) {
    const word = argv[i];
    if (word === "--") {
      i++;
      break;
    }
    if (word.startsWith("--")) {
      const eq = word.indexOf("=");
      const name = word.slice(2, eq < 0 ? undefined : eq);
      if (!LONG_OPTIONS.has(name)) usageFatal(`invalid option: --${name}`);
      let value: string;
      if (eq >= 0) value = word.slice(eq + 1);
      else if (i + 1 < argv.length) value = argv[++i];
      else usageFatal(`option requires an argument: --${name}`);
      if (value === "") usageFatal(`empty value for --${name}`);
      if (name === "config") args.configDir = value;
      else if (name === "home") args.home = value;
      else args.socket = value;
      continue;
    }
    if (word.length < 2 || word[0] !== "-") break; // first operand ends the options
    for (let j = 1; j < word.length; j++) {
      const c = word[j];
      const at = DAEMON_GETOPT.indexOf(c);
      if (at < 0 || c === ":") usageFatal(`invalid option: -${c}`);
      if (DAEMON_GETOPT[at + 1] === ":") {
        let value: string;
        if (j + 1 < word.length) value = word.slice(j + 1);
        else if (i + 1 < argv.length) value = argv[++i];
        else usageFatal(`option requires an argument: -${c}`);
        shortOption(c, value);
        break;
      }
      shortOption(c, undefined);
    }
  }
  args.operands = argv.slice(i);

  // As multi_server_main: a service under master needs a transport it can serve.
  if (!args.standalone && args.underMaster && !transportGiven) msgFatal("no transport type specified");
  if (!transportGiven) args.transport = "unix";
  const t = args.transport.toLowerCase();
  if (t !== "unix" && t !== "inet") msgFatal(`unsupported transport type: ${args.transport}`);
  args.transport = t;
  return args;
}

/**
 * requireSolitary - tlsmgr is MAIL_SERVER_SOLITARY: under master it must have
 * process limit 1 (master passes -l). Postfix's text.
 */
export function requireSolitary(args: DaemonArgs): void {
  if (args.underMaster && !args.standalone && !args.solitary) {
    msgFatal(`service ${args.serviceName} requires a process limit of 1`);
  }
}
