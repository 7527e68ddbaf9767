import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { expect, test } from "vitest";
import { main } from "../scripts/bench";

const FIGURES = [
  "insert cost",
  "pipeline overhead",
  "burst makespan",
  "memory",
  "admin read cost",
  "chart read cost",
  "failure isolation",
  "provider-limit share",
  "cost per job",
  "drain time",
  "largest transaction",
];

/** The table's body rows as cells, e.g. ["insert cost", "2.10× (…)", "≤ 1.5×", "❌"]. */
function tableRows(markdown: string): string[][] {
  return markdown
    .split("\n")
    .filter((line) => line.startsWith("| ") && !line.startsWith("| figure") && !line.startsWith("|---"))
    .map((line) => line.slice(2, -2).split(" | "));
}

test("bench --quick measures every figure and writes the table", { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), "bench-test-"));
  try {
    const out = join(dir, "RESULTS.md");
    // The test suite's times are measured by hand and kept when the bench rewrites the file.
    const testTimes = "## Test suite time\n\n`npm test`: 1 min 58 s (median of 3).\n";
    await writeFile(out, `# Bench results\n\nan older table\n\n${testTimes}`);
    const stdout = new PassThrough();
    let printed = "";
    stdout.on("data", (chunk: Buffer) => (printed += chunk.toString()));
    const code = await main(["--quick", "--out", out], { stdout, stderr: new PassThrough(), isTTY: false });
    expect(code).toBe(0);

    const written = await readFile(out, "utf8");
    expect(written).toMatch(/cores, Node v\d+/);
    expect(written).not.toContain("an older table");
    expect(written.endsWith(`\n\n${testTimes}`)).toBe(true);
    for (const markdown of [printed, written]) {
      const rows = tableRows(markdown);
      expect(rows.map((r) => r[0])).toEqual(FIGURES);
      for (const [, measured, goal, met] of rows) {
        expect(measured).toMatch(/\d/);
        expect(goal).not.toBe("");
        expect(["✅", "❌"]).toContain(met);
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("bench rejects a bad flag with exit code 2", async () => {
  const stderr = new PassThrough();
  let text = "";
  stderr.on("data", (chunk: Buffer) => (text += chunk.toString()));
  expect(await main(["--fast"], { stdout: new PassThrough(), stderr, isTTY: false })).toBe(2);
  expect(text.trim().split("\n")).toHaveLength(1);
});
