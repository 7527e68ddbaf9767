/**
 * The dispatcher: one loop (the `dispatchQueue` mutation) gives pending jobs a
 * start slot, in queue order, at the provider's limit and no faster.
 *
 * Pacing. Consecutive slots are at least `slotSpacingMs` apart, and a request
 * may start only in [slot, slot + T) (T = PORTRAIT_START_TOLERANCE_MS: the
 * claim refuses a start later than 3T/4, the rest covers the hop to the
 * provider). The requests that start in any window of length W come from slots
 * in an open interval of length W + T, which holds at most N slots when the
 * spacing is (W + T) / N; the spacing takes the larger of the second's and the
 * minute's. Each job's action is scheduled at its own slot, so starts are
 * spread, never bursts, and nothing polls.
 *
 * Concurrency. At most `allowed` jobs hold a slot (dispatched, requested or
 * downloaded): Little's law on how long recent jobs held theirs (rate x
 * latency x HEADROOM, an average the loop keeps), under an AIMD ceiling that
 * halves when a 429 arrives (and pauses new slots until its Retry-After) and
 * recovers by RECOVERY_STEP a stored job, between 1 and PORTRAIT_MAX_CONCURRENCY.
 *
 * No hot documents. The loop's state is written only by the loop. A
 * transition that adds work asks for a run in the next wakeup bucket (the
 * first in a bucket inserts a row and schedules the run, the rest read it); a
 * transition that frees a slot inserts a row of its own saying so (with the
 * time held and any 429), which the loop counts and deletes. So the loop knows
 * exactly how many slots are held without reading the holders, and no
 * transition writes a document another job's transition writes.
 */
import { internal } from "../_generated/api";
import type { Doc } from "../_generated/dataModel";
import type { MutationCtx } from "../_generated/server";
import { queueConfig, type QueueConfig } from "./config";
import { foldCounts } from "./counts";
import { logger } from "./log";

const HEADROOM = 1.5;
const RECOVERY_STEP = 0.5;
const LATENCY_WEIGHT = 0.3;
const MAX_DISPATCH = 64;
/** Count rows untouched this long are folded by the loop (the sweep folds the rest). */
const FOLD_SETTLED_MS = 10_000;

/** Minimum time between two start slots (see the header for why it keeps both windows). */
export function slotSpacingMs(config: QueueConfig): number {
  const t = config.startToleranceMs;
  return Math.ceil(Math.max((config.secondMs + t) / config.maxPerSecond, (config.minuteMs + t) / config.maxPerMinute));
}

/** The longest a request may start after its slot and still be sent. */
export const lateStartMs = (config: QueueConfig) => (config.startToleranceMs * 3) / 4;

/** Wakeups are grouped into buckets of a few slots, so a burst of transitions shares one loop run. */
function kickBucketMs(config: QueueConfig): number {
  return Math.min(1_000, Math.max(1, 4 * slotSpacingMs(config)));
}

export type Release = NonNullable<Doc<"portraitWakes">["release"]>;

/**
 * Makes sure the loop runs at or soon after `at`: one scheduled run per bucket,
 * whoever asks first. A `release` (a job giving up its slot) always leaves its
 * own row, so the loop counts every freed slot exactly.
 */
export async function dispatch(ctx: MutationCtx, at = Date.now(), release?: Release): Promise<void> {
  const bucketMs = kickBucketMs(queueConfig());
  const wakeAt = Math.ceil(at / bucketMs) * bucketMs;
  const existing = await ctx.db
    .query("portraitWakes")
    .withIndex("by_at", (q) => q.eq("at", wakeAt))
    .first();
  if (existing && !release) return;
  await ctx.db.insert("portraitWakes", release ? { at: wakeAt, release } : { at: wakeAt });
  if (!existing) await ctx.scheduler.runAt(wakeAt, internal.portraits.dispatchQueue, { at: wakeAt });
}

type State = Omit<Doc<"portraitDispatcher">, "_id" | "_creationTime">;

async function loadState(ctx: MutationCtx, config: QueueConfig): Promise<{ doc: Doc<"portraitDispatcher"> | null; state: State }> {
  const doc = await ctx.db.query("portraitDispatcher").first();
  if (doc) {
    const { _id, _creationTime, ...state } = doc;
    return { doc, state };
  }
  // First run (or first since an upgrade): count the slots already held once.
  const holders = await ctx.db
    .query("portraitJobs")
    .withIndex("by_slot", (q) => q.eq("holdsSlot", true))
    .collect();
  return { doc, state: { nextSlotAt: 0, holding: holders.length, limit: config.maxConcurrency } };
}

/** Learns from the slots freed since the last run: latency (and recovery) from successes, 429s from failures. */
function observe(state: State, releases: Release[], config: QueueConfig) {
  let rateLimitedUntil: number | undefined;
  for (const release of releases) {
    if (release.heldMs !== undefined) {
      state.latencyMs = state.latencyMs === undefined ? release.heldMs : state.latencyMs + LATENCY_WEIGHT * (release.heldMs - state.latencyMs);
    }
    if (release.stored) state.limit = Math.min(config.maxConcurrency, state.limit + RECOVERY_STEP);
    if (release.rateLimitedUntil !== undefined) rateLimitedUntil = Math.max(rateLimitedUntil ?? 0, release.rateLimitedUntil);
  }
  if (rateLimitedUntil !== undefined) {
    state.limit = Math.max(1, state.limit / 2); // once per run, however many 429s it sees
    state.pausedUntil = Math.max(state.pausedUntil ?? 0, rateLimitedUntil);
  }
}

/**
 * Jobs allowed to hold a slot now: Little's law under the AIMD ceiling. A slot
 * is held for the job's latency plus, at worst, one wakeup bucket before the
 * loop hands it on, so that is the time the slot rate is multiplied by.
 */
export function allowedInFlight(state: Pick<State, "latencyMs" | "limit">, config: QueueConfig): number {
  const heldMs = (state.latencyMs ?? Infinity) + kickBucketMs(config);
  const little = Math.ceil((heldMs / slotSpacingMs(config)) * HEADROOM);
  return Math.max(1, Math.min(config.maxConcurrency, little, Math.floor(state.limit)));
}

/**
 * One run of the loop, for the wakeups due by `at` (its bucket: a timer may
 * fire a little early, and the bucket's rows must not outlive its run).
 * Returns how many jobs it dispatched.
 */
export async function runDispatcher(ctx: MutationCtx, at = 0): Promise<number> {
  const config = queueConfig();
  const now = Date.now();
  const due = Math.max(now, at);
  const { doc, state } = await loadState(ctx, config);
  const before = JSON.stringify(state);
  const releases: Release[] = [];
  for (const wake of await ctx.db.query("portraitWakes").withIndex("by_at", (q) => q.lte("at", due)).collect()) {
    if (wake.release) releases.push(wake.release);
    await ctx.db.delete(wake._id);
  }
  // A fresh state counted the holders as they are now, releases included.
  if (doc) state.holding = Math.max(0, state.holding - releases.length);
  observe(state, releases, config);
  await foldCounts(ctx, "portrait", { settledMs: FOLD_SETTLED_MS });

  const free = Math.min(allowedInFlight(state, config) - state.holding, MAX_DISPATCH);
  let dispatched = 0;
  if (free > 0) {
    const ready = await ctx.db
      .query("portraitJobs")
      .withIndex("by_queue", (q) => q.eq("status", "pending").eq("holdsSlot", false).lte("runAt", now))
      .take(free);
    const spacing = slotSpacingMs(config);
    let slotAt = Math.max(now, state.nextSlotAt, state.pausedUntil ?? 0);
    for (const job of ready) {
      const scheduledFunctionId = await ctx.scheduler.runAt(slotAt, internal.portraits.generatePatientPortrait, { jobId: job._id });
      await ctx.db.patch(job._id, { holdsSlot: true, dispatchedAt: now, slotAt, scheduledFunctionId });
      slotAt += spacing;
      dispatched++;
    }
    if (dispatched > 0) state.nextSlotAt = slotAt;
    state.holding += dispatched;
    // A full batch with capacity left: carry on in the next run rather than grow this transaction.
    if (dispatched === MAX_DISPATCH) await dispatch(ctx, now);
  }
  if (state.pausedUntil !== undefined && state.pausedUntil <= now) delete state.pausedUntil;
  if (!doc) await ctx.db.insert("portraitDispatcher", state);
  else if (JSON.stringify(state) !== before) await ctx.db.replace(doc._id, state);
  return dispatched;
}

/**
 * The sweep's check of the loop's held-slot count against the jobs that hold
 * one (less the releases the loop has not read yet). They agree by
 * construction; if a hand edit made them drift, this puts the count right, so
 * a lost release can cost at most a minute of capacity.
 */
export async function reconcileHolding(ctx: MutationCtx, holders: number): Promise<void> {
  const doc = await ctx.db.query("portraitDispatcher").first();
  if (!doc) return;
  const unread = (await ctx.db.query("portraitWakes").collect()).filter((wake) => wake.release).length;
  if (doc.holding - unread === holders) return;
  logger("dispatch").warn("portrait.dispatcher_drift", { counted: doc.holding - unread, holders });
  await ctx.db.patch(doc._id, { holding: holders + unread });
}
