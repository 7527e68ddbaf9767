/**
 * The bench's figures. Each is a ratio or a count measured within one run, on
 * the project's real code paths (insertStory, the dispatcher, the scheduled
 * portrait action, the loopback fakes), never a raw timing goal.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { Doc } from "../../convex/_generated/dataModel.js";
import type { JobStatus } from "../../convex/validators.ts";
import { bucketCap, CHART_RANGES, MAX_CHART_READS, readActivity, type ChartRange } from "../../convex/lib/activity.ts";
import { ACTION_ARRAY_BUFFER_BYTES, MAX_IMAGE_BYTES, PEAK_IMAGE_COPIES } from "../../convex/lib/config.ts";
import { readCounts } from "../../convex/lib/jobs.ts";
import schema from "../../convex/schema.ts";
import type { Backend } from "./backend.ts";
import { benchStack, eventsByJob, insertStory, live, nthCaseFile, waitForCounts } from "./benchStack.ts";
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
}

export const FULL: BenchSize = { inserts: 500, jobs: 200, burst: 500, memoryMiB: 16, adminJobs: [1_000, 50_000], stories: 20 };
export const QUICK: BenchSize = { inserts: 50, jobs: 20, burst: 60, memoryMiB: 5, adminJobs: [1_000, 5_000], stories: 5 };

export interface Row {
  figure: string;
  measured: string;
  goal: string;
  met: boolean;
  /** How it was measured, and what dominates. */
  notes: string[];
}

const x = (ratio: number) => `${ratio.toFixed(2)}×`;

/** insertStory (story + job + event + dispatch/schedule) against a bare story insert, interleaved. */
export async function insertCost(size: BenchSize): Promise<Row> {
  // Jobs really run (latency 0) but never during a measurement: we wait for them between pairs.
  const stack = await benchStack({ recraft: { latencyMs: 0, downloadLatencyMs: 0 } });
  const { t } = stack;
  try {
    const bare: number[] = [];
    const full: number[] = [];
    const lookup: number[] = [];
    let n = 0;
    const bareInsert = async () => {
      const story = { ...nthCaseFile(n++), createdAt: Date.now() };
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
      await t.mutation((ctx) => ctx.db.query("stories").withIndex("by_slug", (q) => q.eq("slug", "no-such-slug")).first());
      return performance.now() - start;
    };
    const warmup = Math.min(20, size.inserts);
    for (let i = 0; i < warmup + size.inserts; i++) {
      // Alternate which goes first, so drift (the tables grow) hits both alike.
      let a: number, b: number;
      if (i % 2) (a = await bareInsert()), (b = await fullInsert());
      else (b = await fullInsert()), (a = await bareInsert());
      const c = await oneLookup();
      if (i >= warmup) bare.push(a), full.push(b), lookup.push(c);
    }
    const ratio = median(full) / median(bare);
    return {
      figure: "insert cost",
      measured: `${x(ratio)} (median ${formatMs1(median(full))} vs ${formatMs1(median(bare))}, ${size.inserts} each)`,
      goal: "≤ 1.5×",
      met: ratio <= 1.5,
      notes: [
        `internal.stories.insertStory against an inline mutation inserting the same story, ${size.inserts} of each, interleaved (ABBA), after ${warmup} warm-up pairs; each insertStory's job ran to \`stored\` between measurements, outside the timed window.`,
        `A mutation doing just one indexed lookup (stories.by_slug) took ${formatMs1(median(lookup))} (median) on the same tables: convex-test answers every index range by walking every document in the database (then sorting the matches), and insertStory makes five (slug check, count rows, dispatcher: slot holders, rate window, ready queue) where the bare insert makes none.`,
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
        return i > 0 ? events[i].at - events[i - 1].at : NaN;
      })
      .filter(Number.isFinite),
  );
}

/** Jobs created at or after `since`, each as its events in order. */
async function jobsSince(t: Backend, since: number): Promise<Events[]> {
  return [...(await eventsByJob(t)).values()].filter((events) => events[0].at >= since);
}

/** End-to-end job time (pending → stored) ÷ the fake provider's own latency. */
export async function pipelineOverhead(size: BenchSize): Promise<Row> {
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
    for (let inserted = 0; inserted < size.jobs; ) {
      const wave = Math.min(4, size.jobs - inserted);
      await Promise.all(Array.from({ length: wave }, (_, k) => insertStory(t, inserted + k)));
      inserted += wave;
      await waitForCounts(t, (c) => live(c) === 0, 10, 60_000);
    }
    const cpu = busy();
    const jobs = await jobsSince(t, since);
    const e2e = jobs.map((events) => events.at(-1)!.at - events[0].at);
    const stored = jobs.filter((events) => events.at(-1)!.to === "stored").length;
    const http = median(jobs.map((events) => events.find((e) => e.to === "downloaded")?.details?.durationMs ?? NaN).filter(Number.isFinite));
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
        `The process was on CPU ${cpu} of the wall time: one JS thread runs the backend, the actions and the fake, and convex-test runs one transaction at a time, so one job's timers and transactions wait behind the other jobs' transactions.`,
      ],
    };
  } finally {
    await stack.close();
  }
}

/** Many stories inserted at once: makespan against the ideal, the cap as the server saw it, jobs lost. */
export async function burst(size: BenchSize): Promise<Row> {
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
    const requestedAt = jobs.map((events) => events.find((e) => e.to === "requested")?.at ?? NaN).filter(Number.isFinite).sort((a, b) => a - b);
    const handoff = median(requestedAt.slice(concurrency).map((at, i) => at - storedAt[i]));
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
  const { stdout } = await promisify(execFile)(process.execPath, args, { cwd: fileURLToPath(new URL("../..", import.meta.url)), maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split("\n").at(-1)!) as T;
}

/**
 * Bytes of ArrayBuffers per image against the runtime's 64 MiB per action
 * (scripts/lib/memoryProbe.ts), and an endless body against the byte cap.
 */
export async function memory(size: BenchSize): Promise<Row> {
  const download = await runProbe<{ heldCopies: number; allocatedCopies: number }>(size.memoryMiB, "download");
  const { image, endless, cap } = await runProbe<ProbeResult>(size.memoryMiB, "pipeline");
  const budget = (ACTION_ARRAY_BUFFER_BYTES * 3) / 4;
  const peak = download.allocatedCopies * cap;
  // What is in flight when the client aborts (socket buffers, the stream's queue) does not grow with the cap.
  const slack = 8 << 20;
  const aborted = endless.status === "failed" && endless.code === "too_large" && endless.closedEarly === true && endless.sent <= cap + slack;
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
export async function adminReadCost(size: BenchSize): Promise<Row> {
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
    ctx.db.query("portraitJobs").withIndex("by_story", (q) => q.eq("storyId", storyId)).first(),
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
        const counts = await readCounts(ctx);
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
      "documentsRead from ctx.meta.getTransactionMetrics() in the transaction that runs readCounts (convex/lib/jobs.ts), the code path the admin view's counts use; jobs seeded in batches of 2 000 across the five statuses (copies of a job made by insertStory) with the counts rows bumped to match.",
    ],
  };
}

/** Documents read by the admin chart's query (convex/lib/activity.ts) at two sizes of the event log. */
export async function chartReadCost(size: BenchSize): Promise<Row> {
  const stack = await benchStack();
  const { t } = stack;
  try {
    const storyId = await insertStory(t, 0);
    await waitForCounts(t, (c) => live(c) === 0, 5, 30_000);
    const { _id, _creationTime, ...template } = (await t.run((ctx) => ctx.db.query("portraitJobEvents").withIndex("by_to", (q) => q.eq("to", "stored")).first()))!;
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
            await ctx.db.insert("portraitJobEvents", { ...template, to: kinds[i % kinds.length], at: now - 1 - ((i * 7919) % (24 * 3_600_000)) });
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
      measured: ranges.map((range) => `${range}: ${reads[range][0]} documents at ${small.toLocaleString("en")} events, ${reads[range][1]} at ${large.toLocaleString("en")}`).join("; "),
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
      const status = SEED_STATUSES[i % SEED_STATUSES.length];
      await ctx.db.insert("portraitJobs", { ...template, status, holdsSlot: false });
      delta[status] = (delta[status] ?? 0) + 1;
    }
    for (const [status, d] of Object.entries(delta) as [JobStatus, number][]) {
      const row = await ctx.db.query("portraitJobCounts").withIndex("by_status", (q) => q.eq("status", status)).unique();
      if (row) await ctx.db.patch(row._id, { count: row.count + d });
      else await ctx.db.insert("portraitJobCounts", { status, count: d });
    }
  });
}

/** Story generation's success rate while every image request fails. */
export async function failureIsolation(size: BenchSize): Promise<Row> {
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
        `internal.storyRuns.generateStory × ${size.stories} (one story run each) against the fake Claude while the fake Recraft fails every generation request (429, 500, 503, image 404, wrong content type in rotation).`,
      ],
    };
  } finally {
    await stack.close();
  }
}

export const FIGURES = [
  ["insert cost", insertCost],
  ["pipeline overhead", pipelineOverhead],
  ["burst makespan", burst],
  ["memory", memory],
  ["admin read cost", adminReadCost],
  ["chart read cost", chartReadCost],
  ["failure isolation", failureIsolation],
] as const;
