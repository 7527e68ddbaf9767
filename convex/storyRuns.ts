/**
 * Story runs: one row per requested case file (the daily cron, an admin, a
 * script), event-sourced like portrait jobs. Every transition is one
 * compare-and-set mutation that patches the run and appends its event; the
 * story itself is inserted by the mutation that moves the run to `inserted`, so
 * a run yields at most one story and a story always has its run.
 *
 * The state machine is lib/storyRunMachine.ts.
 *
 * The only module that imports the Anthropic SDK (through lib/storyWriter.ts).
 */
import { ConvexError, v } from "convex/values";
import { internal } from "./_generated/api";
import type { Id } from "./_generated/dataModel";
import { internalAction, internalMutation, internalQuery, type ActionCtx } from "./_generated/server";
import { blocking, checkCaseFile, type Checked, type Problem } from "./lib/caseFile";
import { dailyStoryEnabled, storyConfig, storyRunBackstopMs, type StoryConfig } from "./lib/config";
import { logger } from "./lib/log";
import { deadActionState } from "./lib/recovery";
import { describeError } from "./lib/redact";
import { retryTransition } from "./lib/transitionRetry";
import { current as currentRun, fail, move, startRun } from "./lib/storyRunMachine";
import { askClaude, repairRequest, warnIfDeprecated, type RecentStory, type Turn } from "./lib/storyWriter";
import { insertCaseFile, slugTakenMessage, storyWithSlug } from "./stories";
import { slugify } from "./lib/caseFile";
import voice from "./voice";
import { storyInput, storyRunDetails, storyRunError, type StoryInput, type StoryRunDetails, type StoryRunError } from "./validators";

const log = logger("storyRuns");

/**
 * The entry point of a story run (the daily cron, the admin console, scripts:
 * `npx convex run storyRuns:generateStory`). Returns the run's id at once;
 * follow it in `storyRuns`/`storyRunEvents` or the admin console.
 */
export const generateStory = internalMutation({
  args: { hint: v.optional(v.string()) },
  returns: v.id("storyRuns"),
  handler: async (ctx, { hint }) => startRun(ctx, hint),
});

/** The daily cron: one run, unless STORY_DAILY=off. */
export const dailyStory = internalMutation({
  args: {},
  returns: v.union(v.id("storyRuns"), v.null()),
  handler: async (ctx) => {
    if (!dailyStoryEnabled()) {
      log.info("story.daily_skipped", { reason: "STORY_DAILY is off" });
      return null;
    }
    return startRun(ctx);
  },
});

const runArgs = { runId: v.id("storyRuns"), attempt: v.number() };
const inFlight = v.union(v.literal("writing"), v.literal("repairing"));

/**
 * pending -> writing, with what the request needs (the hint, the recent
 * stories); pending -> failed `missing_api_key` when no request can be made.
 */
export const claim = internalMutation({
  args: { runId: v.id("storyRuns") },
  returns: v.union(
    v.null(),
    v.object({
      attempt: v.number(),
      hint: v.optional(v.string()),
      recent: v.array(v.object({ title: v.string(), patientName: v.string(), patientNumber: v.string() })),
    }),
  ),
  handler: async (ctx, { runId }) => {
    const run = await currentRun(ctx, runId, "pending");
    if (!run) return null;
    const config = storyConfig();
    if (!config.apiKey) {
      await fail(ctx, run, {
        stage: "config",
        code: "missing_api_key",
        message: "neither ANTHROPIC_API_KEY nor CLAUDE_API_KEY is set; no request was made",
      });
      return null;
    }
    const recent = await ctx.db.query("stories").withIndex("by_createdAt").order("desc").take(config.recentStories);
    await move(ctx, run, "writing");
    return {
      attempt: run.attempt,
      hint: run.hint,
      recent: recent.map(({ title, patientName, patientNumber }) => ({ title, patientName, patientNumber })),
    };
  },
});

/** writing -> repairing: the answer had problems, sent back to Claude in one repair turn. */
export const markRepairing = internalMutation({
  args: { ...runArgs, details: storyRunDetails },
  returns: v.boolean(),
  handler: async (ctx, { runId, attempt, details }) => {
    const run = await currentRun(ctx, runId, "writing", attempt);
    if (!run) return false;
    await move(ctx, run, "repairing", { details });
    return true;
  },
});

/** writing|repairing -> failed (then pending again, when transient and attempts remain). */
export const markFailed = internalMutation({
  args: { ...runArgs, from: inFlight, error: storyRunError, details: v.optional(storyRunDetails) },
  returns: v.boolean(),
  handler: async (ctx, { runId, attempt, from, error, details }) => {
    const run = await currentRun(ctx, runId, from, attempt);
    if (!run) return false;
    await fail(ctx, run, error, details);
    return true;
  },
});

/**
 * writing|repairing -> inserted: the story, its portrait job and the run's
 * event, in one transaction. A title whose slug was taken since the check (a
 * story inserted meanwhile) fails the attempt as `title_taken`, which retries:
 * the next attempt's check sends the title back to Claude.
 */
export const finish = internalMutation({
  args: { ...runArgs, from: inFlight, story: storyInput, details: v.optional(storyRunDetails) },
  returns: v.union(v.id("stories"), v.null()),
  handler: async (ctx, { runId, attempt, from, story, details }) => {
    const run = await currentRun(ctx, runId, from, attempt);
    if (!run) return null;
    const slug = slugify(story.title);
    const owner = await storyWithSlug(ctx, slug);
    if (owner) {
      await fail(ctx, run, { stage: "insert", code: "title_taken", message: slugTakenMessage(story.title, slug, owner) }, details);
      return null;
    }
    const storyId = await insertCaseFile(ctx, story);
    await move(ctx, run, "inserted", { storyId, details });
    return storyId;
  },
});

const CODE_OF: Record<Exclude<Problem["kind"], "image_prompt">, StoryRunError["code"]> = {
  shape: "invalid_output",
  plan: "plan_mismatch",
  untypeable: "untypeable_chapter",
  title_taken: "title_taken",
};

/** Whether a story already has this slug: its title would break a link, so it goes back to Claude. */
export const slugTaken = internalQuery({
  args: { slug: v.string() },
  returns: v.union(v.null(), v.object({ title: v.string() })),
  handler: async (ctx, { slug }) => {
    const owner = await storyWithSlug(ctx, slug);
    return owner && { title: owner.title };
  },
});

/** The checks of lib/caseFile.ts, plus the one that needs the database: a title whose slug is taken. */
async function problemsOf(ctx: ActionCtx, answer: { json: unknown }, plan: Parameters<typeof checkCaseFile>[1]): Promise<Checked> {
  if (answer.json === undefined)
    return { story: null, problems: [{ kind: "shape", message: "the answer is not valid JSON" }], normalized: 0 };
  const checked = checkCaseFile(answer.json, plan);
  if (checked.story) {
    const { title } = checked.story;
    const owner = await ctx.runQuery(internal.storyRuns.slugTaken, { slug: slugify(title) });
    if (owner) {
      const message = `the title ${JSON.stringify(title)} makes the same link as the earlier case file ${JSON.stringify(owner.title)}; pick another title`;
      checked.problems.push({ kind: "title_taken", message });
    }
  }
  return checked;
}

/** The error for the problems left after the repair turn: the most fundamental kind names it. */
function unfixed(problems: Problem[]): StoryRunError {
  const hard = blocking(problems);
  const kind = (["shape", "plan", "untypeable", "title_taken"] as const).find((k) => hard.some((p) => p.kind === k))!;
  const message = `still not playable after the repair turn: ${hard.map((p) => p.message).join("; ")}`;
  return { stage: "validation", code: CODE_OF[kind], message };
}

type InFlight = "writing" | "repairing";
/** How an attempt ends: the story to insert, or the failure to record, from the state the run is in. */
type Outcome = { from: InFlight; details: StoryRunDetails } & ({ story: StoryInput } | { error: StoryRunError });

/**
 * Claude's answer, the check (typeable chapters, the chapter plan, every
 * field) and at most one repair turn. Null when the run refused the move to
 * `repairing` (a newer attempt owns it).
 */
async function write(
  ctx: ActionCtx,
  runId: Id<"storyRuns">,
  claimed: { attempt: number; hint?: string; recent: RecentStory[] },
  config: StoryConfig,
): Promise<Outcome | null> {
  const turns: Turn[] = [
    { role: "user", content: voice.storyPrompt({ recent: claimed.recent, chapters: [...config.plan], hint: claimed.hint }) },
  ];
  const first = await askClaude(config, turns, "request");
  if (!first.ok) return { from: "writing", error: first.error, details: first.details };
  const checked = await problemsOf(ctx, first, config.plan);
  const firstDetails = { ...first.details, normalized: checked.normalized };
  if (checked.problems.length === 0) return { from: "writing", story: checked.story!, details: firstDetails };

  const problems = checked.problems.map((p) => p.message);
  const repairing = await ctx.runMutation(internal.storyRuns.markRepairing, {
    runId,
    attempt: claimed.attempt,
    details: { ...firstDetails, problems },
  });
  if (!repairing) return null;
  // A story whose only problem is its image prompt stands whatever the repair turn brings:
  // its portrait job will fail with empty_prompt or prompt_too_long and say why.
  const fallback = checked.story && blocking(checked.problems).length === 0 ? checked.story : null;
  const repair = await askClaude(
    config,
    [...turns, { role: "assistant", content: first.text }, { role: "user", content: repairRequest(problems) }],
    "repair",
  );
  if (!repair.ok) {
    if (fallback)
      return {
        from: "repairing",
        story: fallback,
        details: { ...repair.details, reason: `repair failed (${repair.error.code}); kept the first answer` },
      };
    return { from: "repairing", error: repair.error, details: repair.details };
  }
  const rechecked = await problemsOf(ctx, repair, config.plan);
  const details = { ...repair.details, normalized: rechecked.normalized, problems: rechecked.problems.map((p) => p.message) };
  if (rechecked.story && blocking(rechecked.problems).length === 0) return { from: "repairing", story: rechecked.story, details };
  if (fallback)
    return { from: "repairing", story: fallback, details: { ...details, reason: "the repair was worse; kept the first answer" } };
  return { from: "repairing", error: unfixed(rechecked.problems), details };
}

/**
 * One attempt of a run: write the case file, then insert it (or record the
 * failure). Never throws for an expected failure: every outcome is a recorded
 * transition, and an action that dies is failed as `stalled` by the sweep.
 */
export const writeStory = internalAction({
  args: { runId: v.id("storyRuns") },
  returns: v.null(),
  handler: async (ctx, { runId }) => {
    const claimed = await ctx.runMutation(internal.storyRuns.claim, { runId });
    if (!claimed) return null;
    const config = storyConfig();
    warnIfDeprecated(config.model);
    const outcome = await write(ctx, runId, claimed, config);
    if (!outcome) return null;
    const { attempt } = claimed;
    const { from, details } = outcome;
    if ("error" in outcome) {
      await ctx.runMutation(internal.storyRuns.markFailed, { runId, attempt, from, error: outcome.error, details });
      return null;
    }
    try {
      // A transient failure (a write conflict, a backend hiccup) is retried: the story is not lost for it.
      await retryTransition("story.transition_retry", { transition: "finish", runId }, () =>
        ctx.runMutation(internal.storyRuns.finish, { runId, attempt, from, story: outcome.story, details }),
      );
    } catch (error) {
      // A refusal (the game cannot play it) is the answer's fault; anything else outlasted the retries and is transient.
      const failure: StoryRunError =
        error instanceof ConvexError
          ? { stage: "insert", code: "invalid_output", message: describeError(error) }
          : { stage: "insert", code: "insert_failed", message: describeError(error) };
      await ctx.runMutation(internal.storyRuns.markFailed, { runId, attempt, from, error: failure, details });
    }
    return null;
  },
});

const SWEEP_BATCH = 100;

/**
 * Recovery, run every minute by convex/crons.ts (next to the portrait sweep,
 * with the same dead-action check, lib/recovery.ts): a run whose action
 * failed, was cancelled, finished without finishing the run or is gone fails
 * as `stalled` and retries if attempts remain, whatever its status (a pending
 * run's action may die before it claims). A run whose action is alive is left
 * alone unless it has been in flight longer than its SDK calls can take
 * (storyRunBackstopMs), a backstop that does not assume the backend's action
 * limit. A late action is refused by the compare-and-set transitions.
 */
export const sweep = internalMutation({
  args: {},
  returns: v.number(),
  handler: async (ctx) => {
    const now = Date.now();
    const backstopMs = storyRunBackstopMs();
    let swept = 0;
    for (const status of ["pending", "writing", "repairing"] as const) {
      const runs = await ctx.db
        .query("storyRuns")
        .withIndex("by_status", (q) => q.eq("status", status))
        .take(SWEEP_BATCH);
      for (const run of runs) {
        const dead = await deadActionState(ctx, run.scheduledFunctionId);
        const overdue = status !== "pending" && now - run.updatedAt > backstopMs;
        if (!dead && !overdue) continue;
        const message = dead
          ? `the attempt's action is ${dead} but the run is still ${status}`
          : `${status} for ${now - run.updatedAt} ms, longer than its SDK calls can take (${backstopMs} ms)`;
        await fail(ctx, run, { stage: "recovery", code: "stalled", message });
        swept++;
      }
    }
    return swept;
  },
});
