/**
 * This project's crons, for an app to register on its own `cronJobs()`. An app
 * that keeps its own story generation registers the portrait sweep only:
 *
 *   const crons = cronJobs();
 *   crons.daily("generate daily story", { hourUTC: 0, minuteUTC: 0 }, internal.stories.generateStory, {});
 *   registerPortraitCrons(crons);
 *   export default crons;
 *
 * An app that uses this project's story runs registers both (convex/crons.ts).
 */
import type { Crons } from "convex/server";
import { internal } from "../_generated/api";

export function registerPortraitCrons(crons: Crons): Crons {
  // Recovery: a job whose action died, or that has been in flight too long, fails as `stalled`.
  crons.interval("sweep stalled portrait jobs", { minutes: 1 }, internal.portraits.sweep, {});
  return crons;
}

export function registerStoryRunCrons(crons: Crons): Crons {
  // The game's daily case file, at midnight UTC (STORY_DAILY=off switches it off).
  // eslint-disable-next-line @convex-dev/no-top-of-hour-crons -- the game's own schedule, once a day
  crons.daily("generate daily story", { hourUTC: 0, minuteUTC: 0 }, internal.storyRuns.dailyStory, {});
  // Recovery: a story run whose action died fails as `stalled` (and retries if attempts remain).
  crons.interval("sweep stalled story runs", { minutes: 1 }, internal.storyRuns.sweep, {});
  return crons;
}

/** The admin console's queue metrics: jobs waiting and in flight, every 5 minutes (convex/queueMetrics.ts). */
export function registerConsoleCrons(crons: Crons): Crons {
  crons.interval("snapshot the portrait queue", { minutes: 5 }, internal.queueMetrics.snapshot, {});
  return crons;
}
