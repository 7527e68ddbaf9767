/**
 * The test stack: the project's own Convex functions on convex-test, a
 * Recraft-compatible server and an Anthropic-compatible server on 127.0.0.1,
 * and the Convex environment variables pointing at them.
 */
import { convexTest } from "convex-test";
import { onTestFinished, vi } from "vitest";
import { internal } from "../convex/_generated/api";
import type { Id } from "../convex/_generated/dataModel";
import type { HeldSlot } from "../convex/validators";
import { slugify } from "../convex/lib/caseFile";
import schema from "../convex/schema";
import type { FakeAnthropic } from "../scripts/fakes/anthropicServer";
import type { FakeRecraft, RecraftServerOptions } from "../scripts/fakes/recraftServer";
import type { FakeTinify } from "../scripts/fakes/tinifyServer";
import { startStack as startBaseStack, type Stack as BaseStack } from "../scripts/lib/stack";
import { sleep } from "../scripts/lib/wait";

export { until } from "../scripts/lib/wait";

// The Convex function modules (convex/*.ts) and convex/_generated/'s JavaScript (convex-test finds the functions
// root from its path), as scripts/lib/backend.ts lists them, minus convex/lib/: it holds no Convex functions, and
// a glob over it (or over _generated/api.d.ts, which names every module) would count all its exports as used for knip.
export const modules = import.meta.glob(["../convex/*.ts", "../convex/_generated/*.js"]);

export type Backend = ReturnType<typeof newBackend>;
export const newBackend = (functions: Record<string, () => Promise<unknown>> = modules) => convexTest(schema, functions);

export const RECRAFT_KEY = "rk-test-5ecret-recraft-key";
export const ANTHROPIC_KEY = "sk-ant-test-5ecret-anthropic-key";
/** The fake TinyPNG's key; TINIFY_API_KEY is unset unless a test sets it, as in a deployment without compression. */
export const TINIFY_KEY = "tinify-test-5ecret-key";

/** The shared stack (scripts/lib/stack.ts) with its three fakes. */
export type Stack = BaseStack<FakeRecraft, FakeAnthropic, FakeTinify>;

/** The test preset of the one stack builder (scripts/lib/stack.ts): known keys, fast retries, scaled windows. */
export async function startStack(
  options: {
    env?: Record<string, string | undefined>;
    recraft?: RecraftServerOptions;
    /** The Convex modules to run (e.g. wrapped by scripts/fakes/busyBackend.ts); default: convex/ as it is. */
    modules?: Record<string, () => Promise<unknown>>;
    /** Enforce Convex's per-transaction limits (scripts/lib/stack.ts). */
    transactionLimits?: boolean;
  } = {},
): Promise<Stack> {
  const stack = await startBaseStack({
    recraft: { apiKey: RECRAFT_KEY, ...options.recraft },
    anthropic: { apiKey: ANTHROPIC_KEY },
    tinify: { apiKey: TINIFY_KEY },
    modules: options.modules ?? modules,
    transactionLimits: options.transactionLimits,
    env: {
      // The defaults of what a test may change, whatever the shell running the tests has set.
      RECRAFT_MODEL: undefined,
      RECRAFT_STYLE: undefined,
      RECRAFT_STYLE_ID: undefined,
      RECRAFT_SIZE: undefined,
      PORTRAIT_MAX_SIDE: undefined,
      CLAUDE_API_KEY: undefined,
      // The default STORY_MODEL: the fake enforces what that model family rejects.
      STORY_MODEL: undefined,
      STORY_RETRY_DELAY_MS: "20",
      PORTRAIT_REQUEST_TIMEOUT_MS: "2000",
      PORTRAIT_DOWNLOAD_TIMEOUT_MS: "2000",
      PORTRAIT_RETRY_INITIAL_MS: "10",
      PORTRAIT_RETRY_MAX_MS: "50",
      // Recraft's windows scaled x10 with generous limits, so suites that do not test pacing run fast
      // (50 starts per 1.1 s); the 1 s margin added to each window covers this process's event loop,
      // which the fakes share with every function under test (lib/pacing.ts).
      PORTRAIT_RATE_SECOND_MS: "100",
      PORTRAIT_RATE_MINUTE_MS: "6000",
      PORTRAIT_MAX_PER_SECOND: "50",
      PORTRAIT_MAX_PER_MINUTE: "3000",
      PORTRAIT_START_TOLERANCE_MS: "1000",
      ...options.env,
    },
  });
  return stack as Stack;
}

/**
 * Turns the backend's logger on for the current test (LOG_LEVEL, restored when
 * the test ends) and collects every line it writes, for a test that checks what
 * is logged. Call it in the test or its beforeEach.
 */
export function captureLogs(level = "DEBUG"): string[] {
  const saved = process.env.LOG_LEVEL;
  process.env.LOG_LEVEL = level;
  onTestFinished(() => {
    if (saved === undefined) delete process.env.LOG_LEVEL;
    else process.env.LOG_LEVEL = saved;
  });
  const lines: string[] = [];
  for (const method of ["debug", "log", "info", "warn", "error"] as const) {
    vi.spyOn(console, method).mockImplementation((...args) => void lines.push(args.map(String).join(" ")));
  }
  return lines;
}

/**
 * Waits (on real timers: the pipeline's fetch needs them) until no scheduled
 * function is running or due within `horizonMs` (a dispatcher wakeup a minute
 * away, for the rate window, is not waited for). Running functions are awaited
 * (convex-test's own promises), and the next due one is waited for until its
 * time, so `_scheduled_functions` is read once per step, not every few ms.
 */
export async function settle(t: Backend, { timeoutMs = 20_000, horizonMs = 5_000 } = {}): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await t.finishInProgressScheduledFunctions();
    const busy = await t.run(async (ctx) =>
      (await ctx.db.system.query("_scheduled_functions").collect()).filter(
        (fn) => fn.state.kind === "inProgress" || (fn.state.kind === "pending" && fn.scheduledTime <= Date.now() + horizonMs),
      ),
    );
    if (busy.length === 0) return;
    if (Date.now() > deadline) {
      throw new Error(`settle: still busy after ${timeoutMs} ms: ${busy.map((fn) => `${fn.name} ${fn.state.kind}`).join(", ")}`);
    }
    // Nothing in flight: the earliest due function's timer fires at its time (a late timer: soon after).
    const nextDue = Math.min(...busy.map((fn) => (fn.state.kind === "inProgress" ? Date.now() : fn.scheduledTime)));
    await sleep(Math.min(50, Math.max(1, nextDue - Date.now() + 1)));
  }
}

/**
 * A valid case file; `overrides` make it whatever a test needs. Its slug is
 * always the game's slug of its title; a `slug` override (without a title)
 * names a distinct story: the title becomes "The Quiet Ward <slug>".
 */
export function caseFile(overrides: Record<string, unknown> = {}) {
  const { slug, ...rest } = overrides;
  const title = typeof rest.title === "string" ? rest.title : slug === undefined ? "The Quiet Ward" : `The Quiet Ward ${String(slug)}`;
  return { ...caseFileFields(rest), title, slug: slugify(title) };
}

function caseFileFields(overrides: Record<string, unknown>) {
  const difficulties = ["easy", "easy", "easy", "easy", "medium", "medium", "hard", "hard"] as const;
  return {
    introduction: "Ward C was sealed in 1974. The night nurse still signs in.",
    chapters: difficulties.map((difficulty, i) => ({ text: `Chapter ${i + 1}: the corridor lights hum.`, difficulty })),
    patientName: "Edith Marrow",
    patientNumber: "P-0413",
    story: "Edith Marrow was admitted for insomnia and never slept again.",
    imageGenerationPrompt: "Clinical black and white portrait of a gaunt woman in a hospital gown, 1970s asylum, harsh flash.",
    ...overrides,
  };
}

/** A `stories` document as the game writes it, from a case file: the game's own fields, nothing of this backend. */
export function gameStoryDocument(file: ReturnType<typeof caseFile>, createdAt: number) {
  const { title, slug, introduction, chapters, patientName, patientNumber, story, imageGenerationPrompt } = file;
  return { title, slug, introduction, chapters, patientName, patientNumber, story, imageGenerationPrompt, createdAt };
}

/** The i-th of a set of distinct, searchable case files. */
export const numberedCaseFile = (i: number) =>
  caseFile({
    title: `The Ward of Whisper${i}`,
    patientName: `Edith Marrow${i}`,
    patientNumber: `P-${1000 + i}`,
    imageGenerationPrompt: `portrait of patient #${i}`,
  });

export async function jobOf(t: Backend, storyId: string) {
  return t.run(async (ctx) => {
    const jobs = await ctx.db
      .query("portraitJobs")
      .withIndex("by_story", (q) => q.eq("storyId", storyId as never))
      .collect();
    if (jobs.length !== 1) throw new Error(`story ${storyId} has ${jobs.length} jobs`);
    return jobs[0]!; // exactly one, checked above
  });
}

export async function eventsOf(t: Backend, jobId: string) {
  return t.run((ctx) =>
    ctx.db
      .query("portraitJobEvents")
      .withIndex("by_job", (q) => q.eq("jobId", jobId as never))
      .collect(),
  );
}

/**
 * A hand edit of a job's slot, bypassing lib/slots.ts (no event, no release
 * notice), as a dashboard edit would: how a test stands in for a dead action,
 * a late start or a slot far ahead. `null` puts the slot back to none.
 */
export async function editSlot(t: Backend, jobId: Id<"portraitJobs">, fields: Partial<HeldSlot> | null) {
  await t.run(async (ctx) => {
    const job = (await ctx.db.get(jobId))!;
    if (fields === null) return ctx.db.patch(jobId, { slot: { kind: "none" } });
    const base = job.slot.kind === "held" ? job.slot : { grantedAt: Date.now(), plannedAt: Date.now() };
    await ctx.db.patch(jobId, { slot: { ...base, ...fields, kind: "held" } as HeldSlot });
  });
}

/** The changes of a job's slot, e.g. "granted>claimed>released". */
export async function slotPathOf(t: Backend, jobId: Id<"portraitJobs">) {
  const events = await t.run((ctx) =>
    ctx.db
      .query("portraitSlotEvents")
      .withIndex("by_job", (q) => q.eq("jobId", jobId))
      .collect(),
  );
  return events.map((e) => e.change).join(">");
}

/** The path a job took, e.g. "pending>requested>downloaded>stored". */
export async function pathOf(t: Backend, jobId: string) {
  return (await eventsOf(t, jobId)).map((e) => e.to).join(">");
}

/** Starts a story run, waits until it and its retries are done, and returns the run. */
export async function runStory(t: Backend, args: { hint?: string } = {}) {
  const runId = await t.mutation(internal.storyRuns.generateStory, args);
  await settle(t);
  return runOf(t, runId);
}

export async function runOf(t: Backend, runId: Id<"storyRuns">) {
  return t.run(async (ctx) => (await ctx.db.get(runId))!);
}

export async function runEventsOf(t: Backend, runId: Id<"storyRuns">) {
  return t.run((ctx) =>
    ctx.db
      .query("storyRunEvents")
      .withIndex("by_run", (q) => q.eq("runId", runId))
      .collect(),
  );
}

/** The path a run took, e.g. "pending>writing>failed>pending>writing>inserted". */
export async function runPathOf(t: Backend, runId: Id<"storyRuns">) {
  return (await runEventsOf(t, runId)).map((e) => e.to).join(">");
}

/** Inserts one case file and lets its portrait job run to the end: the story, its job, the path it took and its events. */
export async function runPortrait(t: Backend, overrides: Record<string, unknown> = {}) {
  const storyId = await t.mutation(internal.stories.insertStory, caseFile(overrides));
  await settle(t);
  const job = await jobOf(t, storyId);
  return { storyId, job, path: await pathOf(t, job!._id), events: await eventsOf(t, job!._id) };
}
