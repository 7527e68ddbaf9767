/**
 * Recovery of work whose action died, shared by portrait jobs and story runs.
 * Convex never retries an action and marks one failed when its backend
 * restarts, so a row still in flight whose scheduled action failed, was
 * cancelled, finished without finishing the row, or no longer exists will
 * never move again unless the sweep moves it.
 */
import type { Id } from "../_generated/dataModel";
import type { QueryCtx } from "../_generated/server";

export type ActionState = "pending" | "inProgress" | "success" | "failed" | "canceled" | "missing";

/** The state of the scheduled action responsible for a row, if it is dead; null while it may still act. */
export async function deadActionState(
  ctx: Pick<QueryCtx, "db">,
  scheduledFunctionId: Id<"_scheduled_functions"> | undefined,
): Promise<Exclude<ActionState, "pending" | "inProgress"> | null> {
  const action = scheduledFunctionId ? await ctx.db.system.get(scheduledFunctionId) : null;
  const state: ActionState = action?.state.kind ?? "missing";
  return state === "pending" || state === "inProgress" ? null : state;
}
