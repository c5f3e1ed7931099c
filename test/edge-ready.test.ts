/**
 * The code that ships to Cloudflare Workers (without nodejs_compat) and Vercel's edge must not
 * touch Node: no `node:` imports, no bare built-in module names, no `require`, and no Node-only
 * globals. This scans the source of those folders (tests excluded) and lists every offender.
 */
import { readdirSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..");
/** examples/ is bundled into the example Worker (wrangler.toml), so it is checked too (but its Node-only local stack). */
const EDGE_FOLDERS = [
  "src/core",
  "src/hono",
  "src/platforms",
  "examples/jobs.ts",
  "examples/worker.ts",
];

const BUILTINS = new Set(builtinModules);
const SPECIFIER_PATTERNS = [
  /\b(?:import|export)\b[^;"']*?\bfrom\s*["']([^"']+)["']/g,
  /\bimport\s*["']([^"']+)["']/g,
  /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
];
const NODE_ONLY_GLOBALS: [RegExp, string][] = [
  [/\brequire\s*\(/, "require()"],
  [/(?<![.\w$])Buffer\b/, "the Buffer global"],
  [/(?<![.\w$])process\s*\./, "the process global (use globalThis.process?. guarded access)"],
  [/\b__dirname\b|\b__filename\b/, "__dirname/__filename"],
];

function isNodeBuiltin(specifier: string): boolean {
  if (specifier.startsWith("node:")) return true;
  return BUILTINS.has(specifier) || BUILTINS.has(specifier.split("/")[0] ?? "");
}

/** Drops comments so documentation may mention Node freely; good enough for our own sources. */
function stripComments(source: string): string {
  return source
    .replace(/\/\*[\s\S]*?\*\//g, (block) => block.replace(/[^\n]/g, " "))
    .replace(/^\s*\/\/.*$/gm, "");
}

/** Every Node usage in `source`, as "line N: ...", in line order. */
function nodeUsages(source: string): string[] {
  const code = stripComments(source);
  const found: { line: number; text: string }[] = [];
  const lineOf = (index: number) => code.slice(0, index).split("\n").length;
  for (const pattern of SPECIFIER_PATTERNS) {
    for (const match of code.matchAll(pattern)) {
      const specifier = match[1] ?? "";
      if (isNodeBuiltin(specifier)) {
        found.push({ line: lineOf(match.index), text: `imports "${specifier}"` });
      }
    }
  }
  for (const [pattern, what] of NODE_ONLY_GLOBALS) {
    for (const match of code.matchAll(new RegExp(pattern.source, "g"))) {
      found.push({ line: lineOf(match.index), text: `uses ${what}` });
    }
  }
  return found.sort((a, b) => a.line - b.line).map(({ line, text }) => `line ${line}: ${text}`);
}

function sourceFiles(folder: string): string[] {
  if (/\.[mc]?[jt]s$/.test(folder)) return [join(ROOT, folder)];
  return readdirSync(join(ROOT, folder), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && /\.(?:ts|mts|js|mjs)$/.test(entry.name))
    .filter((entry) => !/\.(?:test|spec)\.[mc]?[jt]s$/.test(entry.name))
    .map((entry) => join(entry.parentPath, entry.name));
}

describe("edge readiness", () => {
  it("recognises the ways Node sneaks in", () => {
    const sample = [
      'import { createHash } from "node:crypto";',
      'import { readFile } from "fs/promises";',
      'export { Buffer } from "buffer";',
      'import "node:process";',
      'const os = await import("os");',
      "const x = require('x');",
      "const b = Buffer.from('a');",
      "const e = process.env.X;",
      "// import { nope } from 'node:fs' in a comment is fine",
      "/* so is require('fs') here */",
      'import { Hono } from "hono";',
      "const p = (globalThis as { process?: unknown }).process;",
    ].join("\n");
    expect(nodeUsages(sample)).toEqual([
      'line 1: imports "node:crypto"',
      'line 2: imports "fs/promises"',
      'line 3: imports "buffer"',
      "line 3: uses the Buffer global",
      'line 4: imports "node:process"',
      'line 5: imports "os"',
      "line 6: uses require()",
      "line 7: uses the Buffer global",
      "line 8: uses the process global (use globalThis.process?. guarded access)",
    ]);
  });

  it("finds no Node built-ins in src/core, src/hono, src/platforms and the example Worker", () => {
    const files = EDGE_FOLDERS.flatMap(sourceFiles);
    expect(files.length).toBeGreaterThan(0);
    const offenders = files.flatMap((file) =>
      nodeUsages(readFileSync(file, "utf8")).map((usage) => `${relative(ROOT, file)} ${usage}`),
    );
    expect(offenders, `Node-only code in edge folders:\n${offenders.join("\n")}`).toEqual([]);
  });
});
