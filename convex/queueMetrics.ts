/**
 * The queue over time, for the console's metrics: every 5 minutes a cron
 * writes one `queueSnapshots` row (jobs waiting, jobs in flight, the
 * dispatcher's limit) from the exact counts (one document at rest) and the
 * loop's own state. Rows older than 31 days are pruned a few at a time.
 */
import { internalMutation } from "./_generated/server";
import { v } from "convex/values";
import { readCounts } from "./lib/jobs";

const KEEP_MS = 31 * 24 * 60 * 60 * 1000;
const PRUNE_BATCH = 20;

export const snapshot = internalMutation({
  args: {},
  returns: v.null(),
  handler: async (ctx) => {
    const at = Date.now();
    const counts = await readCounts(ctx);
    const loop = await ctx.db.query("portraitDispatcher").first();
    await ctx.db.insert("queueSnapshots", {
      at,
      pending: counts.pending,
      inFlight: counts.requested + counts.downloaded,
      ...(loop && { limit: Math.floor(loop.limit) }),
    });
    const old = await ctx.db
      .query("queueSnapshots")
      .withIndex("by_at", (q) => q.lt("at", at - KEEP_MS))
      .take(PRUNE_BATCH);
    for (const row of old) await ctx.db.delete("queueSnapshots", row._id);
    return null;
  },
});
