/**
 * "Retry everything matching": the failed jobs that match an operator's filter
 * (error code, HTTP status, failed since), counted exactly before and after.
 *
 * A run is a `bulkRetries` row. It fixes `until` when it starts, so a job that
 * fails after the click is not part of it, then walks the matching failed jobs
 * in batches (one mutation each, the next scheduled by the last) and adds each
 * batch's re-queued jobs to `queued`; `done` says the walk has finished, so
 * `queued` is then the exact total. A re-queued job leaves the failed range
 * of the index, so the cursor never skips or repeats one.
 */
import { internal } from "../_generated/api";
import type { Doc, Id } from "../_generated/dataModel";
import type { MutationCtx, QueryCtx } from "../_generated/server";
import type { ErrorCode } from "../validators";
import { retryOne } from "./commands";

export type RetryFilter = { code?: ErrorCode; httpStatus?: number; since?: number };

const BATCH = 100;
/** A confirmation counts at most this many jobs exactly; beyond, it says "at least". */
export const COUNT_CAP = 2000;

/** The failed jobs whose last change is in (since, until], from the narrowest index the filter allows. */
export function failedJobs(ctx: QueryCtx, filter: RetryFilter, until = Number.MAX_SAFE_INTEGER) {
  const since = filter.since ?? -1;
  if (filter.httpStatus !== undefined) {
    const status = filter.httpStatus;
    return ctx.db
      .query("portraitJobs")
      .withIndex("by_http_status", (q) =>
        q.eq("status", "failed").eq("error.httpStatus", status).gt("updatedAt", since).lte("updatedAt", until),
      );
  }
  if (filter.code !== undefined) {
    const code = filter.code;
    return ctx.db
      .query("portraitJobs")
      .withIndex("by_error_code", (q) => q.eq("status", "failed").eq("error.code", code).gt("updatedAt", since).lte("updatedAt", until));
  }
  return ctx.db
    .query("portraitJobs")
    .withIndex("by_status", (q) => q.eq("status", "failed").gt("updatedAt", since).lte("updatedAt", until));
}

/** What the index could not narrow (a code beside an HTTP status). */
const matches = (job: Doc<"portraitJobs">, filter: RetryFilter) =>
  job.status === "failed" &&
  (filter.code === undefined || job.error?.code === filter.code) &&
  (filter.httpStatus === undefined || job.error?.httpStatus === filter.httpStatus);

/** How many failed jobs match now: exact up to COUNT_CAP (`exact` false beyond). */
export async function countMatching(ctx: QueryCtx, filter: RetryFilter): Promise<{ count: number; exact: boolean }> {
  const jobs = await failedJobs(ctx, filter).take(COUNT_CAP + 1);
  const exact = jobs.length <= COUNT_CAP;
  return { count: jobs.slice(0, COUNT_CAP).filter((job) => matches(job, filter)).length, exact };
}

/** Starts a run and re-queues its first batch here; the rest follow in scheduled batches. */
export async function startBulkRetry(ctx: MutationCtx, filter: RetryFilter, by: string): Promise<Id<"bulkRetries">> {
  const id = await ctx.db.insert("bulkRetries", { filter, until: Date.now(), by, cursor: null, queued: 0, done: false });
  await continueBulkRetry(ctx, id);
  return id;
}

/** One batch of a run. Returns how many jobs it re-queued. */
export async function continueBulkRetry(ctx: MutationCtx, id: Id<"bulkRetries">): Promise<number> {
  const run = await ctx.db.get("bulkRetries", id);
  if (!run || run.done) return 0;
  const page = await failedJobs(ctx, run.filter, run.until).paginate({ numItems: BATCH, cursor: run.cursor });
  const reason = `bulk retry from the admin console (${describeFilter(run.filter)})`;
  let queued = 0;
  for (const job of page.page) {
    if (matches(job, run.filter) && (await retryOne(ctx, job, reason)) === "queued") queued++;
  }
  const done = page.isDone;
  await ctx.db.patch("bulkRetries", id, {
    cursor: page.continueCursor,
    queued: run.queued + queued,
    done,
    ...(done && { finishedAt: Date.now() }),
  });
  if (!done) await ctx.scheduler.runAfter(0, internal.bulkRetries.continueRetry, { id });
  return queued;
}

function describeFilter(filter: RetryFilter): string {
  const parts = [
    filter.code && `code ${filter.code}`,
    filter.httpStatus !== undefined && `HTTP ${filter.httpStatus}`,
    filter.since !== undefined && `failed since ${new Date(filter.since).toISOString()}`,
  ];
  return parts.filter(Boolean).join(", ") || "every failed job";
}
