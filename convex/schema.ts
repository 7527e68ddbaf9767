import { defineSchema } from "convex/server";
import { portraitTables } from "./tables";

// An app that adopts this backend spreads `portraitTables` into its own schema (README, "Moving the game over").
export default defineSchema({ ...portraitTables });
