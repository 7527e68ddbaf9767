import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterEach, expect, test } from "vitest";
import { caseFiles } from "../scripts/caseFiles";
import { main } from "../scripts/demo";
import { escapeHtml } from "../scripts/lib/report";
import { decodePngSize } from "../scripts/fakes/png";

function capture() {
  const stream = () => {
    const s = new PassThrough();
    let text = "";
    s.on("data", (chunk: Buffer) => (text += chunk.toString()));
    return { s, text: () => text };
  };
  const out = stream();
  const err = stream();
  return { io: { stdout: out.s, stderr: err.s, isTTY: false }, stdout: out.text, stderr: err.text };
}

const dirs: string[] = [];
async function outDir() {
  const dir = await mkdtemp(join(tmpdir(), "demo-test-"));
  dirs.push(dir);
  return dir;
}
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

const count = (text: string, needle: string) => text.split(needle).length - 1;

test("the demo stores a portrait per story and reports each job's events", async () => {
  const out = await outDir();
  const run = capture();
  expect(await main(["--stories", "3", "--out", out], run.io)).toBe(0);

  const files = (await readdir(join(out, "portraits"))).sort();
  expect(files).toEqual(
    caseFiles
      .slice(0, 3)
      .map((c) => `${c.slug}.png`)
      .sort(),
  );
  const pngs = await Promise.all(files.map((f) => readFile(join(out, "portraits", f))));
  for (const png of pngs) expect(decodePngSize(png)).toEqual({ width: 256, height: 256 });
  expect(new Set(pngs.map((png) => png.toString("base64"))).size).toBe(3);

  const html = await readFile(join(out, "report.html"), "utf8");
  for (const c of caseFiles.slice(0, 3)) expect(html).toContain(escapeHtml(c.title));
  expect(count(html, 'src="data:image/png;base64,')).toBe(3);
  expect(count(html, 'class="badge s-stored"')).toBe(3);
  for (const to of ["pending", "requested", "downloaded", "stored"]) expect(count(html, `<tr class="ev-${to}">`)).toBe(3);
  expect(run.stdout()).toContain("stored 3 · failed 0");
  expect(run.stdout()).toContain("story runs pending 0 · writing 0 · repairing 0 · inserted 3 · failed 0");
  expect(count(html, '<tr class="run-inserted">')).toBe(3);
  // Each portrait went through the fake TinyPNG; the demo and the report show the sizes.
  const sizes = [...run.stdout().matchAll(/^compressed \S+: compressed ([\d.]+ (?:B|KiB|MiB)) → ([\d.]+ (?:B|KiB|MiB))$/gm)];
  expect(sizes).toHaveLength(3);
  expect(count(html, "TinyPNG ")).toBe(3);
});

test("with every request failing the demo still exits 0 and shows each failure's code", async () => {
  const out = await outDir();
  const run = capture();
  expect(await main(["--stories", "3", "--fail-rate", "1", "--max-attempts", "1", "--out", out], run.io)).toBe(0);

  expect(await readdir(join(out, "portraits"))).toEqual([]);
  const html = await readFile(join(out, "report.html"), "utf8");
  expect(count(html, 'class="badge s-failed"')).toBe(3);
  expect(count(html, '<tr class="ev-failed">')).toBe(3);
  expect(count(html, 'src="data:image/png')).toBe(0);
  const codes = [...html.matchAll(/<p class="error">([a-z_]+)/g)].map((m) => m[1]);
  expect(codes).toHaveLength(3);
  expect(run.stdout()).toContain("stored 0 · failed 3");
  expect(run.stdout().match(/^failed {5}\S+: [a-z_]+/gm)).toHaveLength(3);
  // The fake Claude failed every other attempt: the runs retried and every case file was written.
  expect(run.stdout()).toMatch(/story run \d attempt 1: (overloaded HTTP 529|http_error HTTP 500) \(retrying\)/);
  expect(run.stdout()).toMatch(/story runs pending 0 · writing 0 · repairing 0 · inserted 3 · failed 0 \([12] retried\)/);
  expect(html).toMatch(/#1 (overloaded \(HTTP 529\)|http_error \(HTTP 500\))/);
});

test.each([[["--bogus"]], [["--stories", "many"]], [["--fail-rate", "2"]]])("a bad flag %j exits 2 with one line", async (argv) => {
  const run = capture();
  expect(await main(argv, run.io)).toBe(2);
  expect(run.stderr().trim().split("\n")).toHaveLength(1);
  expect(run.stderr()).toMatch(/^demo: .*--help/);
  expect(run.stdout()).toBe("");
});
