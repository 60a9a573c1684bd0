/**
 * flush-batched.ts - a preload module (`node --import`) for the bench's
 *                    `ours-batched` implementation: our daemon with the LMDB
 *                    overlay always flushed by its FLUSH_DELAY_MS timer, as
 *                    before the end-of-turn flush of a quiet event loop.
 * Owns: telling lmdb.ts that the loop is always busy (lmdbSetLoopGauge).
 * Not here: the policy itself (src/cache/backends/lmdb.ts).
 * See also: bench/targets.ts (ours-batched), docs/benchmarks.md ("The tail at one client")
 *
 * Lets one run compare the two flush policies side by side on the same
 * build and the same load.
 */

import { lmdbSetLoopGauge } from "../src/cache/backends/lmdb.js";

lmdbSetLoopGauge({ busy: () => true });
