/**
 * png-chart.ts - line charts as PNG files, drawn without any dependency:
 *                an RGB raster, a 5x7 bitmap font, and a PNG encoder over
 *                node:zlib.
 * Owns: panels (linear or categorical x, linear or log y, ticks, labels),
 *       series (lines and points), a legend, the PNG bytes; plotRuns() for
 *       throughput and p99 against client count, plotSweep() for a sweep run.
 * Not here: the figures (bench/report.ts, bench/sweep.ts).
 * See also: docs/benchmarks.md (the plots), PNG (RFC 2083)
 *
 * Why no library: a plot needs a raster, a font and a PNG encoder. The npm
 * chart packages that write PNG draw through node-canvas (chartjs-node-canvas
 * -> canvas: a native addon that prebuild-install downloads at install, else
 * node-gyp builds against cairo) or resvg (@resvg/resvg-js: a native binary
 * per platform); either would add a native build or a download to `npm ci`
 * for a benchmark's two pictures. The small pure-JS encoders (pngjs,
 * fast-png) replace only crc32() and pngChunk() here, about 25 lines, and
 * not the raster, the font or the layout. So the drawing stays here,
 * tested by bench/test/png-chart.test.ts.
 */

import { deflateSync } from "node:zlib";
import type { RunSummary } from "./report.js";

type Rgb = [number, number, number];

const WHITE: Rgb = [255, 255, 255];
const BLACK: Rgb = [0, 0, 0];
const GREY: Rgb = [200, 200, 200];
const DARK: Rgb = [90, 90, 90];
export const PALETTE: Rgb[] = [
  [31, 119, 180], [214, 39, 40], [44, 160, 44], [255, 127, 14], [148, 103, 189], [140, 86, 75], [23, 190, 207],
];

// 5x7 glyphs, row-major, 5 bits a row (lower case is drawn as upper case)
const GLYPHS: Record<string, number[]> = {
  "0": [14, 17, 19, 21, 25, 17, 14], "1": [4, 12, 4, 4, 4, 4, 14], "2": [14, 17, 1, 2, 4, 8, 31],
  "3": [31, 2, 4, 2, 1, 17, 14], "4": [2, 6, 10, 18, 31, 2, 2], "5": [31, 16, 30, 1, 1, 17, 14],
  "6": [6, 8, 16, 30, 17, 17, 14], "7": [31, 1, 2, 4, 8, 8, 8], "8": [14, 17, 17, 14, 17, 17, 14],
  "9": [14, 17, 17, 15, 1, 2, 12],
  A: [14, 17, 17, 31, 17, 17, 17], B: [30, 17, 17, 30, 17, 17, 30], C: [14, 17, 16, 16, 16, 17, 14],
  D: [28, 18, 17, 17, 17, 18, 28], E: [31, 16, 16, 30, 16, 16, 31], F: [31, 16, 16, 30, 16, 16, 16],
  G: [14, 17, 16, 23, 17, 17, 15], H: [17, 17, 17, 31, 17, 17, 17], I: [14, 4, 4, 4, 4, 4, 14],
  J: [7, 2, 2, 2, 2, 18, 12], K: [17, 18, 20, 24, 20, 18, 17], L: [16, 16, 16, 16, 16, 16, 31],
  M: [17, 27, 21, 21, 17, 17, 17], N: [17, 17, 25, 21, 19, 17, 17], O: [14, 17, 17, 17, 17, 17, 14],
  P: [30, 17, 17, 30, 16, 16, 16], Q: [14, 17, 17, 17, 21, 18, 13], R: [30, 17, 17, 30, 20, 18, 17],
  S: [15, 16, 16, 14, 1, 1, 30], T: [31, 4, 4, 4, 4, 4, 4], U: [17, 17, 17, 17, 17, 17, 14],
  V: [17, 17, 17, 17, 17, 10, 4], W: [17, 17, 17, 21, 21, 21, 10], X: [17, 17, 10, 4, 10, 17, 17],
  Y: [17, 17, 17, 10, 4, 4, 4], Z: [31, 1, 2, 4, 8, 16, 31],
  " ": [0, 0, 0, 0, 0, 0, 0], ".": [0, 0, 0, 0, 0, 12, 12], ",": [0, 0, 0, 0, 12, 4, 8],
  "-": [0, 0, 0, 31, 0, 0, 0], "/": [0, 1, 2, 4, 8, 16, 0], "(": [2, 4, 8, 8, 8, 4, 2],
  ")": [8, 4, 2, 2, 2, 4, 8], "%": [24, 25, 2, 4, 8, 19, 3], ":": [0, 12, 12, 0, 12, 12, 0], ";": [0, 12, 12, 0, 12, 4, 8],
  "=": [0, 0, 31, 0, 31, 0, 0], "+": [0, 4, 4, 31, 4, 4, 0], "_": [0, 0, 0, 0, 0, 0, 31],
  "<": [2, 4, 8, 16, 8, 4, 2], ">": [8, 4, 2, 1, 2, 4, 8], "*": [0, 4, 21, 14, 21, 4, 0],
};

/** Canvas - an RGB raster */
export class Canvas {
  readonly data: Uint8Array;

  constructor(readonly width: number, readonly height: number, bg: Rgb = WHITE) {
    this.data = new Uint8Array(width * height * 3);
    for (let i = 0; i < width * height; i++) this.data.set(bg, i * 3);
  }

  set(x: number, y: number, c: Rgb): void {
    x = Math.round(x);
    y = Math.round(y);
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    this.data.set(c, (y * this.width + x) * 3);
  }

  /** get - the colour of a pixel (tests) */
  get(x: number, y: number): Rgb {
    const i = (y * this.width + x) * 3;
    return [this.data[i]!, this.data[i + 1]!, this.data[i + 2]!];
  }

  fillRect(x: number, y: number, w: number, h: number, c: Rgb): void {
    for (let j = 0; j < h; j++) for (let i = 0; i < w; i++) this.set(x + i, y + j, c);
  }

  disc(cx: number, cy: number, r: number, c: Rgb): void {
    for (let j = -r; j <= r; j++) for (let i = -r; i <= r; i++) if (i * i + j * j <= r * r + r) this.set(cx + i, cy + j, c);
  }

  /** line - from (x0,y0) to (x1,y1), `width` pixels thick */
  line(x0: number, y0: number, x1: number, y1: number, c: Rgb, width = 1): void {
    const steps = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0)));
    const r = Math.floor(width / 2);
    for (let s = 0; s <= steps; s++) {
      const x = x0 + ((x1 - x0) * s) / steps;
      const y = y0 + ((y1 - y0) * s) / steps;
      if (r === 0) this.set(x, y, c);
      else this.fillRect(Math.round(x) - r, Math.round(y) - r, width, width, c);
    }
  }

  /** dashed - a 1-pixel dashed line */
  dashed(x0: number, y0: number, x1: number, y1: number, c: Rgb): void {
    const steps = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0)));
    for (let s = 0; s <= steps; s++) if (s % 8 < 4) this.set(x0 + ((x1 - x0) * s) / steps, y0 + ((y1 - y0) * s) / steps, c);
  }

  /** text - 5x7 glyphs scaled by `scale`; returns the width drawn */
  text(x: number, y: number, s: string, c: Rgb, scale = 2): number {
    let cx = x;
    for (const ch of s) {
      const g = GLYPHS[ch] ?? GLYPHS[ch.toUpperCase()] ?? GLYPHS["*"]!;
      for (let row = 0; row < 7; row++) {
        for (let col = 0; col < 5; col++) {
          if (g[row]! & (16 >> col)) this.fillRect(cx + col * scale, y + row * scale, scale, scale, c);
        }
      }
      cx += 6 * scale;
    }
    return cx - x;
  }

  /** png - the raster as PNG bytes (8-bit RGB, no interlace) */
  png(): Buffer {
    const raw = Buffer.alloc((this.width * 3 + 1) * this.height);
    for (let y = 0; y < this.height; y++) {
      raw[y * (this.width * 3 + 1)] = 0;
      raw.set(this.data.subarray(y * this.width * 3, (y + 1) * this.width * 3), y * (this.width * 3 + 1) + 1);
    }
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(this.width, 0);
    ihdr.writeUInt32BE(this.height, 4);
    ihdr[8] = 8; // bit depth
    ihdr[9] = 2; // colour type RGB
    return Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      pngChunk("IHDR", ihdr),
      pngChunk("IDAT", deflateSync(raw, { level: 9 })),
      pngChunk("IEND", Buffer.alloc(0)),
    ]);
  }
}

/** textWidth - pixels a string takes at a scale */
export function textWidth(s: string, scale = 2): number {
  return s.length * 6 * scale;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** crc32 - the PNG/zlib CRC of bytes */
export function crc32(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// pngChunk - length, type, data, CRC of type+data
function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "latin1");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

export interface Series {
  name: string;
  color?: Rgb;
  /** [x, y] pairs; y undefined or not finite = a gap */
  points: Array<[number, number | undefined]>;
  /** draw point markers (default true) */
  markers?: boolean;
}

export interface Panel {
  title: string;
  yLabel: string;
  xLabel: string;
  series: Series[];
  /** categorical x: the x values are indexes into these labels */
  xCategories?: string[];
  yLog?: boolean;
  /** y axis starts at 0 (linear only; default true) */
  yZero?: boolean;
  /** format of y tick labels */
  yFormat?: (v: number) => string;
  /** vertical marker lines: [x, label] */
  xMarks?: Array<[number, string]>;
}

/** niceStep - 1, 2 or 5 times a power of ten, near range/target */
export function niceStep(range: number, target: number): number {
  const raw = range / Math.max(1, target);
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

/** fmtTick - a tick value without needless digits: 15000 -> "15K", 0.5 -> "0.5" */
export function fmtTick(v: number): string {
  if (v === 0) return "0";
  if (Math.abs(v) >= 1e6) return `${+(v / 1e6).toFixed(2)}M`;
  if (Math.abs(v) >= 1e3) return `${+(v / 1e3).toFixed(2)}K`;
  return `${+v.toPrecision(3)}`;
}

// drawPanel - one chart in the box (x, y, w, h)
function drawPanel(cv: Canvas, p: Panel, x: number, y: number, w: number, h: number): void {
  const left = x + 90;
  const right = x + w - 20;
  const top = y + 40;
  const bottom = y + h - 60;
  cv.text(x + Math.max(0, (w - textWidth(p.title)) / 2), y + 8, p.title, BLACK);

  const xs = p.series.flatMap((s) => s.points.map(([px]) => px));
  const ys = p.series.flatMap((s) => s.points.map(([, py]) => py)).filter((v): v is number => v !== undefined && Number.isFinite(v) && (!p.yLog || v > 0));
  if (ys.length === 0) return;
  let x0: number;
  let x1: number;
  if (p.xCategories) {
    x0 = -0.5;
    x1 = p.xCategories.length - 0.5;
  } else {
    x0 = Math.min(...xs);
    x1 = Math.max(...xs);
    if (x1 === x0) x1 = x0 + 1;
  }
  let y0: number;
  let y1: number;
  if (p.yLog) {
    y0 = Math.pow(10, Math.floor(Math.log10(Math.min(...ys))));
    y1 = Math.pow(10, Math.ceil(Math.log10(Math.max(...ys))));
    if (y1 === y0) y1 = y0 * 10;
  } else {
    y0 = p.yZero === false ? Math.min(...ys) : 0;
    y1 = Math.max(...ys) * 1.1;
    if (y1 === y0) y1 = y0 + 1;
  }
  const sx = (v: number) => left + ((v - x0) / (x1 - x0)) * (right - left);
  const sy = (v: number) => p.yLog
    ? bottom - ((Math.log10(v) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0))) * (bottom - top)
    : bottom - ((v - y0) / (y1 - y0)) * (bottom - top);
  const fy = p.yFormat ?? fmtTick;

  // y grid and ticks
  const yTicks: number[] = [];
  if (p.yLog) {
    for (let v = y0; v <= y1 * 1.0001; v *= 10) {
      yTicks.push(v);
      for (const m of [2, 5]) if (v * m < y1) cv.dashed(left, sy(v * m), right, sy(v * m), [232, 232, 232]);
    }
  } else {
    const step = niceStep(y1 - y0, 5);
    for (let v = Math.ceil(y0 / step) * step; v <= y1; v += step) yTicks.push(v);
  }
  for (const v of yTicks) {
    const py = sy(v);
    cv.line(left, py, right, py, GREY);
    const label = fy(v);
    cv.text(left - 8 - textWidth(label), py - 7, label, DARK);
  }
  // x ticks
  if (p.xCategories) {
    p.xCategories.forEach((label, i) => {
      const px = sx(i);
      cv.line(px, bottom, px, bottom + 6, BLACK);
      cv.text(px - textWidth(label) / 2, bottom + 12, label, DARK);
    });
  } else {
    const step = niceStep(x1 - x0, 6);
    for (let v = Math.ceil(x0 / step) * step; v <= x1; v += step) {
      const px = sx(v);
      cv.line(px, bottom, px, bottom + 6, BLACK);
      const label = fmtTick(v);
      cv.text(px - textWidth(label) / 2, bottom + 12, label, DARK);
    }
  }
  for (const [mx, label] of p.xMarks ?? []) {
    const px = sx(mx);
    cv.dashed(px, top, px, bottom, DARK);
    cv.text(px + 4, top + 4, label, DARK);
  }
  // axes
  cv.line(left, top, left, bottom, BLACK, 2);
  cv.line(left, bottom, right, bottom, BLACK, 2);
  cv.text(left + (right - left - textWidth(p.xLabel)) / 2, bottom + 36, p.xLabel, BLACK);
  // y label, written vertically as stacked letters is unreadable: put it above the axis
  cv.text(Math.max(x + 4, left - 60), top - 22, p.yLabel, BLACK);

  p.series.forEach((s, si) => {
    const c = s.color ?? PALETTE[si % PALETTE.length]!;
    let prev: [number, number] | undefined;
    for (const [px, py] of s.points) {
      if (py === undefined || !Number.isFinite(py) || (p.yLog && py <= 0)) {
        prev = undefined;
        continue;
      }
      const q: [number, number] = [sx(px), sy(Math.min(Math.max(py, y0), y1))];
      if (prev) cv.line(prev[0], prev[1], q[0], q[1], c, 3);
      if (s.markers !== false) cv.disc(q[0], q[1], 5, c);
      prev = q;
    }
  });
}

/** chart - panels side by side, a title and a legend of the first panel's series */
export function chart(title: string, panels: Panel[], width = 1200, height = 520): Canvas {
  const cv = new Canvas(width, height);
  cv.text(20, 14, title, BLACK, 2);
  const names = panels[0]?.series.map((s, i) => [s.name, s.color ?? PALETTE[i % PALETTE.length]!] as const) ?? [];
  const legendH = 30 * Math.ceil(names.length / 3);
  const pw = Math.floor(width / Math.max(1, panels.length));
  panels.forEach((p, i) => drawPanel(cv, p, i * pw, 40, pw, height - 40 - legendH - 10));
  names.forEach(([name, c], i) => {
    const lx = 40 + (i % 3) * Math.floor((width - 40) / 3);
    const ly = height - legendH + 30 * Math.floor(i / 3);
    cv.line(lx, ly + 7, lx + 30, ly + 7, c, 3);
    cv.disc(lx + 15, ly + 7, 5, c);
    cv.text(lx + 40, ly, name, BLACK);
  });
  return cv;
}

/** plotRuns - throughput and p99 against client count, a line per implementation, as PNG */
export function plotRuns(runs: RunSummary[], subtitle: string): Buffer {
  const clients = [...new Set(runs.map((r) => r.clients))].sort((a, b) => a - b);
  const labels = [...new Set(runs.map((r) => r.label))];
  const series = (f: (r: RunSummary) => number): Series[] => labels.map((label) => ({
    name: label,
    points: clients.map((c, i) => {
      const r = runs.find((x) => x.label === label && x.clients === c);
      return [i, r === undefined ? undefined : f(r)] as [number, number | undefined];
    }),
  }));
  const cats = clients.map(String);
  return chart(`tlsmgr throughput and p99 latency (${subtitle})`, [
    { title: "throughput", yLabel: "requests/s", xLabel: "clients", xCategories: cats, series: series((r) => r.reqPerSec) },
    { title: "p99 latency (log scale)", yLabel: "ms", xLabel: "clients", xCategories: cats, yLog: true,
      series: series((r) => r.p99us / 1000) },
  ]).png();
}

export interface SweepPlotSeries {
  label: string;
  /** [seconds, req/s, p99 ms] */
  points: Array<[number, number, number]>;
  /** seconds at which the sweep started and ended */
  sweepFrom?: number;
  sweepTo?: number;
}

/** plotSweep - req/s and p99 over time around a sweep, a line per implementation, as PNG */
export function plotSweep(runs: SweepPlotSeries[], subtitle: string): Buffer {
  const marks: Array<[number, string]> = [];
  for (const r of runs) {
    if (r.sweepFrom !== undefined) marks.push([r.sweepFrom, ""]);
    if (r.sweepTo !== undefined) marks.push([r.sweepTo, ""]);
  }
  return chart(`expiry sweep under load (${subtitle})`, [
    { title: "throughput", yLabel: "requests/s", xLabel: "seconds", xMarks: marks,
      series: runs.map((r) => ({ name: r.label, markers: false, points: r.points.map(([t, q]) => [t, q] as [number, number]) })) },
    { title: "p99 latency (log scale)", yLabel: "ms", xLabel: "seconds", yLog: true, xMarks: marks,
      series: runs.map((r) => ({ name: r.label, markers: false, points: r.points.map(([t, , p]) => [t, p] as [number, number]) })) },
  ]).png();
}
