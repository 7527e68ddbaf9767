/**
 * The dispatcher: gives pending jobs a slot, in queue order, while at most
 * PORTRAIT_MAX_CONCURRENCY jobs hold one and at most PORTRAIT_MAX_PER_MINUTE
 * generation requests fall in the rolling minute. It runs inside the mutations
 * that change capacity (an insert, a job finishing, a retry, the sweep), so
 * Convex's serializable transactions make both limits exact without locks.
 * Nothing polls: a full rate window schedules one wakeup for when it frees, and
 * a retry's backoff schedules its own (lib/jobs.ts).
 */
import { internal } from "../_generated/api";
import type { MutationCtx } from "../_generated/server";
import { queueConfig } from "./config";

const MINUTE_MS = 60_000;

async function loadState(ctx: MutationCtx, now: number) {
  const doc = await ctx.db.query("portraitDispatcher").first();
  const recentRequests = (doc?.recentRequests ?? []).filter((at) => at > now - MINUTE_MS);
  return { doc, recentRequests, wakeAt: doc?.wakeAt };
}

/** Called by the claim (pending -> requested): the request is about to be sent. */
export async function recordRequest(ctx: MutationCtx) {
  const now = Date.now();
  const { doc, recentRequests } = await loadState(ctx, now);
  // Only the newest PORTRAIT_MAX_PER_MINUTE entries can decide anything.
  if (doc) await ctx.db.patch(doc._id, { recentRequests: [...recentRequests, now].slice(-queueConfig().maxPerMinute) });
  else await ctx.db.insert("portraitDispatcher", { recentRequests: [now] });
}

export async function dispatch(ctx: MutationCtx): Promise<number> {
  const config = queueConfig();
  const now = Date.now();
  const holders = await ctx.db
    .query("portraitJobs")
    .withIndex("by_slot", (q) => q.eq("holdsSlot", true))
    .take(config.maxConcurrency);
  const freeSlots = config.maxConcurrency - holders.length;
  if (freeSlots <= 0) return 0; // a finishing job will dispatch again

  const state = await loadState(ctx, now);
  // Dispatched jobs that have not claimed yet will each send a request soon.
  const requestBudget = config.maxPerMinute - holders.filter((job) => job.status === "pending").length;
  const budget = Math.min(freeSlots, requestBudget - state.recentRequests.length);
  if (budget <= 0) {
    await wakeWhenWindowFrees(ctx, state, requestBudget, now);
    return 0;
  }
  const ready = await ctx.db
    .query("portraitJobs")
    .withIndex("by_queue", (q) => q.eq("status", "pending").eq("holdsSlot", false).lte("runAt", now))
    .take(budget);
  for (const job of ready) {
    const scheduledFunctionId = await ctx.scheduler.runAfter(0, internal.portraits.generatePatientPortrait, {
      jobId: job._id,
    });
    await ctx.db.patch(job._id, { holdsSlot: true, dispatchedAt: now, scheduledFunctionId });
  }
  return ready.length;
}

async function wakeWhenWindowFrees(ctx: MutationCtx, state: Awaited<ReturnType<typeof loadState>>, requestBudget: number, now: number) {
  // The window frees when enough of its requests are a minute old. With no
  // budget at all, the unclaimed slot holders dispatch again when they finish.
  const blocking = state.recentRequests[state.recentRequests.length - requestBudget];
  if (requestBudget <= 0 || blocking === undefined) return;
  const wakeAt = blocking + MINUTE_MS + 1;
  if (state.wakeAt !== undefined && state.wakeAt > now && state.wakeAt <= wakeAt) return; // an earlier wakeup covers it
  await ctx.scheduler.runAt(wakeAt, internal.portraits.dispatchQueue, {});
  if (state.doc) await ctx.db.patch(state.doc._id, { wakeAt });
  else await ctx.db.insert("portraitDispatcher", { recentRequests: [], wakeAt });
}
