import { cronJobs } from "convex/server";
import { registerPortraitCrons } from "./lib/crons";

const crons = cronJobs();

// The recovery sweep (lib/crons.ts); an app that adopts this backend registers it on its own crons.
registerPortraitCrons(crons);

export default crons;
