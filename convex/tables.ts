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
import {
  backfillCounters,
  errorCode,
  eventFields,
  jobError,
  jobSlot,
  jobStatus,
  slotChange,
  storyFields,
  storyRunError,
  storyRunStatus,
  storyRunTransitionFields,
} from "./validators";

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
    // Queue position of a pending job without a slot: creation time, or when its backoff ends.
    runAt: v.number(),
    // The dispatcher slot the job holds (validators.ts jobSlot), changed only by lib/slots.ts.
    slot: jobSlot,
    // While `downloaded`: the image about to be stored, so recovery can find and
    // delete the file of an action that died between storing it and saying so.
    download: v.optional(v.object({ sha256: v.string(), bytes: v.number(), at: v.number() })),
    // Story title, patient name and number, for the admin search.
    searchText: v.string(),
  })
    .index("by_story", ["storyId"])
    .index("by_status", ["status", "updatedAt"])
    .index("by_queue", ["status", "slot.kind", "runAt"])
    .index("by_slot", ["slot.kind", "slot.grantedAt"])
    .index("by_error_code", ["status", "error.code", "updatedAt"])
    // The console's filters: failed jobs by HTTP status, and any job by last change.
    .index("by_http_status", ["status", "error.httpStatus", "updatedAt"])
    .index("by_updated", ["updatedAt"])
    .searchIndex("search_text", { searchField: "searchText", filterFields: ["status"] }),

  // Append-only: one row per transition, written by the mutation that makes it.
  portraitJobEvents: defineTable(eventFields).index("by_job", ["jobId", "at"]).index("by_to", ["to", "at"]),

  // Append-only: one row per change of a job's slot (lib/slots.ts), written by
  // the mutation that makes it, with the slot as it became.
  portraitSlotEvents: defineTable({
    jobId: v.id("portraitJobs"),
    attempt: v.number(),
    change: slotChange,
    at: v.number(),
    slot: jobSlot,
    // On `released`: how long the slot was held since the request's real start (or its planned start).
    heldMs: v.optional(v.number()),
  }).index("by_job", ["jobId", "at"]),

  // Counts (lib/counts.ts): each key's (job's, run's) unfolded changes in a row
  // of its own, and per kind the totals the dispatcher loop folds them into.
  countDeltas: defineTable({
    kind: v.union(v.literal("portrait"), v.literal("story")),
    key: v.string(),
    deltas: v.record(v.string(), v.number()),
    updatedAt: v.number(),
  })
    .index("by_key", ["kind", "key"])
    .index("by_kind", ["kind", "updatedAt"]),
  countTotals: defineTable({
    kind: v.union(v.literal("portrait"), v.literal("story")),
    counts: v.record(v.string(), v.number()),
  }).index("by_kind", ["kind"]),

  // State of the dispatcher loop (lib/dispatch.ts), written only by the loop
  // (the sweep's reconcileHolding repairs a hand-edited tally):
  // the slots it planned (the latest, for the windows), the adaptive
  // concurrency, a 429's pause, and `holding`: a tally derived from the jobs'
  // slots (grants it made less release notices it read), kept so the loop
  // never reads the holders (docs/ARCHITECTURE.md, "One home for a slot").
  portraitDispatcher: defineTable({
    planned: v.optional(v.array(v.number())),
    // Before the start log: the next free slot. Read by nothing, dropped at the loop's next write.
    nextSlotAt: v.optional(v.number()),
    holding: v.number(),
    limit: v.number(),
    latencyMs: v.optional(v.number()),
    pausedUntil: v.optional(v.number()),
  }),

  // The start log (lib/dispatch.ts, lib/pacing.ts): one document, the latest
  // request starts the claims reserved (ascending) and a 429's pause. The
  // provider's windows are kept against it, whenever the scheduler ran the actions.
  portraitStarts: defineTable({
    starts: v.array(v.number()),
    pausedUntil: v.optional(v.number()),
  }),

  // Requests for a run of the dispatcher loop (kickDispatcher): the first
  // transition in a time bucket inserts a row (and schedules the run), the
  // rest see it. `release` is only on rows from before portraitReleases.
  portraitWakes: defineTable({
    at: v.number(),
    release: v.optional(
      v.object({
        heldMs: v.optional(v.number()),
        stored: v.boolean(),
        rateLimitedUntil: v.optional(v.number()),
      }),
    ),
  }).index("by_at", ["at"]),

  // Release notices (lib/slots.ts releaseSlot): the loop's inbox. Every slot
  // release inserts its own row, with how long the slot was held and whether
  // the provider said 429; the loop reads and deletes them (its tally and its
  // latency). Apart from the wakeup rows, so a release never writes an index
  // range another transition's kick reads.
  portraitReleases: defineTable({
    heldMs: v.optional(v.number()),
    stored: v.boolean(),
    rateLimitedUntil: v.optional(v.number()),
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
    ...backfillCounters,
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

  // The operators' hold on the portrait queue (lib/queueControl.ts): one row,
  // read by the dispatcher loop each run; no row means running, no ceiling.
  queueControl: defineTable({
    paused: v.boolean(),
    // An operator's cap on jobs in flight, under the computed limit; absent: none.
    maxConcurrency: v.optional(v.number()),
    updatedAt: v.number(),
    updatedBy: v.string(),
  }),
  // Append-only: every change an operator made to the queue's control.
  queueControlEvents: defineTable({
    at: v.number(),
    by: v.string(),
    paused: v.boolean(),
    maxConcurrency: v.optional(v.number()),
    previous: v.object({ paused: v.boolean(), maxConcurrency: v.optional(v.number()) }),
  }).index("by_at", ["at"]),

  // One row per "retry everything matching" (lib/bulkRetry.ts): its filter,
  // the failed jobs it has re-queued so far, and whether it has finished.
  bulkRetries: defineTable({
    filter: v.object({
      code: v.optional(errorCode),
      httpStatus: v.optional(v.number()),
      since: v.optional(v.number()),
    }),
    // Jobs that failed after this are not part of the retry.
    until: v.number(),
    by: v.string(),
    cursor: v.union(v.string(), v.null()),
    queued: v.number(),
    done: v.boolean(),
    finishedAt: v.optional(v.number()),
  }),

  // The queue every 5 minutes (convex/queueMetrics.ts), for the console's metrics per hour.
  queueSnapshots: defineTable({
    at: v.number(),
    pending: v.number(),
    inFlight: v.number(),
    limit: v.optional(v.number()),
  }).index("by_at", ["at"]),
};
