/**
 * units.ts - numeric main.cf values: time with units ("3600s", "1h") and integers.
 * Owns: Postfix's conv_time() and strtol()-based integer rules, to the letter.
 * Not here: parameter bounds and diagnostics (config/params.ts).
 * See also: postfix/src/global/conv_time.c, mail_conf_time.c, mail_conf_int.c
 *
 * Postfix quirks kept on purpose (a value Postfix accepts must mean the same here):
 * - leading white space and a '+' sign are accepted (strtol);
 * - only the first character after the digits is the unit, the rest is ignored
 *   ("5sec" = 5 s, "2hours" = 7200 s), units are lowercase s, m, h, d, w;
 * - a unit without digits means zero ("s" = 0, "hello" = 0 hours);
 * - results are C ints: a value whose seconds do not stay below INT_MAX is bad.
 */

export const INT_MAX = 2147483647;
const INT_MIN = -2147483648;

const UNIT_SECONDS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** strtol10 - C strtol(s, &end, 10): the value and where the digits ended (0 = no conversion). */
function strtol10(text: string): { value: bigint; end: number } {
  const m = /^[ \t\n\v\f\r]*([+-]?)([0-9]+)/.exec(text);
  if (m === null) return { value: 0n, end: 0 };
  const digits = BigInt(m[2]);
  return { value: m[1] === "-" ? -digits : digits, end: m[0].length };
}

/** parseTime - conv_time(): seconds, or undefined when malformed or out of int range. */
export function parseTime(value: string, defUnit = "s"): number | undefined {
  if (value === "") return undefined;
  const { value: n, end } = strtol10(value);
  if (n < 0n || n > BigInt(INT_MAX)) return undefined;
  const unit = end < value.length ? value[end] : defUnit;
  const mult = UNIT_SECONDS[unit];
  if (mult === undefined) return undefined;
  const count = Number(n);
  if (mult === 1) return count;
  // conv_time: "if (intval < INT_MAX / WEEK)" with C integer division
  return count < Math.floor(INT_MAX / mult) ? count * mult : undefined;
}

/** parseInteger - mail_conf_int's strtol rule: whole text a decimal C int, else undefined. */
export function parseInteger(value: string): number | undefined {
  if (value === "") return undefined;
  const { value: n, end } = strtol10(value);
  if (end !== value.length) return undefined;
  if (n < BigInt(INT_MIN) || n > BigInt(INT_MAX)) return undefined;
  return Number(n);
}

/** timeUnitOf - the default unit of a time parameter: the first letter of its default value. */
export function timeUnitOf(defval: string): string {
  const m = /[A-Za-z]/.exec(defval);
  return m === null ? "s" : m[0];
}
