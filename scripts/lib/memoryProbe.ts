/**
 * The bench's memory figure, run in a child process for a clean baseline
 * (`node --expose-gc --import tsx scripts/lib/memoryProbe.ts --mib 20`).
 * Prints one JSON line: RSS growth while one image of exactly the byte cap goes
 * through the pipeline, and what an endless image body does against that cap.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { internal } from "../../convex/_generated/api.js";
import { recraftConfig } from "../../convex/lib/config.ts";
import { downloadImage, requestGeneration } from "../../convex/lib/recraft.ts";
import { portraitPng } from "../fakes/png.ts";
import { benchStack, insertStory, nthCaseFile, live, sleep, waitForCounts } from "./benchStack.ts";
import { intFlag, isEntryPoint, parseFlags } from "./cli.ts";
import { jobCounts } from "./stack.ts";

const HUGE = "[huge image]";
const ENDLESS = "[endless image]";

/** Peak RSS since the last reset, from the kernel (Linux), or undefined. */
function kernelPeakRss(): number | undefined {
  try {
    const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))?.[1];
    return kb ? Number(kb) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

function resetKernelPeak(): boolean {
  try {
    writeFileSync("/proc/self/clear_refs", "5");
    return true;
  } catch {
    return false;
  }
}

async function settleMemory() {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 3; i++) {
    gc?.();
    await sleep(30);
  }
}

/** Samples RSS every millisecond (and the kernel's high-water mark at the end) while `work` runs. */
async function peakRssDuring(work: () => Promise<void>): Promise<{ baseline: number; peak: number; after: number }> {
  await settleMemory();
  const baseline = process.memoryUsage.rss();
  const kernel = resetKernelPeak();
  let peak = baseline;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 1);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  peak = Math.max(peak, process.memoryUsage.rss(), (kernel && kernelPeakRss()) || 0);
  await settleMemory();
  return { baseline, peak, after: process.memoryUsage.rss() };
}

export type Part = "pipeline" | "download" | "storage";

/**
 * `pipeline`: one image of the cap through insertStory and the scheduled
 * action, then an endless body against the cap. `download` and `storage`
 * attribute the pipeline's peak, each in a fresh process: downloadImage
 * (convex/lib/recraft.ts) alone, and what convex-test's ctx.storage.store does
 * with a blob (arrayBuffer + SHA-256, as its storeBlob syscall does).
 */
export async function probe(mib: number, part: Part) {
  const cap = mib * 1024 * 1024;
  // An image of exactly the cap: a real PNG head, then padding. Built before the baseline.
  const huge = new Uint8Array(cap);
  huge.set(portraitPng("huge", 16));
  const paint = (prompt: string) => (prompt.includes(HUGE) ? huge : portraitPng(prompt, 64));
  const stack = await benchStack({ recraft: { latencyMs: 0, downloadLatencyMs: 0, paint }, env: { PORTRAIT_MAX_BYTES: String(cap) } });
  const { t } = stack;
  const runOne = async (i: number, tag: string) => {
    const storyId = await t.mutation(internal.stories.insertStory, {
      ...nthCaseFile(i),
      imageGenerationPrompt: `A gaunt patient in a hospital gown ${tag}`,
    });
    await waitForCounts(t, (c) => live(c) === 0, 5, 60_000);
    return t.run(async (ctx) => {
      const job = (await ctx.db.query("portraitJobs").withIndex("by_story", (q) => q.eq("storyId", storyId)).first())!;
      const stored = await ctx.db.query("portraitJobEvents").withIndex("by_job", (q) => q.eq("jobId", job._id)).collect();
      return { status: job.status, code: job.error?.code ?? null, bytes: stored.find((e) => e.to === "downloaded")?.details?.bytes ?? null };
    });
  };
  const ratio = (m: { baseline: number; peak: number }) => (m.peak - m.baseline) / cap;
  try {
    // Warm up every code path with small images first.
    for (let i = 0; i < 3; i++) await insertStory(t, i);
    await waitForCounts(t, (c) => live(c) === 0, 5, 60_000);

    if (part === "download") {
      const config = recraftConfig();
      const generated = await requestGeneration(config, config.apiKey!, `A patient ${HUGE}`);
      if (!generated.ok) throw new Error(generated.error.message);
      let kept: unknown;
      const rss = await peakRssDuring(async () => void (kept = await downloadImage(config, generated.value.url)));
      return { cap, part, ratio: ratio(rss), ok: (kept as { ok: boolean }).ok };
    }
    if (part === "storage") {
      const blob = new Blob([huge], { type: "image/png" });
      const rss = await peakRssDuring(async () => void (await crypto.subtle.digest("SHA-256", await blob.arrayBuffer())));
      return { cap, part, ratio: ratio(rss), ok: true };
    }

    let image!: Awaited<ReturnType<typeof runOne>>;
    const imageRss = await peakRssDuring(async () => void (image = await runOne(10, HUGE)));

    stack.recraft!.setFault(({ prompt }) => (prompt.includes(ENDLESS) ? { kind: "imageEndless" } : undefined));
    stack.recraft!.reset();
    let endless!: Awaited<ReturnType<typeof runOne>>;
    const endlessRss = await peakRssDuring(async () => void (endless = await runOne(11, ENDLESS)));
    return {
      cap,
      part,
      image: { ...image, ...imageRss, ratio: ratio(imageRss), retainedRatio: (imageRss.after - imageRss.baseline) / cap },
      endless: { ...endless, ...endlessRss, sent: stack.recraft!.oversizeBytesSent, ratio: ratio(endlessRss) },
      counts: await jobCounts(t),
    };
  } finally {
    await stack.close();
  }
}

if (isEntryPoint(import.meta.url)) {
  const flags = parseFlags(process.argv.slice(2), { mib: { type: "string" }, part: { type: "string" } });
  const part = (flags.part ?? "pipeline") as Part;
  probe(intFlag("mib", flags.mib, 20, 1, 60), part).then(
    (result) => {
      process.stdout.write(`${JSON.stringify(result)}\n`);
      process.exit(0);
    },
    (error: unknown) => {
      process.stderr.write(`memory probe: ${error instanceof Error ? error.stack : String(error)}\n`);
      process.exit(1);
    },
  );
}
