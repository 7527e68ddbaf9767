import { useQuery } from "convex/react";
import { api } from "../../convex/_generated/api";
import type { FunctionReturnType } from "convex/server";
import { Loading } from "./Connection";
import { DataTable, type Column } from "./DataTable";
import { formatDateTime, useKept, useMinute } from "./format";
import { patchRoute, RANGES, type Range, type Route } from "./route";

const RANGE_LABEL: Record<Range, string> = { "6h": "6 hours", "24h": "24 hours", "7d": "7 days", "30d": "30 days" };
const W = 600;
const H = 160;

type Bucket = FunctionReturnType<typeof api.admin.activity>["buckets"][number];

const BUCKET_COLUMNS: Column<Bucket>[] = [
  { label: "From", cell: (b) => formatDateTime(b.start) },
  { label: "Stored", num: true, cell: (b) => `${b.storedCapped ? "≥ " : ""}${b.stored}` },
  { label: "Failed", num: true, cell: (b) => `${b.failedCapped ? "≥ " : ""}${b.failed}` },
];

/** Portraits stored and attempts failed per bucket (convex/lib/activity.ts), with a range picker. */
export function ActivityChart({ route }: { route: Extract<Route, { page: "audit" }> }) {
  const now = useMinute();
  const data = useKept(useQuery(api.admin.activity, { range: route.range, now }), route.range);
  const stored = data?.buckets.reduce((n, b) => n + b.stored, 0) ?? 0;
  const failed = data?.buckets.reduce((n, b) => n + b.failed, 0) ?? 0;
  const capped = data?.buckets.some((b) => b.storedCapped || b.failedCapped) ?? false;
  const max = Math.max(1, ...(data?.buckets.flatMap((b) => [b.stored, b.failed]) ?? [1]));
  const slot = data ? W / data.buckets.length : 0;
  const bar = Math.max(1, slot / 2 - 1);
  const height = (n: number) => (n / max) * (H - 4);
  const atLeast = capped ? "at least " : "";

  return (
    <section className="panel" aria-labelledby="activity-title">
      <div className="panel-head">
        <h3 id="activity-title">Throughput and failures</h3>
        <div className="range" role="group" aria-label="Range">
          {RANGES.map((range) => (
            <button key={range} type="button" aria-pressed={route.range === range} onClick={() => patchRoute(route, { range })}>
              {range}
            </button>
          ))}
        </div>
      </div>
      {data === undefined ? (
        <Loading what="activity" />
      ) : (
        <figure className="chart">
          <figcaption data-testid="activity-summary">
            Last {RANGE_LABEL[route.range]}:{" "}
            <span className="status-stored">
              {atLeast}
              {stored} stored
            </span>
            ,{" "}
            <span className="status-failed">
              {atLeast}
              {failed} failed attempts
            </span>
            <span className="muted"> · one bar pair per {formatBucket(data.bucketMs)}</span>
          </figcaption>
          <div className="chart-body">
            <span className="chart-max muted">{max}</span>
            <svg
              viewBox={`0 0 ${W} ${H}`}
              preserveAspectRatio="none"
              role="img"
              aria-label={`Stored and failed per ${formatBucket(data.bucketMs)}, last ${RANGE_LABEL[route.range]}`}
            >
              <line x1={0} x2={W} y1={H - 0.5} y2={H - 0.5} className="chart-axis" />
              {data.buckets.map((b, i) => (
                <g key={b.start} data-bucket={i}>
                  <title>
                    {`${formatDateTime(b.start)}: ${b.storedCapped ? "≥" : ""}${b.stored} stored, ${b.failedCapped ? "≥" : ""}${b.failed} failed`}
                  </title>
                  <rect className="bar-stored" x={i * slot + 1} y={H - height(b.stored)} width={bar} height={height(b.stored)} />
                  <rect className="bar-failed" x={i * slot + 1 + bar} y={H - height(b.failed)} width={bar} height={height(b.failed)} />
                </g>
              ))}
            </svg>
          </div>
          <div className="chart-x muted">
            <span>{formatDateTime(data.buckets[0]!.start)}</span>
            <span>now</span>
          </div>
          <details className="chart-table">
            <summary>As a table</summary>
            <DataTable columns={BUCKET_COLUMNS} rows={data.buckets.filter((b) => b.stored + b.failed > 0)} rowKey={(b) => b.start} />
          </details>
          {capped && (
            <p className="muted">
              Buckets marked ≥ hold more events than the chart reads per bucket ({data.cap}): those counts are a lower bound.
            </p>
          )}
        </figure>
      )}
    </section>
  );
}

function formatBucket(ms: number): string {
  if (ms % 86_400_000 === 0) return ms === 86_400_000 ? "day" : `${ms / 86_400_000} days`;
  if (ms % 3_600_000 === 0) return ms === 3_600_000 ? "hour" : `${ms / 3_600_000} hours`;
  return `${ms / 60_000} minutes`;
}
