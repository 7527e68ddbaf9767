/**
 * The portrait pipeline: one scheduled action per attempt, and the
 * compare-and-set mutations it moves the job through. Every transition is one
 * mutation and one event (see lib/jobs.ts); a stale or duplicate caller is
 * refused and stops.
 */
import { v } from "convex/values";
import { internal } from "./_generated/api";
import type { Doc, Id } from "./_generated/dataModel";
import { internalAction, internalMutation, type MutationCtx } from "./_generated/server";
import { queueConfig, recraftConfig } from "./lib/config";
import { runBackfillBatch, startBackfill } from "./lib/backfill";
import { backoffMs } from "./lib/backoff";
import { FOLD_BATCH, foldCounts } from "./lib/counts";
import { dispatch, lateStartMs, reconcileHolding, runDispatcher } from "./lib/dispatch";
import { fail, move, regenerateOne, retryBatch, retryOne } from "./lib/jobs";
import { logger } from "./lib/log";
import { downloadImage, requestGeneration } from "./lib/recraft";
import { promptLength, resolveRecraftRequest } from "./lib/recraftModels";
import { deadActionState } from "./lib/recovery";
import { describeError } from "./lib/redact";
import { errorCode, jobError, stepDetails, type JobError, type StepDetails } from "./validators";

const log = logger("portraits");

const attemptArgs = { jobId: v.id("portraitJobs"), attempt: v.number() };

/** The compare-and-set read: the job if it is in the state (and attempt) the caller expects, else null. */
async function currentJob(ctx: MutationCtx, jobId: Id<"portraitJobs">, status: "pending" | "requested" | "downloaded", attempt?: number) {
  const job = await ctx.db.get(jobId);
  const current = job && job.status === status && job.holdsSlot && (attempt === undefined || job.attempt === attempt);
  if (!current) {
    log.warn("portrait.refused", { jobId, attempt, expected: status, actual: job ? `${job.status}#${job.attempt}` : "missing" });
  }
  return current ? job : null;
}

/** Why a job must not be sent to Recraft, if it must not: checked before any request. */
function inputProblem(prompt: string | undefined): JobError | null {
  const config = recraftConfig();
  if (prompt === undefined) {
    return { step: "validate", code: "story_missing", message: "the story was deleted before its portrait was requested" };
  }
  if (!config.apiKey) return { step: "validate", code: "missing_api_key", message: "RECRAFT_API_KEY is not set; no request was made" };
  const request = resolveRecraftRequest(config);
  if (!request.ok) return { step: "validate", code: "bad_config", message: `${request.message}; no request was made` };
  if (prompt.trim() === "") return { step: "validate", code: "empty_prompt", message: "imageGenerationPrompt is blank; no request was made" };
  const { model } = request.value;
  const length = promptLength(model, prompt.trim());
  if (length > model.promptLimit.max) {
    const unit = model.promptLimit.unit === "bytes" ? "UTF-8 bytes" : "characters";
    const message = `imageGenerationPrompt is ${length} ${unit}; ${model.id} accepts at most ${model.promptLimit.max}`;
    return { step: "validate", code: "prompt_too_long", message };
  }
  return null;
}

/**
 * pending -> requested, after validating the input (pending -> failed when it is
 * not fit to send). Refused (null) unless the job is pending and holds a slot, so
 * a duplicate or late action stops here.
 */
export const claim = internalMutation({
  args: { jobId: v.id("portraitJobs") },
  returns: v.union(v.null(), v.object({ attempt: v.number(), prompt: v.string() })),
  handler: async (ctx, { jobId }) => {
    const job = await currentJob(ctx, jobId, "pending");
    if (!job) return null;
    const config = queueConfig();
    if (job.slotAt !== undefined && Date.now() > job.slotAt + lateStartMs(config)) {
      // Started too late for its slot to keep the provider's windows: back to the head of the queue.
      log.warn("portrait.late_start", { jobId, slotAt: job.slotAt, lateMs: Date.now() - job.slotAt });
      await ctx.db.patch(job._id, { holdsSlot: false, slotAt: undefined, dispatchedAt: undefined, scheduledFunctionId: undefined });
      await dispatch(ctx, Date.now(), { stored: false });
      return null;
    }
    const story = await ctx.db.get(job.storyId);
    const problem = inputProblem(story?.imageGenerationPrompt);
    if (problem) {
      await fail(ctx, job, problem);
      return null;
    }
    await move(ctx, job, "requested");
    return { attempt: job.attempt, prompt: story!.imageGenerationPrompt.trim() };
  },
});

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
      const stored = await ctx.db.get(jobId);
      // A retry of a call that did commit: the file is the story's portrait now.
      if (stored?.status === "stored" && stored.attempt === attempt && stored.storageId === storageId) return true;
      await deleteFileIfPresent(ctx, storageId); // recovery may have deleted it already
      return false;
    }
    const story = await ctx.db.get(job.storyId);
    if (!story) {
      await deleteFileIfPresent(ctx, storageId);
      await fail(ctx, job, { step: "finish", code: "story_missing", message: "the story was deleted before its portrait was stored" }, details);
      return false;
    }
    await move(ctx, job, "stored", { storageId, details });
    await ctx.db.patch(story._id, { storageId });
    if (story.storageId && story.storageId !== storageId) await deleteFileIfPresent(ctx, story.storageId);
    return true;
  },
});

/** A retried call whose first try committed: the job is already where the call would have moved it. */
async function alreadyAt(ctx: MutationCtx, jobId: Id<"portraitJobs">, attempt: number, status: "downloaded") {
  const job = await ctx.db.get(jobId);
  return !!job && job.status === status && job.attempt === attempt && job.holdsSlot;
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
  args: { ...attemptArgs, from: v.union(v.literal("requested"), v.literal("downloaded")), error: jobError, details: v.optional(stepDetails) },
  returns: v.boolean(),
  handler: async (ctx, { jobId, attempt, from, error, details }) => {
    const job = await currentJob(ctx, jobId, from, attempt);
    if (!job) return false;
    await fail(ctx, job, error, details);
    return true;
  },
});

const TRANSITION_ATTEMPTS = 5;
/** 100 ms doubling, with the workpool's jitter: the transitions' own retries (lib/backoff.ts). */
const TRANSITION_BACKOFF = { initialMs: 100, maxMs: 100 * 2 ** (TRANSITION_ATTEMPTS - 2), jitter: true };

/**
 * Runs a transition, retrying it when it throws (a write conflict that outlasted
 * Convex's own retries, a transient backend error). Transitions compare and
 * set, so a retry of one that did commit is refused or recognised, never
 * applied twice. After the last attempt the error reaches the action, and the
 * sweep recovers the job.
 */
async function transition<T>(name: string, jobId: Id<"portraitJobs">, run: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      if (attempt >= TRANSITION_ATTEMPTS) throw error;
      const delayMs = backoffMs(attempt, TRANSITION_BACKOFF);
      log.warn("portrait.transition_retry", { transition: name, jobId, attempt, delayMs: Math.round(delayMs), message: describeError(error) });
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

/**
 * One attempt of the pipeline for one job. Never throws for an expected
 * failure: every outcome is a recorded transition.
 */
export const generatePatientPortrait = internalAction({
  args: { jobId: v.id("portraitJobs") },
  returns: v.null(),
  handler: async (ctx, { jobId }) => {
    const claimed = await transition("claim", jobId, () => ctx.runMutation(internal.portraits.claim, { jobId }));
    if (!claimed) return null;
    const { attempt, prompt } = claimed;
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
    const details = {
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
    const downloaded = await transition("markDownloaded", jobId, () =>
      ctx.runMutation(internal.portraits.markDownloaded, { jobId, attempt, details }),
    );
    if (!downloaded) return null;

    const started = Date.now();
    let storageId: Id<"_storage">;
    try {
      storageId = await ctx.storage.store(image.value.blob);
    } catch (error) {
      await failed("downloaded", { step: "store", code: "storage_error", message: describeError(error) }, { durationMs: Date.now() - started });
      return null;
    }
    const stored = { durationMs: Date.now() - started, bytes: image.value.bytes, contentType: image.value.contentType };
    await transition("markStored", jobId, () => ctx.runMutation(internal.portraits.markStored, { jobId, attempt, storageId, details: stored }));
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
  handler: async (ctx, { jobId }) => retryOne(ctx, await ctx.db.get(jobId), "manual retry"),
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

/**
 * Recovery, run every minute by convex/crons.ts. Convex never retries an action
 * and marks one failed when its backend restarts, so a job holding a slot whose
 * action failed, was cancelled, finished without finishing the job, or no
 * longer exists, or that has held its slot past PORTRAIT_STALL_MS, fails as
 * `stalled` (and retries if attempts remain). A late action from that attempt
 * is refused by the compare-and-set transitions.
 */
export const sweep = internalMutation({
  args: {},
  returns: v.number(),
  handler: async (ctx) => {
    const { stallMs } = queueConfig();
    const now = Date.now();
    let swept = 0;
    const holders = await ctx.db
      .query("portraitJobs")
      .withIndex("by_slot", (q) => q.eq("holdsSlot", true))
      .collect();
    for (const job of holders) {
      const actionState = await deadActionState(ctx, job.scheduledFunctionId);
      const dead = actionState !== null;
      const heldMs = now - (job.dispatchedAt ?? job.updatedAt);
      if (!dead && heldMs <= stallMs) continue;
      const message = dead
        ? `the attempt's action is ${actionState} but the job is still ${job.status}`
        : `in flight for ${heldMs} ms, longer than PORTRAIT_STALL_MS (${stallMs} ms)`;
      if (job.status === "downloaded") await deleteOrphanedPortrait(ctx, job, holders);
      await fail(ctx, job, { step: "recovery", code: "stalled", message });
      swept++;
    }
    await reconcileHolding(ctx, holders.length - swept);
    // Fold every count row, of every kind, so the counts read is one document at rest.
    for (const kind of ["portrait", "story"] as const) while ((await foldCounts(ctx, kind)) === FOLD_BATCH);
    await dispatch(ctx);
    return swept;
  },
});
