/**
 * This project's tables, for an app to spread into its own schema:
 *
 *   export default defineSchema({ ...authTables, users, highscores, ...portraitTables });
 *
 * `stories` is the game's own table (its documents are valid here unchanged)
 * with the one index the pipeline adds (`by_storageId`, for recovery).
 */
import { defineTable } from "convex/server";
import { v } from "convex/values";
import { eventFields, jobError, jobStatus, storyFields, storyRunError, storyRunStatus, storyRunTransitionFields } from "./validators";

export const portraitTables = {
  stories: defineTable({
    ...storyFields,
    createdAt: v.number(),
    // Set by the mutation that moves the story's portrait job to `stored` (a story
    // from before this backend may arrive with a portrait the game painted itself).
    storageId: v.optional(v.id("_storage")),
  })
    .index("by_slug", ["slug"])
    .index("by_storageId", ["storageId"])
    .index("by_createdAt", ["createdAt"]),

  // One row per story; a retry reuses the row with `attempt + 1`.
  portraitJobs: defineTable({
    storyId: v.id("stories"),
    status: jobStatus,
    attempt: v.number(),
    error: v.optional(jobError),
    storageId: v.optional(v.id("_storage")),
    createdAt: v.number(),
    updatedAt: v.number(),
    // Queue position of a pending job: creation time, or when its backoff ends.
    runAt: v.number(),
    // True from the moment the dispatcher gives the job a slot until it leaves
    // `requested`/`downloaded` (or is refused before claiming).
    holdsSlot: v.boolean(),
    // The action currently responsible for the job, for recovery.
    scheduledFunctionId: v.optional(v.id("_scheduled_functions")),
    dispatchedAt: v.optional(v.number()),
    // While `downloaded`: the image about to be stored, so recovery can find and
    // delete the file of an action that died between storing it and saying so.
    download: v.optional(v.object({ sha256: v.string(), bytes: v.number(), at: v.number() })),
    // Story title, patient name and number, for the admin search.
    searchText: v.string(),
  })
    .index("by_story", ["storyId"])
    .index("by_status", ["status", "updatedAt"])
    .index("by_queue", ["status", "holdsSlot", "runAt"])
    .index("by_slot", ["holdsSlot", "dispatchedAt"])
    .index("by_error_code", ["status", "error.code", "updatedAt"])
    .searchIndex("search_text", { searchField: "searchText", filterFields: ["status"] }),

  // Append-only: one row per transition, written by the mutation that makes it.
  portraitJobEvents: defineTable(eventFields)
    .index("by_job", ["jobId", "at"])
    .index("by_to", ["to", "at"]),

  // Exact job counts per status, maintained by every transition: the admin
  // view reads five documents however many jobs exist.
  portraitJobCounts: defineTable({
    status: jobStatus,
    count: v.number(),
  }).index("by_status", ["status"]),

  // Singleton state of the dispatcher: when the requests of the rolling minute were
  // sent (the rate window, read as one document), and when it has already asked to
  // be woken up, so bursts don't pile up wakeups.
  portraitDispatcher: defineTable({
    recentRequests: v.array(v.number()),
    wakeAt: v.optional(v.number()),
  }),

  // One row per backfill run (internal.portraits.backfill): where its scan of
  // `stories` has got to, and what it found, for the admin console's progress.
  portraitBackfills: defineTable({
    startedAt: v.number(),
    updatedAt: v.number(),
    finishedAt: v.optional(v.number()),
    // The pagination cursor of the next batch; null before the first.
    cursor: v.union(v.string(), v.null()),
    done: v.boolean(),
    scanned: v.number(),
    created: v.number(),
    // Stories skipped because they already had a portrait or a job.
    hadPortrait: v.number(),
    hadJob: v.number(),
  }).index("by_startedAt", ["startedAt"]),

  // One row per requested story (the daily cron, an admin, a script); a retry
  // reuses the row with `attempt + 1`. The story is inserted by the mutation
  // that moves the run to `inserted`, so a run never produces two stories.
  storyRuns: defineTable({
    status: storyRunStatus,
    attempt: v.number(),
    hint: v.optional(v.string()),
    error: v.optional(storyRunError),
    storyId: v.optional(v.id("stories")),
    createdAt: v.number(),
    updatedAt: v.number(),
    // When the pending attempt is due (now, or when its backoff ends).
    runAt: v.number(),
    // The action responsible for the current attempt, for recovery.
    scheduledFunctionId: v.optional(v.id("_scheduled_functions")),
  })
    .index("by_status", ["status", "updatedAt"])
    .index("by_story", ["storyId"]),

  // Append-only: one row per transition of a story run.
  storyRunEvents: defineTable({ runId: v.id("storyRuns"), ...storyRunTransitionFields }).index("by_run", ["runId", "at"]),
};
