/**
 * This project's crons, for an app to register on its own `cronJobs()`:
 *
 *   const crons = cronJobs();
 *   crons.daily("generate daily story", { hourUTC: 0, minuteUTC: 0 }, internal.stories.generateStory, {});
 *   registerPortraitCrons(crons);
 *   export default crons;
 */
import type { Crons } from "convex/server";
import { internal } from "../_generated/api";

export function registerPortraitCrons(crons: Crons): Crons {
  // Recovery: a job whose action died, or that has been in flight too long, fails as `stalled`.
  crons.interval("sweep stalled portrait jobs", { minutes: 1 }, internal.portraits.sweep, {});
  return crons;
}
