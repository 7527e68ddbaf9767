/**
 * The backfill: one portrait job for every story that has neither a portrait
 * nor a job (the game's stories from before this backend). A run is one
 * `portraitBackfills` row and a chain of batch mutations; each reads one page
 * of `stories` (by creation time, from the cursor the row keeps), creates the
 * missing jobs, and schedules the next batch.
 *
 * Exactly one job per story, however many runs overlap: a batch checks "this
 * story has no job" through portraitJobs.by_story and creates the job in the
 * same mutation. Convex's mutations are serializable, so when two runs (or a
 * run and insertStory) race for one story, the later commit conflicts on that
 * index range, retries, and finds the job. Jobs enter the queue as pending and
 * the dispatcher (lib/dispatch.ts) starts them at its pace.
 */
import { v, type Infer } from "convex/values";
import { internal } from "../_generated/api";
import type { Id } from "../_generated/dataModel";
import type { MutationCtx, QueryCtx } from "../_generated/server";
import { kickDispatcher } from "./dispatch";
import { backfillCounters } from "../validators";
import { backfillBatchSize } from "./config";
import { createJob } from "./jobs";
import { logger } from "./log";

const log = logger("backfill");

type Counters = { [K in keyof typeof backfillCounters]: number };
const COUNTERS = Object.keys(backfillCounters) as (keyof Counters)[];
const zero = (): Counters => ({ scanned: 0, created: 0, hadPortrait: 0, hadJob: 0 });

export async function startBackfill(ctx: MutationCtx): Promise<Id<"portraitBackfills">> {
  const now = Date.now();
  const backfillId = await ctx.db.insert("portraitBackfills", { startedAt: now, updatedAt: now, cursor: null, done: false, ...zero() });
  await ctx.scheduler.runAfter(0, internal.portraits.backfillBatch, { backfillId });
  log.info("portrait.backfill.started", { backfillId });
  return backfillId;
}

/** One page of the run; returns how many jobs it created. */
export async function runBackfillBatch(ctx: MutationCtx, backfillId: Id<"portraitBackfills">): Promise<number> {
  const run = await ctx.db.get("portraitBackfills", backfillId);
  if (!run || run.done) return 0;
  const page = await ctx.db.query("stories").withIndex("by_creation_time").paginate({ numItems: backfillBatchSize(), cursor: run.cursor });
  const now = Date.now();
  const batch = zero();
  batch.scanned = page.page.length;
  for (const story of page.page) {
    if (story.storageId !== undefined) {
      batch.hadPortrait++;
      continue;
    }
    const job = await ctx.db
      .query("portraitJobs")
      .withIndex("by_story", (q) => q.eq("storyId", story._id))
      .first();
    if (job) {
      batch.hadJob++;
      continue;
    }
    await createJob(ctx, story, { at: now, reason: "backfill" });
    batch.created++;
  }
  const done = page.isDone;
  const totals = Object.fromEntries(COUNTERS.map((name) => [name, run[name] + batch[name]])) as Counters;
  await ctx.db.patch("portraitBackfills", run._id, {
    cursor: page.continueCursor,
    done,
    updatedAt: now,
    finishedAt: done ? now : undefined,
    ...totals,
  });
  if (done) log.info("portrait.backfill.done", { backfillId, scanned: totals.scanned, created: totals.created });
  else await ctx.scheduler.runAfter(0, internal.portraits.backfillBatch, { backfillId });
  if (batch.created > 0) await kickDispatcher(ctx);
  return batch.created;
}

export const backfillProgress = v.object({
  _id: v.id("portraitBackfills"),
  startedAt: v.number(),
  updatedAt: v.number(),
  finishedAt: v.optional(v.number()),
  done: v.boolean(),
  ...backfillCounters,
});
export type BackfillProgress = Infer<typeof backfillProgress>;

/** The newest run's progress (the row without its cursor), or null before the first. */
export async function latestBackfill(ctx: QueryCtx): Promise<BackfillProgress | null> {
  const run = await ctx.db.query("portraitBackfills").withIndex("by_startedAt").order("desc").first();
  if (!run) return null;
  const { _creationTime: _created, cursor: _cursor, ...progress } = run;
  return progress;
}
