/**
 * The docs match the code: every setting `convex/lib/config.ts` reads has a row
 * in the settings table of docs/OPERATIONS.md, and every relative link (and
 * image) in README.md, CONTRIBUTING.md and docs/*.md points at a file that
 * exists, and at a heading that exists when it names one. The README's schema step
 * lists every table `portraitTables` spreads.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const read = (path: string) => readFileSync(join(ROOT, path), "utf8");

/** Every setting name the source reads: `process.env.X`, `process.env["X"]`, and helper calls such as `integer("X", …)`. */
function settingsRead(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
  const names = new Set<string>();
  for (const pattern of [
    /process\.env\.([A-Z][A-Z0-9_]*)/g,
    /process\.env\[\s*["'`]([A-Z][A-Z0-9_]*)["'`]\s*\]/g,
    /\b\w+\(\s*"([A-Z][A-Z0-9_]*)"/g,
  ]) {
    for (const match of code.matchAll(pattern)) names.add(match[1]!);
  }
  return [...names].sort();
}

/** The names in the first column of the first table under `heading`. */
function settingsTable(markdown: string, heading: string): string[] {
  const start = markdown.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`no heading ${JSON.stringify(heading)}`);
  const lines = markdown.slice(start + heading.length + 2).split("\n");
  const first = lines.findIndex((line) => line.startsWith("|"));
  const rows: string[] = [];
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith("|")) break;
    rows.push(line.split("|")[1] ?? "");
  }
  return rows.flatMap((cell) => [...cell.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1]!));
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes, repeats numbered. */
function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const [, text] of withoutFences(markdown).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = text!
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** Fenced code blocks removed (indented ones too, as in a numbered list). */
function withoutFences(markdown: string): string {
  return markdown.replace(/^[ \t]*(```|~~~)[^\n]*\n[\s\S]*?^[ \t]*\1[ \t]*$/gm, "");
}

/** Code removed, fenced and inline, so a link shown as code is not followed. */
function withoutCode(markdown: string): string {
  return withoutFences(markdown).replace(/`[^`\n]*`/g, "``");
}

/** Every relative link or image target in a markdown file: `[text](target)`, `![alt](target)`. */
function relativeLinks(markdown: string): string[] {
  const targets = [...withoutCode(markdown).matchAll(/!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]!);
  return targets.filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target));
}

/** The broken links of one file: a missing file, or a missing heading in a markdown file. */
function brokenLinks(file: string, exists: (path: string) => boolean, markdownOf: (path: string) => string): string[] {
  const broken: string[] = [];
  for (const link of relativeLinks(markdownOf(file))) {
    const [path = "", anchor] = link.split("#", 2);
    const target = path === "" ? file : join(dirname(file), decodeURIComponent(path));
    if (!exists(target)) {
      broken.push(`${file}: ${link} (no file ${target})`);
      continue;
    }
    if (anchor !== undefined && target.endsWith(".md") && !anchorsOf(markdownOf(target)).has(anchor)) {
      broken.push(`${file}: ${link} (no heading #${anchor} in ${target})`);
    }
  }
  return broken;
}

const DOCS = [
  "README.md",
  "CONTRIBUTING.md",
  ...readdirSync(join(ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
];
const onDisk = (path: string) => existsSync(join(ROOT, path));

describe("the settings table", () => {
  const read_ = settingsRead(read("convex/lib/config.ts"));
  const documented = new Set(settingsTable(read("docs/OPERATIONS.md"), "## Settings (Convex environment variables)"));

  test("the parser finds the settings config.ts reads (keys, texts, integers, lists)", () => {
    for (const name of [
      "RECRAFT_API_KEY",
      "RECRAFT_STYLE",
      "RECRAFT_IMAGE_HOSTS",
      "PORTRAIT_MAX_CONCURRENCY",
      "STORY_DAILY",
      "CLAUDE_API_KEY",
    ]) {
      expect(read_).toContain(name);
    }
    expect(read_.length).toBeGreaterThanOrEqual(30);
  });

  test("every setting config.ts reads has a row in docs/OPERATIONS.md", () => {
    expect(read_.filter((name) => !documented.has(name))).toEqual([]);
  });

  test("the check fails for a setting without a row", () => {
    const source = `${read("convex/lib/config.ts")}\nconst x = integer("PORTRAIT_NOT_DOCUMENTED_MS", 1, 0, 2);`;
    expect(settingsRead(source).filter((name) => !documented.has(name))).toEqual(["PORTRAIT_NOT_DOCUMENTED_MS"]);
    const table = read("docs/OPERATIONS.md").replace(/^\| `STORY_DAILY` .*\n/m, "");
    expect(settingsTable(table, "## Settings (Convex environment variables)")).not.toContain("STORY_DAILY");
  });
});

test("the README's schema step names every table portraitTables spreads", () => {
  const tables = [...read("convex/tables.ts").matchAll(/^ {2}(\w+): defineTable\(/gm)].map((m) => m[1]!);
  expect(tables).toContain("stories");
  const listed = read("README.md")
    .match(/\.\.\.portraitTables, \/\/ (.+)$/m)?.[1]
    ?.split(", ");
  expect(listed).toEqual(tables);
});

describe("links in the docs", () => {
  test.each(DOCS)("every relative link in %s resolves", (file) => {
    expect(brokenLinks(file, onDisk, read)).toEqual([]);
  });

  test("the links checked include the README's picture, the three docs and the console's screenshots", () => {
    const all = DOCS.flatMap((file) =>
      relativeLinks(read(file)).map((link) => relative(ROOT, join(ROOT, dirname(file), link.split("#")[0]!))),
    );
    for (const path of [
      "docs/report.png",
      "docs/ARCHITECTURE.md",
      "docs/OPERATIONS.md",
      "CONTRIBUTING.md",
      "docs/dashboard.png",
      "docs/console-cancelled.png",
    ]) {
      expect(all).toContain(path);
    }
  });

  test("a missing file, a missing heading and a link shown as code are told apart", () => {
    const files: Record<string, string> = {
      "README.md":
        "[ok](docs/A.md#two) ![gone](docs/gone.png) [bad](docs/A.md#three) `[code](nowhere.md)` [web](https://example.com) [self](#top)\n# Top\n",
      "docs/A.md": "# One\n## Two\n```\n## Three\n```\n![up](../README.md)\n",
    };
    const exists = (path: string) => path in files;
    expect(brokenLinks("README.md", exists, (path) => files[path]!)).toEqual([
      "README.md: docs/gone.png (no file docs/gone.png)",
      "README.md: docs/A.md#three (no heading #three in docs/A.md)",
    ]);
    expect(brokenLinks("docs/A.md", exists, (path) => files[path]!)).toEqual([]);
  });
});
