/**
 * The portrait pipeline: one scheduled action per attempt, and the
 * compare-and-set mutations it moves the job through. Every transition is one
 * mutation and one event (see lib/jobs.ts); a stale or duplicate caller is
 * refused and stops.
 */
import { v } from "convex/values";
import { internal } from "./_generated/api";
import type { Doc, Id } from "./_generated/dataModel";
import { internalAction, internalMutation, internalQuery, type MutationCtx } from "./_generated/server";
import { queueConfig, recraftConfig, stallBackstopMs, tinifyConfig } from "./lib/config";
import { runBackfillBatch, startBackfill } from "./lib/backfill";
import { FOLD_BATCH, foldCounts, type CountKind } from "./lib/counts";
import { kickDispatcher, reconcileHolding, reserveRequestStart, runDispatcher } from "./lib/dispatch";
import { regenerateOne, retryBatch, retryOne } from "./lib/commands";
import { current as currentJob, fail, move } from "./lib/jobs";
import { maxStartWaitMs } from "./lib/pacing";
import { logger } from "./lib/log";
import { downloadImage, requestGeneration } from "./lib/recraft";
import { promptLength, resolveRecraftRequest } from "./lib/recraftModels";
import { deadActionState } from "./lib/recovery";
import { claimSlot, deferSlot } from "./lib/slots";
import { compressImage } from "./lib/tinify";
import { describeError } from "./lib/redact";
import { retryTransition } from "./lib/transitionRetry";
import { errorCode, jobError, stepDetails, storyDocument, type JobError, type StepDetails } from "./validators";
import voice from "./voice";

const log = logger("portraits");

const attemptArgs = { jobId: v.id("portraitJobs"), attempt: v.number() };

/** Why a job must not be sent to Recraft, if it must not: checked before any request. */
function inputProblem(prompt: string | undefined, voiceError: string | undefined): JobError | null {
  const config = recraftConfig();
  if (prompt === undefined) {
    return { step: "validate", code: "story_missing", message: "the story was deleted before its portrait was requested" };
  }
  if (!config.apiKey) return { step: "validate", code: "missing_api_key", message: "RECRAFT_API_KEY is not set; no request was made" };
  const request = resolveRecraftRequest(config);
  if (!request.ok) return { step: "validate", code: "bad_config", message: `${request.message}; no request was made` };
  if (voiceError !== undefined)
    return { step: "validate", code: "bad_config", message: `voice.portraitPrompt threw: ${voiceError}; no request was made` };
  if (prompt.trim() === "")
    return { step: "validate", code: "empty_prompt", message: "imageGenerationPrompt is blank; no request was made" };
  const { model } = request.value;
  const length = promptLength(model, prompt.trim());
  if (length > model.promptLimit.max) {
    const unit = model.promptLimit.unit === "bytes" ? "UTF-8 bytes" : "characters";
    const message = `imageGenerationPrompt is ${length} ${unit}; ${model.id} accepts at most ${model.promptLimit.max}`;
    return { step: "validate", code: "prompt_too_long", message };
  }
  return null;
}

/** The story a job paints, for the voice (convex/voice.ts) to turn into Recraft's prompt before the claim. */
export const storyOfJob = internalQuery({
  args: { jobId: v.id("portraitJobs") },
  returns: v.union(v.null(), storyDocument),
  handler: async (ctx, { jobId }) => {
    const job = await ctx.db.get("portraitJobs", jobId);
    return job && (await ctx.db.get("stories", job.storyId));
  },
});

/** Recraft's prompt for a story, from the voice: the prompt, or why the voice failed. */
function portraitPromptOf(story: Doc<"stories">): { prompt: string } | { voiceError: string } {
  try {
    const prompt = voice.portraitPrompt(story);
    if (typeof prompt !== "string") return { voiceError: `returned ${typeof prompt}, not a string` };
    return { prompt };
  } catch (error) {
    return { voiceError: describeError(error) };
  }
}

/**
 * pending -> requested, after validating the input (pending -> failed when it is
 * not fit to send), with the request's real start reserved in the start log
 * (lib/dispatch.ts): the action waits until `startAt`, then sends. However
 * late the scheduler ran the action, the claim takes the next free start; when
 * that is more than `maxStartWaitMs` away, the job keeps its slot and its action
 * is rescheduled at that start instead (null). `prompt` is what the voice made
 * of the story (the stored imageGenerationPrompt when absent); `voiceError`
 * says why the voice made none. Refused (null) unless the job is pending and
 * holds a slot, so a duplicate or late action stops here.
 */
export const claim = internalMutation({
  args: {
    jobId: v.id("portraitJobs"),
    claimId: v.optional(v.string()),
    prompt: v.optional(v.string()),
    voiceError: v.optional(v.string()),
  },
  returns: v.union(v.null(), v.object({ attempt: v.number(), prompt: v.string(), startAt: v.number() })),
  handler: async (ctx, { jobId, claimId, prompt: voicePrompt, voiceError }) => {
    const again = claimId ? await ownClaim(ctx, jobId, claimId, voicePrompt) : null;
    if (again) return again; // a retry of this action's claim that did commit (its reply was lost)
    const job = await currentJob(ctx, jobId, "pending");
    if (!job) return null;
    const story = await ctx.db.get("stories", job.storyId);
    const prompt = story ? (voicePrompt ?? story.imageGenerationPrompt) : undefined;
    const problem = inputProblem(prompt, voiceError);
    if (problem) {
      await fail(ctx, job, problem);
      return null;
    }
    const { start, reserved } = await reserveRequestStart(ctx, maxStartWaitMs(queueConfig()));
    if (!reserved) {
      const scheduledFunctionId = await ctx.scheduler.runAt(start, internal.portraits.generatePatientPortrait, { jobId });
      await deferSlot(ctx, job, { plannedAt: start, scheduledFunctionId });
      log.warn("portrait.start_deferred", {
        jobId,
        slotAt: job.slot.kind === "held" ? job.slot.plannedAt : null,
        startAt: start,
        waitMs: start - Date.now(),
      });
      return null;
    }
    await move(ctx, await claimSlot(ctx, job, { startedAt: start, claimId }), "requested");
    return { attempt: job.attempt, prompt: prompt!.trim(), startAt: start };
  },
});

/** The claim this action already made, if the job is still in it (same claim id, still requested). */
async function ownClaim(ctx: MutationCtx, jobId: Id<"portraitJobs">, claimId: string, voicePrompt: string | undefined) {
  const job = await ctx.db.get("portraitJobs", jobId);
  const slot = job?.slot.kind === "held" ? job.slot : null;
  if (!job || !slot || job.status !== "requested" || slot.claimId !== claimId || slot.startedAt === undefined) return null;
  const story = await ctx.db.get("stories", job.storyId);
  return story ? { attempt: job.attempt, prompt: (voicePrompt ?? story.imageGenerationPrompt).trim(), startAt: slot.startedAt } : null;
}

/** requested -> downloaded. */
export const markDownloaded = internalMutation({
  args: { ...attemptArgs, details: stepDetails },
  returns: v.boolean(),
  handler: async (ctx, { jobId, attempt, details }) => {
    const job = await currentJob(ctx, jobId, "requested", attempt);
    if (!job) return alreadyAt(ctx, jobId, attempt, "downloaded");
    await move(ctx, job, "downloaded", { details });
    return true;
  },
});

/**
 * downloaded -> stored, patching the story in the same transaction and deleting
 * the portrait it replaces (a regeneration). A refused caller's file is deleted
 * here, and so is the file of a story that vanished.
 */
export const markStored = internalMutation({
  args: { ...attemptArgs, storageId: v.id("_storage"), details: stepDetails },
  returns: v.boolean(),
  handler: async (ctx, { jobId, attempt, storageId, details }) => {
    const job = await currentJob(ctx, jobId, "downloaded", attempt);
    if (!job) {
      const stored = await ctx.db.get("portraitJobs", jobId);
      // A retry of a call that did commit: the file is the story's portrait now.
      if (stored?.status === "stored" && stored.attempt === attempt && stored.storageId === storageId) return true;
      await deleteFileIfPresent(ctx, storageId); // recovery may have deleted it already
      return false;
    }
    const story = await ctx.db.get("stories", job.storyId);
    if (!story) {
      await deleteFileIfPresent(ctx, storageId);
      await fail(
        ctx,
        job,
        { step: "finish", code: "story_missing", message: "the story was deleted before its portrait was stored" },
        details,
      );
      return false;
    }
    await move(ctx, job, "stored", { storageId, details });
    await ctx.db.patch("stories", story._id, { storageId });
    if (story.storageId && story.storageId !== storageId) await deleteFileIfPresent(ctx, story.storageId);
    return true;
  },
});

/** A retried call whose first try committed: the job is already where the call would have moved it. */
async function alreadyAt(ctx: MutationCtx, jobId: Id<"portraitJobs">, attempt: number, status: "downloaded") {
  const job = await ctx.db.get("portraitJobs", jobId);
  return !!job && job.status === status && job.attempt === attempt && job.slot.kind === "held";
}

async function deleteFileIfPresent(ctx: MutationCtx, storageId: Id<"_storage">) {
  if (await ctx.db.system.get(storageId)) await ctx.storage.delete(storageId);
}

/** Convex storage records a checksum as hex or base64; the pipeline keeps hex. */
function sameChecksum(recorded: string, hex: string): boolean {
  const bytes = hex.match(/../g)?.map((pair) => parseInt(pair, 16)) ?? [];
  return recorded === hex || recorded === btoa(String.fromCharCode(...bytes));
}

const CLOCK_SLACK_MS = 1_000;
const MAX_FILES_SCANNED = 2_000;
/** Orphan checks (each up to MAX_FILES_SCANNED files) one sweep makes; a sweep scheduled at once takes the rest. */
const ORPHAN_CHECKS_PER_SWEEP = 2;

/**
 * Deletes the file of an attempt whose action died after storing its image but
 * before saying so: created since the download, with the downloaded image's
 * checksum and size, and neither a story's portrait nor the image of another
 * job still in flight.
 */
async function deleteOrphanedPortrait(ctx: MutationCtx, job: Doc<"portraitJobs">, holders: Doc<"portraitJobs">[]) {
  const download = job.download;
  if (!download?.sha256) return;
  if (holders.some((other) => other._id !== job._id && other.download?.sha256 === download.sha256)) return;
  const files = await ctx.db.system
    .query("_storage")
    .withIndex("by_creation_time", (q) => q.gte("_creationTime", download.at - CLOCK_SLACK_MS))
    .take(MAX_FILES_SCANNED);
  for (const file of files) {
    if (file.size !== download.bytes || !sameChecksum(file.sha256, download.sha256)) continue;
    const owner = await ctx.db
      .query("stories")
      .withIndex("by_storageId", (q) => q.eq("storageId", file._id))
      .first();
    if (!owner) await ctx.storage.delete(file._id);
  }
}

/** requested|downloaded -> failed (then an automatic retry, when configured and transient). */
export const markFailed = internalMutation({
  args: {
    ...attemptArgs,
    from: v.union(v.literal("requested"), v.literal("downloaded")),
    error: jobError,
    details: v.optional(stepDetails),
  },
  returns: v.boolean(),
  handler: async (ctx, { jobId, attempt, from, error, details }) => {
    const job = await currentJob(ctx, jobId, from, attempt);
    if (!job) return false;
    await fail(ctx, job, error, details);
    return true;
  },
});

/** A transition called from the action, retried when it throws (lib/transitionRetry.ts). */
const transition = <T>(name: string, jobId: Id<"portraitJobs">, run: () => Promise<T>) =>
  retryTransition("portrait.transition_retry", { transition: name, jobId }, run);

/**
 * One attempt of the pipeline for one job. Never throws for an expected
 * failure: every outcome is a recorded transition.
 */
export const generatePatientPortrait = internalAction({
  args: { jobId: v.id("portraitJobs") },
  returns: v.null(),
  handler: async (ctx, { jobId }) => {
    // The voice runs here, in the action (it may be random); the claim checks what it made.
    const story = await ctx.runQuery(internal.portraits.storyOfJob, { jobId });
    const voiced = story ? portraitPromptOf(story) : {};
    const claimId = crypto.randomUUID();
    const claimed = await transition("claim", jobId, () => ctx.runMutation(internal.portraits.claim, { jobId, claimId, ...voiced }));
    if (!claimed) return null;
    const { attempt, prompt, startAt } = claimed;
    if (startAt > Date.now()) await new Promise((resolve) => setTimeout(resolve, startAt - Date.now()));
    const failed = (from: "requested" | "downloaded", error: JobError, details?: StepDetails) =>
      transition("markFailed", jobId, () => ctx.runMutation(internal.portraits.markFailed, { jobId, attempt, from, error, details }));

    const config = recraftConfig();
    const request = resolveRecraftRequest(config); // the claim checked it and the key; a setting changed since fails here
    if (!request.ok) {
      await failed("requested", { step: "validate", code: "bad_config", message: `${request.message}; no request was made` });
      return null;
    }
    const generated = await requestGeneration(config, request.value, config.apiKey!, prompt);
    if (!generated.ok) {
      await failed("requested", generated.error, generated.details);
      return null;
    }
    const image = await downloadImage(config, generated.value.url);
    // The download's event also keeps what the request told us, for the auditor.
    const details: StepDetails = {
      ...image.details,
      recraftRequestId: generated.details.recraftRequestId,
      credits: generated.details.credits,
      requestMs: generated.details.durationMs,
      downloadMs: image.details.durationMs,
      durationMs: (generated.details.durationMs ?? 0) + (image.details.durationMs ?? 0),
    };
    if (!image.ok) {
      await failed("requested", image.error, details);
      return null;
    }
    // Compression (TINIFY_API_KEY) never fails the job: the event says what it did, and a failure stores the original.
    const compression = await compressImage(tinifyConfig(), image.value);
    const toStore = compression.image ?? image.value;
    details.compression = compression.details;
    details.durationMs = (details.durationMs ?? 0) + (compression.details.durationMs ?? 0);
    // What recovery looks for if the action dies after storing: the file about to be stored.
    Object.assign(details, { bytes: toStore.bytes, sha256: toStore.sha256, contentType: toStore.contentType });
    const downloaded = await transition("markDownloaded", jobId, () =>
      ctx.runMutation(internal.portraits.markDownloaded, { jobId, attempt, details }),
    );
    if (!downloaded) return null;

    const started = Date.now();
    let storageId: Id<"_storage">;
    try {
      storageId = await ctx.storage.store(toStore.blob);
    } catch (error) {
      await failed(
        "downloaded",
        { step: "store", code: "storage_error", message: describeError(error) },
        { durationMs: Date.now() - started },
      );
      return null;
    }
    const stored = { durationMs: Date.now() - started, bytes: toStore.bytes, contentType: toStore.contentType };
    await transition("markStored", jobId, () =>
      ctx.runMutation(internal.portraits.markStored, { jobId, attempt, storageId, details: stored }),
    );
    return null;
  },
});

/** The dispatcher loop (lib/dispatch.ts): run by the wakeups transitions schedule. Returns how many jobs it dispatched. */
export const dispatchQueue = internalMutation({
  args: { at: v.optional(v.number()) },
  returns: v.number(),
  handler: async (ctx, { at }) => runDispatcher(ctx, at),
});

/** An admin retry of one failed job: a new attempt through the same dispatcher. */
export const retryJob = internalMutation({
  args: { jobId: v.id("portraitJobs") },
  returns: v.union(v.literal("queued"), v.literal("not_failed")),
  handler: async (ctx, { jobId }) => retryOne(ctx, await ctx.db.get("portraitJobs", jobId), "manual retry"),
});

/** Retries every failed job with the given error code, in batches of 100. */
export const retryFailedByCode = internalMutation({
  args: { code: errorCode },
  returns: v.number(),
  handler: async (ctx, { code }) => retryBatch(ctx, code, `bulk retry of ${code}`),
});

/** Starts a backfill run (lib/backfill.ts): a job for every story with neither a portrait nor a job. */
export const backfill = internalMutation({
  args: {},
  returns: v.id("portraitBackfills"),
  handler: async (ctx) => startBackfill(ctx),
});

/** One batch of a backfill run; schedules the next until the scan is done. */
export const backfillBatch = internalMutation({
  args: { backfillId: v.id("portraitBackfills") },
  returns: v.number(),
  handler: async (ctx, { backfillId }) => runBackfillBatch(ctx, backfillId),
});

/**
 * A new attempt at a story's portrait (lib/jobs.ts regenerateOne): the story
 * keeps its current portrait until the new one is stored.
 */
export const regenerate = internalMutation({
  args: { storyId: v.id("stories") },
  returns: v.union(v.literal("queued"), v.literal("busy"), v.literal("story_missing")),
  handler: async (ctx, { storyId }) => regenerateOne(ctx, storyId, "regenerate"),
});

const SWEEP_BATCH = 500;

/**
 * Recovery, run every minute by convex/crons.ts. Convex never retries an action
 * and marks one failed when its backend restarts, so a job holding a slot whose
 * action failed, was cancelled, finished without finishing the job, or no
 * longer exists fails as `stalled` (and retries if attempts remain), as
 * workpool's recovery does. Time is only a backstop, counted from the
 * request's real start (a job waiting for its slot, a Retry-After or a busy
 * scheduler is never timed out) and never below what a live attempt may take
 * (lib/config.ts stallBackstopMs). A late action from that attempt is refused
 * by the compare-and-set transitions.
 *
 * Bounded: at most SWEEP_BATCH holders (more than the concurrency ceiling
 * allows), ORPHAN_CHECKS_PER_SWEEP dead `downloaded` jobs (the rest wait for
 * a sweep it schedules at once) and one fold batch per kind, the rest folded
 * by follow-up runs of `foldCountRows`.
 */
export const sweep = internalMutation({
  args: {},
  returns: v.number(),
  handler: async (ctx) => {
    const stallMs = stallBackstopMs();
    const now = Date.now();
    let swept = 0;
    let orphanChecks = 0;
    let orphanChecksLeft = false;
    const holders = await ctx.db
      .query("portraitJobs")
      .withIndex("by_slot", (q) => q.eq("slot.kind", "held"))
      .take(SWEEP_BATCH);
    for (const job of holders) {
      if (job.slot.kind !== "held") continue; // for the type: the index holds only these
      const actionState = await deadActionState(ctx, job.slot.scheduledFunctionId);
      const dead = actionState !== null;
      const { startedAt } = job.slot;
      const heldMs = job.status === "pending" || startedAt === undefined ? 0 : now - startedAt;
      if (!dead && heldMs <= stallMs) continue;
      const message = dead
        ? `the attempt's action is ${actionState} but the job is still ${job.status}`
        : `in flight for ${heldMs} ms since its request started, longer than PORTRAIT_STALL_MS (${stallMs} ms)`;
      if (job.status === "downloaded") {
        if (orphanChecks === ORPHAN_CHECKS_PER_SWEEP) {
          orphanChecksLeft = true;
          continue;
        }
        orphanChecks++;
        await deleteOrphanedPortrait(ctx, job, holders);
      }
      await fail(ctx, job, { step: "recovery", code: "stalled", message });
      swept++;
    }
    if (holders.length < SWEEP_BATCH) await reconcileHolding(ctx, holders.length - swept);
    if (orphanChecksLeft) await ctx.scheduler.runAfter(0, internal.portraits.sweep, {});
    for (const kind of ["portrait", "story"] as const) {
      if ((await foldCounts(ctx, kind)) === FOLD_BATCH) await ctx.scheduler.runAfter(0, internal.portraits.foldCountRows, { kind });
    }
    await kickDispatcher(ctx);
    return swept;
  },
});

/** Folds one batch of count rows of `kind` into the totals, and schedules the next while rows remain. */
export const foldCountRows = internalMutation({
  args: { kind: v.union(v.literal("portrait"), v.literal("story")) },
  returns: v.number(),
  handler: async (ctx, { kind }: { kind: CountKind }) => {
    const folded = await foldCounts(ctx, kind);
    if (folded === FOLD_BATCH) await ctx.scheduler.runAfter(0, internal.portraits.foldCountRows, { kind });
    return folded;
  },
});
