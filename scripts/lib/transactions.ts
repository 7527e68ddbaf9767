/**
 * The largest transaction of each Convex function, measured: every query and
 * mutation of the modules map is wrapped so that, when its handler returns, it
 * asks convex-test's own meter (`ctx.meta.getTransactionMetrics()`, the figures
 * Convex limits: 32,000 documents read, 16,000 written, 1,000 functions
 * scheduled) what the transaction used, and the largest per function is kept.
 *
 * convex-test counts as a deployment does: every document an index range
 * hands the query (before any filter), every `get`, and the document each
 * patch, replace or delete touches, as read; every insert, patch, replace and
 * delete as written. Scheduled functions are counted apart.
 *
 * `queueAtScale` seeds a queue as a busy deployment might have it (stored and
 * queued jobs, unfolded count rows, wake and release rows, stalled holders, a
 * dead attempt's files) in a few bulk inserts, then runs each function in its
 * heaviest case against it. The bench runs it at 10,000 queued and 100,000
 * stored jobs; tests/bounds.test.ts runs it small, with the limits enforced.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { api, internal } from "../../convex/_generated/api.js";
import type { Id } from "../../convex/_generated/dataModel.js";
import { ADMIN_IDENTITY, convexModules, wrapFunctions, type Modules } from "./backend.ts";
import { benchStack, nthCaseFile } from "./benchStack.ts";
import { sleep } from "./wait.ts";

export type TransactionSize = { reads: number; writes: number; scheduled: number; calls: number };

/** The modules with every query and mutation metered; `largest` holds each function's largest transaction so far. */
export function meteredTransactions(modules: Modules = convexModules()) {
  const largest = new Map<string, TransactionSize>();
  const metered = wrapFunctions(
    modules,
    (fnName, handler) => async (ctx, args) => {
      const result = await handler(ctx, args);
      const metrics = await (
        ctx as { meta: { getTransactionMetrics(): Promise<Record<string, { used: number }>> } }
      ).meta.getTransactionMetrics();
      const name = fnName.replace(":", ".");
      const before = largest.get(name) ?? { reads: 0, writes: 0, scheduled: 0, calls: 0 };
      largest.set(name, {
        reads: Math.max(before.reads, metrics.documentsRead!.used),
        writes: Math.max(before.writes, metrics.documentsWritten!.used),
        scheduled: Math.max(before.scheduled, metrics.functionsScheduled?.used ?? 0),
        calls: before.calls + 1,
      });
      return result;
    },
    { queries: true },
  );
  return { modules: metered, largest };
}

export type Bound = { fn: string; reads: number; writes: number };

/**
 * The bounds docs/ARCHITECTURE.md states ("Every transaction bounded"): the
 * rows of its table whose first cell names a function, with the most
 * documents read and written as whole numbers in the next two cells.
 */
export function documentedBounds(markdown = readFileSync(new URL("../../docs/ARCHITECTURE.md", import.meta.url), "utf8")): Bound[] {
  const section = markdown.slice(markdown.indexOf("**Every transaction bounded.**"));
  const table = section.slice(0, section.indexOf("\n\n", section.indexOf("| function")));
  const number = (cell: string) => Number(cell.replace(/[,\s]/g, "").match(/^\d+/)?.[0] ?? NaN);
  return table
    .split("\n")
    .filter((line) => /^\| `[a-zA-Z]+\.[a-zA-Z]+`/.test(line))
    .flatMap((line) => {
      const [fns, reads, writes] = line.split("|").slice(1, 4);
      return [...fns!.matchAll(/`([a-zA-Z]+\.[a-zA-Z]+)`/g)].map(([, fn]) => ({ fn: fn!, reads: number(reads!), writes: number(writes!) }));
    });
}

export type QueueScale = {
  /** Jobs stored (each with its story, which has a portrait). */
  stored: number;
  /** Jobs pending, their count rows not folded yet (what a backfill leaves). */
  queued: number;
  /** Jobs holding a slot whose action is gone (what a backend restart leaves), for the sweep. */
  stalled: number;
  /** Of those, how many were `downloaded`, each with an image of its own checksum to look for. */
  stalledDownloaded: number;
  /** Files stored since those downloads (the orphan check's scan). */
  files: number;
  /** Wake and release rows waiting for the loop (a burst of transitions since its last run). */
  wakes: number;
  releases: number;
  /** Jobs failed with a timeout, for the console's bulk retry. */
  failed: number;
  /** Stories from before this backend (no portrait, no job), oldest first, for the backfill. */
  legacyStories: number;
};

export const BENCH_SCALE: QueueScale = {
  stored: 100_000,
  queued: 10_000,
  stalled: 600,
  stalledDownloaded: 20,
  files: 2_100,
  wakes: 600,
  releases: 600,
  failed: 300,
  legacyStories: 250,
};

const CHUNK = 5_000;

/** A story as small as the schema allows (a case file's fields, one short chapter): the counts, not the bytes, are measured. */
function compactStory(i: number, now: number, storageId?: Id<"_storage">) {
  const c = nthCaseFile(i);
  return {
    ...c,
    introduction: "x",
    story: "x",
    chapters: [{ text: "x", difficulty: "easy" as const }],
    slug: `case-${i}`,
    createdAt: now,
    ...(storageId && { storageId }),
  };
}

type Stack = Awaited<ReturnType<typeof benchStack>>;

/** Seeds `scale` in bulk inserts (a few thousand documents per t.run). */
async function seedQueue(stack: Stack, scale: QueueScale): Promise<void> {
  const { t } = stack;
  const now = Date.now();
  const old = now - 60_000; // settled: the loop folds count rows untouched for 10 s
  const portrait = await t.run((ctx) => ctx.storage.store(new Blob([new Uint8Array([137, 80, 78, 71])], { type: "image/png" })));
  let n = 0;
  const insertJobs = async (count: number, job: (storyId: Id<"stories">, i: number) => Record<string, unknown>, withPortrait: boolean) => {
    for (let done = 0; done < count; done += CHUNK) {
      await t.run(async (ctx) => {
        for (let i = done; i < Math.min(count, done + CHUNK); i++) {
          const storyId = await ctx.db.insert("stories", compactStory(n++, old, withPortrait ? portrait : undefined));
          const base = { storyId, attempt: 1, createdAt: old, updatedAt: old, runAt: old, slot: { kind: "none" }, searchText: `case ${n}` };
          await ctx.db.insert("portraitJobs", { ...base, ...job(storyId, i) } as never);
        }
      });
    }
  };
  // Legacy stories first, so the backfill's first pages find them.
  for (let done = 0; done < scale.legacyStories; done += CHUNK) {
    await t.run(async (ctx) => {
      for (let i = done; i < Math.min(scale.legacyStories, done + CHUNK); i++) await ctx.db.insert("stories", compactStory(n++, old));
    });
  }
  await insertJobs(scale.stored, () => ({ status: "stored", storageId: portrait }), true);
  const timeout = { step: "request", code: "timeout", message: "Recraft did not answer within 60000 ms" };
  await insertJobs(scale.failed, () => ({ status: "failed", error: timeout }), false);
  await t.run(async (ctx) => {
    await ctx.db.insert("countTotals", { kind: "portrait", counts: { stored: scale.stored, failed: scale.failed } });
  });
  // The queued jobs' count rows are unfolded, as the backfill that created them left them.
  for (let done = 0; done < scale.queued; done += CHUNK) {
    await t.run(async (ctx) => {
      for (let i = done; i < Math.min(scale.queued, done + CHUNK); i++) {
        const storyId = await ctx.db.insert("stories", compactStory(n++, old));
        const jobId = await ctx.db.insert("portraitJobs", {
          storyId,
          status: "pending",
          attempt: 1,
          createdAt: old,
          updatedAt: old,
          runAt: old,
          slot: { kind: "none" },
          searchText: `case ${n}`,
        });
        await ctx.db.insert("countDeltas", { kind: "portrait", key: jobId, deltas: { pending: 1 }, updatedAt: old });
      }
    });
  }
  // Holders whose action is gone: requested, and some downloaded, each image with a checksum of its own.
  const images = Array.from({ length: scale.stalledDownloaded }, (_, i) => new Uint8Array([i % 256, Math.floor(i / 256), 1, 2, 3]));
  const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
  // One cancelled action stands for every holder's: the sweep judges each from its action's state.
  const deadAction = await t.run(async (ctx) => {
    const id = await ctx.scheduler.runAfter(86_400_000, internal.portraits.sweep, {});
    await ctx.scheduler.cancel(id);
    return id;
  });
  const heldSince = { kind: "held", grantedAt: old, plannedAt: old, startedAt: old, scheduledFunctionId: deadAction } as const;
  await insertJobs(
    scale.stalled,
    (_storyId, i) =>
      i < scale.stalledDownloaded
        ? {
            status: "downloaded",
            slot: heldSince,
            download: { sha256: sha256(images[i]!), bytes: images[i]!.byteLength, at: old },
          }
        : { status: "requested", slot: heldSince },
    false,
  );
  await t.run(async (ctx) => {
    const stalled = await ctx.db
      .query("portraitJobs")
      .withIndex("by_slot", (q) => q.eq("slot.kind", "held"))
      .collect();
    const counts = { requested: 0, downloaded: 0 };
    for (const job of stalled) {
      counts[job.status as "requested" | "downloaded"]++;
      await ctx.db.insert("countDeltas", { kind: "portrait", key: job._id, deltas: { [job.status]: 1 }, updatedAt: old });
    }
    await ctx.db.insert("portraitDispatcher", { holding: stalled.length, limit: 1_000 });
  });
  // Files stored since the downloads: the first image's file (an orphan, its action died after storing it), then others.
  for (let done = 0; done < scale.files; done += 500) {
    await t.run(async (ctx) => {
      for (let i = done; i < Math.min(scale.files, done + 500); i++) {
        const bytes = i === 0 && images.length > 0 ? images[0] : new Uint8Array([9, 9, i % 256, Math.floor(i / 256)]);
        await ctx.storage.store(new Blob([bytes!], { type: "image/png" }));
      }
    });
  }
  await t.run(async (ctx) => {
    for (let i = 0; i < scale.wakes; i++) await ctx.db.insert("portraitWakes", { at: old + i });
    for (let i = 0; i < scale.releases; i++) await ctx.db.insert("portraitReleases", { heldMs: 10_000, stored: true });
  });
}

/** Waits until no scheduled function is pending or running (the chains a step started have finished). */
async function quiesce(stack: Stack, timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const busy = await stack.t.run(async (ctx) =>
      (await ctx.db.system.query("_scheduled_functions").collect()).some(
        (fn) => fn.state.kind === "pending" || fn.state.kind === "inProgress",
      ),
    );
    if (!busy) return;
    if (Date.now() > deadline) throw new Error("scheduled functions still running");
    await sleep(200);
  }
}

/**
 * Seeds `scale` and runs every function of the queue in its heaviest case:
 * statusCounts over the unfolded rows, one loop run with every batch full, the
 * sweep over the stalled holders (and its fold chain), the dispatched jobs'
 * own actions through the fake Recraft, a bulk retry of the swept jobs, a
 * backfill's batches, and the console's reads. Returns each function's
 * largest transaction.
 */
export async function queueAtScale(scale: QueueScale): Promise<Map<string, TransactionSize>> {
  const meter = meteredTransactions();
  const stack = await benchStack({
    modules: meter.modules,
    // One generation in four fails (the demo's faults in rotation), so the failure transitions run too.
    failRate: 0.25,
    env: { PORTRAIT_MAX_CONCURRENCY: "1000", PORTRAIT_MAX_ATTEMPTS: "1", ADMIN_SUBJECTS: ADMIN_IDENTITY.subject },
  });
  const { t, admin } = stack;
  try {
    await seedQueue(stack, scale);
    const now = Date.now();
    await admin.query(api.admin.statusCounts, {});
    await t.mutation(internal.queueMetrics.snapshot, {}); // it reads the counts too
    // One loop run: every wake and release row, a fold batch, a full dispatch batch. Then pause, so the
    // 10,000 queued jobs stay queued (their actions would take the rest of the run).
    await t.mutation(internal.portraits.dispatchQueue, { at: now });
    await admin.mutation(api.admin.setQueuePaused, { paused: true });
    await t.mutation(internal.portraits.sweep, {});
    await quiesce(stack); // the dispatched jobs' actions, the fold chain
    await t.mutation(internal.portraits.sweep, {}); // a second sweep takes the stalled holders the first left
    await quiesce(stack);
    await admin.query(api.admin.statusCounts, {});
    // One failed job retried by an operator, then bulk retries of the rest (their batches chain), both ways in.
    const failed = await t.run((ctx) =>
      ctx.db
        .query("portraitJobs")
        .withIndex("by_status", (q) => q.eq("status", "failed"))
        .first(),
    );
    if (failed) await admin.mutation(api.admin.retryJob, { jobId: failed._id });
    await t.mutation(internal.portraits.retryFailedByCode, { code: "stalled" });
    await admin.query(api.admin.countRetryable, { filter: { code: "timeout" } });
    await admin.mutation(api.admin.retryMatching, { filter: { code: "timeout" } });
    await quiesce(stack);
    await t.mutation(internal.portraits.sweep, {});
    await quiesce(stack);
    // A backfill: its first batches find the legacy stories; then it is stopped, not walked through every story.
    const backfillId = await t.run((ctx) =>
      ctx.db.insert("portraitBackfills", {
        startedAt: now,
        updatedAt: now,
        cursor: null,
        done: false,
        scanned: 0,
        created: 0,
        hadPortrait: 0,
        hadJob: 0,
      }),
    );
    for (let batch = 0; batch * 100 < scale.legacyStories + 100; batch++) {
      await t.mutation(internal.portraits.backfillBatch, { backfillId });
    }
    await t.run((ctx) => ctx.db.patch("portraitBackfills", backfillId, { done: true }));
    await quiesce(stack);
    // The console's reads over it all.
    const [job] = await t.run((ctx) => ctx.db.query("portraitJobs").order("desc").take(1));
    await admin.query(api.admin.statusCounts, {});
    await admin.query(api.admin.listJobs, { paginationOpts: { numItems: 50, cursor: null } });
    await admin.query(api.admin.failedFacets, {});
    await admin.query(api.admin.getJob, { jobId: job!._id });
    await admin.query(api.admin.failureSummary, { now: Date.now() });
    await admin.query(api.admin.activity, { range: "24h", now: Date.now() });
    await admin.query(api.admin.queueMetrics, { now: Date.now() });
    await admin.query(api.admin.latency, {});
    await admin.query(api.admin.queueState, {});
    await admin.query(api.admin.backfillProgress, {});
    await t.query(api.stories.getAllStories, {});
    await t.query(api.stories.getLatestStory, {});
    await t.mutation(internal.stories.insertStory, nthCaseFile(scale.stored + scale.queued + 1));
    const [pending, stored] = await t.run(async (ctx) => [
      await ctx.db
        .query("portraitJobs")
        .withIndex("by_status", (q) => q.eq("status", "pending"))
        .first(),
      await ctx.db
        .query("portraitJobs")
        .withIndex("by_status", (q) => q.eq("status", "stored"))
        .first(),
    ]);
    await admin.mutation(api.admin.cancelJob, { jobId: pending!._id });
    await admin.mutation(api.admin.regenerate, { storyId: stored!.storyId });
    await t.mutation(internal.stories.deleteStory, { storyId: stored!.storyId });
    // A story run end to end against the fake Claude (its story's portrait job waits in the paused queue), and its sweep.
    await t.mutation(internal.storyRuns.generateStory, {});
    await quiesce(stack);
    await t.mutation(internal.storyRuns.sweep, {});
    await admin.query(api.admin.listStoryRuns, { paginationOpts: { numItems: 50, cursor: null } });
    return meter.largest;
  } finally {
    await stack.close();
  }
}
