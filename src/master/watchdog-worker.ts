/**
 * watchdog-worker.ts - the thread of master/watchdog.ts: wait on the heartbeat
 *                      counter; when it stands still for the whole timeout,
 *                      log "fatal: watchdog timeout" and kill the process.
 * Owns: the wait loop and the last words. Runs only as a worker thread.
 * Not here: starting it, patting (master/watchdog.ts).
 * See also: postfix/src/util/watchdog.c (watchdog_event)
 *
 * Logging from here cannot use the main thread (it is the one stuck), so the
 * sinks are rebuilt from the log plan, and stderr is written with writeSync
 * (a worker's process.stderr is relayed through the main thread).
 */

import { writeSync } from "node:fs";
import { parentPort, receiveMessageOnPort, workerData } from "node:worker_threads";
import { sinksFromPlan, type LogPlan } from "../log/setup.js";
import { nativeAvailable } from "../native/posix.js";
import { WD_COUNTER, WD_READY, WD_STOP, type WatchdogWorkerData } from "./watchdog.js";

/** lastWords - say why, on every sink of the newest plan; never throw */
function lastWords(plan: LogPlan | undefined, processName: string): void {
  const text = "watchdog timeout";
  const name = plan?.processName ?? processName;
  if (!plan || plan.stderr) {
    try {
      writeSync(2, `${name}[${process.pid}]: fatal: ${text}\n`);
    } catch {
      /* stderr closed */
    }
  }
  if (plan && (plan.syslog || plan.postlog)) {
    try {
      const made = sinksFromPlan({ ...plan, stderr: false });
      for (const s of made.sinks) s.write("fatal", text);
      for (const s of made.closable) s.close();
    } catch {
      /* no addon in this thread: nothing more to do */
    }
  }
}

/** watch - block on the counter until it stalls for timeoutMs, or stop is set */
function watch(): void {
  const data = workerData as WatchdogWorkerData;
  const cells = new Int32Array(data.sab);
  // Everything this thread needs is loaded now, before the main thread may chroot:
  // the modules (static imports) and the addon (loaded on first use).
  nativeAvailable();
  Atomics.store(cells, WD_READY, 1);
  Atomics.notify(cells, WD_READY);
  let plan = data.plan;
  for (;;) {
    const seen = Atomics.load(cells, WD_COUNTER);
    if (Atomics.load(cells, WD_STOP) !== 0) return;
    const result = Atomics.wait(cells, WD_COUNTER, seen, data.timeoutMs);
    if (Atomics.load(cells, WD_STOP) !== 0) return;
    if (result === "timed-out" && Atomics.load(cells, WD_COUNTER) === seen) break;
  }
  for (let m = parentPort && receiveMessageOnPort(parentPort); m; m = parentPort && receiveMessageOnPort(parentPort)) {
    plan = m.message as LogPlan;
  }
  lastWords(plan, data.processName);
  process.kill(process.pid, "SIGKILL");
}

watch();
