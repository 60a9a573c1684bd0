import type { Mix } from "./mix.js";
import type { ImplName } from "./targets.js";
export interface SweepSummary { impl: string }
export async function runSweepBench(impl: ImplName, _o: { entries: number; timeout: number; clients: number; mix: Mix; sessionMin: number; sessionMax: number; seed: number; log: (s: string) => void }): Promise<SweepSummary> { return { impl }; }
export function sweepTable(s: SweepSummary[]): string { return JSON.stringify(s); }
