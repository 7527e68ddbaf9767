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
import { v } from "convex/values";
import { internal } from "../_generated/api";
import type { Doc, Id } from "../_generated/dataModel";
import type { MutationCtx, QueryCtx } from "../_generated/server";
import { dispatch } from "./dispatch";
import { createJob } from "./jobs";
import { logger } from "./log";

const log = logger("backfill");

/** Stories read per batch mutation. */
export const BACKFILL_BATCH = 100;

export async function startBackfill(ctx: MutationCtx): Promise<Id<"portraitBackfills">> {
  const now = Date.now();
  const backfillId = await ctx.db.insert("portraitBackfills", {
    startedAt: now,
    updatedAt: now,
    cursor: null,
    done: false,
    scanned: 0,
    created: 0,
    hadPortrait: 0,
    hadJob: 0,
  });
  await ctx.scheduler.runAfter(0, internal.portraits.backfillBatch, { backfillId });
  log.info("portrait.backfill.started", { backfillId });
  return backfillId;
}

/** One page of the run; returns how many jobs it created. */
export async function runBackfillBatch(ctx: MutationCtx, backfillId: Id<"portraitBackfills">): Promise<number> {
  const run = await ctx.db.get(backfillId);
  if (!run || run.done) return 0;
  const page = await ctx.db
    .query("stories")
    .withIndex("by_creation_time")
    .paginate({ numItems: BACKFILL_BATCH, cursor: run.cursor });
  const now = Date.now();
  let created = 0;
  let hadPortrait = 0;
  let hadJob = 0;
  for (const story of page.page) {
    if (story.storageId !== undefined) {
      hadPortrait++;
      continue;
    }
    const job = await ctx.db
      .query("portraitJobs")
      .withIndex("by_story", (q) => q.eq("storyId", story._id))
      .first();
    if (job) {
      hadJob++;
      continue;
    }
    await createJob(ctx, story, { at: now, reason: "backfill" });
    created++;
  }
  const done = page.isDone;
  await ctx.db.patch(run._id, {
    cursor: page.continueCursor,
    done,
    updatedAt: now,
    finishedAt: done ? now : undefined,
    scanned: run.scanned + page.page.length,
    created: run.created + created,
    hadPortrait: run.hadPortrait + hadPortrait,
    hadJob: run.hadJob + hadJob,
  });
  if (done) log.info("portrait.backfill.done", { backfillId, scanned: run.scanned + page.page.length, created: run.created + created });
  else await ctx.scheduler.runAfter(0, internal.portraits.backfillBatch, { backfillId });
  if (created > 0) await dispatch(ctx);
  return created;
}

export const backfillProgress = v.object({
  _id: v.id("portraitBackfills"),
  startedAt: v.number(),
  updatedAt: v.number(),
  finishedAt: v.optional(v.number()),
  done: v.boolean(),
  scanned: v.number(),
  created: v.number(),
  hadPortrait: v.number(),
  hadJob: v.number(),
});
export type BackfillProgress = Pick<
  Doc<"portraitBackfills">,
  "_id" | "startedAt" | "updatedAt" | "finishedAt" | "done" | "scanned" | "created" | "hadPortrait" | "hadJob"
>;

/** The newest run's progress, or null before the first. */
export async function latestBackfill(ctx: QueryCtx): Promise<BackfillProgress | null> {
  const run = await ctx.db.query("portraitBackfills").withIndex("by_startedAt").order("desc").first();
  if (!run) return null;
  const { _id, startedAt, updatedAt, finishedAt, done, scanned, created, hadPortrait, hadJob } = run;
  return { _id, startedAt, updatedAt, finishedAt, done, scanned, created, hadPortrait, hadJob };
}
