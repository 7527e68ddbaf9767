/**
 * The story run state machine (lib/machine.ts's skeleton). Every function here
 * runs inside a mutation: a move patches the run and appends its event in the
 * same transaction, so the event log is the truth and the run row its
 * projection. Free of the Anthropic SDK, so the admin's functions can start
 * runs without loading it. An admin's retry is lib/commands.ts.
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
import { defineMachine } from "./machine";
import { redact } from "./redact";

const NEXT: Record<StoryRunStatus, StoryRunStatus[]> = {
  pending: ["writing", "failed"],
  writing: ["repairing", "inserted", "failed"],
  repairing: ["inserted", "failed"],
  inserted: [],
  failed: ["pending"],
};

export const MAX_HINT_CHARS = 200;
const MAX_RETRY_DELAY_MS = 60 * 60_000;
const MAX_PROBLEMS = 20;

const TRANSIENT = new Set(["rate_limited", "overloaded", "timeout", "network_error", "stalled", "insert_failed", "title_taken"]);

type Change = { error?: StoryRunError; details?: StoryRunDetails; storyId?: Id<"stories"> };

/** A pending run's own action does its attempt: scheduled when the attempt is due. */
async function scheduleAttempt(ctx: MutationCtx, run: Doc<"storyRuns">, runAt: number) {
  const scheduledFunctionId = await ctx.scheduler.runAt(runAt, internal.storyRuns.writeStory, { runId: run._id });
  await ctx.db.patch("storyRuns", run._id, { runAt, scheduledFunctionId });
}

const machine = defineMachine<"storyRuns", StoryRunError, StoryRunDetails, Change>({
  table: "storyRuns",
  noun: "story run",
  log: { source: "storyRunMachine", prefix: "story", idField: "runId" },
  next: NEXT,
  sanitize: (error) => ({ ...error, message: redact(error.message) }),
  sanitizeDetails: (details) => details && { ...details, problems: details.problems?.slice(0, MAX_PROBLEMS).map(redact) },
  patch: (_run, { to }, change) => ({
    ...(change.storyId ? { storyId: change.storyId } : {}),
    ...(to === "inserted" || to === "failed" ? { scheduledFunctionId: undefined } : {}),
  }),
  record: async (ctx, run, { from, to, attempt, at, error, details }) => {
    await ctx.db.insert("storyRunEvents", { runId: run._id, attempt, from, to, at, error, details });
  },
  logFields: (run, { at, error }, change) => {
    const storyId = change.storyId ?? run.storyId;
    return {
      durationMs: at - run.updatedAt,
      ...(error ? { stage: error.stage, message: error.message } : {}),
      ...(storyId ? { storyId } : {}),
    };
  },
  retry: {
    /**
     * 429, 529, 5xx, timeouts, network errors, dead actions and an insert that kept
     * failing are worth another attempt; so is a title taken between the check and
     * the insert (the next attempt's check sends it back to Claude).
     */
    isTransient: (error) => TRANSIENT.has(error.code) || (error.code === "http_error" && (error.httpStatus ?? 0) >= 500),
    maxAttempts: () => storyConfig().maxAttempts,
    // STORY_RETRY_DELAY_MS, doubling, never sooner than Retry-After.
    delayMs: (attempt, error) => {
      const { retryDelayMs } = storyConfig();
      return backoffMs(
        attempt,
        { initialMs: retryDelayMs, maxMs: Math.max(retryDelayMs, MAX_RETRY_DELAY_MS), jitter: false },
        error.retryAfterMs,
      );
    },
    requeue: scheduleAttempt,
  },
});

export const { canMove, current, move, requeue, fail, isTransient } = machine;

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
  const run = (await ctx.db.get("storyRuns", runId))!;
  await machine.created(ctx, run);
  await scheduleAttempt(ctx, run, now);
  return runId;
}
