/**
 * The bench's memory figure, run in a child process for a clean baseline
 * (`node --expose-gc --import tsx scripts/lib/memoryProbe.ts --mib 16 --part download`).
 * Prints one JSON line. What it counts is what the Convex runtime limits: bytes
 * of ArrayBuffers (64 MiB per action), from process.memoryUsage().arrayBuffers,
 * sampled every 2 ms twice over: right after a full GC (the bytes *held*,
 * which is what the limit refuses: V8 collects garbage before it fails an
 * allocation) and without one (held plus garbage not yet collected). Node
 * keeps a Blob's bytes in ArrayBuffers where Convex's runtime keeps a Blob's
 * parts outside the isolate, so both are upper bounds of the same code on Convex.
 */
import { internal } from "../../convex/_generated/api.js";
import { MAX_IMAGE_BYTES, recraftConfig } from "../../convex/lib/config.ts";
import { downloadImage, requestGeneration } from "../../convex/lib/recraft.ts";
import { resolveRecraftRequest } from "../../convex/lib/recraftModels.ts";
import { portraitPng } from "../fakes/png.ts";
import { benchStack, insertStory, nthCaseFile, live, waitForCounts } from "./benchStack.ts";
import { sleep } from "./wait.ts";
import { intFlag, isEntryPoint, parseFlags } from "./cli.ts";
import { jobCounts } from "./stack.ts";

const HUGE = "[huge image]";
const ENDLESS = "[endless image]";

async function settleMemory() {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 3; i++) {
    gc?.();
    await sleep(30);
  }
}

/**
 * Peak ArrayBuffer bytes above the settled baseline while `work` runs (each
 * sample after a full GC when `held`), and what is still held after it.
 */
async function peakArrayBuffersDuring(work: () => Promise<void>, held: boolean): Promise<{ peak: number; retained: number }> {
  await settleMemory();
  const gc = (globalThis as { gc?: () => void }).gc;
  if (held && !gc) throw new Error("run with node --expose-gc");
  const arrayBuffers = () => process.memoryUsage().arrayBuffers;
  const baseline = arrayBuffers();
  let peak = baseline;
  const timer = setInterval(() => {
    if (held) gc!();
    peak = Math.max(peak, arrayBuffers());
  }, 2);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  if (held) gc!();
  peak = Math.max(peak, arrayBuffers());
  await settleMemory();
  return { peak: peak - baseline, retained: arrayBuffers() - baseline };
}

export type Part = "pipeline" | "download";

/**
 * `download`: downloadImage (convex/lib/recraft.ts) alone, the pipeline's own
 * copies of the image; the Blob it returns is what ctx.storage.store streams
 * part by part in Convex's runtime. `pipeline`: one image of the cap through
 * insertStory and the scheduled action on convex-test, whose storage
 * emulation adds its own copy (its storeBlob reads the whole blob and keeps
 * the file in memory), then an endless body against the cap.
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
      const job = (await ctx.db
        .query("portraitJobs")
        .withIndex("by_story", (q) => q.eq("storyId", storyId))
        .first())!;
      const stored = await ctx.db
        .query("portraitJobEvents")
        .withIndex("by_job", (q) => q.eq("jobId", job._id))
        .collect();
      return {
        status: job.status,
        code: job.error?.code ?? null,
        bytes: stored.find((e) => e.to === "downloaded")?.details?.bytes ?? null,
      };
    });
  };
  const copies = (bytes: number) => bytes / cap;
  try {
    // Warm up every code path with small images first.
    for (let i = 0; i < 3; i++) await insertStory(t, i);
    await waitForCounts(t, (c) => live(c) === 0, 5, 60_000);

    if (part === "download") {
      const config = recraftConfig();
      const request = resolveRecraftRequest(config);
      if (!request.ok) throw new Error(request.message);
      const measure = async (held: boolean) => {
        const generated = await requestGeneration(config, request.value, config.apiKey!, `A patient ${HUGE}`);
        if (!generated.ok) throw new Error(generated.error.message);
        let kept: Awaited<ReturnType<typeof downloadImage>> | undefined;
        const measured = await peakArrayBuffersDuring(async () => void (kept = await downloadImage(config, generated.value.url)), held);
        if (kept?.ok !== true || kept.value.bytes !== cap) throw new Error(`the download did not store the image: ${JSON.stringify(kept)}`);
        return copies(measured.peak);
      };
      return { cap, part, ok: true, heldCopies: await measure(true), allocatedCopies: await measure(false) };
    }

    let image!: Awaited<ReturnType<typeof runOne>>;
    const imageMeasured = await peakArrayBuffersDuring(async () => void (image = await runOne(10, HUGE)), true);

    stack.recraft!.setFault(({ prompt }) => (prompt.includes(ENDLESS) ? { kind: "imageEndless" } : undefined));
    stack.recraft!.reset();
    let endless!: Awaited<ReturnType<typeof runOne>>;
    const endlessMeasured = await peakArrayBuffersDuring(async () => void (endless = await runOne(11, ENDLESS)), true);
    const endlessDownload = stack.recraft!.imageRequests.find((r) => r.fault === "imageEndless");
    // The fake sees the client leave a moment after the job has failed.
    for (let waited = 0; endlessDownload && !endlessDownload.closed && waited < 5_000; waited += 10) await sleep(10);
    return {
      cap,
      part,
      image: { ...image, heldCopies: copies(imageMeasured.peak), retainedCopies: copies(imageMeasured.retained) },
      endless: {
        ...endless,
        sent: stack.recraft!.oversizeBytesSent,
        closedEarly: endlessDownload?.closedEarly ?? null,
        heldCopies: copies(endlessMeasured.peak),
      },
      counts: await jobCounts(t),
    };
  } finally {
    await stack.close();
  }
}

if (isEntryPoint(import.meta.url)) {
  const flags = parseFlags(process.argv.slice(2), { mib: { type: "string" }, part: { type: "string" } });
  const part = (flags.part ?? "pipeline") as Part;
  probe(intFlag("mib", flags.mib, 16, 1, MAX_IMAGE_BYTES / (1024 * 1024)), part).then(
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
