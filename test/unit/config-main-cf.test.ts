/**
 * config-main-cf.test.ts - main.cf syntax and $name expansion, checked against
 * Postfix's rules and, where postconf is installed, against `postconf -x` itself.
 * See also: src/config/main-cf.ts, test/fixtures/config/parse/
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { FatalError } from "../../src/log/msg.js";
import { MacExpandError, macExpand, mainCfParse, mainCfRead, splitNameval } from "../../src/config/main-cf.js";
import { captureMsgs } from "../helpers/msg-capture.js";

const FIXTURES = fileURLToPath(new URL("../../../test/fixtures/config/", import.meta.url));

const parse = (text: string): Map<string, string> => mainCfParse(text, "/etc/postfix/main.cf");

/** findPostconf - the postconf command, or undefined when Postfix is not installed. */
function findPostconf(): string | undefined {
  for (const cmd of ["/usr/sbin/postconf", "postconf"]) {
    if (spawnSync(cmd, ["-d", "mail_version"], { encoding: "utf8" }).status === 0) return cmd;
  }
  return undefined;
}
const POSTCONF = findPostconf();

// ------------------------------------------------------------------ parsing

test("splitNameval: Postfix's split_nameval", () => {
  assert.deepEqual(splitNameval("a = b"), { name: "a", value: "b" });
  assert.deepEqual(splitNameval("  a=b c  \t"), { name: "a", value: "b c" });
  assert.deepEqual(splitNameval("a ="), { name: "a", value: "" });
  assert.deepEqual(splitNameval("a = b = c"), { name: "a", value: "b = c" });
  assert.equal(splitNameval("= b"), "missing attribute name");
  assert.equal(splitNameval(""), "missing attribute name");
  assert.equal(splitNameval("a"), "missing '=' after attribute name");
  assert.equal(splitNameval("a b = c"), "missing '=' after attribute name");
  // as -o values too (cli/args.ts checks them with this function)
  assert.deepEqual(splitNameval("  name  =  some value  "), { name: "name", value: "some value" });
  assert.deepEqual(splitNameval("name="), { name: "name", value: "" });
  assert.deepEqual(splitNameval("a=b=c"), { name: "a", value: "b=c" });
  assert.equal(splitNameval("=x"), "missing attribute name");
  assert.equal(splitNameval("name value"), "missing '=' after attribute name");
});

test("parse fixture: comments, blank lines, continuations, trimming, redefinition", () => {
  const path = join(FIXTURES, "parse/main.cf");
  const { result, lines } = captureMsgs(() => mainCfRead(path, false));
  const want = readFileSync(join(FIXTURES, "parse/main.cf.ref"), "utf8")
    .split("\n")
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => [l.slice(0, l.indexOf("=")), JSON.parse(l.slice(l.indexOf("=") + 1)) as string]);
  assert.deepEqual([...result!.entries()], want);
  assert.deepEqual(lines, [`warning: ${path}, line 16: overriding earlier entry: alias_maps=hash:/etc/aliases`]);
});

test("parse fixture agrees with postconf -n (white space collapsed, as postconf prints)", { skip: POSTCONF === undefined && "postconf not installed" }, () => {
  const dir = join(FIXTURES, "parse");
  const ours = captureMsgs(() => mainCfRead(join(dir, "main.cf"), false)).result!;
  const out = spawnSync(POSTCONF!, ["-c", dir, "-n"], { encoding: "utf8" });
  const theirs = new Map(
    out.stdout.split("\n").filter((l) => l.includes(" = ") || l.endsWith(" =")).map((l) => {
      const nv = splitNameval(l) as { name: string; value: string };
      return [nv.name, nv.value];
    }),
  );
  for (const [name, value] of ours) assert.equal(value.replace(/\s+/g, " "), theirs.get(name), name);
});

test("a line without '=' is fatal, naming file and first line of the logical line", () => {
  const path = join(FIXTURES, "bad/main.cf");
  const { error, lines } = captureMsgs(() => mainCfRead(path, false));
  assert.ok(error instanceof FatalError);
  const text = `${path}, line 6: missing '=' after attribute name: "this line has no equals"`;
  assert.equal(error.message, text);
  assert.deepEqual(lines, [`fatal: ${text}`]);
  const e2 = captureMsgs(() => parse("a = 1\n\n# c\n= b\n  more\n")).error as FatalError;
  assert.equal(e2.message, `/etc/postfix/main.cf, line 4: missing attribute name: "= b  more"`);
});

test("continuation joins lines without the newline; comments and blank lines inside are skipped", () => {
  assert.deepEqual([...parse("a = x\n y\n#c\n\n \n\tz\nb = 2").entries()], [["a", "x y\tz"], ["b", "2"]]);
  assert.deepEqual([...parse("a = x\n #indented comment\n y\n").entries()], [["a", "x y"]]);
  assert.deepEqual([...parse("a = x\n   \n").entries()], [["a", "x"]]); // trailing white space trimmed
});

test("text before any definition that starts with white space is dropped with a warning", () => {
  const { result, lines } = captureMsgs(() => parse(" stray = 1\n more\nb = 2\n"));
  assert.deepEqual([...result!.entries()], [["b", "2"]]);
  assert.deepEqual(lines, [`warning: /etc/postfix/main.cf: logical line must not start with whitespace: " stray = 1 more"`]);
});

test("CRLF line ends: the CR is white space and is trimmed", () => {
  assert.deepEqual([...parse("a = 1\r\nb=two words\r\n\r\n# c\r\n").entries()], [["a", "1"], ["b", "two words"]]);
});

test("no final newline, empty file, comments only", () => {
  assert.deepEqual([...parse("a = 1").entries()], [["a", "1"]]);
  assert.equal(parse("").size, 0);
  assert.equal(parse("# only\n   # comments\n\n").size, 0);
});

test("a redefinition with the same value does not warn; a different one does", () => {
  const same = captureMsgs(() => parse("a = 1\na = 1\n"));
  assert.deepEqual(same.lines, []);
  const diff = captureMsgs(() => parse("a = 1\n\na = 2\n"));
  assert.deepEqual([...diff.result!.entries()], [["a", "2"]]);
  assert.deepEqual(diff.lines, ["warning: /etc/postfix/main.cf, line 3: overriding earlier entry: a=1"]);
});

test("a NUL byte warns and ends the value (C string)", () => {
  const { result, lines } = captureMsgs(() => parse("a = x\0y\n z\nb = 1\n"));
  assert.equal(result!.get("a"), "x");
  assert.deepEqual(lines, ["warning: /etc/postfix/main.cf, line 1-2: text after null byte may be ignored"]);
});

test("missing main.cf: fatal 'open FILE: No such file or directory', or undefined when allowed", () => {
  const dir = mkdtempSync(join(tmpdir(), "tlsmgr-cf-"));
  try {
    const path = join(dir, "main.cf");
    const { error } = captureMsgs(() => mainCfRead(path, false));
    assert.equal((error as FatalError).message, `open ${path}: No such file or directory`);
    assert.equal(mainCfRead(path, true), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------- expansion

const RAW: Record<string, string> = {
  a: "hello",
  e: "",
  b: "$a world",
  c: "${b}!",
  d: "$(a)",
  dollar: "x$$y",
  n10: "10",
  n9: "9",
  deep: "${c?{[$c]}}",
};
const raw = (name: string): string | undefined => RAW[name];
const x = (pattern: string): string => macExpand(pattern, raw);

test("expansion: $name, ${name}, $(name), recursion, $$", () => {
  assert.equal(x("$a"), "hello");
  assert.equal(x("${a}"), "hello");
  assert.equal(x("$(a)"), "hello");
  assert.equal(x("<$a>"), "<hello>");
  assert.equal(x("$a_x"), ""); // the name is a_x
  assert.equal(x("${a}_x"), "hello_x");
  assert.equal(x("$b"), "hello world");
  assert.equal(x("$c"), "hello world!");
  assert.equal(x("$d$d"), "hellohello");
  assert.equal(x("$dollar"), "x$y"); // $$ is a literal $, not expanded again
  assert.equal(x("$$a"), "$a");
  assert.equal(x("${ a }"), "hello");
  assert.equal(x("$deep"), "[hello world!]");
  assert.equal(x("no macros"), "no macros");
});

test("expansion: undefined and empty names give empty text", () => {
  assert.equal(x("[$nosuch]"), "[]");
  assert.equal(x("[${nosuch}]"), "[]");
  assert.equal(x("[$e]"), "[]");
});

test("expansion: ${name?text} and ${name:text}", () => {
  assert.equal(x("${a?yes}"), "yes");
  assert.equal(x("${e?yes}"), "");
  assert.equal(x("${nosuch?yes}"), "");
  assert.equal(x("${a:no}"), "");
  assert.equal(x("${e:no}"), "no");
  assert.equal(x("${nosuch:no}"), "no");
  assert.equal(x("${a?$b}"), "hello world");
  assert.equal(x("${a? spaced}"), " spaced"); // non-{} text is taken as is
  assert.equal(x("${a?x:y}"), "x:y"); // Postfix 2.x compatibility: no ternary without {}
  assert.equal(x("${a ? x}"), " x");
});

test("expansion: Postfix 3 forms ${name?{text}}, ${name:{text}}, ${name?{t1}:{t2}}", () => {
  assert.equal(x("${a?{yes}}"), "yes");
  assert.equal(x("${a? { yes } }"), " yes ");
  assert.equal(x("${e:{no}}"), "no");
  assert.equal(x("${a?{1}:{2}}"), "1");
  assert.equal(x("${e?{1}:{2}}"), "2");
  assert.equal(x("${e?{1} : {2} }"), "2");
  assert.equal(x("${e?{1}:2 3}"), "2 3");
  assert.equal(x("${a?{{nested}}}"), "{nested}");
  assert.equal(x("${a?{$b}:{$nosuch}}"), "hello world");
});

test("expansion: relational ${{a} op {b} ? {t} : {f}}", () => {
  assert.equal(x("${{$a} == {hello} ? {eq} : {ne}}"), "eq");
  assert.equal(x("${{$a} != {hello} ? {eq} : {ne}}"), "ne");
  assert.equal(x("${{$n10} < {$n9}?{lt}:{ge}}"), "ge"); // numeric when both are digits
  assert.equal(x("${{10} < {9a}?{lt}:{ge}}"), "lt"); // else byte order
  assert.equal(x("${{1} <= {1}}"), "true");
  assert.equal(x("${{2} >= {3}}"), "");
  assert.equal(x("${{b} > {a}:{not greater}}"), "");
});

test("expansion: syntax errors carry Postfix's words", () => {
  const err = (pattern: string): string => {
    try {
      x(pattern);
    } catch (e) {
      assert.ok(e instanceof MacExpandError);
      return e.message;
    }
    assert.fail(`no error for ${pattern}`);
  };
  assert.equal(err("${a"), 'truncated macro reference: "${a"');
  assert.equal(err("x $"), 'empty macro name: "x $"');
  assert.equal(err("${}"), 'empty macro name: "${}"');
  assert.equal(err("${a b}"), 'attribute name syntax error at: "...a>>> b"');
  assert.equal(err("${a?{x}y}"), '":" expected at: "...x}>>>y"');
  assert.equal(err("${a:{x}y}"), 'unexpected input at: "...x}>>>y"');
  assert.equal(err("${a?{x}"), 'truncated macro reference: "${a?{x}"');
  assert.equal(err("$(a?{x)"), 'unbalanced {} in attribute expression: "{x"');
  assert.equal(err("${{a} = {b}}"), '"==" or "!="" or "<"" or "<="" or ">="" or ">" expected at: "...a}>>>= {b}"');
  assert.equal(err("${{a} == b}"), '"{expression}" expected at: "...{a} ==>>> b"');
  assert.equal(err("${{a} == {b} x}"), '"?" or ":" expected at: "...}>>>x"');
});

test("expansion: loops are found and named", () => {
  const loop: Record<string, string> = { p: "$q", q: "x${r}", r: "${s?{$p}}", s: "1", self: "a $self" };
  const lk = (n: string): string | undefined => loop[n];
  assert.throws(() => macExpand("$p", lk), { message: 'unreasonable macro call nesting: "p" (loop: p -> q -> r -> p)' });
  assert.throws(() => macExpand(loop.self, lk, "self"), { message: 'unreasonable macro call nesting: "self" (loop: self -> self)' });
  assert.equal(macExpand("${p?set}", lk), "set"); // a test of p looks at its raw value only
  assert.equal(macExpand("$s$s$s", lk), "111"); // repeated, not nested: no loop
});

test("expansion agrees with postconf -x", { skip: POSTCONF === undefined && "postconf not installed" }, () => {
  const cases: Record<string, string> = {
    x_a: "hello", x_e: "", x_b: "$x_a world", x_c: "${x_a?yes}", x_d: "${x_e:no}",
    x_f: "${x_a?{ yes }:{ no }}", x_g: "${{$x_a} == {hello} ? {eq} : {ne}}", x_h: "${{10} < {9}}",
    x_i: "$(x_a)$$x_a", x_j: "${ x_a }", x_k: "${x_a? spaced}", x_l: "${x_undef?{a}:b c}",
    x_m: "${{$x_a}=={hello}}", x_n: "${x_a?{1}:{2}} ${x_e?{1}:{2}}", x_o: "${x_a?x:y}",
    x_p: "${x_b?{${x_c?{[$x_c]}}}}", x_q: "${{$x_h} == {} ? {empty} : {full}}", x_r: "${{9a} > {10}}",
  };
  const names = Object.keys(cases);
  const dir = mkdtempSync(join(tmpdir(), "tlsmgr-cf-"));
  try {
    // wrap each value in [ ] (postconf trims output); smtpd_banner makes the x_ names "used"
    const body = names.map((n) => `${n} = ${cases[n]}\ny_${n} = [$${n}]\n`).join("");
    writeFileSync(join(dir, "main.cf"), `${body}smtpd_banner = ${names.map((n) => `$y_${n}`).join(" ")}\n`);
    writeFileSync(join(dir, "master.cf"), "");
    const out = spawnSync(POSTCONF!, ["-c", dir, "-x", "-h", ...names.map((n) => `y_${n}`)], { encoding: "utf8" });
    assert.equal(out.status, 0, out.stderr);
    const theirs = out.stdout.split("\n").slice(0, names.length);
    const rawCf = (n: string): string | undefined => (n in cases ? cases[n] : undefined);
    assert.deepEqual(names.map((n) => `[${macExpand(cases[n], rawCf, n)}]`), theirs);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
