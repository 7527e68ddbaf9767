/**
 * The dispatcher: one loop (the `dispatchQueue` mutation) gives pending jobs a
 * start slot, in queue order, at the provider's limit and no faster.
 *
 * Pacing. Consecutive slots are at least `slotSpacingMs` apart, and a request
 * may start only in [slot, slot + T) (T = PORTRAIT_START_TOLERANCE_MS: the
 * claim refuses a start later than T/2, the rest covers the hop to the
 * provider). The requests that start in any window of length W come from slots
 * in an open interval of length W + T, which holds at most N slots when the
 * spacing is (W + T) / N; the spacing takes the larger of the second's and the
 * minute's. Each job's action is scheduled at its own slot, so starts are
 * spread, never bursts, and nothing polls.
 *
 * Concurrency. At most `allowed` jobs hold a slot (dispatched, requested or
 * downloaded): Little's law on the latency the `downloaded` events record
 * (rate x latency x HEADROOM), under an AIMD ceiling that halves when a 429
 * arrives (and pauses new slots until its Retry-After) and recovers by
 * RECOVERY_STEP a success, between 1 and PORTRAIT_MAX_CONCURRENCY.
 *
 * No hot documents. The loop's state is written only by the loop. A
 * transition that needs the loop (a job added, a slot freed) inserts a wakeup
 * row for the next KICK bucket unless one exists, so a burst of transitions
 * shares one run and no transition writes a document another job writes.
 */
import { internal } from "../_generated/api";
import type { Doc } from "../_generated/dataModel";
import type { MutationCtx } from "../_generated/server";
import { queueConfig, type QueueConfig } from "./config";
import { foldCounts } from "./counts";

const HEADROOM = 1.5;
const RECOVERY_STEP = 0.5;
const LATENCY_WEIGHT = 0.3;
const MAX_DISPATCH = 64;
const MAX_OBSERVED = 64;
/** Count rows untouched this long are folded by the loop (the sweep folds the rest). */
const FOLD_SETTLED_MS = 2_000;

/** Minimum time between two start slots (see the header for why it keeps both windows). */
export function slotSpacingMs(config: QueueConfig): number {
  const t = config.startToleranceMs;
  return Math.ceil(Math.max((config.secondMs + t) / config.maxPerSecond, (config.minuteMs + t) / config.maxPerMinute));
}

/** The longest a request may start after its slot and still be sent. */
export const lateStartMs = (config: QueueConfig) => config.startToleranceMs / 2;

/** Wakeups are grouped into buckets of a few slots, so a burst of transitions shares one loop run. */
function kickBucketMs(config: QueueConfig): number {
  return Math.min(1_000, Math.max(10, 4 * slotSpacingMs(config)));
}

/**
 * Makes sure the loop runs at or soon after `at`: one wakeup row and one
 * scheduled run per bucket, whoever asks first.
 */
export async function dispatch(ctx: MutationCtx, at = Date.now()): Promise<void> {
  const bucketMs = kickBucketMs(queueConfig());
  const wakeAt = Math.ceil(at / bucketMs) * bucketMs;
  const existing = await ctx.db
    .query("portraitWakes")
    .withIndex("by_at", (q) => q.eq("at", wakeAt))
    .first();
  if (existing) return;
  await ctx.db.insert("portraitWakes", { at: wakeAt });
  await ctx.scheduler.runAt(wakeAt, internal.portraits.dispatchQueue, {});
}

type State = Omit<Doc<"portraitDispatcher">, "_id" | "_creationTime">;

async function loadState(ctx: MutationCtx, config: QueueConfig, now: number) {
  const doc = await ctx.db.query("portraitDispatcher").first();
  const initial: State = { nextSlotAt: 0, limit: config.maxConcurrency, latencyCursor: now, failureCursor: now };
  return { doc, state: doc ? { ...stripSystem(doc) } : initial };
}

function stripSystem(doc: Doc<"portraitDispatcher">): State {
  const { _id, _creationTime, ...state } = doc;
  return state;
}

/** Learns from the events since the last run: latencies (and recovery) from `downloaded`, 429s from `failed`. */
async function observe(ctx: MutationCtx, state: State, config: QueueConfig) {
  const successes = await ctx.db
    .query("portraitJobEvents")
    .withIndex("by_to", (q) => q.eq("to", "downloaded").gt("at", state.latencyCursor))
    .take(MAX_OBSERVED);
  for (const event of successes) {
    const ms = event.details?.durationMs;
    if (ms !== undefined) state.latencyMs = state.latencyMs === undefined ? ms : state.latencyMs + LATENCY_WEIGHT * (ms - state.latencyMs);
    state.limit = Math.min(config.maxConcurrency, state.limit + RECOVERY_STEP);
    state.latencyCursor = Math.max(state.latencyCursor, event.at);
  }
  const failures = await ctx.db
    .query("portraitJobEvents")
    .withIndex("by_to", (q) => q.eq("to", "failed").gt("at", state.failureCursor))
    .take(MAX_OBSERVED);
  const limited = failures.filter((event) => event.error?.code === "rate_limited");
  for (const event of failures) state.failureCursor = Math.max(state.failureCursor, event.at);
  if (limited.length > 0) {
    state.limit = Math.max(1, state.limit / 2); // once per run, however many 429s it sees
    const until = Math.max(...limited.map((event) => event.at + (event.error?.retryAfterMs ?? 0)));
    state.pausedUntil = Math.max(state.pausedUntil ?? 0, until);
  }
  return successes.length + failures.length;
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

/** One run of the loop. Returns how many jobs it dispatched. */
export async function runDispatcher(ctx: MutationCtx): Promise<number> {
  const config = queueConfig();
  const now = Date.now();
  for (const wake of await ctx.db.query("portraitWakes").withIndex("by_at", (q) => q.lte("at", now)).collect()) {
    await ctx.db.delete(wake._id);
  }
  await foldCounts(ctx, "portrait", { settledMs: FOLD_SETTLED_MS });
  const { doc, state } = await loadState(ctx, config, now);
  const before = JSON.stringify(state);
  await observe(ctx, state, config);

  const allowed = allowedInFlight(state, config);
  const holders = await ctx.db
    .query("portraitJobs")
    .withIndex("by_slot", (q) => q.eq("holdsSlot", true))
    .take(allowed);
  const free = Math.min(allowed - holders.length, MAX_DISPATCH);
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
    // A full batch with capacity left: carry on in the next run rather than grow this transaction.
    if (dispatched === MAX_DISPATCH) await dispatch(ctx, now);
  }
  if (state.pausedUntil !== undefined && state.pausedUntil <= now) delete state.pausedUntil;
  if (!doc) await ctx.db.insert("portraitDispatcher", state);
  else if (JSON.stringify(state) !== before) await ctx.db.replace(doc._id, state);
  return dispatched;
}
