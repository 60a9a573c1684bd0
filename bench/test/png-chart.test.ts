/**
 * png-chart.test.ts - the dependency-free PNG charts: a valid PNG (signature,
 * chunk CRCs, the pixels back through inflate), ticks, and the run plot.
 * See also: bench/png-chart.ts
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { inflateSync } from "node:zlib";
import { Canvas, chart, crc32, fmtTick, niceStep, plotRuns, plotSweep } from "../png-chart.js";
import type { RunSummary } from "../report.js";

// chunks - the chunks of a PNG, CRCs checked
function chunks(png: Buffer): Array<{ type: string; data: Buffer }> {
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const out: Array<{ type: string; data: Buffer }> = [];
  for (let at = 8; at < png.length;) {
    const len = png.readUInt32BE(at);
    const type = png.toString("latin1", at + 4, at + 8);
    const data = png.subarray(at + 8, at + 8 + len);
    assert.equal(png.readUInt32BE(at + 8 + len), crc32(png.subarray(at + 4, at + 8 + len)), `CRC of ${type}`);
    out.push({ type, data });
    at += 12 + len;
  }
  return out;
}

test("crc32 of the standard check string", () => {
  assert.equal(crc32(Buffer.from("123456789")), 0xcbf43926);
});

test("a canvas encodes to a PNG whose pixels decode back", () => {
  const cv = new Canvas(7, 3, [10, 20, 30]);
  cv.set(2, 1, [200, 100, 50]);
  const c = chunks(cv.png());
  assert.deepEqual(c.map((x) => x.type), ["IHDR", "IDAT", "IEND"]);
  const ihdr = c[0]!.data;
  assert.equal(ihdr.readUInt32BE(0), 7);
  assert.equal(ihdr.readUInt32BE(4), 3);
  assert.equal(ihdr[8], 8);
  assert.equal(ihdr[9], 2);
  const raw = inflateSync(c[1]!.data);
  assert.equal(raw.length, (7 * 3 + 1) * 3);
  const px = (x: number, y: number) => [...raw.subarray(y * 22 + 1 + x * 3, y * 22 + 1 + x * 3 + 3)];
  assert.deepEqual(px(2, 1), [200, 100, 50]);
  assert.deepEqual(px(0, 0), [10, 20, 30]);
  assert.deepEqual(px(6, 2), [10, 20, 30]);
  for (let y = 0; y < 3; y++) assert.equal(raw[y * 22], 0, "filter type 0");
});

test("lines, discs and text draw pixels inside the canvas only", () => {
  const cv = new Canvas(40, 20);
  cv.line(0, 0, 39, 19, [0, 0, 0]);
  assert.deepEqual(cv.get(0, 0), [0, 0, 0]);
  assert.deepEqual(cv.get(39, 19), [0, 0, 0]);
  cv.disc(100, 100, 5, [1, 2, 3]); // off the canvas: ignored
  const w = cv.text(1, 1, "1A", [9, 9, 9], 1);
  assert.equal(w, 12);
  assert.deepEqual(cv.get(3, 1), [9, 9, 9], "top of the 1");
});

test("ticks: nice steps and short labels", () => {
  assert.equal(niceStep(45_000, 5), 10_000);
  assert.equal(niceStep(12, 5), 5);
  assert.equal(niceStep(0.9, 5), 0.2);
  assert.equal(fmtTick(15_000), "15K");
  assert.equal(fmtTick(2_500_000), "2.5M");
  assert.equal(fmtTick(0.5), "0.5");
  assert.equal(fmtTick(0), "0");
});

test("plotRuns and plotSweep make PNGs of the asked size with the series' colours", () => {
  const run = (label: string, clients: number, q: number, p: number) =>
    ({ label, clients, reqPerSec: q, p99us: p }) as unknown as RunSummary;
  const png = plotRuns([run("a", 1, 100, 100), run("a", 8, 200, 1000), run("b", 1, 50, 300), run("b", 8, 80, 5000)], "t");
  const c = chunks(png);
  assert.equal(c[0]!.data.readUInt32BE(0), 1200);
  assert.equal(c[0]!.data.readUInt32BE(4), 520);
  const raw = inflateSync(c[1]!.data);
  const has = (rgb: number[]) => {
    for (let i = 0; i + 2 < raw.length; i++) if (raw[i] === rgb[0] && raw[i + 1] === rgb[1] && raw[i + 2] === rgb[2]) return true;
    return false;
  };
  assert.ok(has([31, 119, 180]), "first series colour");
  assert.ok(has([214, 39, 40]), "second series colour");
  const sw = chunks(plotSweep([{ label: "x", points: [[0, 10, 1], [1, 12, 2], [2, 9, 1.5]], sweepFrom: 0.5, sweepTo: 1.5 }], "s"));
  assert.equal(sw[0]!.type, "IHDR");
  assert.ok(chart("empty", []).png().length > 0);
});
