import { cronJobs } from "convex/server";
import { internal } from "./_generated/api";

const crons = cronJobs();

// Recovery: a job whose action died, or that has been in flight too long, fails as `stalled`.
crons.interval("sweep stalled portrait jobs", { minutes: 1 }, internal.portraits.sweep, {});

// The game's daily case file, at midnight UTC (STORY_DAILY=off switches it off).
crons.daily("generate daily story", { hourUTC: 0, minuteUTC: 0 }, internal.storyRuns.dailyStory, {});

// Recovery: a story run whose action died fails as `stalled` (and retries if attempts remain).
crons.interval("sweep stalled story runs", { minutes: 1 }, internal.storyRuns.sweep, {});

export default crons;
