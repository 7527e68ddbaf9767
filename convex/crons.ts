import { cronJobs } from "convex/server";
import { registerConsoleCrons, registerPortraitCrons, registerStoryRunCrons } from "./lib/crons";

// An app that adopts this backend registers these on its own crons (lib/crons.ts).
const crons = cronJobs();
registerPortraitCrons(crons);
registerStoryRunCrons(crons);
registerConsoleCrons(crons);

export default crons;
