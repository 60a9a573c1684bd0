/**
 * memory.test.ts - the backend conformance suite over memory: (a Map).
 * See also: test/conformance/backend-suite.ts, src/cache/backends/memory.ts
 */

import { memoryOpen } from "../../src/cache/backends/memory.js";
import { backendConformance } from "./backend-suite.js";

backendConformance("memory", (store, opts) => memoryOpen(store, opts), { persistent: false });
