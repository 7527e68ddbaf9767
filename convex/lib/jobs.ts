/**
 * The portrait job state machine. Every function here runs inside a mutation:
 * a transition patches the job, appends its event and adjusts the status counts
 * in the same transaction, so the event log is the truth and the job row its
 * projection.
 *
 *   pending ──claim──> requested ──> downloaded ──> stored ──regenerate──> pending (attempt + 1)
 *      └──────────────────┴──────────────┴──> failed ──retry──> pending (attempt + 1)
 *   pending, requested, failed ──cancel / discard──> cancelled ──retry──> pending (attempt + 1)
 *
 * A job's storageId is the file of its last stored attempt: a regeneration
 * keeps it (and the story keeps its portrait) until the next attempt is stored.
 */
import type { Doc, Id } from "../_generated/dataModel";
import type { MutationCtx, QueryCtx } from "../_generated/server";
import type { ErrorCode, JobError, JobStatus, StepDetails } from "../validators";
import { queueConfig, type QueueConfig } from "./config";
import { internal } from "../_generated/api";
import { backoffMs } from "./backoff";
import { adjustCounts, readCounts as readKindCounts } from "./counts";
import { kickDispatcher, releaseSlot } from "./dispatch";
import { logger } from "./log";
import { redact } from "./redact";

export const STATUSES: JobStatus[] = ["pending", "requested", "downloaded", "stored", "failed", "cancelled"];

const NEXT: Record<JobStatus, JobStatus[]> = {
  pending: ["requested", "failed", "cancelled"],
  requested: ["downloaded", "failed", "cancelled"],
  downloaded: ["stored", "failed"],
  stored: ["pending"],
  failed: ["pending", "cancelled"],
  cancelled: ["pending"],
};

export function canMove(from: JobStatus | null, to: JobStatus): boolean {
  return from === null ? to === "pending" : NEXT[from].includes(to);
}

const TRANSIENT_CODES = new Set(["rate_limited", "timeout", "network_error", "stalled"]);

export function isTransient(error: JobError): boolean {
  return TRANSIENT_CODES.has(error.code) || (error.code === "http_error" && (error.httpStatus ?? 0) >= 500);
}

/** Exponential backoff with jitter (the workpool's shape), never sooner than Retry-After. */
export function retryDelayMs(attempt: number, error: JobError, config: QueueConfig): number {
  return backoffMs(attempt, { initialMs: config.retryInitialMs, maxMs: config.retryMaxMs, jitter: true }, error.retryAfterMs);
}

function sanitize(error: JobError): JobError {
  return { ...error, message: redact(error.message) };
}

/**
 * Jobs per status, exact at every instant (lib/counts.ts explains why), or
 * marked `approximate` when too many changes wait to be folded to sum them in one read.
 */
export async function readCounts(ctx: QueryCtx): Promise<Record<JobStatus, number> & { approximate?: true }> {
  const { counts, exact } = await readKindCounts(ctx, "portrait");
  const byStatus = Object.fromEntries(STATUSES.map((status) => [status, counts[status] ?? 0])) as Record<JobStatus, number>;
  return exact ? byStatus : { ...byStatus, approximate: true };
}

function logTransition(
  job: Pick<Doc<"portraitJobs">, "_id" | "storyId" | "attempt" | "updatedAt">,
  from: JobStatus | null,
  to: JobStatus,
  now: number,
  error?: JobError,
  details?: StepDetails,
) {
  const line = {
    jobId: job._id,
    storyId: job.storyId,
    attempt: job.attempt,
    from,
    to,
    durationMs: details?.durationMs ?? (from === null ? 0 : now - job.updatedAt),
    code: error?.code ?? null,
    ...(error ? { step: error.step, message: error.message } : {}),
  };
  logger("jobs")[to === "failed" ? "warn" : "info"]("portrait.transition", line);
}

/**
 * The admin search's text: title, patient name and number, plus each word's
 * letter-and-digit parts, so "0470" finds "P-0470" whichever way the search
 * engine splits words.
 */
export function searchTextOf(story: Pick<Doc<"stories">, "title" | "patientName" | "patientNumber">): string {
  const text = `${story.title} ${story.patientName} ${story.patientNumber}`;
  const punctuated = text.split(/\s+/).filter((word) => /[^\p{L}\p{N}]/u.test(word));
  const parts = punctuated.flatMap((word) => word.split(/[^\p{L}\p{N}]+/u).filter(Boolean));
  return [text, ...new Set(parts)].join(" ");
}

/**
 * Creates a story's job in `pending` with its first event, at `at` (the story's
 * creation by default; a backfill passes the time it finds the story).
 */
export async function createJob(ctx: MutationCtx, story: Doc<"stories">, { at, reason }: { at?: number; reason?: string } = {}) {
  const now = at ?? story.createdAt;
  const storyId = story._id;
  const jobId = await ctx.db.insert("portraitJobs", {
    storyId,
    searchText: searchTextOf(story),
    status: "pending",
    attempt: 1,
    createdAt: now,
    updatedAt: now,
    runAt: now,
    holdsSlot: false,
  });
  await ctx.db.insert("portraitJobEvents", {
    jobId,
    storyId,
    attempt: 1,
    from: null,
    to: "pending",
    at: now,
    ...(reason ? { details: { reason } } : {}),
  });
  await adjustCounts(ctx, "portrait", jobId, { pending: 1 });
  logTransition({ _id: jobId, storyId, attempt: 1, updatedAt: now }, null, "pending", now);
  return jobId;
}

type Change = { error?: JobError; details?: StepDetails; storageId?: Id<"_storage">; startedAt?: number };

/**
 * Moves a job one step and records it. Callers have already checked that the
 * job is in the state they expected (compare-and-set); this refuses an
 * impossible edge outright. Returns the job as it now is.
 */
export async function move(ctx: MutationCtx, job: Doc<"portraitJobs">, to: JobStatus, change: Change = {}): Promise<Doc<"portraitJobs">> {
  if (!canMove(job.status, to)) throw new Error(`portrait job ${job._id}: no transition ${job.status} -> ${to}`);
  const now = Date.now();
  const error = change.error && sanitize(change.error);
  // Back to pending (from failed or stored) is always a new attempt.
  const attempt = to === "pending" ? job.attempt + 1 : job.attempt;
  const inFlight = to === "requested" || to === "downloaded";
  const patch: Partial<Doc<"portraitJobs">> = {
    status: to,
    attempt,
    updatedAt: now,
    error,
    holdsSlot: inFlight,
  };
  if (to === "stored") patch.storageId = change.storageId;
  if (to === "requested") patch.startedAt = change.startedAt ?? now;
  if (to === "downloaded") patch.download = { sha256: change.details?.sha256 ?? "", bytes: change.details?.bytes ?? 0, at: now };
  else patch.download = undefined;
  if (!inFlight) {
    patch.scheduledFunctionId = undefined;
    patch.dispatchedAt = undefined;
    patch.slotAt = undefined;
    patch.startedAt = undefined;
    patch.claimId = undefined;
  }
  await ctx.db.patch("portraitJobs", job._id, patch);
  await ctx.db.insert("portraitJobEvents", {
    jobId: job._id,
    storyId: job.storyId,
    attempt,
    from: job.status,
    to,
    at: now,
    error,
    details: change.details,
  });
  await adjustCounts(ctx, "portrait", job._id, { [job.status]: -1, [to]: 1 });
  if (job.holdsSlot && !inFlight) {
    // The slot is free: tell the dispatcher loop how long it was held, and whether the provider said 429.
    const startedAt = job.status !== "pending" ? (job.startedAt ?? job.slotAt) : undefined;
    await releaseSlot(ctx, {
      heldMs: startedAt !== undefined ? now - startedAt : undefined,
      stored: to === "stored",
      rateLimitedUntil: error?.code === "rate_limited" ? now + (error.retryAfterMs ?? 0) : undefined,
    });
  }
  logTransition({ ...job, attempt }, job.status, to, now, error, change.details);
  return (await ctx.db.get("portraitJobs", job._id))!;
}

/**
 * Fails a job, and if the failure is transient and attempts remain, queues the
 * next attempt after a backoff. Frees the job's slot either way (move tells
 * the dispatcher).
 */
export async function fail(ctx: MutationCtx, job: Doc<"portraitJobs">, error: JobError, details?: StepDetails) {
  const config = queueConfig();
  let failed = await move(ctx, job, "failed", { error, details });
  if (failed.attempt < config.maxAttempts && isTransient(error)) {
    const retryAt = failed.updatedAt + retryDelayMs(failed.attempt, error, config);
    failed = await move(ctx, failed, "pending", { details: { retryAt, reason: `automatic retry after ${error.code}` } });
    await ctx.db.patch("portraitJobs", failed._id, { runAt: retryAt });
    await kickDispatcher(ctx, retryAt);
  }
}

async function requeue(ctx: MutationCtx, job: Doc<"portraitJobs">, reason: string) {
  const queued = await move(ctx, job, "pending", { details: { reason } });
  await ctx.db.patch("portraitJobs", queued._id, { runAt: queued.updatedAt });
}

/** A manual retry: a failed (or cancelled) job goes back to the queue as a new attempt. */
export async function retryOne(ctx: MutationCtx, job: Doc<"portraitJobs"> | null, reason: string) {
  if (!job || (job.status !== "failed" && job.status !== "cancelled")) return "not_failed" as const;
  await requeue(ctx, job, reason);
  await kickDispatcher(ctx);
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
  if (!job) await createJob(ctx, story, { at: Date.now(), reason });
  else if (job.status === "stored" || job.status === "failed" || job.status === "cancelled") await requeue(ctx, job, reason);
  else return "busy" as const;
  await kickDispatcher(ctx);
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
  await kickDispatcher(ctx);
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
