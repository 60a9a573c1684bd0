/**
 * main-cf.ts - main.cf reading and $name expansion, with Postfix's semantics.
 * Owns: logical lines (readllines), "name = value" splitting (split_nameval),
 *       the file loader (dict_load_fp), and macro expansion (mac_parse +
 *       mac_expand with MAC_EXP_FLAG_RECURSE): $name, ${name}, $(name), $$,
 *       ${name?text}, ${name:text}, ${name?{text}}, ${name:{text}},
 *       ${name?{t1}:{t2}} and ${{a} == {b} ? {t1} : {t2}} (==, !=, <, <=, >=, >).
 * Not here: defaults, -o overrides and typed values (config/params.ts).
 * See also: postfix/src/util/readlline.c, split_nameval.c, dict.c, mac_parse.c,
 *           mac_expand.c, postfix/src/global/mail_conf.c
 */

import { readFileSync } from "node:fs";
import { errorText, TlsmgrError } from "../log/errors.js";
import { msgFatal, msgWarn } from "../log/msg.js";

/** One parsed main.cf: name => raw (unexpanded) value, later entries win. */
export type MainCf = Map<string, string>;

const ISSPACE = /[ \t\n\v\f\r]/;
const isSpace = (ch: string | undefined): boolean => ch !== undefined && ISSPACE.test(ch);

/** splitNameval - split "name = value" like split_nameval(); a string result is the error. */
export function splitNameval(text: string): { name: string; value: string } | string {
  const m = /^[ \t\n\v\f\r]*([^ \t\n\v\f\r=]*)[ \t\n\v\f\r]*(=?)/.exec(text)!;
  if (m[1] === "") return "missing attribute name";
  if (m[2] === "") return "missing '=' after attribute name";
  const value = text.slice(m[0].length).replace(/^[ \t\n\v\f\r]+/, "").replace(/[ \t\n\v\f\r]+$/, "");
  return { name: m[1], value };
}

interface LogicalLine {
  text: string;
  first: number; // first physical line (1-based)
  last: number;
}

/** readLogicalLines - readllines(): join continuations, drop comments and blank lines. */
function readLogicalLines(text: string, path: string): LogicalLine[] {
  const out: LogicalLine[] = [];
  const phys = text.split("\n");
  if (phys[phys.length - 1] === "") phys.pop(); // a final newline ends the last line
  let cur: LogicalLine | undefined;
  const flush = (): void => {
    if (cur === undefined) return;
    if (cur.text.includes("\0")) {
      const where = cur.first === cur.last ? `${cur.first}` : `${cur.first}-${cur.last}`;
      msgWarn(`${path}, line ${where}: text after null byte may be ignored`);
      cur.text = cur.text.slice(0, cur.text.indexOf("\0")); // C string semantics
    }
    if (isSpace(cur.text[0])) {
      const more = cur.text.length > 30 ? "..." : "";
      msgWarn(`${path}: logical line must not start with whitespace: "${cur.text.slice(0, 30)}${more}"`);
    } else {
      out.push(cur);
    }
    cur = undefined;
  };
  phys.forEach((line, i) => {
    const lineno = i + 1;
    const body = line.replace(/^[ \t\n\v\f\r]+/, "");
    if (body === "" || body[0] === "#") return; // comment or blank: never ends a logical line
    if (cur !== undefined && isSpace(line[0])) {
      cur.text += line; // continuation: the newline is deleted, the white space kept
      cur.last = lineno;
      return;
    }
    flush();
    cur = { text: line, first: lineno, last: lineno };
  });
  flush();
  return out;
}

/** mainCfParse - dict_load_fp() on text: fatal on a line without '=', warn on redefinition. */
export function mainCfParse(text: string, path: string): MainCf {
  const dict: MainCf = new Map();
  for (const ll of readLogicalLines(text, path)) {
    const nv = splitNameval(ll.text);
    if (typeof nv === "string") msgFatal(`${path}, line ${ll.first}: ${nv}: "${ll.text}"`);
    const old = dict.get(nv.name);
    if (old !== undefined && old !== nv.value)
      msgWarn(`${path}, line ${ll.first}: overriding earlier entry: ${nv.name}=${old}`);
    dict.set(nv.name, nv.value);
  }
  return dict;
}

/**
 * mainCfRead - read and parse FILE (start-up only, synchronous).
 * Returns undefined when the file does not exist and missingOk; any other
 * failure is fatal "open FILE: reason" as in mail_conf_suck().
 */
export function mainCfRead(path: string, missingOk: boolean): MainCf | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if (missingOk && (err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    msgFatal(`open ${path}: ${errorText(err)}`);
  }
  return mainCfParse(text, path);
}

// ---------------------------------------------------------------- expansion

/** The code of a MacExpandError. */
export const ERR_MAC_EXPAND = "TLSMGR_MAC_EXPAND";

/** A syntax error or loop found while expanding; the caller names file and parameter. */
export class MacExpandError extends TlsmgrError {
  constructor(message: string) {
    super(message, ERR_MAC_EXPAND);
  }
}

/** Raw (unexpanded) value of a parameter; undefined = not defined. */
export type RawLookup = (name: string) => string | undefined;

const WS = " \t\n\v\f\r";
const MAX_NESTING = 100; // mac_expand: "unreasonable macro call nesting"
const OP_STR_ANY = '"==" or "!="" or "<"" or "<="" or ">="" or ">"'; // sic, as Postfix prints it
const RELOPS = new Set(["==", "!=", "<", "<=", ">=", ">"]);

const skipWs = (s: string, i: number): number => {
  while (i < s.length && WS.includes(s[i])) i++;
  return i;
};

/** Expansion state for one top-level call. */
interface MacCtx {
  raw: RawLookup;
  level: number;
  stack: string[]; // names whose values are being expanded: a repeat is a loop
}

/** macParse - mac_parse(): split into literal text and $... expressions, act on each. */
function macParse(ctx: MacCtx, value: string, out: string[]): void {
  let lit = "";
  let i = 0;
  while (i < value.length) {
    const ch = value[i];
    if (ch !== "$") {
      lit += ch;
      i += 1;
    } else if (value[i + 1] === "$") {
      lit += "$";
      i += 2;
    } else {
      if (lit !== "") out.push(lit);
      lit = "";
      i += 1;
      let expr: string;
      const open = value[i];
      if (open === "{" || open === "(") {
        const close = open === "{" ? "}" : ")";
        let level = 1;
        let ep = i + 1;
        for (; level > 0; ep++) {
          if (ep >= value.length) throw new MacExpandError(`truncated macro reference: "${value}"`);
          if (value[ep] === open) level++;
          if (value[ep] === close) level--;
        }
        expr = value.slice(i + 1, ep - 1);
        i = ep;
      } else {
        const m = /^[A-Za-z0-9_]*/.exec(value.slice(i))!;
        expr = m[0];
        i += expr.length;
      }
      if (expr === "") throw new MacExpandError(`empty macro name: "${value}"`);
      macExpr(ctx, expr, out);
    }
  }
  if (lit !== "") out.push(lit);
}

/** extractCurly - balance {} from s[at] == '{'; the payload and the index after trailing white space. */
function extractCurly(s: string, at: number): { payload: string; next: number } {
  let level = 1;
  let cp = at + 1;
  for (; ; cp++) {
    if (cp >= s.length) throw new MacExpandError(`unbalanced {} in attribute expression: "${s.slice(at)}"`);
    if (s[cp] === "{") level++;
    else if (s[cp] === "}" && --level <= 0) break;
  }
  return { payload: s.slice(at + 1, cp), next: skipWs(s, cp + 1) };
}

/**
 * expandTo - the expansion of a relational operand, on its own. The nesting
 * level goes on counting inside it: Postfix's mac_expand() starts operands at
 * level 0, which bounds nothing when relational expressions nest in their
 * operands (C's stack took 20,000 levels; V8's ended in a RangeError at
 * ~1,500). Here the bound of MAX_NESTING counts every level, relational or not.
 */
function expandTo(ctx: MacCtx, text: string): string {
  const out: string[] = [];
  macParse(ctx, text, out);
  return out.join("");
}

/** EXPR_SHOWN - the longest part of an expression a nesting error quotes. */
const EXPR_SHOWN = 100;

/** relational - ${{a} OP {b}...}: "true" or "" and where parsing goes on. */
function relational(ctx: MacCtx, s: string, at: number): { value: string; next: number } {
  const left = extractCurly(s, at);
  const opLen = /^[<>!=?+\-*/~&|%]*/.exec(s.slice(left.next))![0].length;
  const op = s.slice(left.next, left.next + opLen);
  if (!RELOPS.has(op))
    throw new MacExpandError(`${OP_STR_ANY} expected at: "...${left.payload}}>>>${s.slice(left.next, left.next + 20)}"`);
  let cp = left.next + opLen;
  const r0 = skipWs(s, cp);
  if (s[r0] !== "{")
    throw new MacExpandError(`"{expression}" expected at: "...{${left.payload}} ${op}>>>${s.slice(cp, cp + 20)}"`);
  const right = extractCurly(s, r0);
  cp = right.next;
  const a = expandTo(ctx, left.payload);
  const b = expandTo(ctx, right.payload);
  const alldig = (x: string): boolean => /^[0-9]+$/.test(x);
  const delta = alldig(a) && alldig(b) ? cmpBig(BigInt(a), BigInt(b)) : cmpBytes(a, b);
  const truth: Record<string, boolean> = {
    "==": delta === 0, "!=": delta !== 0, "<": delta < 0, "<=": delta <= 0, ">=": delta >= 0, ">": delta > 0,
  };
  return { value: truth[op] ? "true" : "", next: cp };
}

const cmpBig = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);
const cmpBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** macExpr - mac_expand_callback() for one $... expression. */
function macExpr(ctx: MacCtx, expr: string, out: string[]): void {
  if (ctx.level++ > MAX_NESTING) {
    const shown = expr.length > EXPR_SHOWN ? `${expr.slice(0, EXPR_SHOWN)}...` : expr;
    throw new MacExpandError(`unreasonable macro call nesting: "${shown}"`);
  }
  let lookup: string | undefined;
  let name = "";
  let op = "";
  let cp: number;
  const c0 = skipWs(expr, 0);
  if (expr[c0] === "{") {
    const rel = relational(ctx, expr, c0);
    lookup = rel.value;
    cp = rel.next;
    if (cp < expr.length) {
      op = expr[cp];
      if (op !== "?" && op !== ":")
        throw new MacExpandError(`"?" or ":" expected at: "...}>>>${expr.slice(cp, cp + 20)}"`);
      cp += 1;
    }
  } else {
    const start = c0;
    for (cp = start; ; cp++) {
      const after = skipWs(expr, cp);
      if (after >= expr.length) {
        name = expr.slice(start, cp);
        break;
      }
      if (expr[after] === "?" || expr[after] === ":") {
        name = expr.slice(start, cp);
        op = expr[after];
        cp = after + 1;
        break;
      }
      if (!/[A-Za-z0-9_]/.test(expr[cp]))
        throw new MacExpandError(`attribute name syntax error at: "...${expr.slice(0, cp)}>>>${expr.slice(cp, cp + 20)}"`);
    }
    lookup = ctx.raw(name);
  }
  const truthy = lookup !== undefined && lookup !== "";
  if (op === "") {
    if (truthy && name !== "") expandName(ctx, name, lookup!, out);
    else if (truthy) macParse(ctx, lookup!, out); // exposed relational value
  } else {
    let falseText = op === ":" ? expr.slice(cp) : undefined;
    if (op === "?") {
      let yes = expr.slice(cp);
      let rest = "";
      const c1 = skipWs(expr, cp);
      if (expr[c1] === "{") {
        const cur = extractCurly(expr, c1);
        yes = cur.payload;
        rest = expr.slice(cur.next);
      }
      if (truthy) macParse(ctx, yes, out);
      if (rest !== "") {
        if (rest[0] !== ":") throw new MacExpandError(`":" expected at: "...${yes}}>>>${rest.slice(0, 20)}"`);
        falseText = rest.slice(1);
      }
    }
    if (falseText !== undefined) {
      let no = falseText;
      const c2 = skipWs(falseText, 0);
      if (falseText[c2] === "{") {
        const cur = extractCurly(falseText, c2);
        no = cur.payload;
        if (cur.next < falseText.length)
          throw new MacExpandError(`unexpected input at: "...${no}}>>>${falseText.slice(cur.next, cur.next + 20)}"`);
      }
      if (!truthy) macParse(ctx, no, out);
    }
  }
  ctx.level--;
}

/** expandName - the value of $name, expanded in turn; a name met again is a loop. */
function expandName(ctx: MacCtx, name: string, value: string, out: string[]): void {
  if (ctx.stack.includes(name)) {
    const loop = [...ctx.stack.slice(ctx.stack.indexOf(name)), name].join(" -> ");
    throw new MacExpandError(`unreasonable macro call nesting: "${name}" (loop: ${loop})`);
  }
  ctx.stack.push(name);
  macParse(ctx, value, out);
  ctx.stack.pop();
}

/**
 * macExpand - expand PATTERN recursively against RAW; undefined names give "".
 * SELF names the parameter whose value PATTERN is (for loop detection).
 * Throws MacExpandError on a syntax error or a loop.
 */
export function macExpand(pattern: string, raw: RawLookup, self?: string): string {
  const ctx: MacCtx = { raw, level: 0, stack: self === undefined ? [] : [self] };
  const out: string[] = [];
  macParse(ctx, pattern, out);
  return out.join("");
}
