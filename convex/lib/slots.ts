/**
 * One home for the queue's state about a job: its slot (`job.slot`,
 * validators.ts jobSlot). Only this module changes it, and every change
 * patches the job and appends a `portraitSlotEvents` row (the slot as it
 * became) in the same transaction:
 *
 *   none ──granted (the loop)──> held ──deferred, claimed (the claim)──> held
 *   held ──released (the job leaves requested/downloaded, or stops before its claim)──> none
 *
 * A release also leaves the loop a notice (`portraitReleases`: the time held,
 * a 429) and wakes it. The loop's `holding` tally (lib/dispatch.ts) is derived
 * from these changes alone: its own grants less the notices it has read. It
 * keeps a tally rather than reading the holders because a read of the held
 * range would conflict with every transition of every job in flight.
 */
import type { Doc, Id } from "../_generated/dataModel";
import type { MutationCtx } from "../_generated/server";
import type { HeldSlot, JobError, JobSlot, SlotChange } from "../validators";
import { kickDispatcher, pauseStarts } from "./dispatch";

/** The slot a job must hold for the change, or an error naming the bug. */
function held(job: Doc<"portraitJobs">, change: SlotChange): HeldSlot {
  if (job.slot.kind !== "held") throw new Error(`portrait job ${job._id}: ${change} a slot it does not hold`);
  return job.slot;
}

/** Patches the job's slot and records the change; returns the job as it became. */
async function changeSlot(
  ctx: MutationCtx,
  job: Doc<"portraitJobs">,
  change: SlotChange,
  slot: JobSlot,
  at = Date.now(),
  heldMs?: number,
): Promise<Doc<"portraitJobs">> {
  await ctx.db.patch("portraitJobs", job._id, { slot });
  await ctx.db.insert("portraitSlotEvents", { jobId: job._id, attempt: job.attempt, change, at, slot, heldMs });
  return { ...job, slot };
}

/** The loop gives a pending job a slot: its action is scheduled for `plannedAt`. */
export async function grantSlot(
  ctx: MutationCtx,
  job: Doc<"portraitJobs">,
  { plannedAt, scheduledFunctionId }: { plannedAt: number; scheduledFunctionId: Id<"_scheduled_functions"> },
) {
  if (job.slot.kind !== "none") throw new Error(`portrait job ${job._id}: granted a slot it already holds`);
  const now = Date.now();
  await changeSlot(ctx, job, "granted", { kind: "held", grantedAt: now, plannedAt, scheduledFunctionId }, now);
}

/** A claim gives its turn back: the job keeps its slot, its action rescheduled at the next free start. */
export async function deferSlot(
  ctx: MutationCtx,
  job: Doc<"portraitJobs">,
  { plannedAt, scheduledFunctionId }: { plannedAt: number; scheduledFunctionId: Id<"_scheduled_functions"> },
) {
  await changeSlot(ctx, job, "deferred", { ...held(job, "deferred"), plannedAt, scheduledFunctionId });
}

/** The claim reserved the request's real start (and names itself, so its own retry is recognised); returns the job as it became. */
export async function claimSlot(
  ctx: MutationCtx,
  job: Doc<"portraitJobs">,
  { startedAt, claimId }: { startedAt: number; claimId?: string },
) {
  return changeSlot(ctx, job, "claimed", { ...held(job, "claimed"), startedAt, ...(claimId ? { claimId } : {}) });
}

/**
 * The job gives up its slot (called by its move out of flight, lib/jobs.ts,
 * with the job as it was): the slot is `none` again, and the loop gets a
 * notice of its own (so it counts every freed slot exactly, and no two
 * releases write the same index range) and a run soon. A 429 also pauses the
 * start log until its Retry-After, so starts already planned wait for it too.
 */
export async function releaseSlot(ctx: MutationCtx, job: Doc<"portraitJobs">, { stored, error }: { stored: boolean; error?: JobError }) {
  const slot = held(job, "released");
  const now = Date.now();
  // Held since the request's real start (or the planned one); a job released before its claim reports none.
  const since = job.status !== "pending" ? (slot.startedAt ?? slot.plannedAt) : undefined;
  const heldMs = since !== undefined ? now - since : undefined;
  await changeSlot(ctx, job, "released", { kind: "none" }, now, heldMs);
  const rateLimitedUntil = error?.code === "rate_limited" ? now + (error.retryAfterMs ?? 0) : undefined;
  await ctx.db.insert("portraitReleases", { heldMs, stored, rateLimitedUntil });
  await kickDispatcher(ctx);
  if (rateLimitedUntil !== undefined) await pauseStarts(ctx, rateLimitedUntil);
}
