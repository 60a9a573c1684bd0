/**
 * watchdog.ts - the daemon_timeout watchdog: end a process whose event loop
 *               is stuck, as Postfix's watchdog(3) does with alarm(2).
 * Owns: the heartbeat the event loop gives (a timer), the watching thread
 *       (master/watchdog-worker.ts) that waits on it with Atomics.wait, and
 *       passing the current log plan to that thread so it can say why.
 * Not here: the master(8) status pipe (master/master-link.ts).
 * See also: postfix/src/util/watchdog.c, master/watchdog-worker.ts
 *
 * A JavaScript timer cannot fire while the event loop is stuck, so the watch
 * runs in a worker thread. The loop pats a shared counter from an unref'd
 * timer at least every min(timeout/3, 1 s); when the counter has not moved for
 * the whole timeout, the worker logs "fatal: watchdog timeout" and kills the
 * process with SIGKILL (a stuck loop cannot run exit handlers; Postfix too
 * ends with a kill when its own exit hangs). The process then exits by signal.
 */

import { Worker } from "node:worker_threads";
import { logPlan, onLogPlanChange, type LogPlan } from "../log/setup.js";
import { errorText } from "../log/errors.js";
import { msgDebug, msgFatal, msgWarn } from "../log/msg.js";

export interface Watchdog {
  /** pat - prove the loop is alive now (the timer does this too) */
  pat(): void;
  /** stop - end the watch and its thread */
  stop(): void;
}

/** Slots of the shared Int32Array (master/watchdog-worker.ts imports them). */
export const WD_COUNTER = 0;
export const WD_STOP = 1;
export const WD_READY = 2;

/** How long start-up may wait for the thread to have loaded its code. */
const READY_WAIT_MS = 10_000;

/** What the worker receives. */
export interface WatchdogWorkerData {
  sab: SharedArrayBuffer;
  timeoutMs: number;
  plan: LogPlan | undefined;
  processName: string;
}

/** watchdogCreate - start watching; timeoutSec > 0 (fractions allowed for tests) */
export function watchdogCreate(timeoutSec: number, processName = "tlsmgr"): Watchdog {
  if (!(timeoutSec > 0)) msgFatal(`watchdog timeout ${timeoutSec} is too small`);
  const timeoutMs = Math.max(1, Math.round(timeoutSec * 1000));
  const sab = new SharedArrayBuffer(12);
  const cells = new Int32Array(sab);
  const data: WatchdogWorkerData = { sab, timeoutMs, plan: logPlan(), processName };
  // execArgv: [] so that the parent's flags (e.g. --input-type, -e) do not change how the thread starts.
  const worker = new Worker(new URL("./watchdog-worker.js", import.meta.url), { workerData: data, execArgv: [] });
  worker.unref();
  worker.on("error", (err) => msgWarn(`watchdog thread: ${errorText(err)}`));
  // Block start-up (not the request path) until the thread has loaded its modules
  // and the addon: after chroot(2) it could no longer load them.
  if (Atomics.wait(cells, WD_READY, 0, READY_WAIT_MS) === "timed-out") {
    msgWarn("watchdog thread did not start in time");
  }

  const pat = (): void => {
    Atomics.add(cells, WD_COUNTER, 1);
    Atomics.notify(cells, WD_COUNTER);
  };
  const timer = setInterval(pat, Math.min(Math.floor(timeoutMs / 3) || 1, 1000));
  timer.unref();
  const unsubscribe = onLogPlanChange((plan) => worker.postMessage(plan));
  let stopped = false;
  msgDebug(`watchdog_create: ${timeoutSec}`);
  return {
    pat,
    stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      unsubscribe();
      Atomics.store(cells, WD_STOP, 1);
      pat();
      void worker.terminate();
    },
  };
}
