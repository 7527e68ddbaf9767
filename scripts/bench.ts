/**
 * `npm run bench`: the pipeline's figures on the embedded backend, each a ratio
 * or a count within one run, against its goal. Prints a markdown table and
 * writes it (full runs) to bench/RESULTS.md.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { cpus, platform, release } from "node:os";
import { dirname } from "node:path";
import { isEntryPoint, parseFlags, runCli, UsageError, type Io } from "./lib/cli.ts";
import { FIGURES, FULL, QUICK, type Row } from "./lib/figures.ts";

export const USAGE = `Usage: npm run bench -- [options]

Measures the portrait pipeline on the embedded backend (convex-test) with the
loopback fakes: insert cost, pipeline overhead, burst makespan, memory, admin
read cost, chart read cost, failure isolation, provider-limit share, cost per job,
drain time, and the largest transaction of each function (documents read and written
at 10,000 queued and 100,000 stored jobs: --only largest, about 15 minutes on 2 busy
cores). Each figure is a ratio or a count measured within this run, reported against its goal.

Options:
  --quick          a small version that runs in seconds (prints only, unless --out)
  --out FILE       where to write the table (default bench/RESULTS.md for a full run)
  --only NAMES     comma-separated figures (first word of each), e.g. --only burst,memory,provider-limit,cost
  -h, --help       show this help
`;

export function machine() {
  const cpu = cpus();
  return { cpu: cpu[0]?.model.trim() ?? "unknown", cores: cpu.length, node: process.version, os: `${platform()} ${release()}` };
}

export function renderTable(rows: Row[]): string {
  const cell = (s: string) => s.replace(/\|/g, "\\|");
  return [
    "| figure | measured | goal | met |",
    "|---|---|---|---|",
    ...rows.map((r) => `| ${cell(r.figure)} | ${cell(r.measured)} | ${cell(r.goal)} | ${r.met ? "✅" : "❌"} |`),
  ].join("\n");
}

export function renderResults(rows: Row[], mode: "full" | "quick", date: Date): string {
  const m = machine();
  return `# Bench results

\`npm run bench${mode === "quick" ? " -- --quick" : ""}\` on ${date.toISOString().slice(0, 16).replace("T", " ")} UTC.
Machine: ${m.cpu}, ${m.cores} cores, Node ${m.node}, ${m.os}.
Backend: the project's Convex functions on convex-test (embedded, in-process), fake Recraft on 127.0.0.1.

${renderTable(rows)}

Reading these figures: convex-test is an in-memory emulation of Convex, not a deployment. It runs
one transaction at a time on the same JS thread as the actions and the fake provider, and answers
every index query by walking all the documents in the database. Counts (max in flight, jobs lost,
documents read, success rate) are exact; time and memory ratios include the emulator's own costs,
which the notes below separate where they can.

## How each figure was measured

${rows.map((r) => `- **${r.figure}**: ${r.notes.join(" ")}${r.table ? `\n\n${r.table.replace(/^/gm, "  ")}\n` : ""}`).join("\n")}
`;
}

export async function main(argv: string[], io: Io): Promise<number> {
  let flags;
  try {
    flags = parseFlags(argv, {
      quick: { type: "boolean" },
      out: { type: "string" },
      only: { type: "string" },
      help: { type: "boolean", short: "h" },
    });
    const known = FIGURES.map(([name]) => name.split(" ")[0]);
    for (const name of flags.only?.split(",") ?? []) {
      if (!known.includes(name.trim()))
        throw new UsageError(`--only: unknown figure ${JSON.stringify(name)}; choose from ${known.join(", ")}`);
    }
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr.write(`bench: ${error.message} (run with --help for usage)\n`);
    return 2;
  }
  if (flags.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  const mode = flags.quick ? "quick" : "full";
  const size = flags.quick ? QUICK : FULL;
  const only = flags.only?.split(",").map((s) => s.trim());
  const out = flags.out ?? (mode === "full" && !only ? "bench/RESULTS.md" : undefined);
  const m = machine();
  io.stdout.write(`bench (${mode}) on ${m.cpu}, ${m.cores} cores, Node ${m.node}\n`);

  const rows: Row[] = [];
  const started = Date.now();
  for (const [name, run] of FIGURES) {
    if (only && !only.includes(name.split(" ")[0]!)) continue;
    const t0 = Date.now();
    io.stdout.write(`▶ ${name}…\n`);
    const row = await run(size);
    rows.push(row);
    io.stdout.write(`${row.met ? "✅" : "❌"} ${name}: ${row.measured} (goal ${row.goal}) in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    if (row.table) io.stdout.write(`${row.table.replace(/^/gm, "  ")}\n`);
  }
  io.stdout.write(`\n${renderTable(rows)}\n\n(${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
  if (out) {
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, renderResults(rows, mode, new Date()) + (await keptSection(out)));
    io.stdout.write(`written to ${out}\n`);
  }
  return 0;
}

/** The test suite's times, measured by hand (CONTRIBUTING.md, "Test tiers"): kept when the bench rewrites the file. */
const TEST_TIMES_HEADING = "## Test suite time";

async function keptSection(file: string): Promise<string> {
  const old = await readFile(file, "utf8").catch(() => "");
  const at = old.indexOf(`\n${TEST_TIMES_HEADING}`);
  return at < 0 ? "" : old.slice(at);
}

if (isEntryPoint(import.meta.url)) runCli("bench", main);
