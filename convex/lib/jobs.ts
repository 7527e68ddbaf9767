/**
 * The portrait job state machine (lib/machine.ts's skeleton). Every function
 * here runs inside a mutation: a move patches the job, appends its event,
 * adjusts the status counts and, when the job leaves flight, releases its
 * slot (lib/slots.ts), all in the same transaction, so the event log is the
 * truth and the job row its projection. What an operator triggers (retry,
 * regenerate, cancel) is lib/commands.ts.
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
import type { JobError, JobStatus, StepDetails } from "../validators";
import { queueConfig } from "./config";
import { backoffMs } from "./backoff";
import { adjustCounts, readCounts as readKindCounts } from "./counts";
import { kickDispatcher } from "./dispatch";
import { defineMachine } from "./machine";
import { redact } from "./redact";
import { releaseSlot } from "./slots";

export const STATUSES: JobStatus[] = ["pending", "requested", "downloaded", "stored", "failed", "cancelled"];

const NEXT: Record<JobStatus, JobStatus[]> = {
  pending: ["requested", "failed", "cancelled"],
  requested: ["downloaded", "failed", "cancelled"],
  downloaded: ["stored", "failed"],
  stored: ["pending"],
  failed: ["pending", "cancelled"],
  cancelled: ["pending"],
};

/** The statuses in which a job keeps its slot; a move to any other releases it. */
const KEEPS_SLOT = new Set<JobStatus>(["requested", "downloaded"]);

const TRANSIENT_CODES = new Set(["rate_limited", "timeout", "network_error", "stalled"]);

type Change = { error?: JobError; details?: StepDetails; storageId?: Id<"_storage"> };

const machine = defineMachine<"portraitJobs", JobError, StepDetails, Change>({
  table: "portraitJobs",
  noun: "portrait job",
  log: { source: "jobs", prefix: "portrait", idField: "jobId" },
  next: NEXT,
  // A job's action may move it only while the job holds the slot it was started for.
  holds: (job) => job.slot.kind === "held",
  sanitize: (error) => ({ ...error, message: redact(error.message) }),
  patch: (_job, { to, at, details }, change) => ({
    ...(to === "stored" ? { storageId: change.storageId } : {}),
    download: to === "downloaded" ? { sha256: details?.sha256 ?? "", bytes: details?.bytes ?? 0, at } : undefined,
  }),
  record: async (ctx, job, { from, to, attempt, at, error, details }) => {
    await ctx.db.insert("portraitJobEvents", { jobId: job._id, storyId: job.storyId, attempt, from, to, at, error, details });
    await adjustCounts(ctx, "portrait", job._id, from === null ? { [to]: 1 } : { [from]: -1, [to]: 1 });
    if (job.slot.kind === "held" && !KEEPS_SLOT.has(to)) await releaseSlot(ctx, job, { stored: to === "stored", error });
  },
  logFields: (job, { from, at, error, details }) => ({
    storyId: job.storyId,
    durationMs: details?.durationMs ?? (from === null ? 0 : at - job.updatedAt),
    ...(error ? { step: error.step, message: error.message } : {}),
  }),
  retry: {
    isTransient: (error) => TRANSIENT_CODES.has(error.code) || (error.code === "http_error" && (error.httpStatus ?? 0) >= 500),
    maxAttempts: () => queueConfig().maxAttempts,
    // Exponential backoff with jitter (the workpool's shape), never sooner than Retry-After.
    delayMs: (attempt, error) => {
      const { retryInitialMs, retryMaxMs } = queueConfig();
      return backoffMs(attempt, { initialMs: retryInitialMs, maxMs: retryMaxMs, jitter: true }, error.retryAfterMs);
    },
    // A pending job waits in the queue from `runAt`; the loop gives it a slot then.
    requeue: async (ctx, job, runAt) => {
      await ctx.db.patch("portraitJobs", job._id, { runAt });
      await kickDispatcher(ctx, runAt);
    },
  },
});

export const { canMove, current, move, requeue, fail } = machine;

/**
 * Jobs per status, exact at every instant (lib/counts.ts explains why), or
 * marked `approximate` when too many changes wait to be folded to sum them in one read.
 */
export async function readCounts(ctx: QueryCtx): Promise<Record<JobStatus, number> & { approximate?: true }> {
  const { counts, exact } = await readKindCounts(ctx, "portrait");
  const byStatus = Object.fromEntries(STATUSES.map((status) => [status, counts[status] ?? 0])) as Record<JobStatus, number>;
  return exact ? byStatus : { ...byStatus, approximate: true };
}

/**
 * The admin search's text: title, patient name and number, plus each word's
 * letter-and-digit parts, so "0470" finds "P-0470" whichever way the search
 * engine splits words.
 */
function searchTextOf(story: Pick<Doc<"stories">, "title" | "patientName" | "patientNumber">): string {
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
  const jobId = await ctx.db.insert("portraitJobs", {
    storyId: story._id,
    searchText: searchTextOf(story),
    status: "pending",
    attempt: 1,
    createdAt: now,
    updatedAt: now,
    runAt: now,
    slot: { kind: "none" },
  });
  await machine.created(ctx, (await ctx.db.get("portraitJobs", jobId))!, reason ? { reason } : undefined);
  return jobId;
}
