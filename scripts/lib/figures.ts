/**
 * The bench's figures. Each is a ratio or a count measured within one run, on
 * the project's real code paths (insertStory, the dispatcher, the scheduled
 * portrait action, the loopback fakes), never a raw timing goal.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { internal } from "../../convex/_generated/api.js";
import type { Doc } from "../../convex/_generated/dataModel.js";
import type { JobStatus } from "../../convex/validators.ts";
import { bucketCap, CHART_RANGES, MAX_CHART_READS, readActivity, type ChartRange } from "../../convex/lib/activity.ts";
import { ACTION_ARRAY_BUFFER_BYTES, MAX_IMAGE_BYTES, PEAK_IMAGE_COPIES } from "../../convex/lib/config.ts";
import { readCounts } from "../../convex/lib/jobs.ts";
import { slugify } from "../../convex/lib/caseFile.ts";
import { drain, drainFigureRow, drainScenarios } from "./drain.ts";
import { BENCH_SCALE, documentedBounds, queueAtScale, type QueueScale } from "./transactions.ts";
import { adjustCounts, foldCounts } from "../../convex/lib/counts.ts";
import schema from "../../convex/schema.ts";
import { DEFAULT_MAX_CONCURRENCY } from "../../convex/lib/config.ts";
import type { Backend } from "./backend.ts";
import { benchStack, eventsByJob, insertStory, live, nthCaseFile, RECRAFT_LIMITS_X10, waitForCounts } from "./benchStack.ts";
import { meteredModules, type Access } from "./costMeter.ts";
import { failRatePicker } from "./faults.ts";
import { generateStories } from "./stack.ts";
import { formatBytes, formatMs, median, percentile } from "./stats.ts";

export interface BenchSize {
  inserts: number;
  jobs: number;
  burst: number;
  memoryMiB: number;
  adminJobs: [number, number];
  stories: number;
  /** Jobs of the provider-limit share run, and of the cost-per-job run. */
  shareJobs: number;
  costJobs: number;
  /** The drain figure: portraits per scenario, and how much shorter than Recraft's its windows are. */
  drainJobs: number;
  drainScale: number;
  /** The queue the largest-transaction figure seeds. */
  queueScale: QueueScale;
}

export const FULL: BenchSize = {
  inserts: 500,
  jobs: 200,
  burst: 500,
  memoryMiB: 16,
  adminJobs: [1_000, 50_000],
  stories: 20,
  shareJobs: 300,
  costJobs: 100,
  drainJobs: 150,
  drainScale: 1,
  queueScale: BENCH_SCALE,
};
export const QUICK: BenchSize = {
  inserts: 50,
  jobs: 20,
  burst: 60,
  memoryMiB: 5,
  adminJobs: [1_000, 5_000],
  stories: 5,
  shareJobs: 40,
  costJobs: 20,
  drainJobs: 40,
  drainScale: 10,
  queueScale: {
    stored: 200,
    queued: 500,
    stalled: 60,
    stalledDownloaded: 3,
    files: 300,
    wakes: 100,
    releases: 100,
    failed: 120,
    legacyStories: 120,
  },
};

export interface Row {
  figure: string;
  measured: string;
  goal: string;
  met: boolean;
  /** How it was measured, and what dominates. */
  notes: string[];
  /** A markdown table to show beside the notes (comparisons). */
  table?: string;
}

const x = (ratio: number) => `${ratio.toFixed(2)}×`;

/** insertStory (story + job + event + dispatch/schedule) against a bare story insert, interleaved. */
async function insertCost(size: BenchSize): Promise<Row> {
  // Jobs really run (latency 0) but never during a measurement: we wait for them between pairs.
  const stack = await benchStack({ recraft: { latencyMs: 0, downloadLatencyMs: 0 } });
  const { t } = stack;
  try {
    const bare: number[] = [];
    const full: number[] = [];
    const lookup: number[] = [];
    let n = 0;
    const bareInsert = async () => {
      const file = nthCaseFile(n++);
      const story = { ...file, slug: slugify(file.title), createdAt: Date.now() };
      const start = performance.now();
      // An inline mutation, not t.run: t.run wraps the mutation in an action, which would flatter the ratio.
      await t.mutation((ctx) => ctx.db.insert("stories", story));
      return performance.now() - start;
    };
    const fullInsert = async () => {
      const i = n++;
      const start = performance.now();
      await insertStory(t, i);
      const ms = performance.now() - start;
      await waitForCounts(t, (c) => live(c) === 0, 1, 30_000);
      return ms;
    };
    // One indexed read, to show what a read costs on this backend at this table size.
    const oneLookup = async () => {
      const start = performance.now();
      await t.mutation((ctx) =>
        ctx.db
          .query("stories")
          .withIndex("by_slug", (q) => q.eq("slug", "no-such-slug"))
          .first(),
      );
      return performance.now() - start;
    };
    const warmup = Math.min(20, size.inserts);
    for (let i = 0; i < warmup + size.inserts; i++) {
      // Alternate which goes first, so drift (the tables grow) hits both alike.
      let a: number, b: number;
      if (i % 2) {
        a = await bareInsert();
        b = await fullInsert();
      } else {
        b = await fullInsert();
        a = await bareInsert();
      }
      const c = await oneLookup();
      if (i >= warmup) {
        bare.push(a);
        full.push(b);
        lookup.push(c);
      }
    }
    const ratio = median(full) / median(bare);
    return {
      figure: "insert cost",
      measured: `${x(ratio)} (median ${formatMs1(median(full))} vs ${formatMs1(median(bare))}, ${size.inserts} each)`,
      goal: "≤ 1.5×",
      met: ratio <= 1.5,
      notes: [
        `internal.stories.insertStory against an inline mutation inserting the same story, ${size.inserts} of each, interleaved (ABBA), after ${warmup} warm-up pairs; each insertStory's job ran to \`stored\` between measurements, outside the timed window.`,
        `A mutation doing just one indexed lookup (stories.by_slug) took ${formatMs1(median(lookup))} (median) on the same tables: convex-test answers every index range by walking every document in the database (then sorting the matches), and insertStory makes three (slug check, the job's count row, the wakeup bucket) where the bare insert makes none. This ratio measures the embedded engine's speed, not a deployment's: the cost per job figure counts the documents instead.`,
      ],
    };
  } finally {
    await stack.close();
  }
}

const formatMs1 = (ms: number) => `${ms.toFixed(2)} ms`;

/** Documents in the embedded database, system tables included. */
async function documentCount(t: Backend): Promise<number> {
  return t.run(async (ctx) => {
    let n = 0;
    for (const table of Object.keys(schema.tables) as (keyof typeof schema.tables)[]) n += (await ctx.db.query(table).collect()).length;
    n += (await ctx.db.system.query("_scheduled_functions").collect()).length;
    n += (await ctx.db.system.query("_storage").collect()).length;
    return n;
  });
}

/** Share of wall time this process spent on CPU (user + system) since the call. */
function cpuMeter(): () => string {
  const cpu = process.cpuUsage();
  const wall = performance.now();
  return () => {
    const used = process.cpuUsage(cpu);
    return `${Math.round((100 * (used.user + used.system)) / 1000 / (performance.now() - wall))}%`;
  };
}

/** Runs `n` jobs through the stack (in waves of 4) so the figure measures warm code. */
async function warmUp(t: Backend, n: number, firstIndex: number) {
  for (let i = 0; i < n; i += 4) {
    await Promise.all([0, 1, 2, 3].map((k) => insertStory(t, firstIndex + i + k)));
    await waitForCounts(t, (c) => live(c) === 0, 5, 60_000);
  }
}

type Events = Awaited<ReturnType<typeof eventsByJob>> extends Map<string, infer E> ? E : never;

/** Median time of one step (the event `from → to` minus the job's previous event). */
function stepMedian(jobs: Events[], from: JobStatus, to: JobStatus): number {
  return median(
    jobs
      .map((events) => {
        const i = events.findIndex((e) => e.from === from && e.to === to);
        return i > 0 ? events[i]!.at - events[i - 1]!.at : NaN;
      })
      .filter(Number.isFinite),
  );
}

/** Jobs created at or after `since`, each as its events in order. */
async function jobsSince(t: Backend, since: number): Promise<Events[]> {
  return [...(await eventsByJob(t)).values()].filter((events) => events[0]!.at >= since);
}

/** End-to-end job time (pending → stored) ÷ the fake provider's own latency. */
async function pipelineOverhead(size: BenchSize): Promise<Row> {
  const requestMs = 150;
  const downloadMs = 50;
  const provider = requestMs + downloadMs;
  const stack = await benchStack({ recraft: { latencyMs: requestMs, downloadLatencyMs: downloadMs } });
  const { t } = stack;
  try {
    await warmUp(t, 8, 100_000);
    stack.recraft!.reset();
    const since = Date.now();
    const busy = cpuMeter();
    // Waves of 4 (the concurrency cap), so no job waits in the queue for a slot.
    for (let inserted = 0; inserted < size.jobs;) {
      const wave = Math.min(4, size.jobs - inserted);
      await Promise.all(Array.from({ length: wave }, (_, k) => insertStory(t, inserted + k)));
      inserted += wave;
      await waitForCounts(t, (c) => live(c) === 0, 10, 60_000);
    }
    const cpu = busy();
    const jobs = await jobsSince(t, since);
    const e2e = jobs.map((events) => events.at(-1)!.at - events[0]!.at);
    const stored = jobs.filter((events) => events.at(-1)!.to === "stored").length;
    const http = median(
      jobs.map((events) => events.find((e) => e.to === "downloaded")?.details?.durationMs ?? NaN).filter(Number.isFinite),
    );
    const serverSpan = median(stack.recraft!.timeline.map((span) => (span.end ?? NaN) - span.start).filter(Number.isFinite));
    const p50 = median(e2e) / provider;
    const p95 = percentile(e2e, 95) / provider;
    return {
      figure: "pipeline overhead",
      measured: `median ${x(p50)}, p95 ${x(p95)} (${stored}/${size.jobs} stored)`,
      goal: "≤ 1.05 (median and p95)",
      met: p50 <= 1.05 && p95 <= 1.05 && stored === size.jobs,
      notes: [
        `${size.jobs} jobs in waves of 4 (the cap, so none queues) after 8 warm-up jobs, fake latency ${requestMs} ms generation + ${downloadMs} ms download = ${provider} ms. End-to-end = the job's creation event to its \`stored\` event.`,
        `Median steps: created → requested ${formatMs(stepMedian(jobs, "pending", "requested"))} (scheduler hop + claim), requested → downloaded ${formatMs(stepMedian(jobs, "requested", "downloaded"))} (the action's own HTTP time ${formatMs(http)}; the fake's generation spans, configured ${requestMs} ms, took ${formatMs(serverSpan)} as the server saw them), downloaded → stored ${formatMs(stepMedian(jobs, "downloaded", "stored"))} (storage + markStored).`,
        `The process was on CPU ${cpu} of the wall time: one JS thread runs the backend, the actions and the fake, and convex-test runs one transaction at a time, so one job's timers and transactions wait behind the other jobs' transactions. A time ratio on the embedded engine: it measures convex-test's speed as much as the pipeline's.`,
      ],
    };
  } finally {
    await stack.close();
  }
}

/** Many stories inserted at once: makespan against the ideal, the cap as the server saw it, jobs lost. */
async function burst(size: BenchSize): Promise<Row> {
  const latency = 50;
  const concurrency = 4;
  const stack = await benchStack({ recraft: { latencyMs: latency, downloadLatencyMs: 0 } });
  const { t } = stack;
  try {
    await warmUp(t, 8, 100_000);
    stack.recraft!.reset();
    const busy = cpuMeter();
    const start = Date.now();
    await Promise.all(Array.from({ length: size.burst }, (_, i) => insertStory(t, i)));
    const insertedAt = Date.now();
    let timedOut = false;
    await waitForCounts(t, (c) => live(c) === 0, 15, 4 * 60_000).catch(() => (timedOut = true));
    const cpu = busy();
    const jobs = await jobsSince(t, start);
    const stored = jobs.filter((events) => events.at(-1)!.to === "stored");
    const end = Math.max(...jobs.map((events) => events.at(-1)!.at));
    const ideal = (size.burst * latency) / concurrency;
    const ratio = (end - start) / ideal;
    const maxInFlight = stack.recraft!.maxInFlight;
    const lost = size.burst - stored.length;
    // A slot's hand-off: from a job's `stored` to the `requested` of the job that took its slot.
    const storedAt = stored.map((events) => events.at(-1)!.at).sort((a, b) => a - b);
    const requestedAt = jobs
      .map((events) => events.find((e) => e.to === "requested")?.at ?? NaN)
      .filter(Number.isFinite)
      .sort((a, b) => a - b);
    const handoff = median(requestedAt.slice(concurrency).map((at, i) => at - storedAt[i]!));
    const http = median(stored.map((events) => events.find((e) => e.to === "downloaded")?.details?.durationMs ?? NaN));
    return {
      figure: "burst makespan",
      measured: `${x(ratio)} (${formatMs(end - start)} vs ideal ${formatMs(ideal)}); max in flight ${maxInFlight}; lost ${lost}${timedOut ? " (timed out)" : ""}`,
      goal: `≤ 1.2×; max in flight = ${concurrency}; lost = 0`,
      met: ratio <= 1.2 && maxInFlight === concurrency && lost === 0,
      notes: [
        `${size.burst} insertStory calls at once after 8 warm-up jobs, fake latency ${latency} ms, PORTRAIT_MAX_CONCURRENCY ${concurrency}; ideal = jobs × latency ÷ concurrency. Makespan = first insert to the last terminal event.`,
        `What it is made of: the ${size.burst} inserts took ${formatMs(insertedAt - start)} to commit, and convex-test runs one transaction at a time, so the first jobs' claims queue behind them; per job, the HTTP exchange took ${formatMs(http)} (median, configured ${latency} ms), downloaded → stored ${formatMs(stepMedian(stored, "downloaded", "stored"))}, and a slot's hand-off (a job's \`stored\` to the next job's \`requested\`: dispatch, scheduler hop, claim) ${formatMs(handoff)}. The process was on CPU ${cpu} of the makespan, and every index query walks all the documents in the database (${(await documentCount(t)).toLocaleString("en")} by the end).`,
      ],
    };
  } finally {
    await stack.close();
  }
}

interface ProbeResult {
  cap: number;
  image: { status: string; bytes: number | null; heldCopies: number; retainedCopies: number };
  endless: { status: string; code: string | null; sent: number; closedEarly: boolean | null; heldCopies: number };
}

/** Runs one part of scripts/lib/memoryProbe.ts in a fresh Node process, for a clean baseline. */
async function runProbe<T>(mib: number, part: "pipeline" | "download"): Promise<T> {
  const probe = fileURLToPath(new URL("./memoryProbe.ts", import.meta.url));
  const args = ["--expose-gc", "--import", "tsx", probe, "--mib", String(mib), "--part", part];
  const { stdout } = await promisify(execFile)(process.execPath, args, {
    cwd: fileURLToPath(new URL("../..", import.meta.url)),
    maxBuffer: 1 << 20,
  });
  return JSON.parse(stdout.trim().split("\n").at(-1)!) as T;
}

/**
 * Bytes of ArrayBuffers per image against the runtime's 64 MiB per action
 * (scripts/lib/memoryProbe.ts), and an endless body against the byte cap.
 */
async function memory(size: BenchSize): Promise<Row> {
  const download = await runProbe<{ heldCopies: number; allocatedCopies: number }>(size.memoryMiB, "download");
  const { image, endless, cap } = await runProbe<ProbeResult>(size.memoryMiB, "pipeline");
  const budget = (ACTION_ARRAY_BUFFER_BYTES * 3) / 4;
  const peak = download.allocatedCopies * cap;
  // What is in flight when the client aborts (socket buffers, the stream's queue) does not grow with the cap.
  const slack = 8 << 20;
  const aborted =
    endless.status === "failed" && endless.code === "too_large" && endless.closedEarly === true && endless.sent <= cap + slack;
  const stored = image.status === "stored" && image.bytes === cap;
  const mib = (bytes: number) => formatBytes(bytes);
  return {
    figure: "memory",
    measured: `${mib(peak)} of ArrayBuffers at most (${x(download.allocatedCopies)} a ${mib(cap)} image; held after GC ${x(download.heldCopies)}) = ${((100 * peak) / ACTION_ARRAY_BUFFER_BYTES).toFixed(0)}% of the runtime's 64 MiB; endless body: ${endless.code ?? endless.status}, connection ${endless.closedEarly ? "closed by the client" : "not closed"}, server sent ${mib(endless.sent)} (cap + ${mib(Math.max(0, endless.sent - cap))})`,
    goal: `≤ ${mib(budget)} (¾ of 64 MiB) and ≤ ${PEAK_IMAGE_COPIES}× (the copies the cap arithmetic assumes); endless: too_large, closed, overshoot < ${mib(slack)}`,
    met: stored && peak <= budget && download.allocatedCopies <= PEAK_IMAGE_COPIES && aborted,
    notes: [
      `What Convex limits is bytes of ArrayBuffers, 64 MiB per action. scripts/lib/memoryProbe.ts runs downloadImage (convex/lib/recraft.ts) on an image of exactly the cap in a fresh node --expose-gc process and samples process.memoryUsage().arrayBuffers every 2 ms: without forcing a GC (${x(download.allocatedCopies)}: held plus garbage not yet collected, so momentary copies show too, an upper bound) and right after a full GC at each sample (${x(download.heldCopies)}: what is held).`,
      `Both include the finished Blob's own bytes (1×), which Node keeps in ArrayBuffers and Convex's runtime keeps outside the isolate (blob parts), streaming them part by part into ctx.storage.store; the download hashes each chunk as it arrives (convex/lib/sha256.ts) and never assembles the image in one buffer. PORTRAIT_MAX_BYTES is clamped to ¾ × 64 MiB ÷ ${PEAK_IMAGE_COPIES} = ${mib(MAX_IMAGE_BYTES)}.`,
      `The whole action on convex-test (insertStory → stored) held ${x(image.heldCopies)} at peak: its storage emulation reads the blob whole and keeps the file in memory (${x(image.retainedCopies)} still held after a GC), which Convex's storage does not.`,
      `Endless body (fault imageEndless) against PORTRAIT_MAX_BYTES = ${mib(cap)}: failed ${endless.code}; the fake saw the client close the connection (the download aborts the request's signal), held ${x(endless.heldCopies)} the cap at peak.`,
    ],
  };
}

/** Documents read by the status-count read at two table sizes. */
async function adminReadCost(size: BenchSize): Promise<Row> {
  const stack = await benchStack();
  try {
    return await readCostOn(stack.t, size);
  } finally {
    await stack.close();
  }
}

async function readCostOn(t: Backend, size: BenchSize): Promise<Row> {
  // One job made by the real insertStory is the template for the seeded ones,
  // so seeding follows the schema as it evolves.
  const storyId = await insertStory(t, 0);
  await waitForCounts(t, (c) => live(c) === 0, 5, 30_000);
  const { _id, _creationTime, ...template } = (await t.run((ctx) =>
    ctx.db
      .query("portraitJobs")
      .withIndex("by_story", (q) => q.eq("storyId", storyId))
      .first(),
  ))!;
  const reads: number[] = [];
  let seeded = 1;
  for (const target of size.adminJobs) {
    while (seeded < target) {
      const batch = Math.min(2_000, target - seeded);
      await seedJobs(t, template, seeded, batch);
      seeded += batch;
    }
    reads.push(
      await t.run(async (ctx) => {
        const { approximate, ...counts } = await readCounts(ctx);
        if (approximate) throw new Error("counts are approximate: rows were left unfolded");
        const total = Object.values(counts).reduce((a, b) => a + b, 0);
        if (total !== target) throw new Error(`counts say ${total} jobs, seeded ${target}`);
        return (await ctx.meta.getTransactionMetrics()).documentsRead.used;
      }),
    );
  }
  const [small, large] = size.adminJobs;
  return {
    figure: "admin read cost",
    measured: `${reads[0]} documents at ${small.toLocaleString("en")} jobs, ${reads[1]} at ${large.toLocaleString("en")} jobs`,
    goal: "equal",
    met: reads[0] === reads[1],
    notes: [
      "documentsRead from ctx.meta.getTransactionMetrics() in the transaction that runs readCounts (convex/lib/jobs.ts), the code path the admin view's counts use, at rest (every count row folded into the totals, as the sweep leaves them); jobs seeded in batches of 2 000 across the five statuses (copies of a job made by insertStory) with their counts added through adjustCounts and folded.",
    ],
  };
}

/** Documents read by the admin chart's query (convex/lib/activity.ts) at two sizes of the event log. */
async function chartReadCost(size: BenchSize): Promise<Row> {
  const stack = await benchStack();
  const { t } = stack;
  try {
    const storyId = await insertStory(t, 0);
    await waitForCounts(t, (c) => live(c) === 0, 5, 30_000);
    const { _id, _creationTime, ...template } = (await t.run((ctx) =>
      ctx.db
        .query("portraitJobEvents")
        .withIndex("by_to", (q) => q.eq("to", "stored"))
        .first(),
    ))!;
    if (template.storyId !== storyId) throw new Error("unexpected template event");
    const now = Date.now() + 60_000;
    const ranges: ChartRange[] = ["24h", "30d"];
    const reads: Record<ChartRange, number[]> = { "6h": [], "24h": [], "7d": [], "30d": [] };
    let seeded = await t.run(async (ctx) => (await ctx.db.query("portraitJobEvents").collect()).length);
    // Every event lands in the last 24 hours, a quarter each stored, failed, pending and requested:
    // the densest log the 24-hour chart can meet.
    const kinds: JobStatus[] = ["stored", "failed", "pending", "requested"];
    for (const target of size.adminJobs) {
      while (seeded < target) {
        const batch = Math.min(2_000, target - seeded);
        const from = seeded;
        await t.run(async (ctx) => {
          for (let i = from; i < from + batch; i++) {
            await ctx.db.insert("portraitJobEvents", {
              ...template,
              to: kinds[i % kinds.length]!,
              at: now - 1 - ((i * 7919) % (24 * 3_600_000)),
            });
          }
        });
        seeded += batch;
      }
      for (const range of ranges) {
        reads[range].push(
          await t.run(async (ctx) => {
            await readActivity(ctx, range, now);
            return (await ctx.meta.getTransactionMetrics()).documentsRead.used;
          }),
        );
      }
    }
    const [small, large] = size.adminJobs;
    const bound = (range: ChartRange) => CHART_RANGES[range].buckets * 2 * (bucketCap(range) + 1);
    const met = ranges.every((range) => reads[range].every((n) => n <= bound(range) && n <= MAX_CHART_READS));
    return {
      figure: "chart read cost",
      measured: ranges
        .map(
          (range) =>
            `${range}: ${reads[range][0]} documents at ${small.toLocaleString("en")} events, ${reads[range][1]} at ${large.toLocaleString("en")}`,
        )
        .join("; "),
      goal: `≤ buckets × 2 × (cap + 1) (24h: ${bound("24h")}, 30d: ${bound("30d")}) at both sizes`,
      met,
      notes: [
        "documentsRead from ctx.meta.getTransactionMetrics() in the transaction that runs readActivity (convex/lib/activity.ts), the handler of api.admin.activity: one by_to index range per bucket and series (stored, failed), each take(cap + 1).",
        `Events seeded in batches of 2 000 (copies of a real stored event), all in the 24 hours before the chart's end, a quarter each to stored, failed, pending and requested; the 24h chart's per-bucket cap is ${bucketCap("24h")}, the 30d chart's ${bucketCap("30d")}. Once a bucket passes its cap the chart says "at least" and reads no more, so the cost stops growing with the log.`,
      ],
    };
  } finally {
    await stack.close();
  }
}

const SEED_STATUSES: JobStatus[] = ["stored", "stored", "stored", "failed", "pending", "requested", "downloaded"];

async function seedJobs(t: Backend, template: Omit<Doc<"portraitJobs">, "_id" | "_creationTime">, from: number, n: number) {
  await t.run(async (ctx) => {
    const delta: Partial<Record<JobStatus, number>> = {};
    for (let i = from; i < from + n; i++) {
      const status = SEED_STATUSES[i % SEED_STATUSES.length]!;
      await ctx.db.insert("portraitJobs", { ...template, status, slot: { kind: "none" } });
      delta[status] = (delta[status] ?? 0) + 1;
    }
    await adjustCounts(ctx, "portrait", `seed-${from}`, delta);
    await foldCounts(ctx, "portrait");
  });
}

/** Story generation's success rate while every image request fails. */
async function failureIsolation(size: BenchSize): Promise<Row> {
  const stack = await benchStack({ recraft: { latencyMs: 0, downloadLatencyMs: 0, fault: failRatePicker(1) } });
  try {
    const { storyIds, progress } = await generateStories(stack, size.stories, undefined, { pollMs: 20, timeoutMs: 60_000 });
    const rate = storyIds.length / size.stories;
    return {
      figure: "failure isolation",
      measured: `${(100 * rate).toFixed(0)}% (${storyIds.length}/${size.stories} inserted; portrait jobs failed ${progress.counts.failed}, stored ${progress.counts.stored})`,
      goal: "100%",
      met: rate === 1,
      notes: [
        `internal.storyRuns.generateStory × ${size.stories} (one story run each) against the fake Claude while the fake Recraft fails every generation request (429, 500, 503, 401, image 404, wrong content type in rotation).`,
      ],
    };
  } finally {
    await stack.close();
  }
}

/** Fake latency drawn from 0.5–1.5 s: the spec's 5–15 s per image, scaled like the windows. */
const scaledRecraftLatency = () => 500 + Math.random() * 1_000;

/**
 * Recraft's limits scaled x10 and every other setting at its default (margin, attempts) but the
 * ceiling: the default (6) fits a Free plan's scheduler and bounds throughput to 6 in flight, so the
 * share of the provider's limits is measured at a Professional deployment's setting (40).
 */
const AT_DEFAULTS_X10 = { ...RECRAFT_LIMITS_X10, PORTRAIT_MAX_CONCURRENCY: "40", PORTRAIT_START_TOLERANCE_MS: undefined };

/** Sustained start rate as a share of Recraft's two limits, as the fake counts the starts. */
async function providerShare(size: BenchSize): Promise<Row> {
  const lateStarts: string[] = [];
  const stack = await benchStack({
    recraft: { latencyMs: scaledRecraftLatency, downloadLatencyMs: 0 },
    env: AT_DEFAULTS_X10,
    backendLog: (_level, line) => void (line.includes('"portrait.start_deferred"') && lateStarts.push(line)),
  });
  const { t } = stack;
  try {
    const n = size.shareJobs;
    await Promise.all(Array.from({ length: n }, (_, i) => insertStory(t, i)));
    let timedOut = false;
    // Poll rarely: on the embedded engine every index read walks the whole database, and the pipeline shares this thread.
    await waitForCounts(t, (c) => live(c) === 0, 500, 5 * 60_000).catch(() => (timedOut = true));
    const counts = await t.run(async (ctx) => (await ctx.db.query("portraitJobs").collect()).filter((j) => j.status === "stored").length);
    const starts = [...stack.recraft!.starts].sort((a, b) => a - b);
    const perMs = (starts.length - 1) / (starts.at(-1)! - starts[0]!);
    const second = { ms: 100, limit: 5 };
    const minute = { ms: 6_000, limit: 100 };
    const minuteShare = (perMs * minute.ms) / minute.limit;
    const secondShare = (perMs * second.ms) / second.limit;
    const over = stack.recraft!.startsOverLimit(second.ms, second.limit) + stack.recraft!.startsOverLimit(minute.ms, minute.limit);
    const lost = n - counts;
    const pct = (share: number) => `${(100 * share).toFixed(1)}%`;
    return {
      figure: "provider-limit share",
      measured: `${pct(minuteShare)} of the per-minute limit (${pct(secondShare)} of the per-second); over either limit ${over}; lost ${lost}${timedOut ? " (timed out)" : ""}`,
      goal: "≥ 90%; over = 0; lost = 0",
      met: minuteShare >= 0.9 && over === 0 && lost === 0 && !timedOut,
      notes: [
        `${n} insertStory calls at once; fake generation latency uniform in 0.5–1.5 s; Recraft's limits with both windows ten times shorter (5 requests per 100 ms, 100 per 6 s: PORTRAIT_RATE_SECOND_MS=100, PORTRAIT_RATE_MINUTE_MS=6000); every other setting at its default (start margin a tenth of the second window) but PORTRAIT_MAX_CONCURRENCY=40, a Professional deployment's (the default, ${DEFAULT_MAX_CONCURRENCY}, fits a Free plan's 8 scheduler places and caps throughput below Recraft's limit).`,
        `Throughput = (starts − 1) ÷ (last start − first start), the starts being the times the fake Recraft received each generation request; the minute window is the binding one (the start logs keep both, see convex/lib/pacing.ts), so its share is the goal. Over = requests the fake received while the limit was already reached in the window before them. Peak in flight at the fake ${stack.recraft!.maxInFlight}; starts the claim deferred to a later token ${lateStarts.length}.`,
      ],
    };
  } finally {
    await stack.close();
  }
}

const PRODUCT_TABLES = new Set(["stories", "portraitJobs", "portraitJobEvents", "_storage"]);

/** Documents read, written, and written that another job also writes, per stored portrait. */
async function costPerJob(size: BenchSize): Promise<Row> {
  const accesses: Access[] = [];
  const stack = await benchStack({
    modules: meteredModules(accesses),
    recraft: { latencyMs: scaledRecraftLatency, downloadLatencyMs: 0 },
    env: AT_DEFAULTS_X10,
  });
  const { t } = stack;
  try {
    const n = size.costJobs;
    await Promise.all(Array.from({ length: n }, (_, i) => insertStory(t, i)));
    await waitForCounts(t, (c) => live(c) === 0, 500, 5 * 60_000);
    // The count rows the loop has not folded yet are folded by the sweep: their cost is the queue's too.
    await t.mutation(internal.portraits.sweep, {});
    const jobs = await t.run((ctx) => ctx.db.query("portraitJobs").collect());
    const jobOfStory = new Map(jobs.map((j) => [`story:${j.storyId}`, `job:${j._id}`]));
    const owned = accesses.map((a) => ({ ...a, owner: jobOfStory.get(a.owner) ?? a.owner }));
    const stored = jobs.filter((j) => j.status === "stored").length;

    const jobWriters = new Map<string, Set<string>>();
    for (const a of owned)
      if (a.op === "write" && a.owner.startsWith("job:")) jobWriters.set(a.id, (jobWriters.get(a.id) ?? new Set()).add(a.owner));
    const per = (pred: (a: Access) => boolean) => owned.filter(pred).length / stored;
    const onJobPath = (a: Access) => a.owner.startsWith("job:");
    const product = (a: Access) => onJobPath(a) && PRODUCT_TABLES.has(a.table);
    const bookkeeping = (a: Access) => !product(a);
    const shared = per((a) => a.op === "write" && onJobPath(a) && jobWriters.get(a.id)!.size > 1);
    const book = { reads: per((a) => bookkeeping(a) && a.op === "read"), writes: per((a) => bookkeeping(a) && a.op === "write") };
    const counting = (a: Access) => a.table === "countDeltas" || a.table === "countTotals";
    const counts = { reads: per((a) => counting(a) && a.op === "read"), writes: per((a) => counting(a) && a.op === "write") };
    const queue = { reads: book.reads - counts.reads, writes: book.writes - counts.writes };
    const prod = { reads: per((a) => product(a) && a.op === "read"), writes: per((a) => product(a) && a.op === "write") };
    const loopRuns = new Set(owned.filter((a) => a.fn === "portraits:dispatchQueue").map((a) => a.call)).size;
    const loopState = per((a) => a.owner === "loop" && a.op === "write" && (a.table === "portraitDispatcher" || a.table === "countTotals"));
    const byTable = (op: Access["op"]) => {
      const tally = new Map<string, number>();
      for (const a of owned) if (bookkeeping(a) && a.op === op) tally.set(a.table, (tally.get(a.table) ?? 0) + 1);
      return [...tally]
        .sort((a, b) => b[1] - a[1])
        .map(([table, count]) => `${table} ${(count / stored).toFixed(2)}`)
        .join(", ");
    };
    const f = (x: number) => x.toFixed(2);
    const table = [
      "| per stored portrait | bookkeeping read | bookkeeping written | written that another job also writes |",
      "|---|---|---|---|",
      `| this project, measured: the queue | ${f(queue.reads)} | ${f(queue.writes)} | ${f(shared)} |`,
      `| this project, measured: exact status counts | ${f(counts.reads)} | ${f(counts.writes)} | 0 |`,
      "| this project before dispatcher v2 (issue 10, from the code) | ~33–40 in all | 20 in all | 8 |",
      "| get-convex/workpool v0.4.8 (issue 10, from the code; no status counts) | ~6–7 | ~8 | ~0 |",
      "| the spec's naive design (one scheduled action, one patch) | 0 | 1 | 0 |",
    ].join("\n");
    return {
      table,
      figure: "cost per job",
      measured: `queue: ${f(queue.reads)} documents read, ${f(queue.writes)} written; exact status counts: ${f(counts.reads)} read, ${f(counts.writes)} written (bookkeeping in all ${f(book.reads)} read, ${f(book.writes)} written); ${f(shared)} written that another job also writes; product ${f(prod.reads)} read, ${f(prod.writes)} written`,
      goal: "queue ≤ workpool's ~6–7 read, ~8 written (workpool keeps no status counts); shared = 0",
      met: queue.reads <= 7 && queue.writes <= 8 && shared === 0 && stored === n,
      notes: [
        `${n} stories at once through the real insertStory, dispatcher loop, action and transitions (${stored} stored), Recraft's limits scaled x10 and fake latency 0.5–1.5 s as in the provider-limit share; every mutation's ctx.db, ctx.scheduler and ctx.storage wrapped (scripts/lib/costMeter.ts), each access attributed to the job it works for or to the loop (dispatchQueue), then divided by the stored portraits. Counts, not the emulator's speed.`,
        `Product (counted apart): the story, the job row and its four events as insertStory, claim, markDownloaded and markStored read and write them (the action's ctx.storage.store, one more write, is not metered). Bookkeeping: everything else those functions touch (count rows, wakeups, the scheduled action) plus everything the loop touches, job rows included (the queue read, the dispatch patch). Bookkeeping by table, read: ${byTable("read")}; written: ${byTable("write")}.`,
        `Shared: a write by a job's own function to a document a function of another job also writes (the wakeup rows are inserted by one job and only read by the others). The loop ran ${loopRuns} times for ${stored} jobs; its own state and the count totals took ${f(loopState)} writes a job (written only by the loop).`,
        `Beside it: the spec's naive design (insertStory schedules one action, which patches the story) costs 0 bookkeeping reads and 1 bookkeeping write (the scheduled function) and shares nothing, counted from its code; get-convex/workpool v0.4.8 (enqueue, loop, complete) ~6–7 reads, ~8 writes, ~0 shared (its loop state once per batch of up to 64); this project before dispatcher v2 ~33–40 reads, 20 writes, 8 shared (issue 10's figures, counted from the code).`,
      ],
    };
  } finally {
    await stack.close();
  }
}

/** Drain time against the ideal schedule, on time and under a lagging scheduler (scripts/lib/drain.ts). */
async function drainTime(size: BenchSize): Promise<Row> {
  const results = [];
  for (const scenario of drainScenarios(size.drainScale, size.drainJobs, "40")) results.push(await drain(scenario));
  const { table, met, measured } = drainFigureRow(results, size.drainScale);
  return {
    figure: "drain time",
    measured,
    goal: "on time ≥ 90% (≤ 1.11× ideal), 0–1 s late ≥ 80% (≤ 1.25×); all stored; ≤ 1% over either window; no action without its request; 14 at 4/s within 6 s",
    met,
    table,
    notes: [
      `${size.drainJobs} insertStory calls at once; Recraft's limits (5 a second, 100 a minute)${size.drainScale === 1 ? " on real windows" : `, windows and latencies ${size.drainScale}× shorter (times shown scaled back)`}; fake generation latency 5–15 s; the start margin at its default.`,
      "Ideal: each request (in the order the fake received them) as early as both windows allow, the minute's burst included, plus the latency the fake gave it; drain: from the inserts to the last job stored. Late starts come from the lag harness (scripts/lib/lag.ts) delaying every scheduled function; the Free-plan row also caps the scheduler at 8 functions at once, against the default ceiling of 6.",
      "Actions without a request = generatePatientPortrait runs − generation requests the fake received; deferred = claims that rescheduled their action at a start more than two second windows away.",
      "Over a window is counted at each request's send (the moment its action handed it to fetch, recorded by a pass-through wrapper in scripts/lib/drain.ts; the real fetch runs), which is what the goal counts; beside it, at the starts the claims reserved in the start log (each claim's reply recorded by wrapping the claim mutation) and at the fake's receipt. The fake dates a request when this process's one JS thread reaches its handler, behind every other action's transactions: start → send and send → receipt show those delays (median / max, this process's ms, not scaled), which a deployment, whose actions do not share one thread with each other and with the provider, does not have.",
    ],
  };
}

/** Convex's limits on one transaction (docs.convex.dev/production/state/limits). */
const READ_LIMIT = 32_000;
const WRITE_LIMIT = 16_000;

/** The largest transaction of each function, measured by convex-test's own meter at scale (scripts/lib/transactions.ts). */
async function largestTransactions(size: BenchSize): Promise<Row> {
  const scale = size.queueScale;
  const measured = await queueAtScale(scale);
  const bounds = new Map(documentedBounds().map((b) => [b.fn, b]));
  const n = (v: number) => v.toLocaleString("en-US");
  const rows = [...measured.entries()].sort(([a], [b]) => a.localeCompare(b));
  const missing = [...bounds.keys()].filter((fn) => !measured.has(fn));
  const over = rows.filter(([fn, m]) => {
    const bound = bounds.get(fn);
    return m.reads > READ_LIMIT || m.writes > WRITE_LIMIT || (bound && (m.reads > bound.reads || m.writes > bound.writes));
  });
  const [maxReadFn, maxRead] = rows.reduce((a, b) => (b[1].reads > a[1].reads ? b : a));
  const [maxWriteFn, maxWrite] = rows.reduce((a, b) => (b[1].writes > a[1].writes ? b : a));
  const table = [
    "| function | calls | most read | most written | most scheduled | bound stated (read / written) |",
    "|---|---|---|---|---|---|",
    ...rows.map(([fn, m]) => {
      const bound = bounds.get(fn);
      return `| \`${fn}\` | ${m.calls} | ${n(m.reads)} | ${n(m.writes)} | ${m.scheduled} | ${bound ? `${n(bound.reads)} / ${n(bound.writes)}` : "—"} |`;
    }),
  ].join("\n");
  return {
    figure: "largest transaction",
    measured: `at ${n(scale.queued)} queued and ${n(scale.stored)} stored jobs: most read ${n(maxRead.reads)} (${maxReadFn}), most written ${n(maxWrite.writes)} (${maxWriteFn}); over a stated bound ${over.length}; stated but not run ${missing.length}`,
    goal: `every function within the bound docs/ARCHITECTURE.md states and within Convex's ${n(READ_LIMIT)} read / ${n(WRITE_LIMIT)} written`,
    met: over.length === 0 && missing.length === 0,
    table,
    notes: [
      `Every query and mutation wrapped (scripts/lib/transactions.ts) to ask convex-test's own meter, ctx.meta.getTransactionMetrics(), what its transaction used when its handler returns; the largest per function is kept. convex-test counts as a deployment does: every document an index range hands the query (before filters), every get, and the document a patch, replace or delete touches, as read; every insert, patch, replace and delete as written; scheduled functions apart. Counts, not the emulator's speed.`,
      `Seeded in bulk inserts: ${n(scale.stored)} stored jobs (each with its story and portrait), ${n(scale.queued)} queued with their count rows unfolded (what a backfill leaves), ${scale.stalled} jobs holding a slot whose action is gone (${scale.stalledDownloaded} of them downloaded, each with an image checksum of its own, and ${n(scale.files)} files stored since), ${scale.wakes} wake and ${scale.releases} release rows, ${scale.failed} jobs failed with a timeout, ${scale.legacyStories} stories from before the backend. Then each function in its heaviest case: statusCounts over the unfolded rows; one loop run with every batch full; the sweeps over the stalled holders (and the fold chain they start); the dispatched jobs' own actions through the fake Recraft; a retry by error code of the swept jobs and a console bulk retry of the timed-out ones; backfill batches over the old stories; the console's reads.`,
      missing.length
        ? `Stated in docs/ARCHITECTURE.md but not run here: ${missing.join(", ")}.`
        : "Every function docs/ARCHITECTURE.md bounds ran.",
      over.length ? `Over: ${over.map(([fn]) => fn).join(", ")}.` : "",
    ].filter(Boolean),
  };
}

export const FIGURES = [
  ["insert cost", insertCost],
  ["pipeline overhead", pipelineOverhead],
  ["burst makespan", burst],
  ["memory", memory],
  ["admin read cost", adminReadCost],
  ["chart read cost", chartReadCost],
  ["failure isolation", failureIsolation],
  ["provider-limit share", providerShare],
  ["cost per job", costPerJob],
  ["drain time", drainTime],
  ["largest transaction", largestTransactions],
] as const;
