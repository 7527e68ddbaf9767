import { cronJobs } from "convex/server";
import { internal } from "./_generated/api";

const crons = cronJobs();

// Recovery: a job whose action died, or that has been in flight too long, fails as `stalled`.
crons.interval("sweep stalled portrait jobs", { minutes: 1 }, internal.portraits.sweep, {});

export default crons;
