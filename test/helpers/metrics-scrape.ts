/**
 * metrics-scrape.ts - scrape a Prometheus text endpoint the way Prometheus
 *                     does (HTTP GET), and read its samples, for tests.
 * Owns: the GET, a small parser of the text exposition format (its own, so
 *       tests do not read the daemon's output with the daemon's library),
 *       sample look-up by name and labels, and waiting for an endpoint.
 * Not here: the daemon's metrics (src/stats/prometheus.ts).
 * See also: https://prometheus.io/docs/instrumenting/exposition_formats/
 */

import { request } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";

export interface Scrape {
  status: number;
  contentType: string;
  text: string;
  /** `name{a="x",b="y"}` (labels sorted; `name` alone without labels) -> value. */
  samples: Map<string, number>;
  /** `# TYPE` lines: metric family -> type. */
  types: Map<string, string>;
}

/** sampleKey - the key of a sample in Scrape.samples. */
export function sampleKey(name: string, labels: Record<string, string | number> = {}): string {
  const parts = Object.keys(labels).sort().map((k) => `${k}="${String(labels[k])}"`);
  return parts.length === 0 ? name : `${name}{${parts.join(",")}}`;
}

/** parseExposition - samples and types of a text exposition. */
export function parseExposition(text: string): { samples: Map<string, number>; types: Map<string, string> } {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      types.set(type[1]!, type[2]!);
      continue;
    }
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    const v = m[3] === "+Inf" ? Infinity : m[3] === "-Inf" ? -Infinity : Number(m[3]);
    samples.set(sampleKey(m[1]!, labels), v);
  }
  return { samples, types };
}

/** scrape - GET url; the status, content type, text and parsed samples (empty for a non-200). */
export function scrape(url: string, method = "GET"): Promise<Scrape> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, timeout: 10_000 }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("end", () => {
        const parsed = res.statusCode === 200 && method === "GET" ? parseExposition(text) : { samples: new Map(), types: new Map() };
        resolve({ status: res.statusCode ?? 0, contentType: String(res.headers["content-type"] ?? ""), text, ...parsed });
      });
    });
    req.on("timeout", () => req.destroy(new Error(`${url}: no answer in time`)));
    req.on("error", reject);
    req.end();
  });
}

/** waitForScrape - scrape url until it answers 200 (the daemon binds after start-up); rejects after timeoutMs. */
export async function waitForScrape(url: string, timeoutMs = 15_000): Promise<Scrape> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const s = await scrape(url);
      if (s.status === 200) return s;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`${url}: no metrics within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** sample - a sample's value; throws when it is absent (so that a missing metric fails loudly). */
export function sample(s: Scrape, name: string, labels: Record<string, string | number> = {}): number {
  const v = s.samples.get(sampleKey(name, labels));
  if (v === undefined) throw new Error(`no sample ${sampleKey(name, labels)} in the scrape`);
  return v;
}
