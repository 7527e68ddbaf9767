/**
 * The dispatcher: one loop (the `dispatchQueue` mutation) gives pending jobs a
 * start slot, in queue order, at the provider's limit and no faster, and the
 * claim's reservation of each request's real start (lib/pacing.ts has the maths).
 *
 * Pacing in two steps. The loop plans: each job's slot is the earliest start
 * its plan log allows (both windows: a window's N starts may share an
 * instant, the ideal schedule), and its action is scheduled at that slot, so
 * nothing polls. The claim
 * decides: a scheduler starts functions late and out of order, so the claim
 * reserves the request's real start in the start log (every request the
 * provider will see, in order); the action waits inside itself for that
 * start. A late start therefore still makes progress (it takes the next free
 * token) and can never put more than N requests in a window. Only when the
 * next token is further away than `maxStartWaitMs` does the claim give its
 * turn back, rescheduling its own action at the token's time: one start without
 * a request, which happens only while other jobs hold the near tokens.
 *
 * Concurrency. At most `allowed` jobs hold a slot (dispatched, requested or
 * downloaded): Little's law on how long recent jobs held theirs, under an AIMD
 * ceiling that halves when a 429 arrives (and pauses new slots and new starts
 * until its Retry-After) and recovers by RECOVERY_STEP a stored job, between 1
 * and PORTRAIT_MAX_CONCURRENCY.
 *
 * No hot documents. The loop's state is written only by the loop (and
 * repaired only by the sweep's `reconcileHolding`). A transition that adds
 * work kicks the loop (`kickDispatcher`: the first in a wakeup bucket inserts
 * a row and schedules the run, the rest read it). A job's slot lives on the
 * job (lib/slots.ts: granted here, released by the job's move out of flight,
 * each change with its event); a release also leaves the loop a notice of
 * its own in another table (`portraitReleases`, with the time held and any
 * 429), which the loop reads and deletes. Its `holding` is a tally of those
 * changes (its grants less the notices read), so it never reads the holders,
 * whose every transition would conflict with that read. The start log is
 * written by claims (a few a second at most) and by 429s.
 */
import { internal } from "../_generated/api";
import type { Doc } from "../_generated/dataModel";
import type { MutationCtx } from "../_generated/server";
import { queueConfig, type QueueConfig } from "./config";
import { foldCounts } from "./counts";
import { allowedInFlight as littleLaw, reserveStart, sustainedSpacingMs } from "./pacing";
import { queueControl } from "./queueControl";
import { logger } from "./log";
import { grantSlot } from "./slots";

const RECOVERY_STEP = 0.5;
const LATENCY_WEIGHT = 0.3;
const MAX_DISPATCH = 64;
/** Wake rows one loop run reads at most (the rest wait for the carry-on run). */
const WAKE_BATCH = 512;
/** Count rows untouched this long are folded by the loop (the sweep folds the rest). */
const FOLD_SETTLED_MS = 10_000;

/** Wakeups are grouped into buckets of a few slots, so a burst of transitions shares one loop run. */
function kickBucketMs(config: QueueConfig): number {
  return Math.min(1_000, Math.max(1, Math.floor(4 * sustainedSpacingMs(config))));
}

/** Jobs allowed to hold a slot now (lib/pacing.ts): a freed slot waits at most one wakeup bucket to be handed on. */
const allowedInFlight = (state: { latencyMs?: number; limit: number }, config: QueueConfig) =>
  littleLaw(state, config, kickBucketMs(config));

/** A release notice (lib/slots.ts releaseSlot): how long a freed slot was held, and any 429. */
type Release = Omit<Doc<"portraitReleases">, "_id" | "_creationTime">;

/** Makes sure the loop runs at or soon after `at`: one scheduled run per wakeup bucket, whoever asks first. */
export async function kickDispatcher(ctx: MutationCtx, at = Date.now()): Promise<void> {
  const bucketMs = kickBucketMs(queueConfig());
  const wakeAt = Math.ceil(at / bucketMs) * bucketMs;
  const existing = await ctx.db
    .query("portraitWakes")
    .withIndex("by_at", (q) => q.eq("at", wakeAt))
    .first();
  if (existing) return;
  await ctx.db.insert("portraitWakes", { at: wakeAt });
  await ctx.scheduler.runAt(wakeAt, internal.portraits.dispatchQueue, { at: wakeAt });
}

type State = { planned: number[]; holding: number; limit: number; latencyMs?: number; pausedUntil?: number };

async function loadState(ctx: MutationCtx, config: QueueConfig): Promise<{ doc: Doc<"portraitDispatcher"> | null; state: State }> {
  const doc = await ctx.db.query("portraitDispatcher").first();
  if (doc) {
    const { planned = [], holding, limit, latencyMs, pausedUntil } = doc;
    return { doc, state: { planned, holding, limit, latencyMs, pausedUntil } };
  }
  // First run (or first since an upgrade): count the slots already held once (at most the concurrency ceiling).
  const holders = await ctx.db
    .query("portraitJobs")
    .withIndex("by_slot", (q) => q.eq("slot.kind", "held"))
    .take(config.maxConcurrency + MAX_DISPATCH);
  return { doc, state: { planned: [], holding: holders.length, limit: config.maxConcurrency } };
}

/** Learns from the slots freed since the last run: latency (and recovery) from successes, 429s from failures. */
function observe(state: State, releases: Release[], config: QueueConfig) {
  let rateLimitedUntil: number | undefined;
  for (const release of releases) {
    if (release.heldMs !== undefined) {
      state.latencyMs =
        state.latencyMs === undefined ? release.heldMs : state.latencyMs + LATENCY_WEIGHT * (release.heldMs - state.latencyMs);
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
 * One run of the loop, for the wakeups due by `at` (its bucket: a timer may
 * fire a little before `Date.now()` reaches it). Everything due by the same
 * instant is handled: the wake rows and the jobs whose `runAt` has come, so a
 * job is never left behind a wake row this run deleted. Returns how many jobs
 * it dispatched.
 */
export async function runDispatcher(ctx: MutationCtx, at = 0): Promise<number> {
  const config = queueConfig();
  const now = Date.now();
  const due = Math.max(now, at);
  const { doc, state } = await loadState(ctx, config);
  const before = JSON.stringify(state);
  const releases: Release[] = [];
  const wakes = await ctx.db
    .query("portraitWakes")
    .withIndex("by_at", (q) => q.lte("at", due))
    .take(WAKE_BATCH);
  for (const wake of wakes) {
    if (wake.release) releases.push(wake.release); // a row from before portraitReleases
    await ctx.db.delete("portraitWakes", wake._id);
  }
  const released = await ctx.db.query("portraitReleases").take(WAKE_BATCH);
  for (const { _id, _creationTime, ...release } of released) {
    releases.push(release);
    await ctx.db.delete("portraitReleases", _id);
  }
  // A fresh state counted the holders as they are now, releases included.
  if (doc) state.holding = Math.max(0, state.holding - releases.length);
  observe(state, releases, config);
  await foldCounts(ctx, "portrait", { settledMs: FOLD_SETTLED_MS });

  // HOOK (issue 16, lib/queueControl.ts): an operator's pause starts nothing; their ceiling caps the limit.
  const control = await queueControl(ctx);
  const limit = control.paused ? 0 : Math.min(allowedInFlight(state, config), control.maxConcurrency ?? Infinity);
  const free = Math.min(limit - state.holding, MAX_DISPATCH);
  let dispatched = 0;
  if (free > 0) {
    const ready = await ctx.db
      .query("portraitJobs")
      .withIndex("by_queue", (q) => q.eq("status", "pending").eq("slot.kind", "none").lte("runAt", due))
      .take(free);
    for (const job of ready) {
      const { start: slotAt, log } = reserveStart(state.planned, Math.max(now, job.runAt, state.pausedUntil ?? 0), config);
      state.planned = log;
      const scheduledFunctionId = await ctx.scheduler.runAt(slotAt, internal.portraits.generatePatientPortrait, { jobId: job._id });
      await grantSlot(ctx, job, { plannedAt: slotAt, scheduledFunctionId });
      dispatched++;
    }
    state.holding += dispatched;
  }
  // A full batch (of jobs or of wake rows): carry on in the next run rather than grow this transaction.
  if (dispatched === MAX_DISPATCH || wakes.length === WAKE_BATCH || released.length === WAKE_BATCH) await kickDispatcher(ctx, now);
  if (state.pausedUntil !== undefined && state.pausedUntil <= now) delete state.pausedUntil;
  if (!doc) await ctx.db.insert("portraitDispatcher", state);
  else if (JSON.stringify(state) !== before) await ctx.db.replace("portraitDispatcher", doc._id, state);
  return dispatched;
}

async function startLog(ctx: MutationCtx) {
  return ctx.db.query("portraitStarts").first();
}

/**
 * Reserves the real start of a request at or after now in the start log, if
 * it is within `maxWaitMs`; returns the start either way (reserved or not).
 */
export async function reserveRequestStart(ctx: MutationCtx, maxWaitMs: number): Promise<{ start: number; reserved: boolean }> {
  const config = queueConfig();
  const now = Date.now();
  const doc = await startLog(ctx);
  const { start, log } = reserveStart(doc?.starts ?? [], Math.max(now, doc?.pausedUntil ?? 0), config);
  if (start - now > maxWaitMs) return { start, reserved: false };
  if (doc) await ctx.db.patch("portraitStarts", doc._id, { starts: log });
  else await ctx.db.insert("portraitStarts", { starts: log });
  return { start, reserved: true };
}

/** A 429: no request starts before `until` (its Retry-After). */
export async function pauseStarts(ctx: MutationCtx, until: number): Promise<void> {
  const doc = await startLog(ctx);
  if (!doc) await ctx.db.insert("portraitStarts", { starts: [], pausedUntil: until });
  else if ((doc.pausedUntil ?? 0) < until) await ctx.db.patch("portraitStarts", doc._id, { pausedUntil: until });
}

/**
 * The one repair of the loop's `holding` tally, run by the sweep: the tally
 * less the notices the loop has not read must equal the jobs whose slot is
 * held. Every slot change goes through lib/slots.ts, so they agree by
 * construction (tests/invariants.ts checks it after every step of the
 * queue's histories); only a change that bypassed it (a hand edit in the
 * dashboard, a restored backup) can make them drift, and then this puts the
 * tally right, so a lost release costs at most a minute of capacity. Skipped
 * when either set is larger than one transaction should read.
 */
export async function reconcileHolding(ctx: MutationCtx, holders: number): Promise<void> {
  const doc = await ctx.db.query("portraitDispatcher").first();
  if (!doc) return;
  const wakes = await ctx.db.query("portraitWakes").take(WAKE_BATCH);
  const released = await ctx.db.query("portraitReleases").take(WAKE_BATCH);
  if (wakes.length === WAKE_BATCH || released.length === WAKE_BATCH) return;
  const unread = released.length + wakes.filter((wake) => wake.release).length;
  if (doc.holding - unread === holders) return;
  logger("dispatch").warn("portrait.dispatcher_drift", { counted: doc.holding - unread, holders });
  await ctx.db.patch("portraitDispatcher", doc._id, { holding: holders + unread });
}
