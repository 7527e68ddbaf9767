/**
 * What an operator triggers (the admin console, the bulk retry, a script),
 * apart from the state machines they drive (lib/jobs.ts, lib/storyRunMachine.ts):
 * each command checks that its row is in a state it applies to, then moves it
 * through the machine, which records the event and, for a new attempt, gives
 * it its place (`requeue`).
 */
import { internal } from "../_generated/api";
import type { Doc, Id } from "../_generated/dataModel";
import type { MutationCtx } from "../_generated/server";
import type { ErrorCode } from "../validators";
import { kickDispatcher } from "./dispatch";
import { canMove, createJob, move, requeue } from "./jobs";
import { requeue as requeueRun } from "./storyRunMachine";

/** A manual retry: a failed (or cancelled) job goes back to the queue as a new attempt. */
export async function retryOne(ctx: MutationCtx, job: Doc<"portraitJobs"> | null, reason: string) {
  if (!job || (job.status !== "failed" && job.status !== "cancelled")) return "not_failed" as const;
  await requeue(ctx, job, reason);
  return "queued" as const;
}

/**
 * A new attempt at a story's portrait: its stored (or failed) job goes back to
 * the queue; a story without a job (one that predates this backend) gets one.
 * The story keeps its current portrait until the new one is stored
 * (portraits.markStored swaps it and deletes the old file); a failed attempt
 * leaves it in place. "busy" when an attempt is already queued or in flight.
 */
export async function regenerateOne(ctx: MutationCtx, storyId: Id<"stories">, reason: string) {
  const story = await ctx.db.get("stories", storyId);
  if (!story) return "story_missing" as const;
  const job = await ctx.db
    .query("portraitJobs")
    .withIndex("by_story", (q) => q.eq("storyId", storyId))
    .first();
  if (!job) {
    await createJob(ctx, story, { at: Date.now(), reason });
    await kickDispatcher(ctx);
  } else if (job.status === "stored" || job.status === "failed" || job.status === "cancelled") await requeue(ctx, job, reason);
  else return "busy" as const;
  return "queued" as const;
}

const RETRY_BATCH = 100;

/**
 * Retries the failed jobs with `code`: one batch here, the rest in follow-up
 * mutations (internal.portraits.retryFailedByCode). Returns this batch's size.
 */
export async function retryBatch(ctx: MutationCtx, code: ErrorCode, reason: string) {
  const batch = await ctx.db
    .query("portraitJobs")
    .withIndex("by_error_code", (q) => q.eq("status", "failed").eq("error.code", code))
    .take(RETRY_BATCH);
  for (const job of batch) await requeue(ctx, job, reason);
  if (batch.length === RETRY_BATCH) await ctx.scheduler.runAfter(0, internal.portraits.retryFailedByCode, { code });
  return batch.length;
}

/**
 * An operator's stop (issue 16): a pending or requested job is cancelled (its
 * slot is freed; its action is refused at its next transition, so its request
 * is neither finished nor retried), a failed one is discarded from the failure
 * views. Either way the job ends `cancelled` with its events kept; a retry or
 * a regeneration starts it again.
 */
export async function cancelOne(ctx: MutationCtx, job: Doc<"portraitJobs"> | null, reason: string) {
  if (!job || !canMove(job.status, "cancelled")) return "not_cancellable" as const;
  await move(ctx, job, "cancelled", { details: { reason } });
  return "cancelled" as const;
}

/**
 * An admin's retry of a failed story run (issue 16): back to `pending` as the
 * next attempt, its action scheduled now. "not_failed" for anything else.
 */
export async function retryRun(ctx: MutationCtx, run: Doc<"storyRuns"> | null, reason: string): Promise<"queued" | "not_failed"> {
  if (!run || run.status !== "failed") return "not_failed";
  await requeueRun(ctx, run, reason);
  return "queued";
}
