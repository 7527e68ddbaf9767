/**
 * The operators' hold on the portrait queue: paused or running, and an
 * optional ceiling on jobs in flight. One `queueControl` row (absent: running,
 * no ceiling), written only by an admin, read by the dispatcher loop at each
 * run (lib/dispatch.ts): paused, it starts nothing new (jobs already in flight
 * finish); the ceiling caps its computed limit. Every change is appended to
 * `queueControlEvents`, with who made it.
 */
import type { MutationCtx, QueryCtx } from "../_generated/server";
import { kickDispatcher } from "./dispatch";
import { logger } from "./log";

const log = logger("queueControl");

export type QueueControl = { paused: boolean; maxConcurrency?: number };

/** The queue's control as the dispatcher honours it. One read. */
export async function queueControl(ctx: QueryCtx): Promise<QueueControl> {
  const doc = await ctx.db.query("queueControl").first();
  return doc ? { paused: doc.paused, ...(doc.maxConcurrency !== undefined && { maxConcurrency: doc.maxConcurrency }) } : { paused: false };
}

/**
 * Applies an operator's change and records it. Returns false when nothing
 * changed (no event). Resuming or raising the ceiling wakes the loop, so
 * waiting jobs start within one run.
 */
export async function changeQueueControl(ctx: MutationCtx, change: Partial<QueueControl>, by: string): Promise<boolean> {
  const doc = await ctx.db.query("queueControl").first();
  const previous: QueueControl = doc ? { paused: doc.paused, maxConcurrency: doc.maxConcurrency } : { paused: false };
  const next: QueueControl = {
    paused: change.paused ?? previous.paused,
    maxConcurrency: "maxConcurrency" in change ? change.maxConcurrency : previous.maxConcurrency,
  };
  if (next.paused === previous.paused && next.maxConcurrency === previous.maxConcurrency) return false;
  const at = Date.now();
  const row = { paused: next.paused, maxConcurrency: next.maxConcurrency, updatedAt: at, updatedBy: by };
  if (doc) await ctx.db.replace("queueControl", doc._id, row);
  else await ctx.db.insert("queueControl", row);
  await ctx.db.insert("queueControlEvents", {
    at,
    by,
    paused: next.paused,
    maxConcurrency: next.maxConcurrency,
    previous: { paused: previous.paused, maxConcurrency: previous.maxConcurrency },
  });
  log.info("portrait.queue_control", { by, paused: next.paused, maxConcurrency: next.maxConcurrency ?? null });
  await kickDispatcher(ctx);
  return true;
}
