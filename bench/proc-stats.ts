/**
 * proc-stats.ts - what the benchmark reads about processes and the machine
 *                 from /proc and the file system (Linux).
 * Owns: a process's CPU time (utime + stime, all threads), its memory
 *       (VmHWM, VmRSS, RssAnon, RssFile), finding a daemon by name among
 *       master(8)'s children, file sizes on disk, and the machine summary.
 * Not here: starting anything (bench/targets.ts).
 * See also: proc(5), bench/run.ts
 */

import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { cpus, totalmem } from "node:os";

/** Clock ticks per second of /proc/PID/stat (sysconf(_SC_CLK_TCK)); 100 on Linux. */
let clkTck = 100;
try {
  clkTck = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
} catch {
  /* keep 100 */
}

// statFields - the fields of /proc/PID/stat after "(comm)", so index 0 is field 3 (state)
function statFields(pid: number): string[] | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return undefined;
  }
  const close = text.lastIndexOf(")");
  return text.slice(close + 2).split(" ");
}

/** procCpuSeconds - user and system CPU seconds of a process (all its threads), or undefined when gone */
export function procCpuSeconds(pid: number): { user: number; system: number; total: number } | undefined {
  const f = statFields(pid);
  if (f === undefined) return undefined;
  const user = Number(f[11]) / clkTck;
  const system = Number(f[12]) / clkTck;
  return { user, system, total: user + system };
}

/** procParent - the parent pid of a process, or undefined */
export function procParent(pid: number): number | undefined {
  const f = statFields(pid);
  return f === undefined ? undefined : Number(f[1]);
}

export interface ProcMemory {
  /** peak resident set size, KiB */
  vmHwmKiB: number;
  vmRssKiB: number;
  /** anonymous memory (heap, stacks, malloc), KiB */
  rssAnonKiB: number;
  /** file-backed pages mapped (code, LMDB map), KiB */
  rssFileKiB: number;
}

/** procMemory - memory figures of /proc/PID/status, or undefined when gone */
export function procMemory(pid: number): ProcMemory | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, "latin1");
  } catch {
    return undefined;
  }
  const kib = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text);
    return m ? Number(m[1]) : 0;
  };
  return { vmHwmKiB: kib("VmHWM"), vmRssKiB: kib("VmRSS"), rssAnonKiB: kib("RssAnon"), rssFileKiB: kib("RssFile") };
}

/** procComm - the command name of a process (/proc/PID/comm) */
export function procComm(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, "latin1").trim();
  } catch {
    return undefined;
  }
}

/** childrenOf - the pids whose parent is pid */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const p = Number(name);
    if (procParent(p) === pid) out.push(p);
  }
  return out;
}

/** findChildByComm - the first child of parent whose command name is comm */
export function findChildByComm(parent: number, comm: string): number | undefined {
  return childrenOf(parent).find((p) => procComm(p) === comm);
}

/** fileBytes - apparent size and bytes allocated on disk of a file (0, 0 when absent) */
export function fileBytes(path: string): { size: number; allocated: number } {
  try {
    const st = statSync(path);
    return { size: st.size, allocated: st.blocks * 512 };
  } catch {
    return { size: 0, allocated: 0 };
  }
}

export interface MachineInfo {
  nproc: number;
  cpuModel: string;
  memTotalMiB: number;
  kernel: string;
  node: string;
  postfix: string;
}

/** machineInfo - the machine and software versions for the report */
export function machineInfo(): MachineInfo {
  let model = cpus()[0]?.model ?? "unknown";
  try {
    const m = /^model name\s*:\s*(.*)$/m.exec(readFileSync("/proc/cpuinfo", "latin1"));
    if (m?.[1]) model = m[1].trim();
  } catch {
    /* keep os.cpus() */
  }
  let postfix = "not installed";
  try {
    postfix = execFileSync("postconf", ["-h", "mail_version"], {
      env: { ...process.env, PATH: `/usr/sbin:/usr/bin:/sbin:/bin:${process.env["PATH"] ?? ""}` },
      stdio: ["ignore", "pipe", "ignore"],
    }).toString().trim();
  } catch {
    /* not installed */
  }
  let kernel = "";
  try {
    kernel = readFileSync("/proc/sys/kernel/osrelease", "latin1").trim();
  } catch {
    /* not Linux */
  }
  let nproc = cpus().length;
  try {
    nproc = Number(execFileSync("nproc").toString().trim()) || nproc;
  } catch {
    /* keep os.cpus() */
  }
  return {
    nproc,
    cpuModel: model,
    memTotalMiB: Math.round(totalmem() / 1048576),
    kernel,
    node: process.version,
    postfix,
  };
}

/** machineBusySeconds - CPU seconds all CPUs spent not idle since boot (/proc/stat: all but idle and iowait) */
export function machineBusySeconds(): number {
  try {
    const line = readFileSync("/proc/stat", "latin1").split("\n", 1)[0] ?? "";
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
    return busy / clkTck;
  } catch {
    return 0;
  }
}

/** procStartMs - wall-clock ms (epoch) when a process started (/proc/stat btime + /proc/PID/stat starttime) */
export function procStartMs(pid: number): number | undefined {
  const f = statFields(pid);
  if (f === undefined) return undefined;
  try {
    const m = /^btime (\d+)$/m.exec(readFileSync("/proc/stat", "latin1"));
    if (!m) return undefined;
    return (Number(m[1]) + Number(f[19]) / clkTck) * 1000;
  } catch {
    return undefined;
  }
}
