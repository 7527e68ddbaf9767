import { v } from "convex/values";
import { internalMutation } from "./_generated/server";
import { continueBulkRetry } from "./lib/bulkRetry";

/** The next batch of a "retry everything matching" run (lib/bulkRetry.ts). Returns how many it re-queued. */
export const continueRetry = internalMutation({
  args: { id: v.id("bulkRetries") },
  returns: v.number(),
  handler: async (ctx, { id }) => continueBulkRetry(ctx, id),
});
