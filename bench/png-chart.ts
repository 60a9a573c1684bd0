import type { RunSummary } from "./report.js";
export function plotRuns(_r: RunSummary[], _t: string): Buffer { return Buffer.alloc(0); }
