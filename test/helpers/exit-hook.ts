/**
 * exit-hook.ts - clean-up that runs when a test process exits, also when it
 *                is ended by SIGINT or SIGTERM.
 * Owns: turning SIGINT/SIGTERM into process.exit (130/143) when nobody else
 *       handles them, so that "exit" handlers run; installing a clean-up
 *       once, at its first use.
 * Not here: what to clean up (daemon.ts kills daemons, postfix-instance.ts
 *           aborts instances and removes their directories).
 * See also: node:process "exit" event (synchronous work only)
 */

/** exitHook - an installer that, on its first call, makes cleanup run at process exit; later calls do nothing. */
export function exitHook(cleanup: () => void): () => void {
  let installed = false;
  return () => {
    if (installed) return;
    installed = true;
    // a test process ended by a signal still runs the exit hook
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      if (process.listenerCount(sig) === 0) process.once(sig, () => process.exit(sig === "SIGINT" ? 130 : 143));
    }
    process.on("exit", cleanup);
  };
}
