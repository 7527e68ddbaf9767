/**
 * The admin chart: portraits stored and attempts failed per time bucket, read
 * from the event log through its `by_to` index (["to", "at"]).
 *
 * Bounded reads, whatever the size of the log: each bucket and series is one
 * index range read with `take(cap + 1)`, so a query reads at most
 * buckets × 2 × (cap + 1) documents (MAX_CHART_READS). A bucket with more
 * events than the cap reports the cap and `capped: true` ("at least"). No
 * counter documents are written on the job path, so transitions gain no
 * shared hot document.
 */
import type { QueryCtx } from "../_generated/server";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Each range: how wide one bucket is and how many buckets end at `now`. */
export const CHART_RANGES = {
  "6h": { bucketMs: 15 * MINUTE, buckets: 24 },
  "24h": { bucketMs: HOUR, buckets: 24 },
  "7d": { bucketMs: 6 * HOUR, buckets: 28 },
  "30d": { bucketMs: DAY, buckets: 30 },
} as const;
export type ChartRange = keyof typeof CHART_RANGES;

/** The most documents one chart query may read. */
export const MAX_CHART_READS = 6_000;

const SERIES = ["stored", "failed"] as const;

interface ActivityBucket {
  start: number;
  stored: number;
  failed: number;
  storedCapped: boolean;
  failedCapped: boolean;
}

/** Per-bucket cap: the read budget shared by every bucket and series. */
export function bucketCap(range: ChartRange): number {
  return Math.floor(MAX_CHART_READS / (CHART_RANGES[range].buckets * SERIES.length)) - 1;
}

/** Buckets of `range` ending at `now` (oldest first); each is [start, start + bucketMs). */
export async function readActivity(ctx: Pick<QueryCtx, "db">, range: ChartRange, now: number) {
  const { bucketMs, buckets: n } = CHART_RANGES[range];
  const cap = bucketCap(range);
  const buckets: ActivityBucket[] = await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const start = now - (n - i) * bucketMs;
      const [stored = 0, failed = 0] = await Promise.all(
        SERIES.map((to) =>
          ctx.db
            .query("portraitJobEvents")
            .withIndex("by_to", (q) =>
              q
                .eq("to", to)
                .gte("at", start)
                .lt("at", start + bucketMs),
            )
            .take(cap + 1)
            .then((rows) => rows.length),
        ),
      );
      return {
        start,
        stored: Math.min(stored, cap),
        failed: Math.min(failed, cap),
        storedCapped: stored > cap,
        failedCapped: failed > cap,
      };
    }),
  );
  return { now, bucketMs, cap, buckets };
}
