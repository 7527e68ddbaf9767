/** Helpers the bench figures share: a quiet stack, case files by number, waiting on the counts table. */
import { internal } from "../../convex/_generated/api.js";
import type { Id } from "../../convex/_generated/dataModel.js";
import type { StoryInput } from "../../convex/validators.ts";
import { portraitPng } from "../fakes/png.ts";
import { caseFiles } from "../caseFiles.ts";
import type { Backend } from "./backend.ts";
import { jobCounts, LIVE, startDemoStack, type Counts, type DemoStackOptions } from "./stack.ts";
import { until } from "./wait.ts";

/** Windows of 1 ms allowing 8 192 requests each: one start slot a millisecond, a late start tolerated for a second. */
const LIFTED_RATE_LIMITS = {
  PORTRAIT_RATE_SECOND_MS: "1",
  PORTRAIT_RATE_MINUTE_MS: "1",
  PORTRAIT_MAX_PER_SECOND: "8192",
  PORTRAIT_MAX_PER_MINUTE: "8192",
  PORTRAIT_START_TOLERANCE_MS: "2000",
};

/** Recraft's limits (5 a second, 100 a minute) with both windows ten times shorter. */
export const RECRAFT_LIMITS_X10 = {
  PORTRAIT_RATE_SECOND_MS: "100",
  PORTRAIT_RATE_MINUTE_MS: "6000",
  PORTRAIT_MAX_PER_SECOND: "5",
  PORTRAIT_MAX_PER_MINUTE: "100",
};

/**
 * The demo stack with the backend's logs discarded (on Convex they are
 * collected by the platform, not written to a terminal) and the rate
 * windows lifted (unless a figure sets them): most figures measure the
 * pipeline and the concurrency cap, and at Recraft's 100 requests a minute
 * the pacing would be all a burst measured. The fake paints one precomputed portrait:
 * painting takes ~13 ms a portrait, work of the fake (on this process's event
 * loop) that would be billed to the pipeline.
 */
export function benchStack(options: DemoStackOptions = {}) {
  const png = portraitPng("bench", 64);
  return startDemoStack({
    backendLog: () => {},
    ...options,
    recraft: { paint: () => png, ...options.recraft },
    env: { ...LIFTED_RATE_LIMITS, PORTRAIT_MAX_CONCURRENCY: "4", PORTRAIT_MAX_ATTEMPTS: "1", ...options.env },
  });
}

/** The i-th bundled case file with a unique title (so a unique slug) and prompt. */
export function nthCaseFile(i: number): StoryInput {
  const { slug: _slug, ...base } = caseFiles[i % caseFiles.length]!;
  return { ...base, title: `${base.title} ${i}`, imageGenerationPrompt: `${base.imageGenerationPrompt} (case ${i})` };
}

export const insertStory = (t: Backend, i: number): Promise<Id<"stories">> => t.mutation(internal.stories.insertStory, nthCaseFile(i));

/** Polls the five counts rows (cheap) until `done` holds; throws after `timeoutMs`. */
export async function waitForCounts(t: Backend, done: (counts: Counts) => boolean, pollMs: number, timeoutMs: number): Promise<Counts> {
  let counts: Counts | undefined;
  await until(async () => done((counts = await jobCounts(t))), {
    pollMs,
    timeoutMs,
    message: () => `jobs: ${JSON.stringify(counts)}`,
  });
  return counts!;
}

export const live = (counts: Counts) => LIVE.reduce((sum, s) => sum + counts[s], 0);

/** Every job's events, grouped by job. */
export async function eventsByJob(t: Backend) {
  const events = await t.run((ctx) => ctx.db.query("portraitJobEvents").collect());
  const byJob = new Map<string, typeof events>();
  for (const event of events) {
    if (!byJob.has(event.jobId)) byJob.set(event.jobId, []);
    byJob.get(event.jobId)!.push(event);
  }
  for (const list of byJob.values()) list.sort((a, b) => a.at - b.at);
  return byJob;
}
