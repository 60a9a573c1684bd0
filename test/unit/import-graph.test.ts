/**
 * import-graph.test.ts - the import picture of src/: no file imports itself
 *                        back through others, and no folder of src/ does.
 * Owns: reading the relative imports of every .ts (and CommonJS .cts) file under src/ (import, export from,
 *       import(), type imports too) with TypeScript's own pre-processor, and
 *       the two checks, each failing with every cycle it finds written out.
 * Not here: what the folders are for (docs/dev/helper-brief.md, README layout).
 * See also: farm-studio look (the same picture, drawn)
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import ts from "typescript";

/** The repository root (this file is dist/test/unit/import-graph.test.js once built). */
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const SRC = path.join(ROOT, "src");

/** sourceFiles - every .ts file below dir, as paths relative to the repository root */
function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sourceFiles(p));
    else if ((e.name.endsWith(".ts") || e.name.endsWith(".cts")) && !e.name.endsWith(".d.ts")) out.push(path.relative(ROOT, p));
  }
  return out.sort();
}

/** importGraph - file -> the files of src/ it imports (".js" specifiers name the ".ts" sources) */
function importGraph(): Map<string, Set<string>> {
  const files = sourceFiles(SRC);
  const known = new Set(files);
  const graph = new Map<string, Set<string>>();
  for (const file of files) {
    const to = new Set<string>();
    const info = ts.preProcessFile(readFileSync(path.join(ROOT, file), "utf8"), true, true);
    for (const ref of info.importedFiles) {
      if (!ref.fileName.startsWith(".")) continue;
      const target = path.join(path.dirname(file), ref.fileName).replace(/\.js$/, ".ts").replace(/\.cjs$/, ".cts");
      if (known.has(target)) to.add(target);
    }
    graph.set(file, to);
  }
  return graph;
}

/** folderOf - the folder of src/ a file stands in ("src" for src/main.ts) */
function folderOf(file: string): string {
  const parts = path.relative("src", file).split(path.sep);
  return parts.length > 1 ? `src/${parts[0]}` : "src";
}

/** A cycle, and every node of the strongly connected component it runs in. */
interface Cycle {
  way: string[];
  component: string[];
}

/**
 * cycles - one cycle through each strongly connected component of more than
 * one node (or a node importing itself), found by Tarjan's algorithm
 */
function cycles(graph: Map<string, Set<string>>): Cycle[] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: Cycle[] = [];
  const visit = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc = new Set<string>();
    for (let w = stack.pop()!; ; w = stack.pop()!) {
      onStack.delete(w);
      scc.add(w);
      if (w === v) break;
    }
    const component = [...scc].sort();
    if (scc.size > 1 || graph.get(v)?.has(v)) found.push({ way: cycleIn(graph, scc, component[0]!), component });
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return found;
}

/** cycleIn - the shortest way from start back to start inside scc (breadth first) */
function cycleIn(graph: Map<string, Set<string>>, scc: Set<string>, start: string): string[] {
  const from = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of [...(graph.get(v) ?? [])].sort()) {
      if (!scc.has(w)) continue;
      if (w === start) {
        const way = [v];
        while (way[0] !== start) way.unshift(from.get(way[0]!)!);
        return [...way, start];
      }
      if (!from.has(w)) {
        from.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start];
}

/** describe - a cycle as a line, and the rest of its component when the cycle misses some */
function describe(c: Cycle): string {
  const rest = c.component.filter((n) => !c.way.includes(n));
  return `  ${c.way.join(" -> ")}${rest.length > 0 ? `\n    (in one circle with ${rest.join(", ")})` : ""}`;
}

test("no import cycle between files of src/", () => {
  const found = cycles(importGraph());
  assert.deepEqual(
    found.map((c) => c.way.join(" -> ")),
    [],
    `${found.length} import cycle(s) between files:\n${found.map(describe).join("\n")}`,
  );
});

test("no import cycle between the folders of src/", () => {
  const files = importGraph();
  const folders = new Map<string, Set<string>>();
  /** "src/a -> src/b" -> the file imports that make that arrow */
  const because = new Map<string, string[]>();
  for (const [file, targets] of files) {
    const a = folderOf(file);
    if (!folders.has(a)) folders.set(a, new Set());
    for (const target of targets) {
      const b = folderOf(target);
      if (a === b) continue;
      folders.get(a)!.add(b);
      const arrow = `${a} -> ${b}`;
      because.set(arrow, [...(because.get(arrow) ?? []), `${file} -> ${target}`]);
    }
  }
  const found = cycles(folders);
  const explain = (c: Cycle): string =>
    `${describe(c)}\n` +
    c.way.slice(1).map((b, i) => `    ${c.way[i]} -> ${b}: ${because.get(`${c.way[i]} -> ${b}`)!.join(", ")}`).join("\n");
  assert.deepEqual(
    found.map((c) => c.way.join(" -> ")),
    [],
    `${found.length} import cycle(s) between folders:\n${found.map(explain).join("\n")}`,
  );
});
