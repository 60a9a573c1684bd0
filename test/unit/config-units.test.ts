/**
 * config-units.test.ts - time values (conv_time) and integers (mail_conf_int) as Postfix reads them.
 * See also: src/config/units.ts, postfix/src/global/conv_time.c
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { INT_MAX, parseInteger, parseTime, timeUnitOf } from "../../src/config/units.js";

const MULT: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

test("parseTime: every unit", () => {
  assert.equal(parseTime("7s"), 7);
  assert.equal(parseTime("7m"), 420);
  assert.equal(parseTime("7h"), 25200);
  assert.equal(parseTime("7d"), 604800);
  assert.equal(parseTime("7w"), 4233600);
  assert.equal(parseTime("0s"), 0);
  assert.equal(parseTime("3600s"), 3600);
});

test("parseTime: a bare number takes the default unit", () => {
  assert.equal(parseTime("90"), 90);
  assert.equal(parseTime("90", "s"), 90);
  assert.equal(parseTime("2", "h"), 7200);
  assert.equal(parseTime("2", "d"), 172800);
  assert.equal(parseTime("2", "x"), undefined);
  assert.equal(parseTime("2m", "h"), 120); // an explicit unit wins
});

test("parseTime: bad values", () => {
  for (const bad of ["", "3x", "-5", "-1s", "3S", "3H", " ", "x", "5 s", "1.5h", "9999999999", "2147483648"])
    assert.equal(parseTime(bad), undefined, JSON.stringify(bad));
});

test("parseTime: Postfix's lenient forms are accepted as Postfix does", () => {
  assert.equal(parseTime("5sec"), 5); // only the first letter after the digits counts
  assert.equal(parseTime("2hours"), 7200);
  assert.equal(parseTime("+5"), 5);
  assert.equal(parseTime(" 5"), 5); // strtol skips leading white space
  assert.equal(parseTime("-0"), 0);
  assert.equal(parseTime("s"), 0); // no digits: strtol yields 0
  assert.equal(parseTime("hello"), 0);
});

test("parseTime: int range per unit, as conv_time's strict INT_MAX / unit test", () => {
  assert.equal(parseTime(`${INT_MAX}s`), INT_MAX);
  assert.equal(parseTime(`${INT_MAX}`), INT_MAX);
  assert.equal(parseTime("3549w"), 3549 * 604800);
  assert.equal(parseTime("3550w"), undefined); // INT_MAX / WEEK == 3550
  assert.equal(parseTime("24854d"), 24854 * 86400);
  assert.equal(parseTime("24855d"), undefined);
  assert.equal(parseTime("596522h"), 596522 * 3600);
  assert.equal(parseTime("596523h"), undefined);
  assert.equal(parseTime("35791393m"), 35791393 * 60);
  assert.equal(parseTime("35791394m"), undefined);
});

test("parseTime property: N<unit> is N times the unit, or undefined past the int limit", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: INT_MAX }), fc.constantFrom("s", "m", "h", "d", "w"), (n, u) => {
      const want = u === "s" || n < Math.floor(INT_MAX / MULT[u]) ? n * MULT[u] : undefined;
      assert.equal(parseTime(`${n}${u}`), want);
      assert.equal(parseTime(`${n}`, u), want);
    }),
  );
});

test("parseTime property: any text gives undefined or a whole number in 0..INT_MAX", () => {
  fc.assert(
    fc.property(fc.string(), fc.constantFrom("s", "m", "h", "d", "w"), (text, u) => {
      const t = parseTime(text, u);
      assert.ok(t === undefined || (Number.isInteger(t) && t >= 0 && t <= INT_MAX), `${JSON.stringify(text)} -> ${t}`);
    }),
  );
});

test("parseInteger: strtol over the whole text, C int range", () => {
  assert.equal(parseInteger("32"), 32);
  assert.equal(parseInteger("-7"), -7);
  assert.equal(parseInteger("+7"), 7);
  assert.equal(parseInteger(" 7"), 7);
  assert.equal(parseInteger("2147483647"), INT_MAX);
  assert.equal(parseInteger("-2147483648"), -2147483648);
  for (const bad of ["", "2147483648", "-2147483649", "3k", "7 ", "0x10", "abc", "+", "1e3", "99999999999999999999"])
    assert.equal(parseInteger(bad), undefined, JSON.stringify(bad));
});

test("timeUnitOf: first letter of the default", () => {
  assert.equal(timeUnitOf("3600s"), "s");
  assert.equal(timeUnitOf("1h"), "h");
  assert.equal(timeUnitOf("100"), "s");
});
