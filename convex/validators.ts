import { v, type Infer } from "convex/values";

export const jobStatus = v.union(
  v.literal("pending"),
  v.literal("requested"),
  v.literal("downloaded"),
  v.literal("stored"),
  v.literal("failed"),
  // An operator's stop (issue 16): a pending or requested job cancelled, or a failed one discarded. Events are kept.
  v.literal("cancelled"),
);
export type JobStatus = Infer<typeof jobStatus>;

export const errorCode = v.union(
  v.literal("missing_api_key"),
  v.literal("empty_prompt"),
  v.literal("prompt_too_long"),
  v.literal("unauthorized"),
  v.literal("rate_limited"),
  v.literal("http_error"),
  v.literal("timeout"),
  v.literal("network_error"),
  v.literal("bad_response"),
  v.literal("disallowed_url"),
  v.literal("bad_content_type"),
  v.literal("too_large"),
  v.literal("storage_error"),
  v.literal("story_missing"),
  v.literal("stalled"),
  v.literal("bad_config"),
);
export type ErrorCode = Infer<typeof errorCode>;

export const pipelineStep = v.union(
  v.literal("validate"),
  v.literal("request"),
  v.literal("download"),
  v.literal("store"),
  v.literal("finish"),
  v.literal("recovery"),
);
export type PipelineStep = Infer<typeof pipelineStep>;

export const jobError = v.object({
  step: pipelineStep,
  code: errorCode,
  message: v.string(),
  httpStatus: v.optional(v.number()),
  retryAfterMs: v.optional(v.number()),
});
export type JobError = Infer<typeof jobError>;

/**
 * What compression (TinyPNG, lib/tinify.ts) did to the downloaded image before
 * it was stored: compressed (sizes before and after), skipped (no key) or
 * failed (why; the original is stored). It never fails the job.
 */
export const compressionDetails = v.object({
  outcome: v.union(v.literal("compressed"), v.literal("skipped"), v.literal("failed")),
  originalBytes: v.number(),
  compressedBytes: v.optional(v.number()),
  width: v.optional(v.number()),
  height: v.optional(v.number()),
  reason: v.optional(v.string()),
  httpStatus: v.optional(v.number()),
  durationMs: v.optional(v.number()),
  // TinyPNG's Compression-Count header: the month's compressions on the key.
  compressionCount: v.optional(v.number()),
});
export type CompressionDetails = Infer<typeof compressionDetails>;

/**
 * The dispatcher slot a portrait job holds: the one home of the queue's state
 * about a job (lib/slots.ts changes it, with an event each time). `held` from
 * the loop's grant until the job leaves `requested`/`downloaded` (or is
 * refused before claiming).
 */
export const jobSlot = v.union(
  v.object({ kind: v.literal("none") }),
  v.object({
    kind: v.literal("held"),
    // When the loop granted it.
    grantedAt: v.number(),
    // The start the loop (or a deferring claim) planned: the action is scheduled then.
    plannedAt: v.number(),
    // The action responsible for the job, for recovery.
    scheduledFunctionId: v.id("_scheduled_functions"),
    // The request's real start, reserved by the claim; the sweep's time backstop counts from it.
    startedAt: v.optional(v.number()),
    // The claiming action's own id, so a retried claim whose first try committed is recognised.
    claimId: v.optional(v.string()),
  }),
);
export type JobSlot = Infer<typeof jobSlot>;
export type HeldSlot = Extract<JobSlot, { kind: "held" }>;

/** Why a job's slot changed: the loop granted it, a claim deferred or claimed it, the job let it go. */
export const slotChange = v.union(v.literal("granted"), v.literal("deferred"), v.literal("claimed"), v.literal("released"));
export type SlotChange = Infer<typeof slotChange>;

/** What an auditor needs to know about the step that led to a transition. */
export const stepDetails = v.object({
  durationMs: v.optional(v.number()),
  requestMs: v.optional(v.number()),
  downloadMs: v.optional(v.number()),
  httpStatus: v.optional(v.number()),
  recraftRequestId: v.optional(v.string()),
  credits: v.optional(v.number()),
  bytes: v.optional(v.number()),
  contentType: v.optional(v.string()),
  sha256: v.optional(v.string()),
  imageHost: v.optional(v.string()),
  retryAt: v.optional(v.number()),
  reason: v.optional(v.string()),
  // On `downloaded`: bytes, contentType and sha256 are the image to store (compressed or not).
  compression: v.optional(compressionDetails),
});
export type StepDetails = Infer<typeof stepDetails>;

/** One transition of a portrait job. */
export const transitionFields = {
  attempt: v.number(),
  from: v.union(jobStatus, v.null()),
  to: jobStatus,
  at: v.number(),
  error: v.optional(jobError),
  details: v.optional(stepDetails),
};

/** A transition as the append-only event log keeps it. */
export const eventFields = { jobId: v.id("portraitJobs"), storyId: v.id("stories"), ...transitionFields };

export const difficulty = v.union(v.literal("easy"), v.literal("medium"), v.literal("hard"));

export const chapter = v.object({ text: v.string(), difficulty });

/** A case file as written: everything but the slug, which is derived from the title (lib/caseFile.ts slugify). */
export const caseFileFields = {
  title: v.string(),
  introduction: v.string(),
  chapters: v.array(chapter),
  patientName: v.string(),
  patientNumber: v.string(),
  story: v.string(),
  imageGenerationPrompt: v.string(),
};
/** A story as the game stores it (its `stories` documents). */
export const storyFields = { ...caseFileFields, slug: v.string() };
export const storyInput = v.object(caseFileFields);
/** A `stories` document (convex/tables.ts). */
export const storyDocument = v.object({
  _id: v.id("stories"),
  _creationTime: v.number(),
  ...storyFields,
  createdAt: v.number(),
  storageId: v.optional(v.id("_storage")),
});
export type StoryInput = Infer<typeof storyInput>;

/** A story run: one requested case file, retried on the same row (attempt + 1). */
export const storyRunStatus = v.union(
  v.literal("pending"),
  v.literal("writing"),
  v.literal("repairing"),
  v.literal("inserted"),
  v.literal("failed"),
);
export type StoryRunStatus = Infer<typeof storyRunStatus>;

/** Stable codes of a failed story run, for filters and alerts. */
export const storyErrorCode = v.union(
  v.literal("missing_api_key"),
  v.literal("unauthorized"),
  v.literal("rate_limited"),
  v.literal("overloaded"),
  v.literal("http_error"),
  v.literal("timeout"),
  v.literal("network_error"),
  v.literal("refusal"),
  v.literal("max_tokens"),
  v.literal("invalid_output"),
  v.literal("plan_mismatch"),
  v.literal("untypeable_chapter"),
  v.literal("title_taken"),
  v.literal("insert_failed"),
  v.literal("stalled"),
);
export type StoryErrorCode = Infer<typeof storyErrorCode>;

export const storyStage = v.union(
  v.literal("config"),
  v.literal("request"),
  v.literal("response"),
  v.literal("validation"),
  v.literal("repair"),
  v.literal("insert"),
  v.literal("recovery"),
);
export type StoryStage = Infer<typeof storyStage>;

export const storyRunError = v.object({
  stage: storyStage,
  code: storyErrorCode,
  message: v.string(),
  httpStatus: v.optional(v.number()),
  retryAfterMs: v.optional(v.number()),
});
export type StoryRunError = Infer<typeof storyRunError>;

/** What an auditor needs to know about the Claude call(s) that led to a transition. */
export const storyRunDetails = v.object({
  durationMs: v.optional(v.number()),
  model: v.optional(v.string()),
  anthropicRequestId: v.optional(v.string()),
  inputTokens: v.optional(v.number()),
  outputTokens: v.optional(v.number()),
  stopReason: v.optional(v.string()),
  // The problems sent back to Claude in the repair turn (or left after it).
  problems: v.optional(v.array(v.string())),
  normalized: v.optional(v.number()),
  retryAt: v.optional(v.number()),
  reason: v.optional(v.string()),
});
export type StoryRunDetails = Infer<typeof storyRunDetails>;

export const storyRunTransitionFields = {
  attempt: v.number(),
  from: v.union(storyRunStatus, v.null()),
  to: storyRunStatus,
  at: v.number(),
  error: v.optional(storyRunError),
  details: v.optional(storyRunDetails),
};

/** What a backfill run has counted so far: the one list of its progress fields (table, progress query, batches). */
export const backfillCounters = {
  scanned: v.number(),
  created: v.number(),
  // Stories skipped because they already had a portrait or a job.
  hadPortrait: v.number(),
  hadJob: v.number(),
};
