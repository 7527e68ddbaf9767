/**
 * The story run state machine. Every function here runs inside a mutation: a
 * transition patches the run and appends its event in the same transaction, so
 * the event log is the truth and the run row its projection. Free of the
 * Anthropic SDK, so the admin's functions can start runs without loading it.
 *
 *   pending ──claim──> writing ──(problems)──> repairing
 *      │                  ├──────────────────────┴──> inserted (+ story, its portrait job)
 *      └──────────────────┴──────────────────────┴──> failed {stage, code, message}
 *   failed ──(transient, attempts left, after a backoff)──> pending (attempt + 1)
 */
import { internal } from "../_generated/api";
import type { Doc, Id } from "../_generated/dataModel";
import type { MutationCtx } from "../_generated/server";
import type { StoryRunDetails, StoryRunError, StoryRunStatus } from "../validators";
import { backoffMs } from "./backoff";
import { storyConfig } from "./config";
import { logger } from "./log";
import { redact } from "./redact";

const log = logger("storyRunMachine");

export const STORY_RUN_STATUSES: StoryRunStatus[] = ["pending", "writing", "repairing", "inserted", "failed"];

const NEXT: Record<StoryRunStatus, StoryRunStatus[]> = {
  pending: ["writing", "failed"],
  writing: ["repairing", "inserted", "failed"],
  repairing: ["inserted", "failed"],
  inserted: [],
  failed: ["pending"],
};

export function canMoveRun(from: StoryRunStatus | null, to: StoryRunStatus): boolean {
  return from === null ? to === "pending" : NEXT[from].includes(to);
}

export const MAX_HINT_CHARS = 200;
const MAX_RETRY_DELAY_MS = 60 * 60_000;
const MAX_PROBLEMS = 20;

function sanitize(error: StoryRunError): StoryRunError {
  return { ...error, message: redact(error.message) };
}

function sanitizeDetails(details: StoryRunDetails | undefined): StoryRunDetails | undefined {
  return details && { ...details, problems: details.problems?.slice(0, MAX_PROBLEMS).map(redact) };
}

type Change = { error?: StoryRunError; details?: StoryRunDetails; storyId?: Id<"stories"> };

/** Moves a run one step, appends its event and logs it. The caller has done the compare-and-set. */
export async function move(ctx: MutationCtx, run: Doc<"storyRuns">, to: StoryRunStatus, change: Change = {}): Promise<Doc<"storyRuns">> {
  if (!canMoveRun(run.status, to)) throw new Error(`story run ${run._id}: no transition ${run.status} -> ${to}`);
  const now = Date.now();
  const error = change.error && sanitize(change.error);
  const details = sanitizeDetails(change.details);
  const attempt = run.status === "failed" && to === "pending" ? run.attempt + 1 : run.attempt;
  const patch: Partial<Doc<"storyRuns">> = { status: to, attempt, updatedAt: now, error };
  if (change.storyId) patch.storyId = change.storyId;
  if (to === "inserted" || to === "failed") patch.scheduledFunctionId = undefined;
  await ctx.db.patch("storyRuns", run._id, patch);
  await ctx.db.insert("storyRunEvents", { runId: run._id, attempt, from: run.status, to, at: now, error, details });
  logTransition(run._id, attempt, run.status, to, now - run.updatedAt, error, change.storyId ?? run.storyId);
  return (await ctx.db.get("storyRuns", run._id))!;
}

function logTransition(
  runId: Id<"storyRuns">,
  attempt: number,
  from: StoryRunStatus | null,
  to: StoryRunStatus,
  durationMs: number,
  error?: StoryRunError,
  storyId?: Id<"stories">,
) {
  const line = {
    runId,
    attempt,
    from,
    to,
    durationMs,
    code: error?.code ?? null,
    ...(error ? { stage: error.stage, message: error.message } : {}),
    ...(storyId ? { storyId } : {}),
  };
  log[to === "failed" ? "warn" : "info"]("story.transition", line);
}

/** Creates a run in `pending` with its first event and schedules its action, in one transaction. */
export async function startRun(ctx: MutationCtx, hint?: string): Promise<Id<"storyRuns">> {
  const now = Date.now();
  const theme = hint?.trim().slice(0, MAX_HINT_CHARS) || undefined;
  const runId = await ctx.db.insert("storyRuns", {
    status: "pending",
    attempt: 1,
    hint: theme,
    createdAt: now,
    updatedAt: now,
    runAt: now,
  });
  await ctx.db.insert("storyRunEvents", { runId, attempt: 1, from: null, to: "pending", at: now });
  logTransition(runId, 1, null, "pending", 0);
  const scheduledFunctionId = await ctx.scheduler.runAfter(0, internal.storyRuns.writeStory, { runId });
  await ctx.db.patch("storyRuns", runId, { scheduledFunctionId });
  return runId;
}

/**
 * Fails a run; a transient failure with attempts left goes back to `pending`
 * as the next attempt, due after the backoff (STORY_RETRY_DELAY_MS, doubling,
 * never sooner than Retry-After).
 */
export async function fail(ctx: MutationCtx, run: Doc<"storyRuns">, error: StoryRunError, details?: StoryRunDetails) {
  const config = storyConfig();
  const failed = await move(ctx, run, "failed", { error, details });
  if (failed.attempt >= config.maxAttempts || !isTransientStoryError(error)) return;
  const policy = { initialMs: config.retryDelayMs, maxMs: Math.max(config.retryDelayMs, MAX_RETRY_DELAY_MS), jitter: false };
  const retryAt = failed.updatedAt + backoffMs(failed.attempt, policy, error.retryAfterMs);
  const pending = await move(ctx, failed, "pending", { details: { retryAt, reason: `automatic retry after ${error.code}` } });
  const scheduledFunctionId = await ctx.scheduler.runAt(retryAt, internal.storyRuns.writeStory, { runId: pending._id });
  await ctx.db.patch("storyRuns", pending._id, { runAt: retryAt, scheduledFunctionId });
}

/** The compare-and-set read: the run if it is in the state (and attempt) the caller expects, else null. */
export async function currentRun(ctx: MutationCtx, runId: Id<"storyRuns">, status: StoryRunStatus, attempt?: number) {
  const run = await ctx.db.get("storyRuns", runId);
  const current = run && run.status === status && (attempt === undefined || run.attempt === attempt);
  if (!current) {
    log.warn("story.refused", { runId, attempt, expected: status, actual: run ? `${run.status}#${run.attempt}` : "missing" });
  }
  return current ? run : null;
}

const TRANSIENT = new Set(["rate_limited", "overloaded", "timeout", "network_error", "stalled", "insert_failed", "title_taken"]);

/**
 * 429, 529, 5xx, timeouts, network errors, dead actions and an insert that kept
 * failing are worth another attempt; so is a title taken between the check and
 * the insert (the next attempt's check sends it back to Claude).
 */
export function isTransientStoryError(error: StoryRunError): boolean {
  return TRANSIENT.has(error.code) || (error.code === "http_error" && (error.httpStatus ?? 0) >= 500);
}

/**
 * An admin's retry of a failed run (issue 16): back to `pending` as the next
 * attempt, its action scheduled now. "not_failed" for anything else.
 */
export async function retryRun(ctx: MutationCtx, run: Doc<"storyRuns"> | null, reason: string): Promise<"queued" | "not_failed"> {
  if (!run || run.status !== "failed") return "not_failed";
  const pending = await move(ctx, run, "pending", { details: { reason } });
  const scheduledFunctionId = await ctx.scheduler.runAfter(0, internal.storyRuns.writeStory, { runId: pending._id });
  await ctx.db.patch("storyRuns", pending._id, { runAt: pending.updatedAt, scheduledFunctionId });
  return "queued";
}
