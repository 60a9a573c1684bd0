/**
 * doc-examples.test.ts - every configuration block of README.md and
 *                        man/tlsmgr.8, parsed exactly as written (issue 12,
 *                        item 4): what an admin pastes must work.
 * Owns: finding the blocks (README: fenced blocks, whose info string names
 *       the kind: main.cf, redis-table, master.cf, sh, yaml, promql, text; the man page:
 *       .nf blocks after a `.\" example: KIND` line, roff escapes undone),
 *       the rule that every README block has a known kind and that no
 *       unmarked man page block looks like configuration, and the checks
 *       per kind: main.cf through the main.cf parser and loadConfig, its
 *       names known; redis tables through the table reader, each table that
 *       main.cf names shown, a key store with its key_wrap_file; master.cf
 *       lines through postconf -M (where Postfix is installed) and the
 *       parser of tlsmgr-postfix; sh through `sh -n`; yaml (Prometheus's
 *       configuration) line by line, promql with its brackets balanced; and, in main.cf and
 *       tables alike, no comment after a value (it would be part of it).
 * Not here: the parsers themselves (config-main-cf.test.ts, redis-table.test.ts).
 * See also: README.md (Configuration: the note under the Redis example)
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { mainCfParse } from "../../src/config/main-cf.js";
import { loadConfig, TLSMGR_PARAMS } from "../../src/config/params.js";
import { redisTableParse } from "../../src/redis/table.js";
import { parseMasterEntry } from "../../src/tools/tlsmgr-postfix.js";
import { captureMsgs } from "../helpers/msg-capture.js";
import { postfixSkipReason } from "../helpers/postfix-instance.js";
import { programPath, SBIN_PATH } from "../helpers/skip.js";

/** This file is dist/test/unit/doc-examples.test.js. */
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const KINDS = ["main.cf", "redis-table", "master.cf", "sh", "yaml", "promql", "text"] as const;
type Kind = (typeof KINDS)[number];

/** One block as written, with where it is. */
interface Block {
  file: string;
  line: number;
  kind: string;
  text: string;
}

/** readmeBlocks - the fenced blocks of a Markdown file (indented ones in lists too), their info string's first word */
export function readmeBlocks(file: string): Block[] {
  const lines = readFileSync(file, "utf8").split("\n");
  const out: Block[] = [];
  let open: { indent: string; kind: string; line: number; body: string[] } | undefined;
  lines.forEach((l, i) => {
    if (open === undefined) {
      const m = /^(\s*)```\s*(\S*)/.exec(l);
      if (m) open = { indent: m[1]!, kind: m[2]!, line: i + 1, body: [] };
    } else if (/^\s*```\s*$/.test(l)) {
      out.push({ file, line: open.line, kind: open.kind, text: `${open.body.join("\n")}\n` });
      open = undefined;
    } else {
      open.body.push(l.startsWith(open.indent) ? l.slice(open.indent.length) : l.trimStart());
    }
  });
  assert.equal(open, undefined, `${file}: a block opened at line ${open?.line} is never closed`);
  return out;
}

/** unroff - a line of roff text as it prints: font changes gone, \- as -, \e as \, \& as nothing */
function unroff(line: string): string {
  return line.replace(/\\f[BIRP]/g, "").replace(/\\-/g, "-").replace(/\\e/g, "\\").replace(/\\&/g, "").replace(/\\\(bu/g, "*");
}

/** manBlocks - the .nf ... .fi blocks of a man page: marked (".\" example: KIND" just before) or not ("") */
export function manBlocks(file: string): Block[] {
  const lines = readFileSync(file, "utf8").split("\n");
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== ".nf") continue;
    const mark = /^\.\\" example: (\S+)$/.exec(lines[i - 1] ?? "");
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && lines[j] !== ".fi" && !lines[j]!.startsWith(".SH"); j++) {
      if (!lines[j]!.startsWith(".")) body.push(unroff(lines[j]!));
    }
    const indent = Math.min(...body.filter((l) => l.trim() !== "").map((l) => /^ */.exec(l)![0].length));
    out.push({ file, line: i + 1, kind: mark?.[1] ?? "", text: `${body.map((l) => l.slice(Number.isFinite(indent) ? indent : 0)).join("\n")}\n` });
    i = j;
  }
  return out;
}

/** looksLikeConfig - a line that is a "name = value" setting or a master.cf service line */
function looksLikeConfig(line: string): boolean {
  return /^[a-z_][a-z0-9_]*\s*=\s*\S/.test(line) || /^\S+\s+(unix|inet|fifo|pass|unix-dgram)\s+\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+\S+/.test(line);
}

/** where - "README.md, line N (KIND block)" for messages */
function where(b: Block): string {
  return `${path.relative(ROOT, b.file)}, line ${b.line} (${b.kind || "unmarked"} block)`;
}

/** settingLines - the "name = value" logical lines of a main.cf or table text (continuations joined) */
function settingLines(text: string): Array<{ name: string; value: string }> {
  const out: Array<{ name: string; value: string }> = [];
  for (const l of text.split("\n")) {
    if (/^\s*(#|$)/.test(l)) continue;
    if (/^\s/.test(l) && out.length > 0) out[out.length - 1]!.value += ` ${l.trim()}`;
    else {
      const m = /^([^=\s]+)\s*=\s*(.*)$/.exec(l);
      if (m) out.push({ name: m[1]!, value: m[2]!.trim() });
    }
  }
  return out;
}

/** trailingComments - settings whose value holds a would-be comment ("value  # text"): in Postfix files it is part of the value */
function trailingComments(b: Block): string[] {
  return settingLines(b.text).filter((s) => /(^|\s)#/.test(s.value)).map((s) => `${where(b)}: ${s.name} = ${s.value}`);
}

/** tableName - the file a redis-table block shows, from its first line ("# /etc/postfix/x.cf") */
function tableName(b: Block): string {
  const m = /^# (\/\S+)\s*$/.exec(b.text.split("\n")[0] ?? "");
  assert.ok(m, `${where(b)}: a redis-table block starts with "# /path/of/the/file.cf"`);
  return m[1]!;
}

/** postfixNames - the parameter names Postfix knows (postconf -d), empty when it is not installed */
function postfixNames(): Set<string> {
  if (programPath("postconf") === undefined) return new Set();
  const out = execFileSync("postconf", ["-d"], { encoding: "utf8", env: { ...process.env, PATH: `${SBIN_PATH}:${process.env["PATH"] ?? ""}` } });
  return new Set(out.split("\n").map((l) => l.split(" = ")[0]!.trim()).filter((n) => n !== ""));
}

const README = readmeBlocks(path.join(ROOT, "README.md"));
const MAN = manBlocks(path.join(ROOT, "man", "tlsmgr.8"));
const ALL = [...README, ...MAN.filter((b) => b.kind !== "")];
const ofKind = (k: Kind): Block[] => ALL.filter((b) => b.kind === k);

test("every README block names its kind, and every man page block that looks like configuration is marked", () => {
  assert.ok(README.length >= 10, `only ${README.length} blocks found in README.md`);
  assert.deepEqual(README.filter((b) => !(KINDS as readonly string[]).includes(b.kind)).map(where), [],
    `give each block one of: ${KINDS.join(", ")}`);
  assert.deepEqual(MAN.filter((b) => b.kind !== "" && !(KINDS as readonly string[]).includes(b.kind)).map(where), []);
  const unmarked = MAN.filter((b) => b.kind === "" && b.text.split("\n").some(looksLikeConfig));
  assert.deepEqual(unmarked.map(where), [], 'mark it with a line `.\\" example: KIND` before its .nf');
  for (const k of ["main.cf", "redis-table", "master.cf", "sh"] as const) assert.ok(ofKind(k).length > 0, `no ${k} block found`);
});

test("no comment after a value in a main.cf or table block (Postfix's files take comments on lines of their own)", () => {
  assert.deepEqual([...ofKind("main.cf"), ...ofKind("redis-table")].flatMap(trailingComments), []);
  // and the check finds the mistake the README once had
  const bad: Block = { file: "x", line: 1, kind: "redis-table", text: "# /x.cf\nservers = 127.0.0.1\nkey_wrap_file = /k    # made with keygen\n" };
  assert.equal(trailingComments(bad).length, 1);
});

test("main.cf blocks: the main.cf parser and loadConfig take them without a word; every name is known", (t) => {
  const known = new Set([...TLSMGR_PARAMS.map((p) => p.name), ...postfixNames()]);
  for (const b of ofKind("main.cf")) {
    const dir = mkdtempSync(path.join(tmpdir(), "tlsmgr-docmaincf-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(path.join(dir, "main.cf"), b.text);
    const parsed = captureMsgs(() => mainCfParse(b.text, path.join(dir, "main.cf")));
    assert.equal(parsed.error, undefined, `${where(b)}: ${String(parsed.error)}`);
    assert.deepEqual(parsed.lines, [], where(b));
    assert.deepEqual([...parsed.result!.keys()].filter((n) => !known.has(n)), [], `${where(b)}: unknown parameter names`);
    const loaded = captureMsgs(() => loadConfig({ configDir: dir }));
    assert.equal(loaded.error, undefined, `${where(b)}: ${loaded.lines.join("; ")}`);
    assert.deepEqual(loaded.lines, [], where(b));
    for (const [name, value] of parsed.result!) assert.equal(loaded.result!.lookup(name), value, `${where(b)}: ${name}`);
  }
});

test("redis-table blocks: the table reader takes them without a word; main.cf's tables are all shown", () => {
  const tables = new Map<string, ReturnType<typeof redisTableParse>>();
  for (const b of ofKind("redis-table")) {
    const name = tableName(b);
    const r = captureMsgs(() => redisTableParse(b.text, name));
    assert.equal(r.error, undefined, `${where(b)}: ${r.lines.join("; ")}`);
    assert.deepEqual(r.lines, [], where(b));
    tables.set(name, r.result!);
  }
  for (const b of ofKind("main.cf")) {
    for (const s of settingLines(b.text)) {
      const m = /^redis:(\S+)$/.exec(s.value);
      if (!m) continue;
      const table = tables.get(m[1]!);
      assert.ok(table, `${where(b)}: ${s.name} names ${m[1]}, which no redis-table block shows`);
      // A key store, and a session cache (its entries are sealed), need key_wrap_file.
      assert.ok(table.keyWrapFile, `${m[1]}: ${s.name}: a redis: table needs key_wrap_file`);
    }
  }
});

test("master.cf blocks: tlsmgr-postfix's parser, and postconf -M, read each line as a tlsmgr service",
  { skip: postfixSkipReason() ?? false }, (t) => {
    for (const b of ofKind("master.cf")) {
      const services = b.text.split("\n").filter((l) => l.trim() !== "" && !/^\s/.test(l) && !l.startsWith("#"));
      for (const l of services) {
        const e = parseMasterEntry(l);
        assert.ok(e, `${where(b)}: ${l}`);
        assert.equal(path.basename(e.command), "tlsmgr", `${where(b)}: the command's basename names the process`);
      }
      const dir = mkdtempSync(path.join(tmpdir(), "tlsmgr-docmastercf-"));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      writeFileSync(path.join(dir, "main.cf"), "");
      writeFileSync(path.join(dir, "master.cf"), b.text);
      const r = spawnSync("postconf", ["-c", dir, "-M"], { encoding: "utf8", env: { ...process.env, PATH: `${SBIN_PATH}:${process.env["PATH"] ?? ""}` } });
      assert.equal(r.stderr, "", where(b));
      assert.equal(r.status, 0, where(b));
      assert.deepEqual(r.stdout.trim().split("\n").map((l) => l.split(/\s+/).join(" ")), services.map((l) => l.split(/\s+/).join(" ")), where(b));
    }
  });

test("sh blocks: the shell parses each as written", () => {
  for (const b of ofKind("sh")) {
    const r = spawnSync("sh", ["-n"], { input: b.text, encoding: "utf8" });
    assert.equal(r.status, 0, `${where(b)}: ${r.stderr}`);
  }
});

test("yaml blocks: key, list item or comment on every line, indented by two; promql blocks: brackets balanced", () => {
  for (const b of ofKind("yaml")) {
    b.text.split("\n").forEach((l, i) => {
      if (/^\s*(#.*)?$/.test(l)) return;
      assert.match(l, /^( {2})*(- )?([A-Za-z_][\w.-]*:( .+)?|['"\[].*|[^:]+)$/, `${where(b)}, its line ${i + 1}`);
      assert.equal(/^ */.exec(l)![0].length % 2, 0, `${where(b)}, its line ${i + 1}: indentation`);
    });
  }
  for (const b of ofKind("promql")) {
    for (const expr of b.text.split(/\n\s*\n/)) {
      const code = expr.split("\n").filter((l) => !/^\s*#/.test(l)).join("\n").replace(/"[^"]*"/g, '""');
      const stack: string[] = [];
      for (const ch of code) {
        if ("([{".includes(ch)) stack.push(ch);
        else if (")]}".includes(ch)) assert.equal(stack.pop(), "([{"[")]}".indexOf(ch)], `${where(b)}: ${expr}`);
      }
      assert.deepEqual(stack, [], `${where(b)}: ${expr}`);
    }
  }
});
