/**
 * The dispatcher: gives pending jobs a slot, in queue order, while at most
 * PORTRAIT_MAX_CONCURRENCY jobs hold one and at most PORTRAIT_MAX_PER_MINUTE
 * generation requests fall in the rolling minute. It runs inside the mutations
 * that change capacity (an insert, a job finishing, a retry, the sweep), so
 * Convex's serializable transactions make the cap exact without locks; when
 * nothing can start until later (a backoff, the rate window) it schedules one
 * wakeup for that moment instead of polling.
 */
import { internal } from "../_generated/api";
import type { MutationCtx } from "../_generated/server";
import { queueConfig } from "./config";

const MINUTE_MS = 60_000;

export async function dispatch(ctx: MutationCtx): Promise<number> {
  const config = queueConfig();
  const now = Date.now();
  const holders = await ctx.db
    .query("portraitJobs")
    .withIndex("by_slot", (q) => q.eq("holdsSlot", true))
    .take(config.maxConcurrency);
  const freeSlots = config.maxConcurrency - holders.length;
  if (freeSlots <= 0) return 0; // a finishing job will dispatch again

  // Requests already sent this minute, plus slot holders about to send one.
  const recentRequests = await ctx.db
    .query("portraitJobEvents")
    .withIndex("by_to", (q) => q.eq("to", "requested").gt("at", now - MINUTE_MS))
    .take(config.maxPerMinute);
  const aboutToRequest = holders.filter((job) => job.status === "pending").length;
  const budget = config.maxPerMinute - recentRequests.length - aboutToRequest;
  if (budget <= 0) {
    if (recentRequests.length > 0) await wakeAt(ctx, recentRequests[0].at + MINUTE_MS + 1);
    return 0;
  }

  const ready = await ctx.db
    .query("portraitJobs")
    .withIndex("by_queue", (q) => q.eq("status", "pending").eq("holdsSlot", false).lte("runAt", now))
    .take(Math.min(freeSlots, budget));
  for (const job of ready) {
    const scheduledFunctionId = await ctx.scheduler.runAfter(0, internal.portraits.generatePatientPortrait, {
      jobId: job._id,
    });
    await ctx.db.patch(job._id, { holdsSlot: true, dispatchedAt: now, scheduledFunctionId });
  }

  if (ready.length < Math.min(freeSlots, budget)) {
    const later = await ctx.db
      .query("portraitJobs")
      .withIndex("by_queue", (q) => q.eq("status", "pending").eq("holdsSlot", false).gt("runAt", now))
      .first();
    if (later) await wakeAt(ctx, later.runAt);
  }
  return ready.length;
}

async function wakeAt(ctx: MutationCtx, at: number) {
  const now = Date.now();
  const state = await ctx.db.query("portraitDispatcher").first();
  if (state && state.wakeAt > now && state.wakeAt <= at) return; // an earlier wakeup is already due
  await ctx.scheduler.runAt(at, internal.portraits.dispatchQueue, {});
  if (state) await ctx.db.patch(state._id, { wakeAt: at });
  else await ctx.db.insert("portraitDispatcher", { wakeAt: at });
}
