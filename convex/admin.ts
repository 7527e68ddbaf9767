/**
 * The admin console's functions. Every one is built with adminQuery or
 * adminMutation (lib/adminFunctions.ts), which check the caller before the
 * handler runs: anyone not listed in ADMIN_SUBJECTS or ADMIN_EMAILS gets
 * ConvexError("forbidden") and learns nothing.
 */
import { paginationOptsValidator, paginationResultValidator, type PaginationResult } from "convex/server";
import { ConvexError, v, type Infer } from "convex/values";
import type { Doc, Id } from "./_generated/dataModel";
import type { QueryCtx } from "./_generated/server";
import { adminMutation, adminQuery } from "./lib/adminFunctions";
import { CHART_RANGES, readActivity, type ChartRange } from "./lib/activity";
import { backfillProgress as backfillProgressValidator, latestBackfill, startBackfill } from "./lib/backfill";
import { countMatching, COUNT_CAP, failedJobs, startBulkRetry, type RetryFilter } from "./lib/bulkRetry";
import { queueConfig } from "./lib/config";
import { cancelOne, regenerateOne, retryOne, retryRun } from "./lib/commands";
import { readCounts } from "./lib/jobs";
import { changeQueueControl, queueControl } from "./lib/queueControl";
import { MAX_HINT_CHARS, startRun } from "./lib/storyRunMachine";
import {
  errorCode,
  jobError,
  jobStatus,
  storyFields,
  storyRunError,
  storyRunStatus,
  storyRunTransitionFields,
  transitionFields,
  type ErrorCode,
} from "./validators";

const counts = v.object({
  pending: v.number(),
  requested: v.number(),
  downloaded: v.number(),
  stored: v.number(),
  failed: v.number(),
  cancelled: v.number(),
  approximate: v.optional(v.literal(true)),
});

/**
 * Jobs per status: the totals plus the count rows not folded yet (one document
 * at rest), however many jobs exist; `approximate` while a burst has left more
 * rows than one read sums (lib/counts.ts).
 */
export const statusCounts = adminQuery({
  args: {},
  returns: counts,
  handler: async (ctx) => {
    return readCounts(ctx);
  },
});

const jobRow = v.object({
  jobId: v.id("portraitJobs"),
  status: jobStatus,
  attempt: v.number(),
  errorCode: v.optional(errorCode),
  errorMessage: v.optional(v.string()),
  createdAt: v.number(),
  updatedAt: v.number(),
  // The job's first step after creation (null while it waits), and when it
  // reached stored or failed (null while it is live).
  startedAt: v.union(v.number(), v.null()),
  finishedAt: v.union(v.number(), v.null()),
  storyId: v.id("stories"),
  // null when the story was deleted (its job stays for the audit).
  story: v.union(v.null(), v.object({ title: v.string(), patientName: v.string(), patientNumber: v.string() })),
  // The job's last stored portrait (a failed regeneration keeps it), for a thumbnail.
  portraitUrl: v.union(v.string(), v.null()),
});

async function toRow(ctx: QueryCtx, job: Doc<"portraitJobs">) {
  const story = await ctx.db.get("stories", job.storyId);
  // Two reads: the creation event and the one after it.
  const [, started] = await ctx.db
    .query("portraitJobEvents")
    .withIndex("by_job", (q) => q.eq("jobId", job._id))
    .take(2);
  return {
    jobId: job._id,
    status: job.status,
    attempt: job.attempt,
    errorCode: job.error?.code,
    errorMessage: job.error?.message,
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
    startedAt: started?.at ?? null,
    finishedAt: job.status === "stored" || job.status === "failed" || job.status === "cancelled" ? job.updatedAt : null,
    storyId: job.storyId,
    story: story && { title: story.title, patientName: story.patientName, patientNumber: story.patientNumber },
    portraitUrl: job.storageId ? await ctx.storage.getUrl(job.storageId) : null,
  };
}

const onePage = <T>(page: T[]): PaginationResult<T> => ({ page, isDone: true, continueCursor: "" });

// An error-message search reads at most this many failed jobs, newest change first.
const MESSAGE_SCAN = 500;

// A text search is ranked here (lib below) over at most this many matches.
const SEARCH_LIMIT = 50;

const words = (text: string) =>
  text
    .toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter(Boolean);

/**
 * How well `text` answers `query`: a term that is a whole word counts twice a
 * term that only starts one, and the terms in order as adjacent words add as
 * much again. So "ward c" puts "The Sleeper in Ward C" above "The Stair
 * Counter" (the search engine matches the last term as a prefix).
 */
export function relevance(text: string, query: string): number {
  const have = words(text);
  const terms = words(query);
  let score = 0;
  for (const term of terms) score += have.includes(term) ? 2 : have.some((word) => word.startsWith(term)) ? 1 : 0;
  if (terms.length > 1 && ` ${have.join(" ")} `.includes(` ${terms.join(" ")} `)) score += 2 * terms.length;
  return score;
}

const jobFilter = {
  status: v.optional(jobStatus),
  errorCode: v.optional(errorCode),
  // Failed jobs whose error carries this HTTP status.
  httpStatus: v.optional(v.number()),
  // Jobs whose last change is after this time.
  since: v.optional(v.number()),
};
type JobFilter = Infer<ReturnType<typeof v.object<typeof jobFilter>>>;

/** Whether a job passes every filter (for what an index could not narrow). */
function passes(job: Doc<"portraitJobs">, { status, errorCode: code, httpStatus, since }: JobFilter): boolean {
  return (
    (status === undefined || job.status === status) &&
    (code === undefined || (job.status === "failed" && job.error?.code === code)) &&
    (httpStatus === undefined || (job.status === "failed" && job.error?.httpStatus === httpStatus)) &&
    (since === undefined || job.updatedAt > since)
  );
}

/**
 * Jobs for `usePaginatedQuery`, newest first: by status (last change), by
 * error code or HTTP status (failed jobs only), changed since a time, or by
 * full-text search over the story title, patient name and number (the best
 * 50, ranked). A search that is a job id returns that job if it passes the
 * filters.
 */
export const listJobs = adminQuery({
  args: {
    paginationOpts: paginationOptsValidator,
    ...jobFilter,
    search: v.optional(v.string()),
    // Words in a failed job's error message (the newest 500 failed jobs matching the other filters are searched).
    message: v.optional(v.string()),
  },
  returns: paginationResultValidator(jobRow),
  handler: async (ctx, { paginationOpts, search, message, ...filter }) => {
    const { status, errorCode: code, httpStatus, since } = filter;
    const rows = async (jobs: Doc<"portraitJobs">[]) => Promise.all(jobs.map((job) => toRow(ctx, job)));
    const needle = message?.trim().toLowerCase() ?? "";
    if (needle) {
      if (status && status !== "failed") return onePage([]);
      const scanned = await failedJobs(ctx, { code, httpStatus, since }).order("desc").take(MESSAGE_SCAN);
      const text = search?.trim() ?? "";
      const found = scanned.filter(
        (job) =>
          passes(job, filter) &&
          job.error!.message.toLowerCase().includes(needle) &&
          (!text || relevance(job.searchText, text) > 0 || job._id === text),
      );
      return onePage(await rows(found));
    }
    const text = search?.trim() ?? "";
    if (text) {
      const id = ctx.db.normalizeId("portraitJobs", text);
      if (id) {
        const job = await ctx.db.get("portraitJobs", id);
        return onePage(job && passes(job, filter) ? await rows([job]) : []);
      }
      const found = await ctx.db
        .query("portraitJobs")
        .withSearchIndex("search_text", (q) => (status ? q.search("searchText", text).eq("status", status) : q.search("searchText", text)))
        .take(SEARCH_LIMIT);
      const ranked = found
        .filter((job) => passes(job, filter))
        .map((job, i) => ({ job, i, score: relevance(job.searchText, text) }))
        .sort((a, b) => b.score - a.score || a.i - b.i);
      return onePage(await rows(ranked.map((r) => r.job)));
    }
    // Only failed jobs carry an error.
    if ((code || httpStatus !== undefined) && status && status !== "failed") return onePage([]);
    const after = since ?? -1;
    const jobs =
      httpStatus !== undefined
        ? ctx.db
            .query("portraitJobs")
            .withIndex("by_http_status", (q) => q.eq("status", "failed").eq("error.httpStatus", httpStatus).gt("updatedAt", after))
            // The index narrows to failed jobs with this HTTP status; the rarer code-and-status pair is checked within it.
            // eslint-disable-next-line @convex-dev/no-filter-in-query -- a third index for the pair would cost every transition a write
            .filter((q) => (code ? q.eq(q.field("error.code"), code) : true))
        : code
          ? ctx.db
              .query("portraitJobs")
              .withIndex("by_error_code", (q) => q.eq("status", "failed").eq("error.code", code).gt("updatedAt", after))
          : status
            ? ctx.db.query("portraitJobs").withIndex("by_status", (q) => q.eq("status", status).gt("updatedAt", after))
            : since !== undefined
              ? ctx.db.query("portraitJobs").withIndex("by_updated", (q) => q.gt("updatedAt", since))
              : ctx.db.query("portraitJobs");
    const result = await jobs.order("desc").paginate(paginationOpts);
    return { ...result, page: await rows(result.page) };
  },
});

// Distinct values an index holds are found by skipping: one read per value.
const MAX_FACETS = 40;
// Each value's count is exact up to this; beyond, `capped`.
const FACET_CAP = 100;

/**
 * What the failed jobs' filters can offer: each error code and each HTTP
 * status that failed jobs carry now, with how many (exact up to 100). Reads
 * one document per distinct value plus at most 101 per value.
 */
export const failedFacets = adminQuery({
  args: {},
  returns: v.object({
    codes: v.array(v.object({ code: errorCode, count: v.number(), capped: v.boolean() })),
    httpStatuses: v.array(v.object({ httpStatus: v.number(), count: v.number(), capped: v.boolean() })),
  }),
  handler: async (ctx) => {
    const codes = await facetCounts<ErrorCode>(
      async (after) =>
        (
          await ctx.db
            .query("portraitJobs")
            .withIndex("by_error_code", (q) =>
              after === undefined ? q.eq("status", "failed") : q.eq("status", "failed").gt("error.code", after),
            )
            .first()
        )?.error?.code,
      (code) =>
        ctx.db
          .query("portraitJobs")
          .withIndex("by_error_code", (q) => q.eq("status", "failed").eq("error.code", code))
          .take(FACET_CAP + 1),
    );
    const httpStatuses = await facetCounts<number>(
      // From 0 up: a failure with no HTTP status is not a facet.
      async (after = 0) =>
        (
          await ctx.db
            .query("portraitJobs")
            .withIndex("by_http_status", (q) => q.eq("status", "failed").gt("error.httpStatus", after))
            .first()
        )?.error?.httpStatus,
      (httpStatus) =>
        ctx.db
          .query("portraitJobs")
          .withIndex("by_http_status", (q) => q.eq("status", "failed").eq("error.httpStatus", httpStatus))
          .take(FACET_CAP + 1),
    );
    return {
      codes: codes.map(({ value, ...count }) => ({ code: value, ...count })),
      httpStatuses: httpStatuses.map(({ value, ...count }) => ({ httpStatus: value, ...count })),
    };
  },
});

/**
 * The distinct values of one indexed field, walked in index order: `next`
 * gives the first value after `after` (undefined: none left), `withValue`
 * reads up to FACET_CAP + 1 documents holding one value. At most MAX_FACETS values.
 */
async function facetCounts<T>(
  next: (after: T | undefined) => Promise<T | undefined>,
  withValue: (value: T) => Promise<unknown[]>,
): Promise<{ value: T; count: number; capped: boolean }[]> {
  const facets = [];
  let after: T | undefined;
  for (let i = 0; i < MAX_FACETS; i++) {
    const value = await next(after);
    if (value === undefined) break;
    const some = await withValue(value);
    facets.push({ value, count: Math.min(some.length, FACET_CAP), capped: some.length > FACET_CAP });
    after = value;
  }
  return facets;
}

// A job has a handful of events per attempt; this bounds a pathological one.
const MAX_EVENTS_PER_JOB = 500;

const timelineEvent = v.object({ _id: v.id("portraitJobEvents"), ...transitionFields });

/** One job: its story (null if deleted), its portrait URL once stored, and every transition. */
export const getJob = adminQuery({
  // A string, not v.id: a malformed id from the address bar is "not found", not a validation error.
  args: { jobId: v.string() },
  returns: v.union(
    v.null(),
    v.object({
      job: v.object({
        _id: v.id("portraitJobs"),
        storyId: v.id("stories"),
        status: jobStatus,
        attempt: v.number(),
        error: v.optional(jobError),
        createdAt: v.number(),
        updatedAt: v.number(),
      }),
      story: v.union(v.null(), v.object({ ...storyFields, createdAt: v.number() })),
      portraitUrl: v.union(v.string(), v.null()),
      // The attempt that painted the portrait shown, and when it was stored (null: none).
      portraitAttempt: v.union(v.number(), v.null()),
      portraitStoredAt: v.union(v.number(), v.null()),
      events: v.array(timelineEvent),
      eventsTruncated: v.boolean(),
    }),
  ),
  handler: async (ctx, { jobId }) => {
    const id = ctx.db.normalizeId("portraitJobs", jobId);
    const job = id && (await ctx.db.get("portraitJobs", id));
    if (!job) return null;
    const story = await ctx.db.get("stories", job.storyId);
    const events = await ctx.db
      .query("portraitJobEvents")
      .withIndex("by_job", (q) => q.eq("jobId", job._id))
      .take(MAX_EVENTS_PER_JOB + 1);
    // The job's file is its last stored attempt's (a regeneration keeps it until the next is stored).
    const painted = await ctx.db
      .query("portraitJobEvents")
      .withIndex("by_job", (q) => q.eq("jobId", job._id))
      .order("desc")
      // eslint-disable-next-line @convex-dev/no-filter-in-query -- bounded by this one job's events, newest first, stopping at the first match
      .filter((q) => q.eq(q.field("to"), "stored"))
      .first();
    return {
      job: {
        _id: job._id,
        storyId: job.storyId,
        status: job.status,
        attempt: job.attempt,
        error: job.error,
        createdAt: job.createdAt,
        updatedAt: job.updatedAt,
      },
      story: story && {
        title: story.title,
        slug: story.slug,
        introduction: story.introduction,
        chapters: story.chapters,
        patientName: story.patientName,
        patientNumber: story.patientNumber,
        story: story.story,
        imageGenerationPrompt: story.imageGenerationPrompt,
        createdAt: story.createdAt,
      },
      portraitUrl: job.storageId ? await ctx.storage.getUrl(job.storageId) : null,
      portraitAttempt: job.storageId ? (painted?.attempt ?? null) : null,
      portraitStoredAt: job.storageId ? (painted?.at ?? null) : null,
      events: events
        .slice(0, MAX_EVENTS_PER_JOB)
        .map(({ _id, attempt, from, to, at, error, details }) => ({ _id, attempt, from, to, at, error, details })),
      eventsTruncated: events.length > MAX_EVENTS_PER_JOB,
    };
  },
});

const DAY_MS = 24 * 60 * 60 * 1000;
// The summary reads at most this many failure events (newest first); with more
// failures in a day than this, `truncated` says the counts are a lower bound.
const MAX_FAILURE_EVENTS = 2000;

// Jobs listed per code in the summary (newest failure first).
const MAX_JOBS_PER_CODE = 10;

/**
 * Failed attempts of the 24 hours before `now` grouped by error code, most
 * frequent first. `stillFailed` counts the group's jobs that are failed with
 * that code now: what "retry all" would re-queue; `recentJobs` are the
 * group's latest jobs whatever their status now. Time is an argument, not
 * Date.now() (which Convex caches in a query): the client rounds it (to the
 * minute) so the result caches and moves on as time passes.
 */
export const failureSummary = adminQuery({
  args: { now: v.number() },
  returns: v.object({
    since: v.number(),
    until: v.number(),
    truncated: v.boolean(),
    codes: v.array(
      v.object({
        code: errorCode,
        count: v.number(),
        jobs: v.number(),
        stillFailed: v.number(),
        latestMessage: v.string(),
        latestAt: v.number(),
        recentJobs: v.array(v.object({ jobId: v.id("portraitJobs"), status: jobStatus, title: v.union(v.string(), v.null()) })),
      }),
    ),
  }),
  handler: async (ctx, { now }) => {
    const since = now - DAY_MS;
    const events = await ctx.db
      .query("portraitJobEvents")
      .withIndex("by_to", (q) => q.eq("to", "failed").gt("at", since).lte("at", now))
      .order("desc")
      .take(MAX_FAILURE_EVENTS + 1);
    const truncated = events.length > MAX_FAILURE_EVENTS;
    const groups = new Map<ErrorCode, { count: number; jobs: Set<Id<"portraitJobs">>; latestMessage: string; latestAt: number }>();
    for (const event of events.slice(0, MAX_FAILURE_EVENTS)) {
      if (!event.error) continue;
      const group = groups.get(event.error.code);
      if (group) {
        group.count++;
        group.jobs.add(event.jobId);
      } else {
        // Newest first, so the first event seen is the latest.
        groups.set(event.error.code, { count: 1, jobs: new Set([event.jobId]), latestMessage: event.error.message, latestAt: event.at });
      }
    }
    const codes = [];
    for (const [code, group] of groups) {
      let stillFailed = 0;
      const recentJobs = [];
      // A Set keeps insertion order: newest failure first.
      for (const jobId of group.jobs) {
        const job = await ctx.db.get("portraitJobs", jobId);
        if (job?.status === "failed" && job.error?.code === code) stillFailed++;
        if (job && recentJobs.length < MAX_JOBS_PER_CODE) {
          const story = await ctx.db.get("stories", job.storyId);
          recentJobs.push({ jobId, status: job.status, title: story?.title ?? null });
        }
      }
      codes.push({
        code,
        count: group.count,
        jobs: group.jobs.size,
        stillFailed,
        latestMessage: group.latestMessage,
        latestAt: group.latestAt,
        recentJobs,
      });
    }
    codes.sort((a, b) => b.count - a.count || b.latestAt - a.latestAt);
    return { since, until: now, truncated, codes };
  },
});

const chartRange = v.union(...(Object.keys(CHART_RANGES) as ChartRange[]).map((range) => v.literal(range)));

/**
 * The activity chart: portraits stored and attempts failed per bucket of
 * `range`, ending at `now` (rounded by the client, so it caches). Reads a
 * bounded number of events however long the log (lib/activity.ts).
 */
export const activity = adminQuery({
  args: { range: chartRange, now: v.number() },
  returns: v.object({
    now: v.number(),
    bucketMs: v.number(),
    cap: v.number(),
    buckets: v.array(
      v.object({ start: v.number(), stored: v.number(), failed: v.number(), storedCapped: v.boolean(), failedCapped: v.boolean() }),
    ),
  }),
  handler: async (ctx, { range, now }) => readActivity(ctx, range, now),
});

const HOUR_MS = 60 * 60 * 1000;
// Per hour: at most 13 snapshots (one each 5 minutes) and this many attempts for the percentiles.
const SNAPSHOTS_PER_HOUR = 13;
const ATTEMPTS_PER_HOUR = 60;

/**
 * The queue per hour over the 24 hours before `now` (rounded by the client):
 * the most jobs waiting and in flight in the hour's snapshots, and p50/p95 of
 * an attempt's request + download over its `downloaded` events (at most 60
 * an hour; `attemptsCapped` says there were more). Reads at most
 * 24 × (13 + 61) documents however long the history.
 */
export const queueMetrics = adminQuery({
  args: { now: v.number() },
  returns: v.object({
    hours: v.array(
      v.object({
        start: v.number(),
        samples: v.number(),
        maxPending: v.number(),
        maxInFlight: v.number(),
        attempts: v.number(),
        attemptsCapped: v.boolean(),
        p50: v.union(v.number(), v.null()),
        p95: v.union(v.number(), v.null()),
      }),
    ),
  }),
  handler: async (ctx, { now }) => {
    const hours = [];
    for (let i = 23; i >= 0; i--) {
      const start = now - (i + 1) * HOUR_MS;
      const end = start + HOUR_MS;
      const snapshots = await ctx.db
        .query("queueSnapshots")
        .withIndex("by_at", (q) => q.gt("at", start).lte("at", end))
        .take(SNAPSHOTS_PER_HOUR);
      const attempts = await ctx.db
        .query("portraitJobEvents")
        .withIndex("by_to", (q) => q.eq("to", "downloaded").gt("at", start).lte("at", end))
        .take(ATTEMPTS_PER_HOUR + 1);
      const times = attempts
        .slice(0, ATTEMPTS_PER_HOUR)
        .map((e) => (e.details?.requestMs ?? 0) + (e.details?.downloadMs ?? 0))
        .filter((ms) => ms > 0)
        .sort((a, b) => a - b);
      hours.push({
        start,
        samples: snapshots.length,
        maxPending: Math.max(0, ...snapshots.map((s) => s.pending)),
        maxInFlight: Math.max(0, ...snapshots.map((s) => s.inFlight)),
        attempts: Math.min(attempts.length, ATTEMPTS_PER_HOUR),
        attemptsCapped: attempts.length > ATTEMPTS_PER_HOUR,
        p50: percentile(times, 50),
        p95: percentile(times, 95),
      });
    }
    return { hours };
  },
});

// Latency is measured over the newest stored portraits (at most 5 reads each).
const LATENCY_SAMPLE = 200;
const STEPS = ["queue", "request", "download", "store", "total"] as const;

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? null;
}

/**
 * p50/p95 per step over the last 200 stored portraits, for the attempt that
 * stored each one: queue (pending → requested, including any backoff),
 * request and download (timed by the action), store (file write + stored
 * transition), and total (job created → stored, across every attempt).
 */
export const latency = adminQuery({
  args: {},
  returns: v.object({
    sample: v.number(),
    steps: v.array(
      v.object({
        step: v.union(...STEPS.map((s) => v.literal(s))),
        count: v.number(),
        p50: v.union(v.number(), v.null()),
        p95: v.union(v.number(), v.null()),
      }),
    ),
  }),
  handler: async (ctx) => {
    const stored = await ctx.db
      .query("portraitJobEvents")
      .withIndex("by_to", (q) => q.eq("to", "stored"))
      .order("desc")
      .take(LATENCY_SAMPLE);
    const samples: Record<(typeof STEPS)[number], number[]> = { queue: [], request: [], download: [], store: [], total: [] };
    const push = (step: (typeof STEPS)[number], value: number | undefined) => {
      if (value !== undefined && Number.isFinite(value) && value >= 0) samples[step].push(value);
    };
    for (const done of stored) {
      // A successful attempt is exactly pending → requested → downloaded → stored.
      const [, downloaded, requested, pending] = await ctx.db
        .query("portraitJobEvents")
        .withIndex("by_job", (q) => q.eq("jobId", done.jobId).lte("at", done.at))
        .order("desc")
        .take(4);
      if (pending?.to === "pending" && requested?.to === "requested") push("queue", requested.at - pending.at);
      if (downloaded?.to === "downloaded") {
        push("request", downloaded.details?.requestMs);
        push("download", downloaded.details?.downloadMs);
      }
      push("store", done.details?.durationMs);
      const job = await ctx.db.get("portraitJobs", done.jobId);
      if (job) push("total", done.at - job.createdAt);
    }
    return {
      sample: stored.length,
      steps: STEPS.map((step) => {
        const sorted = samples[step].sort((a, b) => a - b);
        return { step, count: sorted.length, p50: percentile(sorted, 50), p95: percentile(sorted, 95) };
      }),
    };
  },
});

/** Re-queues one failed job as a new attempt. */
export const retryJob = adminMutation({
  args: { jobId: v.string() },
  returns: v.union(v.literal("queued"), v.literal("not_failed")),
  handler: async (ctx, { jobId }) => {
    const id = ctx.db.normalizeId("portraitJobs", jobId);
    return retryOne(ctx, id && (await ctx.db.get("portraitJobs", id)), "manual retry from the admin console");
  },
});

const retryFilter = v.object({ code: v.optional(errorCode), httpStatus: v.optional(v.number()), since: v.optional(v.number()) });

/** Who did it, for the audit: a verified email, or the subject's user part (never a session). */
function operator(identity: { email?: string; subject: string }): string {
  return identity.email ?? identity.subject.replace(/\|.*/s, "");
}

/**
 * How many failed jobs "retry everything matching" would re-queue now:
 * exact up to 2,000 (`exact` false beyond). For the confirmation.
 */
export const countRetryable = adminQuery({
  args: { filter: retryFilter },
  returns: v.object({ count: v.number(), exact: v.boolean(), cap: v.number() }),
  handler: async (ctx, { filter }) => ({ ...(await countMatching(ctx, filter)), cap: COUNT_CAP }),
});

/**
 * Re-queues every job failed now that matches `filter` (any age unless
 * `since`), in batches; follow its exact total with `bulkRetry`.
 */
export const retryMatching = adminMutation({
  args: { filter: retryFilter },
  returns: v.id("bulkRetries"),
  handler: async (ctx, { filter }) => startBulkRetry(ctx, filter as RetryFilter, operator(ctx.admin)),
});

/** A bulk retry's progress: jobs re-queued so far, and whether it has finished (then `queued` is the total). */
export const bulkRetry = adminQuery({
  args: { id: v.string() },
  returns: v.union(v.null(), v.object({ queued: v.number(), done: v.boolean() })),
  handler: async (ctx, { id }) => {
    const runId = ctx.db.normalizeId("bulkRetries", id);
    const run = runId && (await ctx.db.get("bulkRetries", runId));
    return run ? { queued: run.queued, done: run.done } : null;
  },
});

const RECENT_CONTROL_EVENTS = 5;

/** The queue's control (paused, operator ceiling), what the dispatcher computes, and the latest changes. */
export const queueState = adminQuery({
  args: {},
  returns: v.object({
    paused: v.boolean(),
    maxConcurrency: v.union(v.number(), v.null()),
    // PORTRAIT_MAX_CONCURRENCY: the highest ceiling an operator may set.
    configuredMax: v.number(),
    // The dispatcher's adaptive limit and the slots held, as of its last run (null before its first).
    adaptiveLimit: v.union(v.number(), v.null()),
    inFlight: v.union(v.number(), v.null()),
    changes: v.array(v.object({ at: v.number(), by: v.string(), paused: v.boolean(), maxConcurrency: v.union(v.number(), v.null()) })),
  }),
  handler: async (ctx) => {
    const control = await queueControl(ctx);
    const loop = await ctx.db.query("portraitDispatcher").first();
    const changes = await ctx.db.query("queueControlEvents").withIndex("by_at").order("desc").take(RECENT_CONTROL_EVENTS);
    return {
      paused: control.paused,
      maxConcurrency: control.maxConcurrency ?? null,
      configuredMax: queueConfig().maxConcurrency,
      adaptiveLimit: loop ? Math.floor(loop.limit) : null,
      inFlight: loop ? loop.holding : null,
      changes: changes.map((e) => ({ at: e.at, by: e.by, paused: e.paused, maxConcurrency: e.maxConcurrency ?? null })),
    };
  },
});

/** Pauses (no new job starts; those in flight finish) or resumes the portrait queue. False when it already was. */
export const setQueuePaused = adminMutation({
  args: { paused: v.boolean() },
  returns: v.boolean(),
  handler: async (ctx, { paused }) => changeQueueControl(ctx, { paused }, operator(ctx.admin)),
});

/**
 * Caps jobs in flight at `ceiling` (1 to PORTRAIT_MAX_CONCURRENCY), under the
 * dispatcher's own limit; null removes the cap. False when nothing changed.
 */
export const setConcurrencyCeiling = adminMutation({
  args: { ceiling: v.union(v.number(), v.null()) },
  returns: v.boolean(),
  handler: async (ctx, { ceiling }) => {
    const max = queueConfig().maxConcurrency;
    if (ceiling !== null && !(Number.isInteger(ceiling) && ceiling >= 1 && ceiling <= max)) {
      throw new ConvexError(`The ceiling must be a whole number from 1 to ${max} (PORTRAIT_MAX_CONCURRENCY).`);
    }
    return changeQueueControl(ctx, { maxConcurrency: ceiling ?? undefined }, operator(ctx.admin));
  },
});

/** Starts a story run (Claude writes a case file; its portrait job follows). Returns the run's id to follow. */
export const generateStory = adminMutation({
  args: { hint: v.optional(v.string()) },
  returns: v.id("storyRuns"),
  handler: async (ctx, { hint }) => {
    // Refused rather than cut: the operator sees the limit and loses nothing silently.
    if (hint && hint.trim().length > MAX_HINT_CHARS)
      throw new ConvexError(`The theme is ${hint.trim().length} characters; at most ${MAX_HINT_CHARS}.`);
    return startRun(ctx, hint);
  },
});

const storyRunRow = v.object({
  runId: v.id("storyRuns"),
  status: storyRunStatus,
  attempt: v.number(),
  hint: v.optional(v.string()),
  error: v.optional(storyRunError),
  createdAt: v.number(),
  updatedAt: v.number(),
  // When a pending attempt is due (a retry's backoff).
  runAt: v.number(),
  storyId: v.optional(v.id("stories")),
  // null when the story was deleted (its run stays for the audit).
  story: v.union(v.null(), v.object({ title: v.string(), patientName: v.string() })),
  job: v.union(v.null(), v.object({ jobId: v.id("portraitJobs"), status: jobStatus, portraitUrl: v.union(v.string(), v.null()) })),
});

async function toRunRow(ctx: QueryCtx, run: Doc<"storyRuns">) {
  const story = run.storyId ? await ctx.db.get("stories", run.storyId) : null;
  const job = run.storyId
    ? await ctx.db
        .query("portraitJobs")
        .withIndex("by_story", (q) => q.eq("storyId", run.storyId!))
        .first()
    : null;
  return {
    runId: run._id,
    status: run.status,
    attempt: run.attempt,
    hint: run.hint,
    error: run.error,
    createdAt: run.createdAt,
    updatedAt: run.updatedAt,
    runAt: run.runAt,
    storyId: run.storyId,
    story: story && { title: story.title, patientName: story.patientName },
    job: job && { jobId: job._id, status: job.status, portraitUrl: job.storageId ? await ctx.storage.getUrl(job.storageId) : null },
  };
}

/** Story runs for `usePaginatedQuery`, newest first, optionally by status (last change). */
export const listStoryRuns = adminQuery({
  args: { paginationOpts: paginationOptsValidator, status: v.optional(storyRunStatus) },
  returns: paginationResultValidator(storyRunRow),
  handler: async (ctx, { paginationOpts, status }) => {
    const runs = status ? ctx.db.query("storyRuns").withIndex("by_status", (q) => q.eq("status", status)) : ctx.db.query("storyRuns");
    const result = await runs.order("desc").paginate(paginationOpts);
    return { ...result, page: await Promise.all(result.page.map((run) => toRunRow(ctx, run))) };
  },
});

// A run has at most a handful of events per attempt; this bounds a pathological one.
const MAX_EVENTS_PER_RUN = 200;

/** One story run with every transition across its attempts (null when the id is unknown). */
export const getStoryRun = adminQuery({
  // A string, not v.id: a malformed id from the address bar is "not found", not a validation error.
  args: { runId: v.string() },
  returns: v.union(
    v.null(),
    v.object({
      run: storyRunRow,
      events: v.array(v.object({ _id: v.id("storyRunEvents"), ...storyRunTransitionFields })),
      eventsTruncated: v.boolean(),
    }),
  ),
  handler: async (ctx, { runId }) => {
    const id = ctx.db.normalizeId("storyRuns", runId);
    const run = id && (await ctx.db.get("storyRuns", id));
    if (!run) return null;
    const events = await ctx.db
      .query("storyRunEvents")
      .withIndex("by_run", (q) => q.eq("runId", run._id))
      .take(MAX_EVENTS_PER_RUN + 1);
    return {
      run: await toRunRow(ctx, run),
      events: events
        .slice(0, MAX_EVENTS_PER_RUN)
        .map(({ _id, attempt, from, to, at, error, details }) => ({ _id, attempt, from, to, at, error, details })),
      eventsTruncated: events.length > MAX_EVENTS_PER_RUN,
    };
  },
});

/**
 * Cancels a pending or requested job (its action stops at its next
 * transition; nothing is retried) or discards a failed one from the failure
 * views. Its events stay; "not_cancellable" for anything else.
 */
export const cancelJob = adminMutation({
  args: { jobId: v.string() },
  returns: v.union(v.literal("cancelled"), v.literal("not_cancellable")),
  handler: async (ctx, { jobId }) => {
    const id = ctx.db.normalizeId("portraitJobs", jobId);
    const job = id && (await ctx.db.get("portraitJobs", id));
    const verb = job?.status === "failed" ? "discarded" : "cancelled";
    return cancelOne(ctx, job, `${verb} by ${operator(ctx.admin)} from the admin console`);
  },
});

/** Re-queues a failed story run as a new attempt (Claude is asked again); anything else is "not_failed". */
export const retryStoryRun = adminMutation({
  args: { runId: v.string() },
  returns: v.union(v.literal("queued"), v.literal("not_failed")),
  handler: async (ctx, { runId }) => {
    const id = ctx.db.normalizeId("storyRuns", runId);
    return retryRun(ctx, id && (await ctx.db.get("storyRuns", id)), "manual retry from the admin console");
  },
});

/** Starts a backfill run: a portrait job for every story with neither a portrait nor a job. */
export const backfill = adminMutation({
  args: {},
  returns: v.id("portraitBackfills"),
  handler: async (ctx) => startBackfill(ctx),
});

/** The newest backfill run's progress (stories scanned, jobs created, done), or null. */
export const backfillProgress = adminQuery({
  args: {},
  returns: v.union(v.null(), backfillProgressValidator),
  handler: async (ctx) => latestBackfill(ctx),
});

/**
 * A new portrait for a story: its job goes back to the queue as a new attempt;
 * the story keeps its current portrait until the new one is stored.
 */
export const regenerate = adminMutation({
  args: { storyId: v.string() },
  returns: v.union(v.literal("queued"), v.literal("busy"), v.literal("story_missing")),
  handler: async (ctx, { storyId }) => {
    const id = ctx.db.normalizeId("stories", storyId);
    return id ? regenerateOne(ctx, id, "regenerated from the admin console") : "story_missing";
  },
});
